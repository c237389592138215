//! Transitions out of `running`, each guarded by the lease token.

use buzzer_store::{Heartbeat, JobFinish, JobHeartbeat, StoreError, Transition};
use buzzer_types::{ErrorEntry, ErrorInput, Job, JobId, JobState, ms_to_timestamp};
use rusqlite::{Connection, OptionalExtension, params};

use super::{completed, ordering, rows};
use crate::{clock::after, error::Error, row, state::Stored};

/// A completed job's result, kept in its body.
pub(super) const SET_RESULT: &str = "UPDATE job_bodies SET result = ?2 WHERE id = ?1";

/// What the guard learned about a job whose lease holds.
struct Leased {
    attempt: i32,
    cancel_requested: bool,
    queue: String,
    ordering_key: Option<String>,
}

pub(super) fn finish_one(
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
    let id = finish.id;
    let job = match finish.transition {
        Transition::Complete { result } => {
            conn.prepare_cached(
                "UPDATE jobs SET state = 4 /*completed*/, finished_at = ?2, lease_token = NULL, \
                 lease_expires_at = NULL WHERE id = ?1",
            )?
            .execute(params![id.0, now])?;
            completed::add(conn, [(leased.queue.as_str(), 1)])?;
            if let Some(result) = result {
                conn.prepare_cached(SET_RESULT)?
                    .execute(params![id.0, result.get()])?;
            }
            rows::by_id(conn, id, row::job)?
        }
        // A retry of a job someone asked to cancel would only run it again: cancel instead.
        Transition::Retry { error, .. } if leased.cancel_requested => {
            end(conn, id, JobState::Cancelled, now, Some(entry(&error)?))?
        }
        Transition::Retry { delay_ms, error } => {
            conn.prepare_cached(
                "UPDATE jobs SET state = 3 /*retryable*/, scheduled_at = ?2, lease_token = NULL, \
                 lease_expires_at = NULL WHERE id = ?1",
            )?
            .execute(params![id.0, after(now, delay_ms)])?;
            record_error(conn, id, &entry(&error)?)?;
            rows::by_id(conn, id, row::job)?
        }
        Transition::Dead { error } => end(conn, id, JobState::Dead, now, Some(entry(&error)?))?,
        Transition::Cancel { error } => {
            let entry = error.as_ref().map(entry).transpose()?;
            end(conn, id, JobState::Cancelled, now, entry)?
        }
        Transition::Release if leased.cancel_requested => {
            end(conn, id, JobState::Cancelled, now, None)?
        }
        // The attempt did not run to an outcome, so it does not count; the job keeps its
        // place (id and scheduled_at) and, if it heads an ordering key, its key.
        Transition::Release => {
            conn.prepare_cached(
                "UPDATE jobs SET state = 1 /*available*/, attempt = attempt - 1, \
                 lease_token = NULL, lease_expires_at = NULL WHERE id = ?1",
            )?
            .execute(params![id.0])?;
            rows::by_id(conn, id, row::job)?
        }
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
            "SELECT COALESCE(state = 2 /*running*/ AND lease_token IS ?2 \
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
    state: JobState,
    now: i64,
    entry: Option<String>,
) -> rusqlite::Result<Job> {
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, finished_at = ?3, lease_token = NULL, \
         lease_expires_at = NULL WHERE id = ?1",
    )?
    .execute(params![id.0, Stored(state), now])?;
    if let Some(entry) = entry {
        record_error(conn, id, &entry)?;
    }
    rows::by_id(conn, id, row::job)
}

/// Appends `entry` to the job's error history.
fn record_error(conn: &Connection, id: JobId, entry: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE job_bodies SET errors = json_insert(COALESCE(errors, '[]'), '$[#]', json(?2)) \
         WHERE id = ?1",
    )?
    .execute(params![id.0, entry])?;
    Ok(())
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
            "UPDATE jobs SET lease_expires_at = ?3 \
             WHERE id = ?1 AND state = 2 /*running*/ AND lease_token = ?2 \
             RETURNING cancel_requested",
        )?
        .query_row(params![params.id.0, params.lease_token, expires], |r| {
            r.get::<_, bool>(0)
        })
        .optional()?;
    if cancel_requested.is_some()
        && let Some(progress) = &params.progress
    {
        conn.prepare_cached("UPDATE job_bodies SET progress = ?2 WHERE id = ?1")?
            .execute(params![params.id.0, progress.get()])?;
    }
    match cancel_requested {
        Some(cancel_requested) => Ok(Heartbeat {
            lease_expires_at: ms_to_timestamp(expires),
            cancel_requested,
        }),
        None if exists(conn, params.id)? => Err(StoreError::LeaseLost.into()),
        None => Err(StoreError::NotFound.into()),
    }
}

pub(super) fn exists(conn: &Connection, id: JobId) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")?
        .query_row([id.0], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}
