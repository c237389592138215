//! Transitions out of `running`, each guarded by the lease token in the same statement.

use std::collections::HashSet;

use buzzer_store::{Heartbeat, JobFinish, JobHeartbeat, StoreError, Transition};
use buzzer_types::{ErrorInput, Job, JobId};
use deadpool_postgres::ClientWrapper;
use futures::future::try_join_all;
use serde_json::Map;
use tokio_postgres::{GenericClient, types::ToSql};

use super::{answer::Answer, complete, ordering::Keys};
use crate::{
    clock::{ms, now, now_rfc3339},
    db::Db,
    error::Error,
    notify,
    row::{self, job_columns, notifying},
};

/// The guard every transition out of `running` carries: the job is running under this token
/// and, for the rescuer, that lease has run out by the store's clock.
macro_rules! guard {
    () => {
        concat!(
            "j.id = $1 AND j.state = 'running' AND j.lease_token = $2 \
             AND (NOT $3::bool OR j.lease_expires_at <= ",
            now!(),
            ")"
        )
    };
}

/// `{attempt, at, message, ..details}` appended to `errors`; the fixed fields win over
/// details of the same name (which the caller has already dropped).
macro_rules! error_entry {
    ($message:literal, $details:literal) => {
        concat!(
            "jsonb_build_array(",
            $details,
            "::text::jsonb || jsonb_build_object('attempt', j.attempt, 'at', ",
            now_rfc3339!(),
            ", 'message', ",
            $message,
            "::text))"
        )
    };
}

macro_rules! complete_set {
    () => {
        concat!(
            "state = 'completed', result = $4::text::json, finished_at = ",
            now!(),
            ", lease_token = NULL, lease_expires_at = NULL"
        )
    };
}

/// A retry of a job someone asked to cancel would only run it again: it is cancelled instead.
macro_rules! retry_set {
    () => {
        concat!(
            "state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'retryable' END, \
             scheduled_at = CASE WHEN j.cancel_requested THEN j.scheduled_at ELSE ",
            now!(),
            " + $4::int8 * interval '1 millisecond' END, \
             finished_at = CASE WHEN j.cancel_requested THEN ",
            now!(),
            " END, errors = j.errors || ",
            error_entry!("$5", "$6"),
            ", lease_token = NULL, lease_expires_at = NULL"
        )
    };
}

macro_rules! dead_set {
    () => {
        concat!(
            "state = 'dead', finished_at = ",
            now!(),
            ", errors = j.errors || ",
            error_entry!("$4", "$5"),
            ", lease_token = NULL, lease_expires_at = NULL"
        )
    };
}

macro_rules! cancel_set {
    () => {
        concat!(
            "state = 'cancelled', finished_at = ",
            now!(),
            ", errors = CASE WHEN $4::text IS NULL THEN j.errors ELSE j.errors || ",
            error_entry!("$4", "$5"),
            " END, lease_token = NULL, lease_expires_at = NULL"
        )
    };
}

/// The attempt did not run to an outcome, so it does not count; the job keeps its place (id
/// and scheduled_at) and, if it heads an ordering key, its key. A release of a job whose
/// cancellation was requested cancels it.
macro_rules! release_set {
    () => {
        concat!(
            "state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'available' END, \
             attempt = CASE WHEN j.cancel_requested THEN j.attempt ELSE j.attempt - 1 END, \
             finished_at = CASE WHEN j.cancel_requested THEN ",
            now!(),
            " END, lease_token = NULL, lease_expires_at = NULL"
        )
    };
}

/// Each transition as two statements: `single` for one job without an ordering key (one
/// round trip: guard, change and notification in one auto-committed statement), `locked` for
/// the transaction path (key locks already held; the notification is sent once at the end).
macro_rules! transition_sql {
    ($set:expr) => {
        Sql {
            single: notifying!(concat!(
                "UPDATE buzzer_jobs AS j SET ",
                $set,
                " WHERE ",
                guard!(),
                " AND j.ordering_key IS NULL RETURNING ",
                job_columns!()
            )),
            locked: concat!(
                "UPDATE buzzer_jobs AS j SET ",
                $set,
                " WHERE ",
                guard!(),
                " RETURNING ",
                job_columns!()
            ),
        }
    };
}

struct Sql {
    single: &'static str,
    locked: &'static str,
}

const COMPLETE: Sql = transition_sql!(complete_set!());
const RETRY: Sql = transition_sql!(retry_set!());
const DEAD: Sql = transition_sql!(dead_set!());
const CANCEL: Sql = transition_sql!(cancel_set!());
const RELEASE: Sql = transition_sql!(release_set!());

