//! Announcing changes to the other nodes. Most statements announce their own changes through
//! `buzzer_notify` inside the statement (see [`crate::row::notifying!`]); transactions that
//! gather changes over several statements announce them here, once, before they commit.
//! PostgreSQL delivers a notification only when its transaction commits.

use buzzer_types::Job;

use crate::{db::Db, error::Error};

const JOBS: &str = "SELECT buzzer_notify($1::text[], $2::text[], $3::int8[], true)";

/// `pg_notify` takes the channel as text, so it needs no quoting.
const QUEUE_READY: &str = "SELECT pg_notify($1, $2)";

/// Announces each job's current state, per job.
pub(crate) async fn jobs<'a>(
    db: &impl Db,
    jobs: impl IntoIterator<Item = &'a Job>,
) -> Result<(), Error> {
    let (mut queues, mut states, mut ids) = (Vec::new(), Vec::new(), Vec::new());
    for job in jobs {
        queues.push(job.queue.as_str());
        states.push(job.state.as_str());
        ids.push(job.id.0);
    }
    if !ids.is_empty() {
        db.exec(JOBS, &[&queues, &states, &ids]).await?;
    }
    Ok(())
}

/// Announces that jobs of a queue may have become fetchable without changing state (a
/// resumed queue). `channel` and `origin` are the store's (see [`crate::listen`]).
pub(crate) async fn queue_ready(
    db: &impl Db,
    channel: &str,
    origin: &str,
    queue: &str,
) -> Result<(), Error> {
    let payload = format!("{origin} {queue} *");
    db.exec(QUEUE_READY, &[&channel, &payload]).await?;
    Ok(())
}
