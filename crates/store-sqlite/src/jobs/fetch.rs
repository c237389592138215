use std::cmp::Reverse;

use buzzer_store::JobFetch;
use rusqlite::{CachedStatement, Connection, OptionalExtension, Params, params};

use super::leased::{Fetched, Leased, Leases, best_first, leased_columns};
use crate::{clock::after, error::Error};

/// A queue's best fetchable jobs, straight off the `jobs_fetch` index.
pub(super) const BEST: &str = "SELECT priority, id FROM jobs WHERE queue = ?1 \
    AND state = 1 /*available*/ AND blocked = 0 ORDER BY priority DESC, id LIMIT ?2";

/// Leases the best `max_jobs` fetchable jobs across the named queues, best first.
pub(crate) fn fetch(conn: &Connection, now: i64, mut params: JobFetch) -> Result<Fetched, Error> {
    let nonce = nonce();
    let queues = std::mem::take(&mut params.queues);
    let lease = Lease::new(&params, &nonce, now);
    let jobs = lease.run(conn, queues)?;
    Fetched::of(
        conn,
        Leases {
            started_at: now,
            expires_at: lease.until,
            worker_id: params.worker_id,
            nonce,
            jobs,
        },
    )
}

/// The start of every lease token one fetch hands out: see [`lease_set`].
pub(super) fn nonce() -> String {
    format!("{:032x}-", rand::random::<u128>())
}

/// What one fetch sets on every job it leases.
#[derive(Clone, Copy)]
pub(super) struct Lease<'a> {
    worker_id: &'a str,
    /// The start of every token this fetch hands out; see [`lease_set`].
    nonce: &'a str,
    max_jobs: u32,
    now: i64,
    /// When the leases run out.
    pub(super) until: i64,
}

impl<'a> Lease<'a> {
    pub(super) fn new(params: &'a JobFetch, nonce: &'a str, now: i64) -> Lease<'a> {
        Lease {
            worker_id: &params.worker_id,
            nonce,
            max_jobs: params.max_jobs,
            now,
            until: after(now, params.lease_ms),
        }
    }

    /// The jobs' hot rows, best first.
    ///
    /// One queue, the common case, is a look at its candidates ([`CANDIDATES`]), then one
    /// statement. Across several, each queue is asked separately for its own best `max_jobs`,
    /// so every query walks the `jobs_fetch` index in order and stops at its limit; the merged
    /// few are then sorted here.
    /// One query over all queues (`queue IN (…)`) would have to sort every available row.
    fn run(self, conn: &Connection, mut queues: Vec<String>) -> Result<Vec<Leased>, Error> {
        if self.max_jobs == 0 {
            return Ok(Vec::new());
        }
        queues.sort_unstable();
        queues.dedup();
        if let [queue] = queues.as_slice() {
            let Some(best) = Candidates::of(conn, queue)? else {
                return Ok(Vec::new());
            };
            if !best.more || self.max_jobs == 1 {
                return self.lease_one(conn, best.id);
            }
            let lease = conn.prepare_cached(LEASE_BEST)?;
            return leased(
                lease,
                params![
                    queue,
                    self.max_jobs,
                    self.until,
                    self.now,
                    self.worker_id,
                    self.nonce
                ],
            );
        }
        let mut picked: Vec<(i32, i64)> = Vec::new();
        for queue in &queues {
            if !has_work(conn, queue)? {
                continue;
            }
            let mut best = conn.prepare_cached(BEST)?;
            let rows = best.query_map(params![queue, self.max_jobs], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for pick in rows {
                picked.push(pick?);
            }
        }
        picked.sort_unstable_by_key(|&(priority, id)| (Reverse(priority), id));
        picked.truncate(self.max_jobs as usize);
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch: a statement per job would pay SQLite's per-statement
        // journal and reset costs once per job, which dominated the fetch profile.
        let ids: Vec<i64> = picked.iter().map(|&(_, id)| id).collect();
        let lease = conn.prepare_cached(LEASE)?;
        leased(
            lease,
            params![
                serde_json::to_string(&ids)?,
                self.max_jobs,
                self.until,
                self.now,
                self.worker_id,
                self.nonce
            ],
        )
    }

    /// Leases job `id` if it is still available; whether it did.
    pub(super) fn by_id(self, conn: &Connection, id: i64) -> Result<bool, Error> {
        let leased = conn.prepare_cached(LEASE_ONE)?.execute(params![
            id,
            self.max_jobs,
            self.until,
            self.now,
            self.worker_id,
            self.nonce
        ])?;
        Ok(leased == 1)
    }

    /// Leases job `id`, which the caller saw available in this transaction, and reads its
    /// hot row back.
    fn lease_one(self, conn: &Connection, id: i64) -> Result<Vec<Leased>, Error> {
        if !self.by_id(conn, id)? {
            return Ok(Vec::new());
        }
        Ok(vec![
            conn.prepare_cached(LEASED_ROW)?
                .query_row([id], Leased::from_row)?,
        ])
    }
}

/// Whether a single queue is open, its best fetchable job, and whether there is another.
pub(super) struct Candidates {
    pub(super) id: i64,
    pub(super) more: bool,
}

