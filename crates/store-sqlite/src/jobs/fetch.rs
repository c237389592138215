use std::cmp::Reverse;

use buzzer_store::JobFetch;
use buzzer_types::Job;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    clock::after,
    error::Error,
    row::{self, job_columns},
};

/// A queue's best fetchable jobs, straight off the `jobs_fetch` index.
pub(super) const BEST: &str = "SELECT priority, id FROM jobs WHERE queue = ?1 \
    AND state = 'available' AND blocked = 0 ORDER BY priority DESC, id LIMIT ?2";

/// Leases the best `max_jobs` fetchable jobs across the named queues.
///
/// Each queue is asked separately for its own best `max_jobs`, so every query walks the
/// `jobs_fetch` index in order and stops at its limit; the merged few are then sorted here.
/// One query over all queues (`queue IN (…)`) would have to sort every available row.
pub(crate) fn fetch(conn: &Connection, now: i64, params: JobFetch) -> Result<Vec<Job>, Error> {
    if params.max_jobs == 0 {
        return Ok(Vec::new());
    }
    let mut queues = params.queues;
    queues.sort_unstable();
    queues.dedup();
    let mut picked: Vec<(i32, i64)> = Vec::new();
    for queue in &queues {
        let paused = conn
            .prepare_cached("SELECT paused FROM queues WHERE name = ?1")?
            .query_row([queue], |r| r.get::<_, bool>(0))
            .optional()?;
        // A queue that never existed has no jobs; a paused one hands none out.
        if paused != Some(false) {
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
    if queues.len() > 1 {
        picked.sort_unstable_by_key(|&(priority, id)| (Reverse(priority), id));
        picked.truncate(params.max_jobs as usize);
    }
    let expires = after(now, params.lease_ms);
    let mut lease = conn.prepare_cached(concat!(
        "UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = ?2, \
         lease_expires_at = ?3, started_at = ?4, worker_id = ?5 WHERE id = ?1 RETURNING ",
        job_columns!()
    ))?;
    let mut jobs = Vec::with_capacity(picked.len());
    for (_, id) in picked {
        let token = lease_token();
        jobs.push(lease.query_row(params![id, token, expires, now, params.worker_id], row::job)?);
    }
    Ok(jobs)
}

/// 128 random bits: unguessable, so only the worker the lease was handed to can use it.
fn lease_token() -> String {
    format!("{:032x}", rand::random::<u128>())
}
