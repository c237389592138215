//! Plain completions, the throughput path: a worker's successes, acknowledged in batches, become
//! one auto-committed statement per batch instead of one guarded UPDATE per job. Everything
//! else (failures, the rescuer's guarded finishes, jobs with an ordering key, a job named twice)
//! takes the transaction path in `finish.rs`.

use std::collections::HashMap;

use buzzer_store::StoreError;

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
/// Prepared once per connection and, after PostgreSQL's first five runs, planned once (a
/// generic plan): the batch drives one primary key look-up per job (a nested loop over
/// `unnest`), whatever the plan's guess of the batch's size or of how many jobs run. That is
/// the only index path left to it: the state guard is written `COLLATE "C"`, which compares
/// exactly as plain `=` (equality of deterministic collations is byte equality) but is not the
/// predicate of the lease index, so the planner cannot walk `buzzer_jobs_lease` instead.
/// Walking it was the trap: as a generic plan, guessing few running jobs, it rescanned the
/// whole batch for every running job (a batch of 256 took 70 ms instead of 6), and even
/// planned for each batch's own arguments it read every entry of that index, the dead ones of
/// recent completions included (17 ms for 256 jobs after 150,000 completions). The look-ups by
/// id cost the same for every batch, and the statement is no longer parsed and planned on each
/// call (0.3 + 0.4 ms a batch). The first five runs are planned for their own batch, and for
/// thousands of jobs on a large table such a plan may hash the batch against one scan of the
/// table instead (220 ms for 10,000 among 1,000,000 jobs, against 110 ms by id): linear
/// still, and gone with the sixth run.
///
/// Row locks are taken in the batch's order, which [`keyless`] sorts by id as the transaction
/// path does; the rescuer's batch takes that path, so two batches over the same running rows
/// lock them in one order.
macro_rules! complete_many {
    ($returning:expr) => {
        notifying!(concat!(
            "UPDATE buzzer_jobs AS j SET state = 'completed', result = d.result::json, \
             finished_at = ",
            now!(),
            ", lease_token = NULL, lease_expires_at = NULL \
             FROM unnest($1::int8[], $2::text[], $3::text[]) AS d(id, token, result) \
             WHERE j.id = d.id AND j.state = 'running' COLLATE \"C\" \
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
    mut batch: Vec<Plain<'_>>,
    results: &mut [Option<Result<A, StoreError>>],
) -> Result<(), Error> {
    batch.sort_unstable_by_key(|p| p.id);
    let ids: Vec<i64> = batch.iter().map(|p| p.id).collect();
    let tokens: Vec<&str> = batch.iter().map(|p| p.token).collect();
    let texts: Vec<Option<&str>> = batch.iter().map(|p| p.result).collect();
    let mut done: HashMap<i64, A> = db
        .rows(A::COMPLETE_MANY, &[&ids, &tokens, &texts])
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
