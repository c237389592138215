//! The scheduler's and the pruner's writes. Both skip rows another transaction has locked
//! (`SKIP LOCKED`): they never wait, so they can never be part of a deadlock, and what they
//! skip they find on their next pass.

use buzzer_store::{JobPrune, Promoted};
use buzzer_types::JobId;

use crate::{
    clock::{ms, now},
    db::Db,
    error::Error,
};

/// Due `scheduled`/`retryable` jobs become `available`, earliest first, and are announced
/// (per job: a watcher on another node may be waiting for this job to be available).
pub(crate) const PROMOTE: &str = concat!(
    "WITH done AS (UPDATE buzzer_jobs AS j SET state = 'available' WHERE j.id = ANY(ARRAY(\
       SELECT d.id FROM buzzer_jobs d WHERE d.state IN ('scheduled', 'retryable') \
       AND d.scheduled_at <= ",
    now!(),
    " ORDER BY d.scheduled_at LIMIT $1 FOR UPDATE SKIP LOCKED)) \
     RETURNING j.id, j.queue, j.state) \
     SELECT done.id, done.queue, (SELECT buzzer_notify(array_agg(n.queue), array_agg(n.state), \
       array_agg(n.id), true) FROM done n) FROM done"
);

pub(crate) async fn promote_due(db: &impl Db, limit: u32) -> Result<Vec<Promoted>, Error> {
    let rows = db.rows(PROMOTE, &[&i64::from(limit)]).await?;
    rows.iter()
        .map(|r| {
            Ok(Promoted {
                id: JobId(r.try_get(0)?),
                queue: r.try_get(1)?,
            })
        })
        .collect()
}

/// Deletes in batches (`id = ANY(ARRAY(… LIMIT n))`), so pruning a backlog never holds many
/// row locks or one long transaction; the retention indexes find the terminal rows directly and
/// the delete finds them by primary key (as an `IN (subquery)` join of a thousand rows, the
/// planner would rather hash the whole table).
pub(crate) const PRUNE_FINISHED: &str = concat!(
    "DELETE FROM buzzer_jobs WHERE id = ANY(ARRAY(SELECT p.id FROM buzzer_jobs p \
     WHERE p.state IN ('completed', 'cancelled') AND p.finished_at <= ",
    now!(),
    " - $1::int8 * interval '1 millisecond' LIMIT $2 FOR UPDATE SKIP LOCKED))"
);

pub(crate) const PRUNE_DEAD: &str = concat!(
    "DELETE FROM buzzer_jobs WHERE id = ANY(ARRAY(SELECT p.id FROM buzzer_jobs p \
     WHERE p.state = 'dead' AND p.finished_at <= ",
    now!(),
    " - $1::int8 * interval '1 millisecond' LIMIT $2 FOR UPDATE SKIP LOCKED))"
);

/// Deletes terminal jobs past their retention, at most `limit` in all.
pub(crate) async fn prune(db: &impl Db, params: JobPrune) -> Result<u64, Error> {
    let limit = i64::from(params.limit);
    let finished = db
        .exec(PRUNE_FINISHED, &[&ms(params.finished_retention_ms), &limit])
        .await?;
    let left = limit.saturating_sub(i64::try_from(finished).unwrap_or(limit));
    let dead = if left <= 0 {
        0
    } else {
        db.exec(PRUNE_DEAD, &[&ms(params.dead_retention_ms), &left])
            .await?
    };
    Ok(finished + dead)
}
