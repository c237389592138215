//! Batches of finishes: plain completions in one statement, the rest one by one.

use std::{collections::HashMap, io::Write};

use buzzer_store::{Finished, JobFinish, StoreError, Transition};
use buzzer_types::{Job, JobId, JobState, ms_to_timestamp};
use rusqlite::{Connection, params};

use super::{
    completed,
    finish::{SET_RESULT, exists, finish_one},
    ordering, rows,
};
use crate::{error::Error, row};

/// Applies each finish and answers each item with its job, read back whole.
pub(crate) fn finish_many(
    conn: &Connection,
    now: i64,
    finishes: Vec<JobFinish>,
) -> Result<Vec<Result<Job, StoreError>>, Error> {
    let applied = apply(conn, now, finishes)?;
    let ids: Vec<i64> = applied
        .iter()
        .filter_map(|a| match a {
            Applied::Completed(done) => Some(done.id.0),
            Applied::Other(_) => None,
        })
        .collect();
    let mut jobs: HashMap<i64, Job> = rows::by_ids(conn, &ids, row::job)?
        .into_iter()
        .map(|j| (j.id.0, j))
        .collect();
    Ok(applied
        .into_iter()
        .map(|a| match a {
            Applied::Completed(done) => jobs.remove(&done.id.0).ok_or(StoreError::NotFound),
            Applied::Other(r) => *r,
        })
        .collect())
}

/// Applies each finish and answers each item with where its job ended up: a batch of plain
/// completions reads nothing back.
pub(crate) fn finish_many_brief(
    conn: &Connection,
    now: i64,
    finishes: Vec<JobFinish>,
) -> Result<Vec<Result<Finished, StoreError>>, Error> {
    Ok(apply(conn, now, finishes)?
        .into_iter()
        .map(|a| match a {
            Applied::Completed(done) => Ok(done),
            Applied::Other(r) => r.map(|job| Finished::of(&job)),
        })
        .collect())
}

enum Applied {
    /// A plain completion of the batch statement.
    Completed(Finished),
    /// Any other item, answered by [`finish_one`] (boxed: rare, and a job is large).
    Other(Box<Result<Job, StoreError>>),
}

/// Applies each finish on its own terms: one lost lease fails only its item.
///
/// Plain completions, the throughput path, go through one statement for the whole batch; the
/// rest (failures, the rescuer's guarded finishes, a job named twice) one by one.
fn apply(conn: &Connection, now: i64, finishes: Vec<JobFinish>) -> Result<Vec<Applied>, Error> {
    let mut results: Vec<Option<Applied>> = (0..finishes.len()).map(|_| None).collect();
    let (mut batch, mut slow): (Vec<_>, Vec<_>) =
        finishes.into_iter().enumerate().partition(|(_, f)| {
            matches!(f.transition, Transition::Complete { .. }) && !f.require_lease_expired
        });
    // By id, and for a job named twice its first item first: that one goes in the batch, the
    // rest one by one after it. Sorting, not hashing: this runs on the writer for every job.
    batch.sort_unstable_by_key(|(i, f)| (f.id.0, *i));
    let mut named_twice = false;
    batch.dedup_by(|(i, later), (_, first)| {
        let twice = later.id == first.id;
        if twice {
            named_twice = true;
            slow.push((*i, later.clone()));
        }
        twice
    });
    if named_twice {
        slow.sort_unstable_by_key(|(i, _)| *i);
    }
    if !batch.is_empty() {
        complete_batch(conn, now, batch, &mut results)?;
    }
    for (i, finish) in slow {
        results[i] = Some(Applied::Other(Box::new(finish_one(conn, now, finish)?)));
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Applied::Other(Box::new(Err(StoreError::NotFound)))))
        .collect())
}

/// Completes `{"id": "token", …}` in one statement; the lease guard is in its WHERE.
///
/// An object, not a list of pairs: `json_each` hands out each key and value as they are,
/// where `value ->> 0` and `value ->> 1` parsed each pair's text again, twice (a third of
/// the statement's work). `OR FAIL`, so that it needs no statement journal (see the lease's
/// statement in `fetch.rs`).
pub(super) const COMPLETE_BATCH: &str = "UPDATE OR FAIL jobs SET state = 4 /*completed*/, \
     finished_at = ?2, lease_token = NULL, lease_expires_at = NULL \
     FROM (SELECT CAST(key AS INTEGER) AS job_id, value AS token FROM json_each(?1)) AS done \
     WHERE jobs.id = done.job_id AND jobs.state = 2 /*running*/ AND jobs.lease_token = done.token \
     RETURNING jobs.id, jobs.queue, jobs.ordering_key, jobs.started_at";

