//! A `jobs` row as a [`Job`].

use buzzer_types::{Backoff, ErrorEntry, Job, JobId, RawValue, ms_to_timestamp};
use rusqlite::{Row, types::Type};
use serde_json::{Map, Value};

use crate::state::Stored;

/// The columns [`job`] reads, in its order. A macro so statements can `concat!` it into a
/// `&'static str` (the key of the prepared-statement cache).
macro_rules! job_columns {
    () => {
        "id, queue, state, payload, priority, attempt, max_attempts, backoff_initial_ms, \
         backoff_max_ms, backoff_factor, timeout_ms, created_at, scheduled_at, started_at, \
         finished_at, result, errors, idempotency_key, ordering_key, tags, metadata, progress, \
         cancel_requested, worker_id, lease_token, lease_expires_at, traceparent"
    };
}
pub(crate) use job_columns;

/// A row selected with [`job_columns!`], lease token included.
pub(crate) fn job(row: &Row<'_>) -> rusqlite::Result<Job> {
    Ok(Job {
        id: JobId(row.get(0)?),
        queue: row.get(1)?,
        state: row.get::<_, Stored>(2)?.0,
        payload: raw(3, row.get(3)?)?,
        priority: row.get(4)?,
        attempt: row.get(5)?,
        max_attempts: row.get(6)?,
        backoff: Backoff {
            initial_ms: unsigned(row.get(7)?),
            max_ms: unsigned(row.get(8)?),
            factor: row.get(9)?,
        },
        timeout_ms: row.get::<_, Option<i64>>(10)?.map(unsigned),
        created_at: ms_to_timestamp(row.get(11)?),
        scheduled_at: ms_to_timestamp(row.get(12)?),
        started_at: row.get::<_, Option<i64>>(13)?.map(ms_to_timestamp),
        finished_at: row.get::<_, Option<i64>>(14)?.map(ms_to_timestamp),
        result: raw_or_null(row, 15)?,
        errors: json_or_default::<Vec<ErrorEntry>>(row, 16)?,
        idempotency_key: row.get(17)?,
        ordering_key: row.get(18)?,
        tags: json_or_default::<Vec<String>>(row, 19)?,
        metadata: json_or_default::<Map<String, Value>>(row, 20)?,
        progress: raw_or_null(row, 21)?,
        cancel_requested: row.get(22)?,
        worker_id: row.get(23)?,
        lease_token: row.get(24)?,
        lease_expires_at: row.get::<_, Option<i64>>(25)?.map(ms_to_timestamp),
        traceparent: row.get(26)?,
    })
}

/// A row as callers outside the lease see it: the token is a secret of the worker holding it.
pub(crate) fn job_without_lease(row: &Row<'_>) -> rusqlite::Result<Job> {
    let mut job = job(row)?;
    job.lease_token = None;
    Ok(job)
}

pub(crate) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The stored text is the client's JSON byte for byte; `from_string` only validates it.
pub(crate) fn raw(idx: usize, text: String) -> rusqlite::Result<Box<RawValue>> {
    RawValue::from_string(text).map_err(|e| conversion(idx, e))
}

pub(crate) fn raw_or_null(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Box<RawValue>>> {
    row.get::<_, Option<String>>(idx)?
        .map(|s| raw(idx, s))
        .transpose()
}

pub(crate) fn json_or_default<T: serde::de::DeserializeOwned + Default>(
    row: &Row<'_>,
    idx: usize,
) -> rusqlite::Result<T> {
    match row
        .get_ref(idx)?
        .as_str_or_null()
        .map_err(|e| conversion(idx, e))?
    {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| conversion(idx, e)),
    }
}

fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}
