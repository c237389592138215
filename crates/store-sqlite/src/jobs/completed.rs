//! Each queue's count of completed jobs, kept in `queue_completed` (migration 8) by the
//! writes that complete or remove them, so reading it is one row, not a walk of every
//! completed job.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Error;

const ADD: &str = "INSERT INTO queue_completed (queue, n) VALUES (?1, ?2) \
    ON CONFLICT (queue) DO UPDATE SET n = n + excluded.n";

/// A removal only ever follows a completion, so the queue's row is there. Not an upsert: the
/// row it would insert (a negative count) fails the CHECK before the conflict is seen.
const SUBTRACT: &str = "UPDATE queue_completed SET n = n - ?2 WHERE queue = ?1";

const READ: &str = "SELECT n FROM queue_completed WHERE queue = ?1";

/// Adds `delta` (negative: removed) to each queue's count, one statement per queue.
pub(crate) fn add<'a>(
    conn: &Connection,
    changes: impl IntoIterator<Item = (&'a str, i64)>,
) -> Result<(), Error> {
    let mut per_queue: HashMap<&str, i64> = HashMap::new();
    for (queue, delta) in changes {
        *per_queue.entry(queue).or_default() += delta;
    }
    for (queue, delta) in per_queue {
        let (sql, by) = match delta {
            0 => continue,
            1.. => (ADD, delta),
            _ => (SUBTRACT, -delta),
        };
        conn.prepare_cached(sql)?.execute(params![queue, by])?;
    }
    Ok(())
}

/// How many completed jobs `queue` holds.
pub(crate) fn count(conn: &Connection, queue: &str) -> Result<u64, Error> {
    let n: Option<i64> = conn
        .prepare_cached(READ)?
        .query_row([queue], |r| r.get(0))
        .optional()?;
    Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
}
