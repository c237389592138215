//! Ordering keys: of each (queue, key), only the oldest unfinished job is unblocked, and the
//! `blocked` flag moves to the next one when it reaches a terminal state. A retry is not
//! terminal, so a retrying head keeps its key (strict per-key FIFO).

use buzzer_types::JobId;
use rusqlite::{Connection, OptionalExtension, params};

use super::unfinished;
use crate::error::Error;

// Every look-up names its index: without statistics SQLite's planner weighs the partial
// `jobs_ordering` index against `jobs_queue_state (queue, state)` (dropped in migration 5) by
// estimated row widths, and
// adding a column to `jobs` (migration 4) tipped it to the latter, which reads every unfinished
// job of the queue. `INDEXED BY` makes that a prepare error instead of a silent scan.

pub(super) const ANY_UNFINISHED: &str = concat!(
    "SELECT 1 FROM jobs INDEXED BY jobs_ordering WHERE queue = ?1 AND ordering_key = ?2 \
     AND ",
    unfinished!(),
    " LIMIT 1"
);

pub(super) const HAS_HEAD: &str = concat!(
    "SELECT 1 FROM jobs INDEXED BY jobs_ordering WHERE queue = ?1 AND ordering_key = ?2 \
     AND ",
    unfinished!(),
    " AND blocked = 0 LIMIT 1"
);

pub(super) const HEAD: &str = concat!(
    "SELECT id FROM jobs INDEXED BY jobs_ordering WHERE queue = ?1 AND ordering_key = ?2 \
     AND ",
    unfinished!(),
    " AND blocked = 0 ORDER BY id LIMIT 1"
);

pub(super) const RELEASE_NEXT: &str = concat!(
    "UPDATE jobs SET blocked = 0 WHERE id = (SELECT id FROM jobs INDEXED BY jobs_ordering \
     WHERE queue = ?1 AND ordering_key = ?2 AND ",
    unfinished!(),
    " AND blocked = 1 ORDER BY id LIMIT 1)"
);

/// Whether any job of the key is unfinished: a new job of the key must wait behind it.
pub(super) fn any_unfinished(conn: &Connection, queue: &str, key: &str) -> rusqlite::Result<bool> {
    exists(conn, ANY_UNFINISHED, queue, key)
}

/// Whether the key has an unblocked unfinished job (its head).
pub(super) fn has_head(conn: &Connection, queue: &str, key: &str) -> rusqlite::Result<bool> {
    exists(conn, HAS_HEAD, queue, key)
}

/// The key's head: the job that runs (or is next to run) while the others of the key wait.
pub(crate) fn head(conn: &Connection, queue: &str, key: &str) -> Result<Option<JobId>, Error> {
    Ok(conn
        .prepare_cached(HEAD)?
        .query_row(params![queue, key], |r| r.get(0).map(JobId))
        .optional()?)
}

/// After a job of the key reached a terminal state: if the key has no head any more, the
/// oldest blocked job becomes it.
pub(super) fn release_next(conn: &Connection, queue: &str, key: &str) -> rusqlite::Result<()> {
    if !has_head(conn, queue, key)? {
        conn.prepare_cached(RELEASE_NEXT)?
            .execute(params![queue, key])?;
    }
    Ok(())
}

fn exists(conn: &Connection, sql: &str, queue: &str, key: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(sql)?
        .query_row(params![queue, key], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}
