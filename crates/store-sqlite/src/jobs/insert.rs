use std::collections::HashSet;

use buzzer_store::{Inserted, JobInsert, RunAt};
use buzzer_types::{Job, JobId, JobState, ms_to_timestamp, timestamp_to_ms};
use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::ordering;
use crate::{
    clock::{after, ms},
    error::Error,
    row::{self, job_columns},
};

const INSERT: &str = "INSERT INTO jobs (queue, state, payload, priority, max_attempts, \
    backoff_initial_ms, backoff_max_ms, backoff_factor, timeout_ms, created_at, scheduled_at, \
    idempotency_key, ordering_key, blocked, tags, metadata, traceparent) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)";

/// All or none: the writer's savepoint undoes the earlier rows if a later one fails.
pub(crate) fn insert_many(
    conn: &Connection,
    now: i64,
    jobs: Vec<JobInsert>,
) -> Result<Vec<Inserted>, Error> {
    let mut queues_seen = HashSet::new();
    let mut insert = conn.prepare_cached(INSERT)?;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        if !queues_seen.contains(job.queue.as_str()) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO queues (name, paused, created_at) VALUES (?1, 0, ?2)",
            )?
            .execute(params![job.queue, now])?;
            queues_seen.insert(job.queue.clone());
        }
        // Earlier rows of this same call are visible here, so a key repeated within one batch
        // also answers with the first job.
        if let Some(key) = &job.idempotency_key
            && let Some(existing) = by_idempotency_key(conn, &job.queue, key)?
        {
            out.push(Inserted {
                job: existing,
                created: false,
            });
            continue;
        }
        out.push(Inserted {
            job: insert_one(conn, &mut insert, now, job)?,
            created: true,
        });
    }
    Ok(out)
}

fn by_idempotency_key(conn: &Connection, queue: &str, key: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE queue = ?1 AND idempotency_key = ?2"
    ))?
    .query_row(params![queue, key], row::job_without_lease)
    .optional()
}

/// Inserts one job and builds the answer from what was written, without reading it back:
/// this is the enqueue hot path.
fn insert_one(
    conn: &Connection,
    insert: &mut Statement<'_>,
    now: i64,
    job: JobInsert,
) -> Result<Job, Error> {
    let due = match job.run_at {
        RunAt::Now => now,
        RunAt::Delay { ms } => after(now, ms),
        RunAt::At(at) => timestamp_to_ms(at),
    };
    let state = if due <= now {
        JobState::Available
    } else {
        JobState::Scheduled
    };
    let blocked = match &job.ordering_key {
        Some(key) => ordering::any_unfinished(conn, &job.queue, key)?,
        None => false,
    };
    let tags = (!job.tags.is_empty())
        .then(|| serde_json::to_string(&job.tags))
        .transpose()?;
    let metadata = (!job.metadata.is_empty())
        .then(|| serde_json::to_string(&job.metadata))
        .transpose()?;
    insert.execute(params![
        job.queue,
        state.as_str(),
        job.payload.get(),
        job.priority,
        job.max_attempts,
        ms(job.backoff.initial_ms),
        ms(job.backoff.max_ms),
        job.backoff.factor,
        job.timeout_ms.map(ms),
        now,
        due,
        job.idempotency_key,
        job.ordering_key,
        blocked,
        tags,
        metadata,
        job.traceparent,
    ])?;
    Ok(Job {
        id: JobId(conn.last_insert_rowid()),
        queue: job.queue,
        state,
        payload: job.payload,
        priority: job.priority,
        attempt: 0,
        max_attempts: job.max_attempts,
        backoff: job.backoff,
        timeout_ms: job.timeout_ms,
        created_at: ms_to_timestamp(now),
        scheduled_at: ms_to_timestamp(due),
        started_at: None,
        finished_at: None,
        result: None,
        errors: Vec::new(),
        idempotency_key: job.idempotency_key,
        ordering_key: job.ordering_key,
        tags: job.tags,
        metadata: job.metadata,
        progress: None,
        cancel_requested: false,
        worker_id: None,
        lease_expires_at: None,
        lease_token: None,
        traceparent: job.traceparent,
    })
}
