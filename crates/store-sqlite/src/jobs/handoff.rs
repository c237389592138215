//! A hand-off's lease of the job its own insert just wrote.
//!
//! A fetcher is parked only while its queues are empty, so the job an enqueue hands it is
//! usually the only one its queue could give. Then the job is leased by its id and answered
//! from what the insert wrote: no walk of the fetch index, no `IN` list and no `RETURNING`
//! rows (SQLite builds a temporary table for each), and no read of the body just written:
//! 18% fewer of the writer's instructions per hybrid call (docs/performance.md).
//! Whenever anything else could be handed out instead (another job waiting, several queues,
//! an ordering key), the plain fetch runs, so priorities, FIFO order, paused queues and
//! ordering keys hold exactly as for any fetch.

use buzzer_store::{Inserted, JobFetch};
use buzzer_types::{Job, JobState, ms_to_timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    fetch::{self, LEASE_ONE, nonce},
    leased::Fetched,
};
use crate::{clock::after, error::Error};

/// Whether `?1` is open and `?2`, just inserted into it, is the only job it could hand out.
pub(super) const ONLY_CANDIDATE: &str = "SELECT NOT paused AND NOT EXISTS (SELECT 1 FROM jobs \
    WHERE queue = ?1 AND state = 'available' AND blocked = 0 AND id <> ?2) \
    FROM queues WHERE name = ?1";

/// Leases for `params` after `inserted` went in, in the same transaction.
pub(crate) fn fetch_after_insert(
    conn: &Connection,
    now: i64,
    params: JobFetch,
    inserted: &Inserted,
) -> Result<Fetched, Error> {
    match lease_inserted(conn, now, &params, inserted)? {
        Some(job) => Ok(Fetched::Whole(vec![job])),
        None => fetch::fetch(conn, now, params),
    }
}

fn lease_inserted(
    conn: &Connection,
    now: i64,
    params: &JobFetch,
    inserted: &Inserted,
) -> Result<Option<Job>, Error> {
    let job = &inserted.job;
    let its_queue_alone = matches!(params.queues.as_slice(), [queue] if *queue == job.queue);
    if !inserted.created
        || !its_queue_alone
        || params.max_jobs == 0
        || job.state != JobState::Available
        || job.ordering_key.is_some()
    {
        return Ok(None);
    }
    let only = conn
        .prepare_cached(ONLY_CANDIDATE)?
        .query_row(params![job.queue, job.id.0], |r| r.get::<_, bool>(0))
        .optional()?;
    if only != Some(true) {
        return Ok(None);
    }
    let nonce = nonce();
    let until = after(now, params.lease_ms);
    let leased = conn.prepare_cached(LEASE_ONE)?.execute(params![
        job.id.0,
        params.max_jobs,
        until,
        now,
        params.worker_id,
        nonce
    ])?;
    if leased != 1 {
        return Ok(None);
    }
    // What `lease_set` wrote, on top of what the insert wrote.
    Ok(Some(Job {
        state: JobState::Running,
        attempt: job.attempt + 1,
        started_at: Some(ms_to_timestamp(now)),
        lease_expires_at: Some(ms_to_timestamp(until)),
        lease_token: Some(format!("{nonce}{}", job.id.0)),
        worker_id: Some(params.worker_id.clone()),
        ..job.clone()
    }))
}
