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

/// Completes the jobs `$1` (ids, ascending and distinct) whose lease tokens are `$2` and results
/// `$3`, matched by position; the lease guard is in the WHERE, so a stale token or an unknown id
/// simply comes back without a row. Jobs with an ordering key are left alone: handing their key
/// to the next job needs the key's lock first, which only a transaction can hold across
/// statements.
///
/// Each job is looked up by its id alone, in a subquery of its own (a single-row look-up, for
/// which no plan beats the primary key), and the update reaches the rows by the addresses found
/// (`ctid = ANY(ARRAY(…))`, a TID scan, as the fetch does). A job's token and result are read
/// from its position in the batch, found by `width_bucket`, a binary search of the sorted ids.
/// No join is left for the planner to get wrong. This statement used to join the jobs with
/// `unnest($1, $2, $3)`, and on a young table that join was a trap: with no statistics yet (or
/// statistics from when few jobs ran), PostgreSQL guessed two running jobs and, for a batch of
/// 1,000 on a table of 100,000, scanned the whole table rather than look 1,000 jobs up (60–260
/// ms an acknowledgement against ~5 ms), sometimes rescanning the batch for every running job.
/// Every fresh deployment met it at its first burst; W1 on PostgreSQL spent its first 0.8 s
/// there. `id = ANY($1)` does not escape it either: PostgreSQL hashes a long `ANY` list, so it
/// still prices a scan of the table below 1,000 look-ups.
///
/// A row another transaction changed and committed after this statement began is locked in its
/// new version, at another address; the update then skips it (see [`super::fetch`]) and the
/// transaction path answers for it.
///
/// The state guard is written `COLLATE "C"`, which compares exactly as plain `=` (equality of
/// deterministic collations is byte equality) but is not the predicate of the lease index, so
/// the planner cannot walk `buzzer_jobs_lease` instead: that walk read every entry of the
/// index, the dead ones of recent completions included (17 ms for 256 jobs after 150,000
/// completions).
///
/// Row locks are taken in the order of the rows' addresses (a TID scan sorts them), the same
/// for any two batches of this statement. The transaction path (the rescuer's guarded
/// finishes, failures, keyed jobs) locks in id order; a deadlock between the two needs both to
/// name the same two jobs at once (a late worker's results racing the rescuer over expired
/// leases), and PostgreSQL breaks it by failing one of them, whose jobs then run again
/// (at-least-once).
macro_rules! complete_many {
    ($returning:expr) => {
        notifying!(concat!(
            "UPDATE buzzer_jobs AS j SET state = 'completed', \
             result = ($3::text[])[width_bucket(j.id, $1::int8[])]::json, finished_at = ",
            now!(),
            ", lease_token = NULL, lease_expires_at = NULL \
             WHERE j.ctid = ANY(ARRAY(SELECT (SELECT k.ctid FROM buzzer_jobs k WHERE k.id = u.id) \
               FROM unnest($1::int8[]) AS u(id))) \
               AND j.state = 'running' COLLATE \"C\" \
               AND j.lease_token = ($2::text[])[width_bucket(j.id, $1::int8[])] \
               AND j.ordering_key IS NULL \
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
    // Ascending and distinct, as the statement's binary search needs ([`super::finish`] keeps
    // a job named twice out of the batch).
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
