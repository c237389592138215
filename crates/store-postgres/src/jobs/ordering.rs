//! Ordering keys across nodes. Of each (queue, key) only the oldest unfinished job is
//! unblocked (the key's head); the `blocked` flag moves to the next one when the head reaches
//! a terminal state. A retry is not terminal, so a retrying head keeps its key.
//!
//! Two transactions on different nodes could otherwise both decide from stale reads: an
//! enqueue sees the head still running and inserts blocked, while the head's completion does
//! not yet see the new row and releases nothing, and the new job waits forever. So every
//! transaction that decides a key's `blocked` flags (insert, a terminal transition, cancel,
//! operator retry) first takes the key's transaction-level advisory lock, in a statement of its
//! own (under READ COMMITTED each statement reads a fresh snapshot, so statements after the lock
//! see everything the previous holder committed).
//!
//! Deadlocks are avoided by order: a transaction takes all its key locks before it locks any
//! row of a keyed job, and takes them sorted by lock id. Fetch, heartbeat and promotion never
//! take key locks and never change `blocked`.

use buzzer_types::JobId;

use crate::{db::Db, error::Error};

/// The states of a job that still holds its ordering key. Spelled exactly as in the
/// `buzzer_jobs_ordering` index's predicate.
macro_rules! unfinished {
    () => {
        "('scheduled', 'available', 'running', 'retryable')"
    };
}
pub(crate) use unfinished;

/// The advisory lock of a key: `hashtextextended(queue || E'\x1f' || key, 0)`. The unit
/// separator cannot occur in a queue name. Distinct and sorted in a subquery, so the locks
/// are taken in one order by every transaction.
pub(crate) const LOCK: &str = "SELECT pg_advisory_xact_lock(k.lock) FROM (SELECT DISTINCT \
    hashtextextended(u.queue || E'\\x1f' || u.key, 0) AS lock \
    FROM unnest($1::text[], $2::text[]) AS u(queue, key) ORDER BY 1) k";

/// For each key without a head, unblocks its oldest blocked job (and announces it).
pub(crate) const RELEASE_NEXT: &str = crate::row::notifying!(concat!(
    "UPDATE buzzer_jobs AS j SET blocked = false WHERE j.id = ANY(ARRAY(\
       SELECT (SELECT b.id FROM buzzer_jobs b WHERE b.queue = k.queue \
                 AND b.ordering_key = k.key AND b.state IN ",
    unfinished!(),
    " AND b.blocked ORDER BY b.id LIMIT 1) \
       FROM (SELECT DISTINCT * FROM unnest($1::text[], $2::text[]) AS u(queue, key)) k \
       WHERE NOT EXISTS (SELECT 1 FROM buzzer_jobs h WHERE h.queue = k.queue \
                 AND h.ordering_key = k.key AND h.state IN ",
    unfinished!(),
    " AND NOT h.blocked))) RETURNING ",
    crate::row::job_columns!()
));

/// The key's head: the unfinished job of the key that is not waiting behind another.
const HEAD: &str = concat!(
    "SELECT h.id FROM buzzer_jobs h WHERE h.queue = $1 AND h.ordering_key = $2 AND h.state IN ",
    unfinished!(),
    " AND NOT h.blocked ORDER BY h.id LIMIT 1"
);

pub(crate) async fn head(db: &impl Db, queue: &str, key: &str) -> Result<Option<JobId>, Error> {
    let rows = db.rows(HEAD, &[&queue, &key]).await?;
    Ok(rows.first().map(|r| r.try_get(0)).transpose()?.map(JobId))
}

/// (queue, ordering key) pairs, as the two arrays the statements above take.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    queues: Vec<String>,
    keys: Vec<String>,
}

impl Keys {
    pub(crate) fn push(&mut self, queue: &str, key: &str) {
        self.queues.push(queue.to_owned());
        self.keys.push(key.to_owned());
    }

    pub(crate) fn arrays(&self) -> (&Vec<String>, &Vec<String>) {
        (&self.queues, &self.keys)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Takes the keys' advisory locks, held until the transaction ends.
    pub(crate) async fn lock(&self, db: &impl Db) -> Result<(), Error> {
        if !self.is_empty() {
            db.exec(LOCK, &[&self.queues, &self.keys]).await?;
        }
        Ok(())
    }

    /// After jobs of these keys reached a terminal state (or were inserted or revived): every
    /// key that has unfinished jobs but no head gets its oldest blocked job as its head.
    pub(crate) async fn release_next(&self, db: &impl Db) -> Result<(), Error> {
        if !self.is_empty() {
            db.exec(RELEASE_NEXT, &[&self.queues, &self.keys]).await?;
        }
        Ok(())
    }
}
