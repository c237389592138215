//! Queues: their paused flag and the counts the API shows.

use buzzer_store::StoreError;
use buzzer_types::{JobState, QueueInfo, StateCounts};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;

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
    // Counted off the covering `jobs_queue_state` index, never the table.
    let mut stmt =
        conn.prepare_cached("SELECT state, COUNT(*) FROM jobs WHERE queue = ?1 GROUP BY state")?;
    let mut rows = stmt.query([&name])?;
    while let Some(row) = rows.next()? {
        let state: JobState = row
            .get::<_, String>(0)?
            .parse()
            .map_err(StoreError::backend)?;
        *counts.get_mut(state) = u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0);
    }
    let oldest: Option<i64> = if counts.available == 0 {
        None
    } else {
        conn.prepare_cached(
            "SELECT MIN(scheduled_at) FROM jobs WHERE queue = ?1 AND state = 'available'",
        )?
        .query_row([&name], |r| r.get(0))?
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
