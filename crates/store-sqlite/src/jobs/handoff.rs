//! A hand-off's lease of the job its own insert just wrote.
//!
//! A fetcher is parked only while its queues are empty, so the job an enqueue hands it is
//! usually the only one its queue could give ([`Candidates`] says so). Then it is leased by
//! id, as a plain fetch of one job is, but answered from what the insert wrote instead of
//! read back (its hot row and its body): 7% of the writer's instructions per hybrid call
//! (docs/performance-log.md). Whenever anything else could be handed out instead (another job
//! waiting, several queues), the plain fetch runs, so priorities, FIFO order, paused queues
//! and ordering keys hold exactly as for any fetch.

use buzzer_store::{Inserted, JobFetch};
use buzzer_types::{Job, JobState, ms_to_timestamp};
use rusqlite::Connection;

use super::{
    fetch::{self, Candidates, Lease, nonce},
    leased::Fetched,
};
use crate::error::Error;

/// Leases for `params` after `inserted` went in, in the same transaction.
pub(crate) fn fetch_after_insert(
    conn: &Connection,
    now: i64,
    params: JobFetch,
    inserted: &Inserted,
) -> Result<Fetched, Error> {
    match lease_inserted(conn, now, &params, inserted)? {
        Some(job) => Ok(Fetched::Whole(vec![job])),
        // Asks for the queue's candidates again: only when another job was waiting.
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
    if !inserted.created || !its_queue_alone || params.max_jobs == 0 {
        return Ok(None);
    }
    // The only candidate of an open queue: available, unblocked, and nothing else waiting.
    match Candidates::of(conn, &job.queue)? {
        Some(best) if best.id == job.id.0 && !best.more => {}
        _ => return Ok(None),
    }
    let nonce = nonce();
    let lease = Lease::new(params, &nonce, now);
    if !lease.by_id(conn, job.id.0)? {
        return Ok(None);
    }
    // What `lease_set` wrote, on top of what the insert wrote.
    Ok(Some(Job {
        state: JobState::Running,
        attempt: job.attempt + 1,
        started_at: Some(ms_to_timestamp(now)),
        lease_expires_at: Some(ms_to_timestamp(lease.until)),
        lease_token: Some(format!("{nonce}{}", job.id.0)),
        worker_id: Some(params.worker_id.clone()),
        ..job.clone()
    }))
}
