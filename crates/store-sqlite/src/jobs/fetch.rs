use std::cmp::Reverse;

use buzzer_store::JobFetch;
use buzzer_types::Job;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Params, params};

use super::rows;
use crate::{clock::after, error::Error, row};

/// A queue's best fetchable jobs, straight off the `jobs_fetch` index.
pub(super) const BEST: &str = "SELECT priority, id FROM jobs WHERE queue = ?1 \
    AND state = 'available' AND blocked = 0 ORDER BY priority DESC, id LIMIT ?2";

/// Leases the best `max_jobs` fetchable jobs across the named queues.
///
/// One queue, the common case, is one statement. Across several, each queue is asked separately for its own best `max_jobs`, so every query walks the
/// `jobs_fetch` index in order and stops at its limit; the merged few are then sorted here.
/// One query over all queues (`queue IN (…)`) would have to sort every available row.
pub(crate) fn fetch(conn: &Connection, now: i64, params: JobFetch) -> Result<Vec<Job>, Error> {
    if params.max_jobs == 0 {
        return Ok(Vec::new());
    }
    let mut queues = params.queues;
    queues.sort_unstable();
    queues.dedup();
    let lease_until = after(now, params.lease_ms);
    if let [queue] = queues.as_slice() {
        if !is_open(conn, queue)? {
            return Ok(Vec::new());
        }
        let lease = conn.prepare_cached(LEASE_BEST)?;
        return leased(
            conn,
            lease,
            params![queue, params.max_jobs, lease_until, now, params.worker_id],
        );
    }
    let mut picked: Vec<(i32, i64)> = Vec::new();
    for queue in &queues {
        if !is_open(conn, queue)? {
            continue;
        }
        let mut best = conn.prepare_cached(BEST)?;
        let rows = best.query_map(params![queue, params.max_jobs], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        for pick in rows {
            picked.push(pick?);
        }
    }
    picked.sort_unstable_by_key(|&(priority, id)| (Reverse(priority), id));
    picked.truncate(params.max_jobs as usize);
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    // One statement for the whole batch: a statement per job would pay SQLite's per-statement
    // journal and reset costs once per job, which dominated the fetch profile.
    let ids: Vec<i64> = picked.iter().map(|&(_, id)| id).collect();
    let lease = conn.prepare_cached(LEASE)?;
    leased(
        conn,
        lease,
        params![
            serde_json::to_string(&ids)?,
            params.max_jobs,
            lease_until,
            now,
            params.worker_id
        ],
    )
}

/// Runs a lease statement, then reads its jobs back whole, best first.
fn leased(
    conn: &Connection,
    mut lease: CachedStatement<'_>,
    params: impl Params,
) -> Result<Vec<Job>, Error> {
    let ids = lease
        .query_map(params, |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    let mut jobs = rows::by_ids(conn, &ids, row::job)?;
    jobs.sort_unstable_by_key(|j| (Reverse(j.priority), j.id));
    Ok(jobs)
}

/// A queue that never existed has no jobs; a paused one hands none out.
fn is_open(conn: &Connection, queue: &str) -> rusqlite::Result<bool> {
    let paused = conn
        .prepare_cached("SELECT paused FROM queues WHERE name = ?1")?
        .query_row([queue], |r| r.get::<_, bool>(0))
        .optional()?;
    Ok(paused == Some(false))
}

/// Each lease gets a fresh token from SQLite's own generator (ChaCha20, seeded from the
/// operating system): as unguessable as one made here, and nothing to pass in per job.
macro_rules! lease_set {
    () => {
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, \
         lease_token = lower(hex(randomblob(16))), lease_expires_at = ?3, started_at = ?4, \
         worker_id = ?5 "
    };
}

/// Picks and leases one queue's best `?2` jobs in one statement: no list of picks built in
/// Rust and parsed back by SQLite (JSON out, `json_each` in), which was a sizeable share of a
/// batch fetch.
pub(super) const LEASE_BEST: &str = concat!(
    lease_set!(),
    "WHERE id IN (SELECT id FROM jobs WHERE queue = ?1 AND state = 'available' AND blocked = 0 \
                  ORDER BY priority DESC, id LIMIT ?2) \
     RETURNING id"
);

/// Leases the jobs picked across several queues: `?1` is their ids, `[id, …]`; `?2`, the
/// limit in [`LEASE_BEST`], is not used (the picks already respect it).
pub(super) const LEASE: &str = concat!(
    lease_set!(),
    "WHERE id IN (SELECT value FROM json_each(?1)) RETURNING id"
);