/// [`COMPLETE_BATCH`] for a batch of one, the latency path (a hybrid call's result, a
/// trickle of jobs): `?1` the id, `?3` the token. Joining a one-item JSON object costs the
/// parse and a temporary table that `UPDATE … FROM` fills before it updates a row.
pub(super) const COMPLETE_ONE: &str = "UPDATE OR FAIL jobs SET state = 4 /*completed*/, \
     finished_at = ?2, lease_token = NULL, lease_expires_at = NULL \
     WHERE id = ?1 AND state = 2 /*running*/ AND lease_token = ?3 \
     RETURNING id, queue, ordering_key, started_at";

/// Sets `{"id": "result text", …}`; each result travels as a JSON string, so `value` hands
/// back the client's exact text.
pub(super) const SET_RESULTS: &str = "UPDATE OR FAIL job_bodies SET result = done.result \
     FROM (SELECT CAST(key AS INTEGER) AS job_id, value AS result FROM json_each(?1)) AS done \
     WHERE job_bodies.id = done.job_id";

/// `{"id": "text", …}` for [`COMPLETE_BATCH`] and [`SET_RESULTS`]: ids are distinct there.
/// Written into one buffer, with no string per job.
fn by_id<'a>(items: impl Iterator<Item = (i64, &'a str)>) -> Result<String, Error> {
    let mut out = Vec::with_capacity(64);
    out.push(b'{');
    for (i, (id, text)) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write!(out, "\"{id}\":").map_err(serde_json::Error::io)?;
        serde_json::to_writer(&mut out, text)?;
    }
    out.push(b'}');
    // A text parameter, not a blob: SQLite's JSON functions read a blob as binary JSONB.
    Ok(String::from_utf8(out).map_err(StoreError::backend)?)
}

/// Fills `results[i]` for each `(i, finish)` of the batch, which is sorted by id.
fn complete_batch(
    conn: &Connection,
    now: i64,
    batch: Vec<(usize, JobFinish)>,
    results: &mut [Option<Applied>],
) -> Result<(), Error> {
    let ended_at = Some(ms_to_timestamp(now));
    let done = |r: &rusqlite::Row<'_>| {
        Ok(Finished {
            id: JobId(r.get(0)?),
            queue: r.get(1)?,
            state: JobState::Completed,
            ordering_key: r.get(2)?,
            started_at: r.get::<_, Option<i64>>(3)?.map(ms_to_timestamp),
            ended_at,
        })
    };
    let mut completed: Vec<Finished> = match batch.as_slice() {
        [(_, one)] => conn
            .prepare_cached(COMPLETE_ONE)?
            .query_map(params![one.id.0, now, one.lease_token], done)?
            .collect::<rusqlite::Result<_>>()?,
        _ => {
            let items = by_id(batch.iter().map(|(_, f)| (f.id.0, f.lease_token.as_str())))?;
            conn.prepare_cached(COMPLETE_BATCH)?
                .query_map(params![items, now], done)?
                .collect::<rusqlite::Result<_>>()?
        }
    };
    completed::add(conn, completed.iter().map(|d| (d.queue.as_str(), 1)))?;
    // Both in id order: each batch item meets its completion, if any, in one walk.
    completed.sort_unstable_by_key(|d| d.id.0);
    let mut completed = completed.into_iter().peekable();
    let matched: Vec<Option<Finished>> = batch
        .iter()
        .map(|(_, f)| completed.next_if(|d| d.id == f.id))
        .collect();
    // Results go into the bodies in one statement too, and only the completed jobs' ones.
    let with_result: Vec<(i64, &str)> = batch
        .iter()
        .zip(&matched)
        .filter(|(_, done)| done.is_some())
        .filter_map(|((_, f), _)| match &f.transition {
            Transition::Complete {
                result: Some(result),
            } => Some((f.id.0, result.get())),
            _ => None,
        })
        .collect();
    match with_result.as_slice() {
        [] => {}
        [(id, result)] => {
            conn.prepare_cached(SET_RESULT)?
                .execute(params![id, result])?;
        }
        all => {
            conn.prepare_cached(SET_RESULTS)?
                .execute([by_id(all.iter().copied())?])?;
        }
    }
    for ((i, finish), done) in batch.into_iter().zip(matched) {
        results[i] = Some(match done {
            Some(done) => {
                if let Some(key) = &done.ordering_key {
                    ordering::release_next(conn, &done.queue, key)?;
                }
                Applied::Completed(done)
            }
            // The guard failed: tell a lost lease from a missing job.
            None if exists(conn, finish.id)? => {
                Applied::Other(Box::new(Err(StoreError::LeaseLost)))
            }
            None => Applied::Other(Box::new(Err(StoreError::NotFound))),
        });
    }
    Ok(())
}
