//! Enqueue: one statement inserts a whole batch, all or none.

use std::collections::HashMap;

use buzzer_store::{Inserted, JobInsert, RunAt, StoreError};
use buzzer_types::{Job, JobId};
use jiff::Timestamp;

use super::ordering::{Keys, unfinished};
use crate::{
    clock::{ms, now, whole_ms},
    db::Db,
    error::Error,
    row::{self, job_columns},
};

/// Ids are drawn from the identity sequence in request order before the insert (a batch must
/// know which id went to which job, and they must grow in request order); the rows are then
/// inserted sorted by idempotency key, so two batches that share keys wait for each other in
/// the same order instead of deadlocking, and the first of two equal keys in one batch wins.
///
/// `ON CONFLICT DO NOTHING` on the idempotency index skips a job whose key is already taken,
/// including by an uncommitted insert of another transaction (it waits for that one to end).
/// `blocked` is decided under the keys' advisory locks (taken by the caller's transaction
/// before this statement): blocked if a job of the key is unfinished, or an earlier job of the
/// same batch has the key. The new jobs are announced per queue, not per job: nobody can be
/// watching a job that did not exist.
pub(crate) const INSERT: &str = concat!(
    "WITH input AS MATERIALIZED (\
       SELECT nextval('buzzer_jobs_id_seq') AS id, t.* \
       FROM unnest($1::text[], $2::text[], $3::int4[], $4::timestamptz[], $5::int8[], \
                   $6::int4[], $7::int8[], $8::int8[], $9::float8[], $10::int8[], $11::text[], \
                   $12::text[], $13::text[], $14::text[], $15::text[]) \
            WITH ORDINALITY AS t(queue, payload, priority, run_at, delay_ms, max_attempts, \
                   initial_ms, max_ms, factor, timeout_ms, idempotency_key, ordering_key, tags, \
                   metadata, traceparent, ord) \
       ORDER BY t.ord), \
     due AS (\
       SELECT i.*, CASE WHEN i.run_at IS NOT NULL THEN i.run_at \
                        WHEN i.delay_ms IS NOT NULL THEN ",
    now!(),
    " + i.delay_ms * interval '1 millisecond' ELSE ",
    now!(),
    " END AS due_at FROM input i), \
     new_queues AS (\
       INSERT INTO buzzer_queues (name, created_at) SELECT DISTINCT i.queue, ",
    now!(),
    " FROM input i ON CONFLICT (name) DO NOTHING), \
     ins AS (\
       INSERT INTO buzzer_jobs AS j (id, queue, state, payload, priority, max_attempts, \
           backoff_initial_ms, backoff_max_ms, backoff_factor, timeout_ms, created_at, \
           scheduled_at, idempotency_key, ordering_key, blocked, tags, metadata, traceparent) \
       OVERRIDING SYSTEM VALUE \
       SELECT d.id, d.queue, CASE WHEN d.due_at <= ",
    now!(),
    " THEN 'available' ELSE 'scheduled' END, d.payload::json, d.priority, d.max_attempts, \
           d.initial_ms, d.max_ms, d.factor, d.timeout_ms, ",
    now!(),
    ", d.due_at, d.idempotency_key, d.ordering_key, \
           d.ordering_key IS NOT NULL AND (\
               row_number() OVER (PARTITION BY d.queue, d.ordering_key ORDER BY d.ord) > 1 \
               OR EXISTS (SELECT 1 FROM buzzer_jobs h WHERE h.queue = d.queue \
                          AND h.ordering_key = d.ordering_key AND h.state IN ",
    unfinished!(),
    ")), \
           ARRAY(SELECT e.tag FROM jsonb_array_elements_text(d.tags::jsonb) \
                 WITH ORDINALITY AS e(tag, n) ORDER BY e.n), \
           COALESCE(d.metadata::jsonb, '{}'), d.traceparent \
       FROM due d ORDER BY d.queue, d.idempotency_key, d.ord \
       ON CONFLICT (queue, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
       RETURNING j.id, j.queue, j.state, j.created_at, j.scheduled_at) \
     SELECT i.id, ins.id IS NOT NULL, ins.state, ins.created_at, ins.scheduled_at, \
       (SELECT buzzer_notify(array_agg(n.queue), array_agg(n.state), array_agg(n.id), false) \
        FROM ins n) \
     FROM input i LEFT JOIN ins ON ins.id = i.id ORDER BY i.ord"
);

const BY_IDEMPOTENCY_KEY: &str = concat!(
    "SELECT ",
    job_columns!(),
    " FROM buzzer_jobs j JOIN unnest($1::text[], $2::text[]) AS k(queue, key) \
      ON j.queue = k.queue AND j.idempotency_key = k.key"
);

/// The batch as the column arrays [`INSERT`] unnests.
#[derive(Default)]
struct Columns {
    queue: Vec<String>,
    payload: Vec<String>,
    priority: Vec<i32>,
    run_at: Vec<Option<Timestamp>>,
    delay_ms: Vec<Option<i64>>,
    max_attempts: Vec<i32>,
    initial_ms: Vec<i64>,
    max_ms: Vec<i64>,
    factor: Vec<f64>,
    timeout_ms: Vec<Option<i64>>,
    idempotency_key: Vec<Option<String>>,
    ordering_key: Vec<Option<String>>,
    tags: Vec<Option<String>>,
    metadata: Vec<Option<String>>,
    traceparent: Vec<Option<String>>,
}

