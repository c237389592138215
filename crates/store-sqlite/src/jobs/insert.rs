use std::{collections::HashSet, sync::LazyLock};

use buzzer_store::{Inserted, JobInsert, RunAt, StoreError};
use buzzer_types::{Job, JobId, JobState, ms_to_timestamp, timestamp_to_ms};
use rusqlite::{Connection, OptionalExtension, Statement, ToSql, params, params_from_iter};

use super::ordering;
use crate::{
    clock::{after, ms},
    error::Error,
    row::{self, job_columns},
    state::Stored,
};

const INSERT: &str = "INSERT INTO jobs (queue, state, priority, scheduled_at, idempotency_key, \
    ordering_key, blocked) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/// The body of the job just inserted: `?1` is its id.
const INSERT_BODY: &str = "INSERT INTO job_bodies (id, payload, max_attempts, \
    backoff_initial_ms, backoff_max_ms, backoff_factor, timeout_ms, created_at, tags, metadata, \
    traceparent) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Rows per multi-row INSERT. A statement per row pays SQLite's per-statement cost (bind,
/// step, reset) once per job, which was half of a batch insert.
const CHUNK: usize = 32;

/// All or none: the writer's savepoint undoes the earlier rows if a later one fails.
///
/// Jobs without idempotency or ordering keys (nothing to look up first) go in by the chunk;
/// the rest, and a short tail, one by one. Either way rows are inserted in request order.
pub(crate) fn insert_many(
    conn: &Connection,
    now: i64,
    jobs: Vec<JobInsert>,
) -> Result<Vec<Inserted>, Error> {
    let mut queues_seen = HashSet::new();
    let mut insert = conn.prepare_cached(INSERT)?;
    let mut out = Vec::with_capacity(jobs.len());
    let mut plain = Vec::with_capacity(CHUNK);
    for job in jobs {
        if !queues_seen.contains(job.queue.as_str()) {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO queues (name, paused, created_at) VALUES (?1, 0, ?2)",
            )?
            .execute(params![job.queue, now])?;
            queues_seen.insert(job.queue.clone());
        }
        if job.idempotency_key.is_none() && job.ordering_key.is_none() {
            plain.push(job);
            if plain.len() == CHUNK {
                insert_chunk(conn, now, std::mem::take(&mut plain), &mut out)?;
            }
            continue;
        }
        for job in plain.drain(..) {
            out.push(created(insert_one(conn, &mut insert, now, job)?));
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
        out.push(created(insert_one(conn, &mut insert, now, job)?));
    }
    for job in plain {
        out.push(created(insert_one(conn, &mut insert, now, job)?));
    }
    Ok(out)
}

fn created(job: Job) -> Inserted {
    Inserted { job, created: true }
}

/// The derived values of a row, owned here so the statement's parameters can borrow them.
struct Derived {
    state: JobState,
    /// `state` as bound to the statement.
    stored: Stored,
    due: i64,
    initial_ms: i64,
    max_ms: i64,
    timeout_ms: Option<i64>,
    tags: Option<String>,
    metadata: Option<String>,
}

impl Derived {
    fn of(now: i64, job: &JobInsert) -> Result<Derived, Error> {
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
        Ok(Derived {
            state,
            stored: Stored(state),
            due,
            initial_ms: ms(job.backoff.initial_ms),
            max_ms: ms(job.backoff.max_ms),
            timeout_ms: job.timeout_ms.map(ms),
            tags: (!job.tags.is_empty())
                .then(|| serde_json::to_string(&job.tags))
                .transpose()?,
            metadata: (!job.metadata.is_empty())
                .then(|| serde_json::to_string(&job.metadata))
                .transpose()?,
        })
    }
}