const KEYS_OF: &str = "SELECT j.queue, j.ordering_key FROM buzzer_jobs j \
    WHERE j.id = ANY($1) AND j.ordering_key IS NOT NULL";

const EXISTING: &str = "SELECT j.id FROM buzzer_jobs j WHERE j.id = ANY($1)";

/// One finish as its statement and owned parameters.
struct Bound {
    sql: &'static Sql,
    id: i64,
    token: String,
    require_expired: bool,
    extra: Extra,
}

enum Extra {
    Complete(Option<String>),
    Retry(i64, String, String),
    Message(Option<String>, Option<String>),
    None,
}

impl Bound {
    fn of(finish: JobFinish) -> Result<Bound, Error> {
        let (sql, extra) = match finish.transition {
            Transition::Complete { result } => (
                &COMPLETE,
                Extra::Complete(result.map(|r| r.get().to_owned())),
            ),
            Transition::Retry { delay_ms, error } => {
                let (message, details) = split(&error)?;
                (&RETRY, Extra::Retry(ms(delay_ms), message, details))
            }
            Transition::Dead { error } => {
                let (message, details) = split(&error)?;
                (&DEAD, Extra::Message(Some(message), Some(details)))
            }
            Transition::Cancel { error } => match error {
                Some(error) => {
                    let (message, details) = split(&error)?;
                    (&CANCEL, Extra::Message(Some(message), Some(details)))
                }
                None => (&CANCEL, Extra::Message(None, None)),
            },
            Transition::Release => (&RELEASE, Extra::None),
        };
        Ok(Bound {
            sql,
            id: finish.id.0,
            token: finish.lease_token,
            require_expired: finish.require_lease_expired,
            extra,
        })
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut p: Vec<&(dyn ToSql + Sync)> = vec![&self.id, &self.token, &self.require_expired];
        match &self.extra {
            Extra::Complete(result) => p.push(result),
            Extra::Retry(delay, message, details) => {
                p.extend([delay as &(dyn ToSql + Sync), message, details])
            }
            Extra::Message(message, details) => p.extend([message as &(dyn ToSql + Sync), details]),
            Extra::None => {}
        }
        p
    }
}

/// The error's message, and its details without the fields the entry fixes itself: a worker's
/// `"at": "yesterday"` must not shadow when the store saw the failure.
fn split(error: &ErrorInput) -> Result<(String, String), Error> {
    let mut details: Map<_, _> = error.details.clone();
    for fixed in ["attempt", "at", "message"] {
        details.remove(fixed);
    }
    Ok((error.message.clone(), serde_json::to_string(&details)?))
}

/// Applies each finish on its own: one lost lease fails only its item. One job without an
/// ordering key (a worker's complete or fail) takes one round trip, and so do the plain
/// completions of a batch together ([`complete::keyless`]). Whatever is left runs in one
/// transaction: key locks first, then the guarded updates pipelined in id order (two batches
/// over the same jobs lock rows in one order), hand-over of ordering-key heads, one
/// notification.
///
/// A batch with plain completions and other items is thus two transactions. Each item's change
/// is atomic either way; if the second fails, the completions of the first stand and only the
/// other items answer with the error.
pub(crate) async fn finish_many<A: Answer>(
    client: &mut ClientWrapper,
    finishes: Vec<JobFinish>,
) -> Result<Vec<Result<A, StoreError>>, Error> {
    let bound = finishes
        .into_iter()
        .map(Bound::of)
        .collect::<Result<Vec<_>, _>>()?;
    let mut results: Vec<Option<Result<A, StoreError>>> = (0..bound.len()).map(|_| None).collect();
    if let [one] = bound.as_slice() {
        let rows = client.rows(one.sql.single, &one.params()).await?;
        if let Some(row) = rows.first() {
            return Ok(vec![Ok(A::of(row::job(row)?))]);
        }
        // Lost, unknown, or a job with an ordering key: the transaction path tells which.
    } else {
        let plain = plain(&bound);
        if !plain.is_empty() {
            complete::keyless(&*client, plain, &mut results).await?;
        }
    }

    let pending: Vec<usize> = (0..bound.len()).filter(|&i| results[i].is_none()).collect();
    if !pending.is_empty()
        && let Err(e) = in_transaction(client, &bound, &pending, &mut results).await
    {
        if pending.len() == bound.len() {
            return Err(e);
        }
        let e = StoreError::from(e);
        for &i in &pending {
            results[i] = Some(Err(copy(&e)));
        }
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(StoreError::NotFound)))
        .collect())
}