impl Candidates {
    /// `None` when the queue is paused, unknown or has nothing to hand out.
    pub(super) fn of(conn: &Connection, queue: &str) -> rusqlite::Result<Option<Candidates>> {
        let row = conn
            .prepare_cached(CANDIDATES)?
            .query_row([queue], |r| {
                Ok((
                    r.get::<_, bool>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, bool>(2)?,
                ))
            })
            .optional()?;
        Ok(match row {
            Some((true, Some(id), more)) => Some(Candidates { id, more }),
            _ => None,
        })
    }
}

/// For one queue: whether it is open (`NOT paused`), its best fetchable job, and whether it
/// has a second one.
///
/// A fetch of a worker that has caught up finds the queue empty, or holding the one job just
/// enqueued: each is a seek or two into `jobs_fetch` here. The empty queue costs nothing
/// more; the one job is leased by id ([`LEASE_ONE`], [`LEASED_ROW`]). Only with a second
/// candidate does the fetch run [`LEASE_BEST`], which builds two temporary tables (its `IN`
/// list and its `RETURNING` rows) however few jobs it leases: that was 36% of the writer's
/// instructions in W2, whose fetches lease one job each.
pub(super) const CANDIDATES: &str = "SELECT NOT paused, \
    (SELECT id FROM jobs WHERE queue = ?1 AND state = 1 /*available*/ AND blocked = 0 \
     ORDER BY priority DESC, id LIMIT 1), \
    EXISTS (SELECT 1 FROM jobs WHERE queue = ?1 AND state = 1 /*available*/ AND blocked = 0 \
            ORDER BY priority DESC, id LIMIT 1 OFFSET 1) \
    FROM queues WHERE name = ?1";

/// Leases job `?1` if it is still available; `?2` is not used.
pub(super) const LEASE_ONE: &str =
    concat!(lease_set!(), "WHERE id = ?1 AND state = 1 /*available*/");

/// The hot row of job `?1`, as a lease statement returns it.
pub(super) const LEASED_ROW: &str =
    concat!("SELECT ", leased_columns!(), " FROM jobs WHERE id = ?1");

/// Runs a lease statement: its jobs' hot rows, best first.
fn leased(mut lease: CachedStatement<'_>, params: impl Params) -> Result<Vec<Leased>, Error> {
    let mut leased = lease
        .query_map(params, Leased::from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    best_first(&mut leased);
    Ok(leased)
}

/// Whether a queue has a job to hand out: one that never existed has none, a paused one hands
/// none out.
///
/// Asked of each queue of a fetch across several before it looks for their best jobs, so that
/// queues with nothing to give cost one index seek each. (A fetch of one queue asks
/// [`CANDIDATES`] instead.)
pub(super) const HAS_WORK: &str = "SELECT NOT paused AND EXISTS (SELECT 1 FROM jobs \
    WHERE queue = ?1 AND state = 1 /*available*/ AND blocked = 0) FROM queues WHERE name = ?1";

fn has_work(conn: &Connection, queue: &str) -> rusqlite::Result<bool> {
    let has = conn
        .prepare_cached(HAS_WORK)?
        .query_row([queue], |r| r.get::<_, bool>(0))
        .optional()?;
    Ok(has == Some(true))
}

/// A lease's token is `?6`, a random 128-bit nonce drawn for this fetch, followed by the job's
/// id: unguessable, and different for every lease of every job. Made with `||`, not with
/// SQL functions: SQLite treats any function call as a statement that may abort midway, and
/// inside a transaction such a many-row statement copies every page it first touches into a
/// statement journal, so that the abort could undo the statement alone. One
/// `randomblob` per row made every fetch pay for that journal; with the functions gone and
/// `OR FAIL` on the constraint checks (which cannot fail here), the fetch needs none. Any
/// error still undoes the whole command: its savepoint, or its transaction when it is alone
/// in the group. Functions and journal were ~3% of the writer's instructions in W1 (8% of
/// the fetch's).
macro_rules! lease_set {
    () => {
        "UPDATE OR FAIL jobs SET state = 2 /*running*/, attempt = attempt + 1, \
         lease_token = ?6 || id, lease_expires_at = ?3, started_at = ?4, worker_id = ?5 "
    };
}
use lease_set;

/// Picks and leases one queue's best `?2` jobs in one statement: no list of picks built in
/// Rust and parsed back by SQLite (JSON out, `json_each` in), which was a sizeable share of a
/// batch fetch.
pub(super) const LEASE_BEST: &str = concat!(
    lease_set!(),
    "WHERE id IN (SELECT id FROM jobs WHERE queue = ?1 AND state = 1 /*available*/ AND blocked = 0 \
                  ORDER BY priority DESC, id LIMIT ?2) \
     RETURNING ",
    leased_columns!()
);

/// Leases the jobs picked across several queues: `?1` is their ids, `[id, …]`; `?2`, the
/// limit in [`LEASE_BEST`], is not used (the picks already respect it).
pub(super) const LEASE: &str = concat!(
    lease_set!(),
    "WHERE id IN (SELECT value FROM json_each(?1)) RETURNING ",
    leased_columns!()
);
