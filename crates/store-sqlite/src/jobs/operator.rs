//! An operator's cancel, retry and delete.

use buzzer_store::{JobRetryDead, StoreError};
use buzzer_types::{Job, JobId, JobState};
use rusqlite::{Connection, OptionalExtension, params};

use super::{completed, ordering, rows};
use crate::{error::Error, row, state::Stored};

struct Current {
    state: JobState,
    queue: String,
    ordering_key: Option<String>,
}

fn current(conn: &Connection, id: JobId) -> Result<Current, Error> {
    let found = conn
        .prepare_cached("SELECT state, queue, ordering_key FROM jobs WHERE id = ?1")?
        .query_row([id.0], |r| {
            Ok((r.get::<_, Stored>(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((state, queue, ordering_key)) = found else {
        return Err(StoreError::NotFound.into());
    };
    Ok(Current {
        state: state.0,
        queue,
        ordering_key,
    })
}

/// A running job only gets `cancel_requested`: its worker holds the lease and reports.
pub(crate) fn cancel(conn: &Connection, now: i64, id: JobId) -> Result<Job, Error> {
    let job = current(conn, id)?;
    if job.state.is_terminal() {
        return Err(StoreError::Conflict(format!("job is already {}", job.state)).into());
    }
    if job.state == JobState::Running {
        conn.prepare_cached("UPDATE jobs SET cancel_requested = 1 WHERE id = ?1")?
            .execute([id.0])?;
        return Ok(rows::by_id(conn, id, row::job_without_lease)?);
    }
    conn.prepare_cached(
        "UPDATE jobs SET state = 6 /*cancelled*/, finished_at = ?2, lease_token = NULL, \
         lease_expires_at = NULL WHERE id = ?1",
    )?
    .execute(params![id.0, now])?;
    let cancelled = rows::by_id(conn, id, row::job_without_lease)?;
    if let Some(key) = &job.ordering_key {
        ordering::release_next(conn, &job.queue, key)?;
    }
    Ok(cancelled)
}

/// A dead or cancelled job back to `available`, history kept.
pub(crate) fn retry(conn: &Connection, now: i64, id: JobId) -> Result<Job, Error> {
    let job = current(conn, id)?;
    if !matches!(job.state, JobState::Dead | JobState::Cancelled) {
        return Err(StoreError::Conflict(format!(
            "only dead or cancelled jobs can be retried; this job is {}",
            job.state
        ))
        .into());
    }
    Ok(revive(conn, now, id, &job)?)
}

fn revive(conn: &Connection, now: i64, id: JobId, job: &Current) -> rusqlite::Result<Job> {
    // Back in line behind the key's current head, if it has one.
    let blocked = match &job.ordering_key {
        Some(key) => ordering::has_head(conn, &job.queue, key)?,
        None => false,
    };
    conn.prepare_cached(
        "UPDATE jobs SET state = 1 /*available*/, scheduled_at = ?2, finished_at = NULL, \
         cancel_requested = 0, lease_token = NULL, lease_expires_at = NULL, blocked = ?3 \
         WHERE id = ?1",
    )?
    .execute(params![id.0, now, blocked])?;
    rows::by_id(conn, id, row::job_without_lease)
}

/// Deletes a job no worker holds; the key it held, if any, passes to the next job.
pub(crate) fn delete(conn: &Connection, id: JobId) -> Result<Job, Error> {
    let job = current(conn, id)?;
    if job.state == JobState::Running {
        return Err(StoreError::Conflict(
            "a running job cannot be deleted while its worker holds it; cancel it first".into(),
        )
        .into());
    }
    let deleted = rows::by_id(conn, id, row::job_without_lease)?;
    // The body goes with the row (trigger `jobs_delete_body`).
    conn.prepare_cached("DELETE FROM jobs WHERE id = ?1")?
        .execute([id.0])?;
    if job.state == JobState::Completed {
        completed::add(conn, [(job.queue.as_str(), -1)])?;
    }
    if let Some(key) = &job.ordering_key {
        ordering::release_next(conn, &job.queue, key)?;
    }
    Ok(deleted)
}

/// A queue's dead jobs, oldest first: `jobs_resting` ends in the rowid, so this is an index
/// walk.
pub(super) const DEAD_OF_QUEUE: &str = "SELECT id FROM job_rows \
    WHERE queue = ?1 AND state = 5 /*dead*/ \
    AND (?2 IS NULL OR EXISTS (SELECT 1 FROM json_each(job_rows.tags) WHERE value = ?2)) \
    AND (?3 IS NULL OR id IN (SELECT value FROM json_each(?3))) \
    ORDER BY id LIMIT ?4";

/// Replays up to `limit` dead jobs of a queue, oldest first.
pub(crate) fn retry_dead(conn: &Connection, now: i64, params: JobRetryDead) -> Result<u64, Error> {
    let ids = params
        .ids
        .as_ref()
        .map(|ids| serde_json::to_string(&ids.iter().map(|id| id.0).collect::<Vec<_>>()))
        .transpose()?;
    let picked: Vec<i64> = conn
        .prepare_cached(DEAD_OF_QUEUE)?
        .query_map(params![params.queue, params.tag, ids, params.limit], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    for &id in &picked {
        let job = current(conn, JobId(id))?;
        revive(conn, now, JobId(id), &job)?;
    }
    Ok(picked.len() as u64)
}