impl Columns {
    fn of(jobs: &[JobInsert]) -> Result<Columns, Error> {
        let mut c = Columns::default();
        for job in jobs {
            c.queue.push(job.queue.clone());
            c.payload.push(job.payload.get().to_owned());
            c.priority.push(job.priority);
            let (run_at, delay) = match job.run_at {
                RunAt::Now => (None, None),
                RunAt::Delay { ms: d } => (None, Some(ms(d))),
                RunAt::At(at) => (Some(whole_ms(at)), None),
            };
            c.run_at.push(run_at);
            c.delay_ms.push(delay);
            c.max_attempts.push(job.max_attempts);
            c.initial_ms.push(ms(job.backoff.initial_ms));
            c.max_ms.push(ms(job.backoff.max_ms));
            c.factor.push(job.backoff.factor);
            c.timeout_ms.push(job.timeout_ms.map(ms));
            c.idempotency_key.push(job.idempotency_key.clone());
            c.ordering_key.push(job.ordering_key.clone());
            c.tags.push(
                (!job.tags.is_empty())
                    .then(|| serde_json::to_string(&job.tags))
                    .transpose()?,
            );
            c.metadata.push(
                (!job.metadata.is_empty())
                    .then(|| serde_json::to_string(&job.metadata))
                    .transpose()?,
            );
            c.traceparent.push(job.traceparent.clone());
        }
        Ok(c)
    }
}

/// The whole enqueue on `db`, which must be a transaction when any job has an ordering key
/// (the key locks, the insert and the hand-over of heads belong together).
pub(crate) async fn insert_many(
    db: &impl Db,
    jobs: Vec<JobInsert>,
) -> Result<Vec<Inserted>, Error> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let mut keys = Keys::default();
    for job in &jobs {
        if let Some(key) = &job.ordering_key {
            keys.push(&job.queue, key);
        }
    }
    keys.lock(db).await?;
    let c = Columns::of(&jobs)?;
    let rows = db
        .rows(
            INSERT,
            &[
                &c.queue,
                &c.payload,
                &c.priority,
                &c.run_at,
                &c.delay_ms,
                &c.max_attempts,
                &c.initial_ms,
                &c.max_ms,
                &c.factor,
                &c.timeout_ms,
                &c.idempotency_key,
                &c.ordering_key,
                &c.tags,
                &c.metadata,
                &c.traceparent,
            ],
        )
        .await?;
    // A job of the batch that lost its idempotency race may have counted as an earlier job of
    // its ordering key; any key left without a head gets one.
    keys.release_next(db).await?;

    if rows.len() != jobs.len() {
        let message = format!(
            "the insert answered {} rows for {} jobs",
            rows.len(),
            jobs.len()
        );
        return Err(StoreError::backend(std::io::Error::other(message)).into());
    }
    let mut out: Vec<Option<Inserted>> = Vec::with_capacity(jobs.len());
    let mut taken = Keys::default();
    for (job, row) in jobs.into_iter().zip(&rows) {
        if !row.try_get::<_, bool>(1)? {
            // `taken` only ever holds jobs with a key: only a key can conflict.
            if let Some(key) = &job.idempotency_key {
                taken.push(&job.queue, key);
            }
            out.push(None);
            continue;
        }
        out.push(Some(Inserted {
            job: new_job(
                job,
                JobId(row.try_get(0)?),
                row::state(row.try_get(2)?)?,
                row.try_get(3)?,
                row.try_get(4)?,
            ),
            created: true,
        }));
    }
    if !taken.is_empty() {
        fill_existing(db, &mut out, &taken).await?;
    }
    out.into_iter()
        .map(|ins| {
            ins.ok_or_else(|| {
                // The job holding the key was pruned between the conflict and the read.
                StoreError::Unavailable(
                    "the job holding this idempotency key was removed meanwhile; try again".into(),
                )
                .into()
            })
        })
        .collect()
}

/// Answers each job that was not inserted with the job that holds its key. A separate
/// statement, so its snapshot sees the holder even when that committed while the insert waited.
async fn fill_existing(
    db: &impl Db,
    out: &mut [Option<Inserted>],
    taken: &Keys,
) -> Result<(), Error> {
    let (queues, keys) = taken.arrays();
    let rows = db.rows(BY_IDEMPOTENCY_KEY, &[queues, keys]).await?;
    let mut holders: HashMap<(String, String), Job> = HashMap::new();
    for row in &rows {
        let job = row::job_without_lease(row)?;
        if let Some(key) = job.idempotency_key.clone() {
            holders.insert((job.queue.clone(), key), job);
        }
    }
    let mut pairs = queues.iter().zip(keys);
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        if let Some((queue, key)) = pairs.next()
            && let Some(job) = holders.get(&(queue.clone(), key.clone()))
        {
            *slot = Some(Inserted {
                job: job.clone(),
                created: false,
            });
        }
    }
    Ok(())
}

/// The answer for an inserted job, built from what was written instead of read back: this is
/// the enqueue hot path.
fn new_job(
    job: JobInsert,
    id: JobId,
    state: buzzer_types::JobState,
    created_at: Timestamp,
    scheduled_at: Timestamp,
) -> Job {
    Job {
        id,
        queue: job.queue,
        state,
        payload: job.payload,
        priority: job.priority,
        attempt: 0,
        max_attempts: job.max_attempts,
        backoff: job.backoff,
        timeout_ms: job.timeout_ms,
        created_at,
        scheduled_at,
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
