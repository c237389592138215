//! A `buzzer_jobs` row as a [`Job`].

use buzzer_store::StoreError;
use buzzer_types::{Backoff, Job, JobId, JobState, RawValue};
use tokio_postgres::Row;

use crate::error::Error;

/// The columns [`job`] reads, in its order, of the jobs table aliased `j`. A macro so
/// statements can `concat!` it into a `&'static str` (the key of the statement cache). JSON
/// columns come back as text: `json` keeps the client's bytes, `jsonb` is parsed here.
macro_rules! job_columns {
    () => {
        "j.id, j.queue, j.state, j.payload::text, j.priority, j.attempt, j.max_attempts, \
         j.backoff_initial_ms, j.backoff_max_ms, j.backoff_factor, j.timeout_ms, j.created_at, \
         j.scheduled_at, j.started_at, j.finished_at, j.result::text, j.errors::text, \
         j.idempotency_key, j.ordering_key, j.tags, j.metadata::text, j.progress::text, \
         j.cancel_requested, j.worker_id, j.lease_token, j.lease_expires_at, j.traceparent"
    };
}
pub(crate) use job_columns;

/// Wraps a data-modifying statement that returns [`job_columns!`] so the same statement also
/// announces the changed jobs (`buzzer_notify`, per job): one round trip, and the notification
/// commits with the change. Rows come back as `done.*` plus one trailing column to ignore.
macro_rules! notifying {
    ($modify:expr) => {
        concat!(
            "WITH done AS (",
            $modify,
            ") SELECT done.*, (SELECT buzzer_notify(array_agg(n.queue), array_agg(n.state), \
             array_agg(n.id), true) FROM done n) FROM done"
        )
    };
}
pub(crate) use notifying;

/// A row selected with [`job_columns!`], lease token included.
pub(crate) fn job(row: &Row) -> Result<Job, Error> {
    Ok(Job {
        id: JobId(row.try_get(0)?),
        queue: row.try_get(1)?,
        state: state(row.try_get(2)?)?,
        payload: RawValue::from_string(row.try_get(3)?)?,
        priority: row.try_get(4)?,
        attempt: row.try_get(5)?,
        max_attempts: row.try_get(6)?,
        backoff: Backoff {
            initial_ms: unsigned(row.try_get(7)?),
            max_ms: unsigned(row.try_get(8)?),
            factor: row.try_get(9)?,
        },
        timeout_ms: row.try_get::<_, Option<i64>>(10)?.map(unsigned),
        created_at: row.try_get(11)?,
        scheduled_at: row.try_get(12)?,
        started_at: row.try_get(13)?,
        finished_at: row.try_get(14)?,
        result: raw(row.try_get(15)?)?,
        errors: serde_json::from_str(row.try_get(16)?)?,
        idempotency_key: row.try_get(17)?,
        ordering_key: row.try_get(18)?,
        tags: row.try_get(19)?,
        metadata: serde_json::from_str(row.try_get(20)?)?,
        progress: raw(row.try_get(21)?)?,
        cancel_requested: row.try_get(22)?,
        worker_id: row.try_get(23)?,
        lease_token: row.try_get(24)?,
        lease_expires_at: row.try_get(25)?,
        traceparent: row.try_get(26)?,
    })
}

/// A row as callers outside the lease see it: the token is a secret of the worker holding it.
pub(crate) fn job_without_lease(row: &Row) -> Result<Job, Error> {
    let mut job = job(row)?;
    job.lease_token = None;
    Ok(job)
}

pub(crate) fn state(text: &str) -> Result<JobState, Error> {
    text.parse()
        .map_err(|e| Error::Store(StoreError::backend(e)))
}

fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The stored text is the client's JSON byte for byte; `from_string` only validates it.
fn raw(text: Option<String>) -> Result<Option<Box<RawValue>>, Error> {
    Ok(text.map(RawValue::from_string).transpose()?)
}
