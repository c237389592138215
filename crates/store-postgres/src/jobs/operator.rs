//! An operator's cancel, retry and delete. Rare and never on the hot path, so each runs in a
//! transaction: key lock first (if the job has an ordering key), then the guarded change, the
//! hand-over of the key's head, one notification.

use buzzer_store::{JobRetryDead, StoreError};
use buzzer_types::{Job, JobId, JobState};
use deadpool_postgres::{ClientWrapper, Transaction};
use tokio_postgres::{GenericClient, types::ToSql};

use super::ordering::{Keys, unfinished};
use crate::{
    clock::now,
    db::Db,
    error::Error,
    notify,
    row::{self, job_columns},
};

const CURRENT: &str = "SELECT j.state, j.queue, j.ordering_key FROM buzzer_jobs j WHERE j.id = $1";

/// A waiting job is cancelled at once; a running one only gets `cancel_requested` (its worker
/// holds the lease and reports, or its lease expires), and keeps its lease.
const CANCEL: &str = concat!(
    "UPDATE buzzer_jobs AS j SET \
       cancel_requested = j.cancel_requested OR j.state = 'running', \
       finished_at = CASE WHEN j.state = 'running' THEN j.finished_at ELSE ",
    now!(),
    " END, \
       lease_token = CASE WHEN j.state = 'running' THEN j.lease_token END, \
       lease_expires_at = CASE WHEN j.state = 'running' THEN j.lease_expires_at END, \
       state = CASE WHEN j.state = 'running' THEN 'running' ELSE 'cancelled' END \
     WHERE j.id = $1 AND j.state IN ",
    unfinished!(),
    " RETURNING ",
    job_columns!()
);

/// Back to `available`, attempt counter and errors kept; behind the key's current head, if
/// it has one (decided under the key's lock, so the read is current).
const REVIVE: &str = concat!(
    "UPDATE buzzer_jobs AS j SET state = 'available', scheduled_at = ",
    now!(),
    ", finished_at = NULL, cancel_requested = false, lease_token = NULL, \
       lease_expires_at = NULL, \
       blocked = j.ordering_key IS NOT NULL AND EXISTS (SELECT 1 FROM buzzer_jobs h \
           WHERE h.queue = j.queue AND h.ordering_key = j.ordering_key AND h.state IN ",
    unfinished!(),
    " AND NOT h.blocked) \
     WHERE j.id = $1 AND j.state IN ('dead', 'cancelled') RETURNING ",
    job_columns!()
);

/// Any job but a running one: its worker holds it and would report on a job that is gone.
const DELETE: &str = concat!(
    "DELETE FROM buzzer_jobs AS j WHERE j.id = $1 AND j.state <> 'running' RETURNING ",
    job_columns!()
);

/// Dead jobs of a queue, oldest first, walking `buzzer_jobs_queue_state`.
pub(crate) const DEAD_OF_QUEUE: &str = "SELECT j.id, j.ordering_key FROM buzzer_jobs j \
    WHERE j.queue = $1 AND j.state = 'dead' \
      AND ($2::text IS NULL OR $2::text = ANY(j.tags)) \
      AND ($3::int8[] IS NULL OR j.id = ANY($3::int8[])) \
    ORDER BY j.id LIMIT $4";

struct Current {
    state: JobState,
    queue: String,
    ordering_key: Option<String>,
}

async fn current(db: &impl Db, id: JobId) -> Result<Option<Current>, Error> {
    let rows = db.rows(CURRENT, &[&id.0]).await?;
    rows.first()
        .map(|r| {
            Ok(Current {
                state: row::state(r.try_get(0)?)?,
                queue: r.try_get(1)?,
                ordering_key: r.try_get(2)?,
            })
        })
        .transpose()
}

/// Reads the job (its key never changes) and takes its key's lock.
async fn locked(tx: &Transaction<'_>, id: JobId) -> Result<Current, Error> {
    let job = current(tx, id).await?.ok_or(StoreError::NotFound)?;
    if let Some(key) = &job.ordering_key {
        let mut keys = Keys::default();
        keys.push(&job.queue, key);
        keys.lock(tx).await?;
    }
    Ok(job)
}