/// [`CHUNK`] jobs without keys in one statement. Under the single writer, AUTOINCREMENT gives
/// the rows of one statement consecutive ids in VALUES order, ending at `last_insert_rowid`.
fn insert_chunk(
    conn: &Connection,
    now: i64,
    jobs: Vec<JobInsert>,
    out: &mut Vec<Inserted>,
) -> Result<(), Error> {
    let derived = jobs
        .iter()
        .map(|job| Derived::of(now, job))
        .collect::<Result<Vec<_>, _>>()?;
    let no_key: Option<&str> = None;
    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(jobs.len() * CHUNK_COLUMNS);
    for (job, d) in jobs.iter().zip(&derived) {
        values.extend_from_slice(&[
            &job.queue as &dyn ToSql,
            &d.stored,
            &job.priority,
            &d.due,
            &no_key,
            &no_key,
            &false,
        ]);
    }
    let inserted = conn
        .prepare_cached(&INSERT_CHUNK)?
        .execute(params_from_iter(values))?;
    if inserted != jobs.len() {
        return Err(Error::Store(StoreError::Unavailable(format!(
            "inserted {inserted} of {} jobs",
            jobs.len()
        ))));
    }
    let first = conn.last_insert_rowid() - (jobs.len() as i64 - 1);
    let ids: Vec<i64> = (0..jobs.len() as i64).map(|i| first + i).collect();
    let payloads: Vec<&str> = jobs.iter().map(|job| job.payload.get()).collect();
    let mut values: Vec<&dyn ToSql> = Vec::with_capacity(jobs.len() * BODY_COLUMNS);
    for (((job, d), payload), id) in jobs.iter().zip(&derived).zip(&payloads).zip(&ids) {
        values.extend_from_slice(&[
            id as &dyn ToSql,
            payload,
            &job.max_attempts,
            &d.initial_ms,
            &d.max_ms,
            &job.backoff.factor,
            &d.timeout_ms,
            &now,
            &d.tags,
            &d.metadata,
            &job.traceparent,
        ]);
    }
    conn.prepare_cached(&INSERT_BODY_CHUNK)?
        .execute(params_from_iter(values))?;
    for ((i, job), d) in jobs.into_iter().enumerate().zip(derived) {
        out.push(created(answer(JobId(first + i as i64), now, d, job)));
    }
    Ok(())
}

const CHUNK_COLUMNS: usize = 7;
const BODY_COLUMNS: usize = 11;

/// [`INSERT`] with [`CHUNK`] rows of values.
static INSERT_CHUNK: LazyLock<String> = LazyLock::new(|| chunked(INSERT, CHUNK_COLUMNS));

/// [`INSERT_BODY`] with [`CHUNK`] rows of values.
static INSERT_BODY_CHUNK: LazyLock<String> = LazyLock::new(|| chunked(INSERT_BODY, BODY_COLUMNS));

/// `OR FAIL`: a many-row statement that may abort makes SQLite copy every page it touches into
/// a statement journal first, so that the abort could undo that statement alone. Nothing here
/// needs that: a failure undoes the whole command (see [`insert_many`]).
fn chunked(insert: &str, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    let (head, _) = insert.split_at(insert.find("VALUES").unwrap_or(insert.len()));
    let head = head.replacen("INSERT INTO", "INSERT OR FAIL INTO", 1);
    format!("{head}VALUES {}", vec![row; CHUNK].join(", "))
}

fn by_idempotency_key(conn: &Connection, queue: &str, key: &str) -> rusqlite::Result<Option<Job>> {
    conn.prepare_cached(concat!(
        "SELECT ",
        job_columns!(),
        " FROM job_rows WHERE queue = ?1 AND idempotency_key = ?2"
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
    let d = Derived::of(now, &job)?;
    let blocked = match &job.ordering_key {
        Some(key) => ordering::any_unfinished(conn, &job.queue, key)?,
        None => false,
    };
    insert.execute(params![
        job.queue,
        d.stored,
        job.priority,
        d.due,
        job.idempotency_key,
        job.ordering_key,
        blocked,
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(INSERT_BODY)?.execute(params![
        id,
        job.payload.get(),
        job.max_attempts,
        d.initial_ms,
        d.max_ms,
        job.backoff.factor,
        d.timeout_ms,
        now,
        d.tags,
        d.metadata,
        job.traceparent,
    ])?;
    Ok(answer(JobId(id), now, d, job))
}

/// The inserted job, built from what was written rather than read back.
fn answer(id: JobId, now: i64, d: Derived, job: JobInsert) -> Job {
    Job {
        id,
        queue: job.queue,
        state: d.state,
        payload: job.payload,
        priority: job.priority,
        attempt: 0,
        max_attempts: job.max_attempts,
        backoff: job.backoff,
        timeout_ms: job.timeout_ms,
        created_at: ms_to_timestamp(now),
        scheduled_at: ms_to_timestamp(d.due),
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
    }
}
