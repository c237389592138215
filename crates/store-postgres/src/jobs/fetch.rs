//! Fetch: lease the best available jobs in one statement.

use std::cmp::Reverse;

use buzzer_store::JobFetch;
use buzzer_types::Job;

use crate::{
    announce::Announcer,
    clock::{ms, now},
    db::Db,
    error::Error,
    row::{self, job_columns, notifying},
};

/// Each named queue that exists and is not paused is walked separately down the
/// `buzzer_jobs_fetch` index (`priority DESC, id`), taking its best `$2` rows with
/// `FOR UPDATE SKIP LOCKED`: rows another node is leasing right now are stepped over instead of
/// waited for, so concurrent fetchers never queue behind each other. The best `$2` of those are
/// leased in the same statement under fresh random tokens: one round trip.
///
/// One walk per queue keeps every walk an index scan that stops at its limit; a single
/// `queue = ANY(…)` walk would have to sort every available row of those queues. A row locked
/// by one queue's walk but not picked stays locked only until this statement commits.
///
/// The picked rows come to the update as an array of their physical addresses
/// (`ctid = ANY(ARRAY(…))`, a TID scan): it fetches each locked version straight from its
/// page, where looking them up again by id descended the primary key once per job and stepped
/// over the dead versions of every earlier transition (a quarter of the statement's buffer
/// reads for 256 jobs). The address stays valid: the row is locked by this statement, and
/// nothing moves a live row version but `VACUUM FULL` or `CLUSTER`, which wait for the
/// statement. One case differs from a look-up by id: a row another transaction changed and
/// committed after this statement began is locked in its new version, which this statement's
/// snapshot may not see; the update then skips it and it stays available for the next fetch
/// (a batch one job short, never a job lost or leased twice).
///
/// A lease's token is `$5`, a random 128-bit nonce drawn once per fetch (in Rust), followed by
/// the job's id: unguessable, and different for every lease of every job, like the
/// `gen_random_uuid()` per row it replaces, which cost PostgreSQL ~2.4 µs a row on this
/// machine (`SELECT sum(length(gen_random_uuid()::text)) FROM generate_series(1, 256000)`:
/// 630 ms); without it PostgreSQL spent 11% less CPU on a W1 run (docs/performance-log.md).
macro_rules! lease {
    () => {
        concat!(
            "UPDATE buzzer_jobs AS j SET state = 'running', attempt = j.attempt + 1, \
               lease_token = $5::text || j.id, \
               lease_expires_at = ",
            now!(),
            " + $3::int8 * interval '1 millisecond', started_at = ",
            now!(),
            ", worker_id = $4 \
             WHERE j.ctid = ANY(ARRAY(\
               SELECT c.ctid FROM unnest($1::text[]) AS q(name) \
               JOIN buzzer_queues bq ON bq.name = q.name AND NOT bq.paused \
               CROSS JOIN LATERAL (\
                 SELECT f.ctid, f.id, f.priority FROM buzzer_jobs f \
                 WHERE f.queue = q.name AND f.state = 'available' AND NOT f.blocked \
                 ORDER BY f.priority DESC, f.id LIMIT $2 \
                 FOR UPDATE SKIP LOCKED) c \
               ORDER BY c.priority DESC, c.id LIMIT $2)) \
             RETURNING ",
            job_columns!()
        )
    };
}

/// On its own, the fetch commits without a notification: see [`crate::announce`].
pub(crate) const FETCH: &str = lease!();

/// Inside a transaction (an enqueue that leases its own job), which notifies anyway.
pub(crate) const FETCH_NOTIFYING: &str = notifying!(lease!());

/// Leases up to `max_jobs` across the named queues, best first, in a statement of its own
/// (not in a transaction: the announcement must follow the commit), and has them announced.
pub(crate) async fn fetch(
    db: &impl Db,
    announcer: &Announcer,
    params: JobFetch,
) -> Result<Vec<Job>, Error> {
    let jobs = lease(db, FETCH, params).await?;
    announcer.leased(&jobs);
    Ok(jobs)
}

/// Leases and announces in the caller's transaction.
pub(crate) async fn fetch_in(db: &impl Db, params: JobFetch) -> Result<Vec<Job>, Error> {
    lease(db, FETCH_NOTIFYING, params).await
}

async fn lease(db: &impl Db, sql: &str, params: JobFetch) -> Result<Vec<Job>, Error> {
    if params.max_jobs == 0 || params.queues.is_empty() {
        return Ok(Vec::new());
    }
    // The start of every token this fetch hands out (see the `lease!` statement).
    let nonce = format!("{:032x}-", rand::random::<u128>());
    let mut queues = params.queues;
    queues.sort_unstable();
    queues.dedup();
    let rows = db
        .rows(
            sql,
            &[
                &queues,
                &i64::from(params.max_jobs),
                &ms(params.lease_ms),
                &params.worker_id,
                &nonce,
            ],
        )
        .await?;
    let mut jobs = rows.iter().map(row::job).collect::<Result<Vec<_>, _>>()?;
    // RETURNING has no order of its own.
    jobs.sort_unstable_by_key(|j| (Reverse(j.priority), j.id));
    Ok(jobs)
}
