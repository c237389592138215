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

/// Completes the jobs `$1` whose lease tokens are `$2` (matched by position), with the results
/// in `$3`, a JSON object from id to result JSON text for the jobs that have one; the lease
/// guard is in the look-up, so a stale token or an unknown id simply comes back without a row.
/// Jobs with an ordering key are left alone: handing their key to the next job needs the key's
/// lock first, which only a transaction can hold across statements.
///
/// Each job is looked up by its id and token alone, in a subquery of its own (a single-row
/// look-up, for which no plan beats the primary key), and the update reaches the rows by the
/// addresses found (`ctid = ANY(ARRAY(…))`, a TID scan, as the fetch does). No join is left
/// for the planner to get wrong. This statement used to join the jobs with
/// `unnest($1, $2, $3)`, and on a young table that join was a trap: with no statistics yet (or
/// statistics from when few jobs ran), PostgreSQL guessed two running jobs and, for a batch of
/// 1,000 on a table of 100,000, scanned the whole table rather than look 1,000 jobs up (60–260
/// ms an acknowledgement against ~5 ms), sometimes rescanning the batch for every running job.
/// Every fresh deployment met it at its first burst; W1 on PostgreSQL spent its first 0.8 s
/// there. `id = ANY($1)` does not escape it either: PostgreSQL hashes a long `ANY` list, so it
/// still prices a scan of the table below 1,000 look-ups.
///
/// The results come as one JSON object, parsed once (the scalar subquery), because an element
/// of a `text[]` is found by walking the array from its start: read by each job's position,
/// tokens and results cost ~2.5 ms a batch of 1,000 in those walks alone. A key of a `jsonb`
/// object is a binary search. A result is stored as its text, byte for byte.
///
/// The update sees the version the look-up saw, in the same snapshot, so the token matched on
/// that version. A row another transaction changed and committed since is locked in its new
/// version, at another address; the update then skips it (see [`super::fetch`]) and the
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
             result = ((SELECT $3::text::jsonb) ->> j.id::text)::json, finished_at = ",
            now!(),
            ", lease_token = NULL, lease_expires_at = NULL \
             WHERE j.ctid = ANY(ARRAY(SELECT (SELECT k.ctid FROM buzzer_jobs k \
                 WHERE k.id = u.id AND k.lease_token = u.token) \
               FROM unnest($1::int8[], $2::text[]) AS u(id, token))) \
               AND j.state = 'running' COLLATE \"C\" AND j.ordering_key IS NULL \
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
    // Keys are the ids as text, as `j.id::text` writes them.
    let texts: HashMap<i64, &str> = batch
        .iter()
        .filter_map(|p| Some((p.id, p.result?)))
        .collect();
    let texts = serde_json::to_string(&texts)?;
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
