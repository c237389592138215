//! Queues: their paused flag and the counts the API shows.

use buzzer_store::StoreError;
use buzzer_types::{QueueInfo, StateCounts};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    error::Error,
    jobs::{completed, unfinished},
    state::Stored,
};

/// Every queue, by name. Runs in one read transaction so counts and flags agree.
pub(crate) fn list(conn: &Connection, now: i64) -> Result<Vec<QueueInfo>, Error> {
    let tx = conn.unchecked_transaction()?;
    let queues: Vec<(String, bool)> = tx
        .prepare_cached("SELECT name, paused FROM queues ORDER BY name")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let infos = queues
        .into_iter()
        .map(|(name, paused)| info(&tx, now, name, paused))
        .collect();
    tx.finish()?;
    infos
}

pub(crate) fn get(conn: &Connection, now: i64, name: &str) -> Result<Option<QueueInfo>, Error> {
    let tx = conn.unchecked_transaction()?;
    let paused: Option<bool> = tx
        .prepare_cached("SELECT paused FROM queues WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?;
    let info = paused
        .map(|paused| info(&tx, now, name.to_owned(), paused))
        .transpose();
    tx.finish()?;
    info
}

/// Runs on the writer, inside its group.
pub(crate) fn set_paused(
    conn: &Connection,
    now: i64,
    name: &str,
    paused: bool,
) -> Result<QueueInfo, Error> {
    let changed = conn
        .prepare_cached("UPDATE queues SET paused = ?2 WHERE name = ?1")?
        .execute(params![name, paused])?;
    if changed == 0 {
        return Err(StoreError::NotFound.into());
    }
    info(conn, now, name.to_owned(), paused)
}

fn info(conn: &Connection, now: i64, name: String, paused: bool) -> Result<QueueInfo, Error> {
    let mut counts = StateCounts::default();
    let mut stmt = conn.prepare_cached(COUNT_RESTING)?;
    let mut rows = stmt.query([&name])?;
    while let Some(row) = rows.next()? {
        let Stored(state) = row.get(0)?;
        *counts.get_mut(state) = count(row.get(1)?);
    }
    let (fetchable, oldest_fetchable) = available(conn, AVAILABLE_FETCHABLE, &name)?;
    let (blocked, oldest_blocked) = available(conn, AVAILABLE_BLOCKED, &name)?;
    counts.available = fetchable + blocked;
    counts.completed = completed::count(conn, &name)?;
    counts.running = count(
        conn.prepare_cached(COUNT_RUNNING)?
            .query_row([&name], |r| r.get(0))?,
    );
    let oldest = match (oldest_fetchable, oldest_blocked) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(QueueInfo {
        name,
        paused,
        counts,
        oldest_available_age_ms: oldest
            .map(|at| u64::try_from(now.saturating_sub(at)).unwrap_or(0))
            .unwrap_or(0),
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// How many available jobs one of the two queries finds, and the oldest one's due time.
fn available(conn: &Connection, sql: &str, queue: &str) -> Result<(u64, Option<i64>), Error> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([queue], |r| Ok((count(r.get(0)?), r.get(1)?)))?)
}

// Each count names its index: the hot states have no `(queue, state)` index (migration 5), so
// a query that missed its partial index would read the whole table, and `INDEXED BY` turns
// that into a prepare error. The terms repeat each index's WHERE exactly.

/// The states a job rests in but `completed` (counted in `queue_completed`), off
/// `jobs_resting`.
pub(crate) const COUNT_RESTING: &str = "SELECT state, COUNT(*) FROM jobs INDEXED BY jobs_resting \
    WHERE queue = ?1 AND (state = 0 /*scheduled*/ OR state = 3 /*retryable*/ OR state = 5 /*dead*/ \
    OR state = 6 /*cancelled*/) GROUP BY state";

/// Running jobs, off `jobs_lease`, which carries the queue: no table reads.
pub(crate) const COUNT_RUNNING: &str =
    "SELECT COUNT(*) FROM jobs INDEXED BY jobs_lease WHERE state = 2 /*running*/ AND queue = ?1";

/// Available jobs a worker can take now, off `jobs_fetch`.
pub(crate) const AVAILABLE_FETCHABLE: &str = "SELECT COUNT(*), MIN(scheduled_at) \
    FROM jobs INDEXED BY jobs_fetch WHERE queue = ?1 AND state = 1 /*available*/ AND blocked = 0";

/// Available jobs waiting behind an ordering key's head, off `jobs_ordering` (a blocked job
/// always has a key and is unfinished).
pub(crate) const AVAILABLE_BLOCKED: &str = concat!(
    "SELECT COUNT(*), MIN(scheduled_at) FROM jobs INDEXED BY jobs_ordering \
     WHERE queue = ?1 AND ordering_key IS NOT NULL AND ",
    unfinished!(),
    " AND blocked = 1 AND state = 1 /*available*/"
);