/// The job's state once its lock is held, for the reason a guarded change did nothing.
async fn state_now(tx: &Transaction<'_>, id: JobId) -> Result<JobState, Error> {
    Ok(current(tx, id).await?.ok_or(StoreError::NotFound)?.state)
}

pub(crate) async fn cancel(client: &mut ClientWrapper, id: JobId) -> Result<Job, Error> {
    let tx = client.transaction().await?;
    let job = locked(&tx, id).await?;
    let rows = tx.rows(CANCEL, &[&id.0]).await?;
    let Some(row) = rows.first() else {
        let state = state_now(&tx, id).await?;
        return Err(StoreError::Conflict(format!("job is already {state}")).into());
    };
    let cancelled = row::job_without_lease(row)?;
    if cancelled.state.is_terminal()
        && let Some(key) = &job.ordering_key
    {
        let mut keys = Keys::default();
        keys.push(&job.queue, key);
        keys.release_next(&tx).await?;
    }
    notify::jobs(&tx, [&cancelled]).await?;
    tx.commit().await?;
    Ok(cancelled)
}

pub(crate) async fn retry(client: &mut ClientWrapper, id: JobId) -> Result<Job, Error> {
    let tx = client.transaction().await?;
    locked(&tx, id).await?;
    let rows = tx.rows(REVIVE, &[&id.0]).await?;
    let Some(row) = rows.first() else {
        let state = state_now(&tx, id).await?;
        return Err(StoreError::Conflict(format!(
            "only dead or cancelled jobs can be retried; this job is {state}"
        ))
        .into());
    };
    let revived = row::job_without_lease(row)?;
    notify::jobs(&tx, [&revived]).await?;
    tx.commit().await?;
    Ok(revived)
}

pub(crate) async fn delete(client: &mut ClientWrapper, id: JobId) -> Result<Job, Error> {
    let tx = client.transaction().await?;
    let job = locked(&tx, id).await?;
    let rows = tx.rows(DELETE, &[&id.0]).await?;
    let Some(row) = rows.first() else {
        state_now(&tx, id).await?;
        return Err(StoreError::Conflict(
            "a running job cannot be deleted while its worker holds it; cancel it first".into(),
        )
        .into());
    };
    let deleted = row::job_without_lease(row)?;
    if let Some(key) = &job.ordering_key {
        let mut keys = Keys::default();
        keys.push(&job.queue, key);
        keys.release_next(&tx).await?;
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Replays up to `limit` dead jobs of a queue, oldest first. Revived one statement at a time
/// (pipelined), so each sees whether the one before it already became its key's head.
pub(crate) async fn retry_dead(
    client: &mut ClientWrapper,
    params: JobRetryDead,
) -> Result<u64, Error> {
    let tx = client.transaction().await?;
    let ids = params
        .ids
        .as_ref()
        .map(|ids| ids.iter().map(|id| id.0).collect::<Vec<_>>());
    let picked = tx
        .rows(
            DEAD_OF_QUEUE,
            &[&params.queue, &params.tag, &ids, &i64::from(params.limit)],
        )
        .await?;
    let mut keys = Keys::default();
    let mut picked_ids = Vec::with_capacity(picked.len());
    for row in &picked {
        picked_ids.push(row.try_get::<_, i64>(0)?);
        if let Some(key) = row.try_get::<_, Option<&str>>(1)? {
            keys.push(&params.queue, key);
        }
    }
    keys.lock(&tx).await?;
    let revive = tx.prepare_sql(REVIVE).await?;
    let params: Vec<[&(dyn ToSql + Sync); 1]> = picked_ids.iter().map(|id| [id as _]).collect();
    let client = tx.client();
    let answers = futures::future::try_join_all(
        params
            .iter()
            .map(|p| GenericClient::query(client, &revive, p)),
    )
    .await?;
    let mut revived = Vec::with_capacity(answers.len());
    for rows in &answers {
        if let Some(row) = rows.first() {
            revived.push(row::job(row)?);
        }
    }
    notify::jobs(&tx, &revived).await?;
    tx.commit().await?;
    Ok(revived.len() as u64)
}
