//! The scheduler's and the pruner's writes.

use buzzer_store::{JobPrune, Promoted};
use buzzer_types::JobId;
use rusqlite::{Connection, params};

use super::completed;
use crate::{clock::ms, error::Error};

pub(super) const PROMOTE: &str = "UPDATE jobs SET state = 1 /*available*/ WHERE id IN \
    (SELECT id FROM jobs WHERE state IN (0 /*scheduled*/, 3 /*retryable*/) AND scheduled_at <= ?1 \
    ORDER BY scheduled_at LIMIT ?2) RETURNING id, queue";

/// `scheduled`/`retryable` jobs whose time has come become `available`, earliest first.
pub(crate) fn promote_due(conn: &Connection, now: i64, limit: u32) -> Result<Vec<Promoted>, Error> {
    let mut stmt = conn.prepare_cached(PROMOTE)?;
    let promoted = stmt
        .query_map(params![now, limit], |r| {
            Ok(Promoted {
                id: JobId(r.get(0)?),
                queue: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(promoted)
}

/// Returns each pruned job's queue and state, for the completed counts.
pub(super) const PRUNE_FINISHED: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
    WHERE state IN (4 /*completed*/, 6 /*cancelled*/) AND finished_at <= ?1 LIMIT ?2) \
    RETURNING queue, state = 4 /*completed*/";

pub(super) const PRUNE_DEAD: &str = "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
    WHERE state = 5 /*dead*/ AND finished_at <= ?1 LIMIT ?2)";

/// Deletes terminal jobs past their retention, at most `limit` in all.
pub(crate) fn prune(conn: &Connection, now: i64, params: JobPrune) -> Result<u64, Error> {
    let finished_before = now.saturating_sub(ms(params.finished_retention_ms));
    let dead_before = now.saturating_sub(ms(params.dead_retention_ms));
    let pruned = conn
        .prepare_cached(PRUNE_FINISHED)?
        .query_map(params![finished_before, params.limit], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    completed::add(
        conn,
        pruned
            .iter()
            .filter(|(_, was_completed)| *was_completed)
            .map(|(queue, _)| (queue.as_str(), -1)),
    )?;
    let finished = pruned.len();
    let left = u64::from(params.limit).saturating_sub(finished as u64);
    let dead = if left == 0 {
        0
    } else {
        conn.prepare_cached(PRUNE_DEAD)?
            .execute(params![dead_before, left])?
    };
    Ok((finished + dead) as u64)
}
