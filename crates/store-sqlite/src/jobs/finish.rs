//! Transitions out of `running`, each guarded by the lease token.

use std::collections::{HashMap, HashSet};

use buzzer_store::{Heartbeat, JobFinish, JobHeartbeat, StoreError, Transition};
use buzzer_types::{ErrorEntry, ErrorInput, Job, JobId, RawValue, ms_to_timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::ordering;
use crate::{
    clock::after,
    error::Error,
    row::{self, job_columns},
};

/// Applies each finish on its own terms: one lost lease fails only its item.
///
/// Plain completions, the throughput path, go through one statement for the whole batch; the
/// rest (failures, the rescuer's guarded finishes, a job named twice) one by one.
pub(crate) fn finish_many(
    conn: &Connection,
    now: i64,
    finishes: Vec<JobFinish>,
) -> Result<Vec<Result<Job, StoreError>>, Error> {
    let mut results: Vec<Option<Result<Job, StoreError>>> = Vec::with_capacity(finishes.len());
    let mut batch = Vec::new();
    let mut slow = Vec::new();
    let mut seen = HashSet::with_capacity(finishes.len());
    for (i, finish) in finishes.into_iter().enumerate() {
        results.push(None);
        let plain = matches!(finish.transition, Transition::Complete { .. })
            && !finish.require_lease_expired;
        if plain && seen.insert(finish.id) {
            batch.push((i, finish));
        } else {
            slow.push((i, finish));
        }
    }
    if !batch.is_empty() {
        complete_batch(conn, now, batch, &mut results)?;
    }
    for (i, finish) in slow {
        results[i] = Some(finish_one(conn, now, finish)?);
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(StoreError::NotFound)))
        .collect())
}

/// Completes `[[id, token, result text], …]` in one statement; the lease guard is in its
/// WHERE. The result travels as a JSON string, so `->>` hands back the client's exact text.
pub(super) const COMPLETE_BATCH: &str = concat!(
    "UPDATE jobs SET state = 'completed', result = done.result, finished_at = ?2, \
     lease_token = NULL, lease_expires_at = NULL \
     FROM (SELECT value ->> 0 AS job_id, value ->> 1 AS token, value ->> 2 AS result \
           FROM json_each(?1)) AS done \
     WHERE jobs.id = done.job_id AND jobs.state = 'running' AND jobs.lease_token = done.token \
     RETURNING ",
    job_columns!()
);

/// Fills `results[i]` for each `(i, finish)` of the batch.
fn complete_batch(
    conn: &Connection,
    now: i64,
    batch: Vec<(usize, JobFinish)>,
    results: &mut [Option<Result<Job, StoreError>>],
) -> Result<(), Error> {
    let items: Vec<(i64, &str, Option<&str>)> = batch
        .iter()
        .map(|(_, f)| {
            let result = match &f.transition {
                Transition::Complete { result } => result.as_deref().map(RawValue::get),
                _ => None,
            };
            (f.id.0, f.lease_token.as_str(), result)
        })
        .collect();
    let mut done: HashMap<i64, Job> = conn
        .prepare_cached(COMPLETE_BATCH)?
        .query_map(params![serde_json::to_string(&items)?, now], row::job)?
        .map(|job| job.map(|j| (j.id.0, j)))
        .collect::<rusqlite::Result<_>>()?;
    for (i, finish) in batch {
        results[i] = Some(match done.remove(&finish.id.0) {
            Some(job) => {
                if let Some(key) = &job.ordering_key {
                    ordering::release_next(conn, &job.queue, key)?;
                }
                Ok(job)
            }
            // The guard failed: tell a lost lease from a missing job.
            None if exists(conn, finish.id)? => Err(StoreError::LeaseLost),
            None => Err(StoreError::NotFound),
        });
    }
    Ok(())
}

/// What the guard learned about a job whose lease holds.
struct Leased {
    attempt: i32,
    cancel_requested: bool,
    queue: String,
    ordering_key: Option<String>,
}