/// The plain completions of a batch: `Complete` under the worker's own guard, each job's first
/// mention only (a repeat goes the slow way, so the first of two results wins, as in order).
fn plain(bound: &[Bound]) -> Vec<complete::Plain<'_>> {
    let mut seen = HashSet::with_capacity(bound.len());
    bound
        .iter()
        .enumerate()
        .filter_map(|(index, b)| match &b.extra {
            Extra::Complete(result) if !b.require_expired && seen.insert(b.id) => {
                Some(complete::Plain {
                    index,
                    id: b.id,
                    token: &b.token,
                    result: result.as_deref(),
                })
            }
            _ => None,
        })
        .collect()
}

/// The same error for each of several items (a `StoreError` is not `Clone`).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
        StoreError::LeaseLost => StoreError::LeaseLost,
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Backend(b) => StoreError::backend(std::io::Error::other(b.to_string())),
    }
}

/// The transaction path over `bound[pending]`; fills `results` for each of them.
async fn in_transaction<A: Answer>(
    client: &mut ClientWrapper,
    bound: &[Bound],
    pending: &[usize],
    results: &mut [Option<Result<A, StoreError>>],
) -> Result<(), Error> {
    let tx = client.transaction().await?;
    let ids: Vec<i64> = pending.iter().map(|&i| bound[i].id).collect();
    let mut keys = Keys::default();
    for row in tx.rows(KEYS_OF, &[&ids]).await? {
        keys.push(row.try_get(0)?, row.try_get(1)?);
    }
    keys.lock(&tx).await?;

    let mut order = pending.to_vec();
    order.sort_by_key(|&i| bound[i].id);
    let mut statements = Vec::new();
    for &i in &order {
        statements.push(tx.prepare_sql(bound[i].sql.locked).await?);
    }
    let params: Vec<_> = order.iter().map(|&i| bound[i].params()).collect();
    let client = tx.client();
    let answers = try_join_all(
        statements
            .iter()
            .zip(&params)
            .map(|(statement, params)| client.query(statement, params.as_slice())),
    )
    .await?;

    let mut finished = Keys::default();
    let mut changed: Vec<(usize, Job)> = Vec::new();
    let mut missed = Vec::new();
    for (&i, rows) in order.iter().zip(&answers) {
        match rows.first() {
            Some(row) => {
                let job = row::job(row)?;
                if job.state.is_terminal()
                    && let Some(key) = &job.ordering_key
                {
                    finished.push(&job.queue, key);
                }
                changed.push((i, job));
            }
            None => missed.push(i),
        }
    }
    if !missed.is_empty() {
        let missed_ids: Vec<i64> = missed.iter().map(|&i| bound[i].id).collect();
        let existing: HashSet<i64> = tx
            .rows(EXISTING, &[&missed_ids])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        for &i in &missed {
            results[i] = Some(Err(if existing.contains(&bound[i].id) {
                StoreError::LeaseLost
            } else {
                StoreError::NotFound
            }));
        }
    }
    finished.release_next(&tx).await?;
    notify::jobs(&tx, changed.iter().map(|(_, job)| job)).await?;
    tx.commit().await?;
    for (i, job) in changed {
        results[i] = Some(Ok(A::of(job)));
    }
    Ok(())
}

const HEARTBEAT: &str = concat!(
    "UPDATE buzzer_jobs AS j SET lease_expires_at = ",
    now!(),
    " + $3::int8 * interval '1 millisecond', progress = COALESCE($4::text::json, j.progress) \
     WHERE j.id = $1 AND j.state = 'running' AND j.lease_token = $2 \
     RETURNING j.lease_expires_at, j.cancel_requested"
);

/// Extends the lease by `lease_ms` from now, if the token still holds. No notification: the
/// state does not change, and the rescuer re-checks the expiry under its guard.
pub(crate) async fn heartbeat(db: &impl Db, params: JobHeartbeat) -> Result<Heartbeat, Error> {
    let progress = params.progress.as_ref().map(|p| p.get());
    let rows = db
        .rows(
            HEARTBEAT,
            &[
                &params.id.0,
                &params.lease_token,
                &ms(params.lease_ms),
                &progress,
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Heartbeat {
            lease_expires_at: row.try_get(0)?,
            cancel_requested: row.try_get(1)?,
        }),
        None if exists(db, params.id).await? => Err(StoreError::LeaseLost.into()),
        None => Err(StoreError::NotFound.into()),
    }
}

async fn exists(db: &impl Db, id: JobId) -> Result<bool, Error> {
    Ok(!db.rows(EXISTING, &[&vec![id.0]]).await?.is_empty())
}
