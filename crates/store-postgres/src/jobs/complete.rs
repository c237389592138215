//! Plain completions, the throughput path: a worker's successes, acknowledged in batches, become
//! one auto-committed statement per batch instead of one guarded UPDATE per job. Everything
//! else (failures, the rescuer's guarded finishes, jobs with an ordering key, a job named twice)
//! takes the transaction path in `finish.rs`.

use std::collections::HashMap;

use buzzer_store::StoreError;
use tokio_postgres::types::{ToSql, Type};

use super::answer::Answer;
use crate::{
    clock::now,
    db::Db,
    error::Error,
    row::{job_columns, notifying},
};

/// Completes `unnest($1 ids, $2 tokens, $3 results)`; the lease guard is in the WHERE, so a
/// stale token or an unknown id simply comes back without a row. Jobs with an ordering key are
/// left alone: handing their key to the next job needs the key's lock first, which only a
/// transaction can hold across statements.
///
/// Sent unnamed, so it is planned for each batch's own arguments ([`Db::rows_planned`]): as a
/// prepared statement PostgreSQL soon settles on a generic plan, and for this join the generic
/// plan, guessing few running jobs, rescans the whole input for every running job (a batch of
/// 256 took 70 ms instead of 6). `j.id = ANY($1)` beside the join lets the planner find the
/// rows by primary key, or walk the lease index when few jobs run.
///
/// Row locks follow the plan, not id order as in the transaction path. Only the rescuer's
/// batch locks several running rows too, so a lock cycle needs a worker to complete, in one
/// batch, jobs whose leases the rescuer is expiring at that very moment; PostgreSQL then breaks
/// it within `deadlock_timeout` and the loser answers `Unavailable`. Nothing is lost: the
/// rescuer tries again, or the worker's jobs run again after their lost leases.
macro_rules! complete_many {
    ($returning:expr) => {
        notifying!(concat!(
            "UPDATE buzzer_jobs AS j SET state = 'completed', result = d.result::json, \
             finished_at = ",
            now!(),
            ", lease_token = NULL, lease_expires_at = NULL \
             FROM unnest($1::int8[], $2::text[], $3::text[]) AS d(id, token, result) \
             WHERE j.id = ANY($1) AND j.id = d.id AND j.state = 'running' \
               AND j.lease_token = d.token AND j.ordering_key IS NULL \
             RETURNING ",
            $returning
        ))
    };
}

/// Answers with the whole jobs.
pub(crate) const COMPLETE_MANY: &str = complete_many!(job_columns!());

/// Answers with where the jobs ended up ([`super::answer`]); `state` is for the notification.
pub(crate) const COMPLETE_MANY_BRIEF: &str =
    complete_many!("j.id, j.queue, j.started_at, j.finished_at, j.state");

/// One plain completion: the job, its lease token and its result's JSON text.
pub(super) struct Plain<'a> {
    pub(super) index: usize,
    pub(super) id: i64,
    pub(super) token: &'a str,
    pub(super) result: Option<&'a str>,
}

/// Applies the batch in one statement (its own transaction, which also carries the
/// notification) and fills `results[index]` for every job it completed. The others stay
/// `None`: keyed, lost or unknown, for the transaction path to tell apart.
pub(super) async fn keyless<A: Answer>(
    db: &impl Db,
    batch: Vec<Plain<'_>>,
    results: &mut [Option<Result<A, StoreError>>],
) -> Result<(), Error> {
    let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
    let tokens: Vec<&str> = batch.iter().map(|p| p.token).collect();
    let texts: Vec<Option<&str>> = batch.iter().map(|p| p.result).collect();
    let params: [(&(dyn ToSql + Sync), Type); 3] = [
        (&ids, Type::INT8_ARRAY),
        (&tokens, Type::TEXT_ARRAY),
        (&texts, Type::TEXT_ARRAY),
    ];
    let mut done: HashMap<i64, A> = db
        .rows_planned(A::COMPLETE_MANY, &params)
        .await?
        .iter()
        .map(|r| A::completed(r).map(|a| (a.id(), a)))
        .collect::<Result<_, _>>()?;
    for p in batch {
        if let Some(answer) = done.remove(&p.id) {
            results[p.index] = Some(Ok(answer));
        }
    }
    Ok(())
}