fn finish_one(
    conn: &Connection,
    now: i64,
    finish: JobFinish,
) -> Result<Result<Job, StoreError>, Error> {
    // Read, then write by id: the single writer makes the pair atomic, and reading first
    // tells a lost lease from a missing job and gives the attempt number for the error entry.
    let expired_by = finish.require_lease_expired.then_some(now);
    let leased = match guard(conn, finish.id, &finish.lease_token, expired_by)? {
        Ok(leased) => leased,
        Err(e) => return Ok(Err(e)),
    };
    let entry = |error: &ErrorInput| error_entry(leased.attempt, now, error);
    let job = match finish.transition {
        Transition::Complete { result } => conn
            .prepare_cached(concat!(
                "UPDATE jobs SET state = 'completed', result = ?2, finished_at = ?3, \
                 lease_token = NULL, lease_expires_at = NULL WHERE id = ?1 RETURNING ",
                job_columns!()
            ))?
            .query_row(
                params![finish.id.0, result.as_ref().map(|r| r.get()), now],
                row::job,
            )?,
        // A retry of a job someone asked to cancel would only run it again: cancel instead.
        Transition::Retry { error, .. } if leased.cancel_requested => {
            end(conn, finish.id, "cancelled", now, Some(entry(&error)?))?
        }
        Transition::Retry { delay_ms, error } => conn
            .prepare_cached(concat!(
                "UPDATE jobs SET state = 'retryable', scheduled_at = ?2, \
                 errors = json_insert(COALESCE(errors, '[]'), '$[#]', json(?3)), \
                 lease_token = NULL, lease_expires_at = NULL WHERE id = ?1 RETURNING ",
                job_columns!()
            ))?
            .query_row(
                params![finish.id.0, after(now, delay_ms), entry(&error)?],
                row::job,
            )?,
        Transition::Dead { error } => end(conn, finish.id, "dead", now, Some(entry(&error)?))?,
        Transition::Cancel { error } => {
            let entry = error.as_ref().map(entry).transpose()?;
            end(conn, finish.id, "cancelled", now, entry)?
        }
        Transition::Release if leased.cancel_requested => {
            end(conn, finish.id, "cancelled", now, None)?
        }
        // The attempt did not run to an outcome, so it does not count; the job keeps its
        // place (id and scheduled_at) and, if it heads an ordering key, its key.
        Transition::Release => conn
            .prepare_cached(concat!(
                "UPDATE jobs SET state = 'available', attempt = attempt - 1, \
                 lease_token = NULL, lease_expires_at = NULL WHERE id = ?1 RETURNING ",
                job_columns!()
            ))?
            .query_row(params![finish.id.0], row::job)?,
    };
    if job.state.is_terminal()
        && let Some(key) = &leased.ordering_key
    {
        ordering::release_next(conn, &leased.queue, key)?;
    }
    Ok(Ok(job))
}

/// The lease guard: the job is running under `token` (and, with `expired_by`, that lease has
/// run out by then).
fn guard(
    conn: &Connection,
    id: JobId,
    token: &str,
    expired_by: Option<i64>,
) -> Result<Result<Leased, StoreError>, Error> {
    let found = conn
        .prepare_cached(
            "SELECT COALESCE(state = 'running' AND lease_token IS ?2 \
             AND (?3 IS NULL OR lease_expires_at <= ?3), 0), \
             attempt, cancel_requested, queue, ordering_key FROM jobs WHERE id = ?1",
        )?
        .query_row(params![id.0, token, expired_by], |r| {
            Ok((
                r.get::<_, bool>(0)?,
                Leased {
                    attempt: r.get(1)?,
                    cancel_requested: r.get(2)?,
                    queue: r.get(3)?,
                    ordering_key: r.get(4)?,
                },
            ))
        })
        .optional()?;
    Ok(match found {
        None => Err(StoreError::NotFound),
        Some((false, _)) => Err(StoreError::LeaseLost),
        Some((true, leased)) => Ok(leased),
    })
}

/// To a terminal state, recording `entry` if there is one.
fn end(
    conn: &Connection,
    id: JobId,
    state: &str,
    now: i64,
    entry: Option<String>,
) -> rusqlite::Result<Job> {
    conn.prepare_cached(concat!(
        "UPDATE jobs SET state = ?2, finished_at = ?3, \
         errors = CASE WHEN ?4 IS NULL THEN errors \
                  ELSE json_insert(COALESCE(errors, '[]'), '$[#]', json(?4)) END, \
         lease_token = NULL, lease_expires_at = NULL WHERE id = ?1 RETURNING ",
        job_columns!()
    ))?
    .query_row(params![id.0, state, now, entry], row::job)
}

/// `{attempt, at, message, ..details}`. Detail fields named like the fixed ones are dropped:
/// a worker's `"at": "yesterday"` must not shadow when the store saw the failure.
fn error_entry(attempt: i32, now: i64, error: &ErrorInput) -> Result<String, Error> {
    let mut details = error.details.clone();
    for fixed in ["attempt", "at", "message"] {
        details.remove(fixed);
    }
    let entry = ErrorEntry {
        attempt,
        at: ms_to_timestamp(now),
        message: error.message.clone(),
        details,
    };
    Ok(serde_json::to_string(&entry)?)
}

/// Extends the lease by `lease_ms` from now, if the token still holds.
pub(crate) fn heartbeat(
    conn: &Connection,
    now: i64,
    params: JobHeartbeat,
) -> Result<Heartbeat, Error> {
    let expires = after(now, params.lease_ms);
    let cancel_requested = conn
        .prepare_cached(
            "UPDATE jobs SET lease_expires_at = ?3, progress = COALESCE(?4, progress) \
             WHERE id = ?1 AND state = 'running' AND lease_token = ?2 \
             RETURNING cancel_requested",
        )?
        .query_row(
            params![
                params.id.0,
                params.lease_token,
                expires,
                params.progress.as_ref().map(|p| p.get())
            ],
            |r| r.get::<_, bool>(0),
        )
        .optional()?;
    match cancel_requested {
        Some(cancel_requested) => Ok(Heartbeat {
            lease_expires_at: ms_to_timestamp(expires),
            cancel_requested,
        }),
        None if exists(conn, params.id)? => Err(StoreError::LeaseLost.into()),
        None => Err(StoreError::NotFound.into()),
    }
}

fn exists(conn: &Connection, id: JobId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?
        .query_row([id.0], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}
