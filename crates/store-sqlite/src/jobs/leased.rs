//! A lease's jobs: their hot rows come back from the lease statement itself; their bodies are
//! read after, off the writer thread when the batch is large.
//!
//! Reading a leased job back whole (a seek into each of the two tables, then some thirty
//! columns converted) was a sixth of the writer's instructions per job in W1. The single
//! writer is the store's bottleneck, and a body does not change while its job is leased (the
//! payload and options never do; the result, errors and progress only when the lease holder
//! or the rescuer writes them, after the lease reaches its worker), so a large batch reads its
//! bodies on a read connection once the lease is committed. A small one, the latency path
//! (a hand-off to a waiting worker, a hybrid call), reads them inside the writer's command and
//! skips the trip to the read pool. Should that later read fail (the store is closing), the
//! jobs stay leased until their leases expire and then run again, as with any fetch whose
//! answer is lost on the way.

use std::{cmp::Reverse, collections::HashMap};

use buzzer_types::{Backoff, Job, JobId, JobState, ms_to_timestamp};
use rusqlite::{Connection, Row};

use crate::{error::Error, row};

/// Up to this many leased jobs are read whole by the writer itself.
const READ_INLINE: usize = 16;

/// What a lease statement returns, in [`Leased::from_row`]'s order: what differs from job to
/// job. What the lease set alike for all of them is in [`Leases`].
macro_rules! leased_columns {
    () => {
        "id, queue, priority, attempt, scheduled_at, idempotency_key, ordering_key, \
         cancel_requested"
    };
}
pub(super) use leased_columns;

/// One lease statement's jobs, best first.
#[derive(Debug)]
pub(crate) struct Leases {
    pub(super) worker_id: String,
    /// Each job's lease token is this followed by its id (see `fetch::lease_set`), made here
    /// rather than read back, which takes a string per job off the writer.
    pub(super) nonce: String,
    pub(super) started_at: i64,
    pub(super) expires_at: i64,
    pub(super) jobs: Vec<Leased>,
}

/// A leased job's hot row, but for what [`Leases`] holds for the whole batch.
#[derive(Debug)]
pub(crate) struct Leased {
    id: i64,
    queue: String,
    priority: i32,
    attempt: i32,
    scheduled_at: i64,
    idempotency_key: Option<String>,
    ordering_key: Option<String>,
    cancel_requested: bool,
}

impl Leased {
    pub(super) fn from_row(r: &Row<'_>) -> rusqlite::Result<Leased> {
        Ok(Leased {
            id: r.get(0)?,
            queue: r.get(1)?,
            priority: r.get(2)?,
            attempt: r.get(3)?,
            scheduled_at: r.get(4)?,
            idempotency_key: r.get(5)?,
            ordering_key: r.get(6)?,
            cancel_requested: r.get(7)?,
        })
    }
}

/// A fetch's answer as the writer leaves it.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// Read whole already, best first.
    Whole(Vec<Job>),
    /// Hot rows, best first: [`with_bodies`] on a read connection completes them.
    Hot(Leases),
}

impl Fetched {
    /// Reads a small batch's bodies now, on the writer's connection.
    pub(super) fn of(conn: &Connection, leased: Leases) -> Result<Fetched, Error> {
        if leased.jobs.len() <= READ_INLINE {
            Ok(Fetched::Whole(with_bodies(conn, leased)?))
        } else {
            Ok(Fetched::Hot(leased))
        }
    }
}

pub(super) fn best_first(leased: &mut [Leased]) {
    leased.sort_unstable_by_key(|l| (Reverse(l.priority), l.id));
}

/// `job_bodies` in its own column order, which [`job`] reads.
macro_rules! bodies {
    ($which:literal) => {
        concat!(
            "SELECT id, payload, max_attempts, backoff_initial_ms, backoff_max_ms, \
             backoff_factor, timeout_ms, created_at, result, errors, tags, metadata, progress, \
             traceparent FROM job_bodies WHERE ",
            $which
        )
    };
}

/// The bodies of `?1`, a JSON list of ids.
pub(super) const BODIES: &str = bodies!("id IN (SELECT value FROM json_each(?1))");

/// The body of job `?1`: a lone job (a hand-off, a hybrid call) needs no JSON list and no
/// temporary table for an `IN`.
pub(super) const BODY: &str = bodies!("id = ?1");

/// The leased jobs whole, in the order given. A job deleted since its lease (by an operator)
/// is left out: there is nothing left to run.
pub(crate) fn with_bodies(conn: &Connection, mut leases: Leases) -> Result<Vec<Job>, Error> {
    if leases.jobs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = leases.jobs.iter().map(|l| l.id).collect();
    let (mut stmt, arg) = match ids.as_slice() {
        [id] => (
            conn.prepare_cached(BODY)?,
            rusqlite::types::Value::from(*id),
        ),
        _ => (
            conn.prepare_cached(BODIES)?,
            serde_json::to_string(&ids)?.into(),
        ),
    };
    let mut rows = stmt.query([arg])?;
    let mut at: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut slots: Vec<Option<Leased>> = std::mem::take(&mut leases.jobs)
        .into_iter()
        .map(Some)
        .collect();
    let mut jobs: Vec<Option<Job>> = (0..slots.len()).map(|_| None).collect();
    while let Some(body) = rows.next()? {
        let id: i64 = body.get(0)?;
        if let Some(i) = at.remove(&id)
            && let Some(hot) = slots[i].take()
        {
            jobs[i] = Some(job(&leases, hot, body)?);
        }
    }
    Ok(jobs.into_iter().flatten().collect())
}

/// A running job from its lease, its hot row and a row of [`BODIES`].
fn job(leases: &Leases, hot: Leased, body: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: JobId(hot.id),
        queue: hot.queue,
        state: JobState::Running,
        payload: row::raw(1, body.get(1)?)?,
        priority: hot.priority,
        attempt: hot.attempt,
        max_attempts: body.get(2)?,
        backoff: Backoff {
            initial_ms: row::unsigned(body.get(3)?),
            max_ms: row::unsigned(body.get(4)?),
            factor: body.get(5)?,
        },
        timeout_ms: body.get::<_, Option<i64>>(6)?.map(row::unsigned),
        created_at: ms_to_timestamp(body.get(7)?),
        scheduled_at: ms_to_timestamp(hot.scheduled_at),
        started_at: Some(ms_to_timestamp(leases.started_at)),
        finished_at: None,
        result: row::raw_or_null(body, 8)?,
        errors: row::json_or_default(body, 9)?,
        idempotency_key: hot.idempotency_key,
        ordering_key: hot.ordering_key,
        tags: row::json_or_default(body, 10)?,
        metadata: row::json_or_default(body, 11)?,
        progress: row::raw_or_null(body, 12)?,
        cancel_requested: hot.cancel_requested,
        worker_id: Some(leases.worker_id.clone()),
        lease_token: Some(format!("{}{}", leases.nonce, hot.id)),
        lease_expires_at: Some(ms_to_timestamp(leases.expires_at)),
        traceparent: body.get(13)?,
    })
}
