//! Announcing leases off the fetch's path.
//!
//! PostgreSQL takes a global lock just before a notifying transaction commits and holds it
//! until the commit is flushed, so notifying commits flush one at a time. A fetch that notified
//! in its own commit therefore never shared a WAL flush with an ack batch's commit, and each
//! waited for the other's flush. Yet a lease wakes nobody on another node but the watchers of
//! those jobs (a running job frees no slot and sets no timer), so a fetch commits without
//! notifying (durably, like every change) and hands its leases to this task, which announces
//! what has gathered in one transaction of its own.
//!
//! That transaction changes nothing but the notification queue, so it does not wait for its
//! commit record's flush (`synchronous_commit` off for it alone): there is nothing in it to
//! lose, and a notification never outlives a crash anyway. It holds the lock for microseconds,
//! not a flush.
//!
//! A finish flushes this first ([`Announcer::flush`]), so other nodes still hear of a lease
//! before the finish of the same job done through this store, and so does the store's close.
//! A node that dies (or drops its store unclosed) between a fetch's commit and the
//! announcement leaves other nodes' watchers of those jobs to hear of them at their next change
//! (the lease's expiry at the latest).

use buzzer_types::Job;
use deadpool_postgres::Pool;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::db::Db;

/// `set_config(…, true)` lasts until this statement's own (implicit) transaction ends, commit
/// included. Never run inside a transaction: the whole transaction's commit would not wait.
const ANNOUNCE: &str = "SELECT set_config('synchronous_commit', 'off', true), \
    buzzer_notify($1::text[], array_fill('running'::text, ARRAY[cardinality($1)]), \
    $2::int8[], true)";

/// `buzzer_notify` sends one job per state instead of every job past 2000 ids, which other
/// nodes must answer with a resync; announcements stay below that.
const MOST_PER_ANNOUNCEMENT: usize = 2000;

enum Message {
    Leased(Vec<(String, i64)>),
    /// Answered once everything sent before it is announced (or given up on).
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub(crate) struct Announcer {
    tx: mpsc::UnboundedSender<Message>,
    task: JoinHandle<()>,
}

impl Announcer {
    pub(crate) fn start(pool: Pool) -> Announcer {
        let (tx, rx) = mpsc::unbounded_channel();
        Announcer {
            tx,
            task: tokio::spawn(run(pool, rx)),
        }
    }

    /// Queues the announcement of freshly leased jobs; never waits.
    pub(crate) fn leased(&self, jobs: &[Job]) {
        if jobs.is_empty() {
            return;
        }
        let leased = jobs.iter().map(|j| (j.queue.clone(), j.id.0)).collect();
        // The task ends only with the store; a fetch racing its close has nobody to tell.
        let _ = self.tx.send(Message::Leased(leased));
    }

    /// Waits until every lease queued so far has been announced.
    pub(crate) async fn flush(&self) {
        let (done, answered) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = answered.await;
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pool: Pool, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut messages = Vec::new();
    let mut leased = Vec::new();
    let mut flushed = Vec::new();
    while rx.recv_many(&mut messages, 256).await > 0 {
        for message in messages.drain(..) {
            match message {
                Message::Leased(jobs) => leased.extend(jobs),
                Message::Flush(done) => flushed.push(done),
            }
        }
        for chunk in leased.chunks(MOST_PER_ANNOUNCEMENT) {
            if let Err(e) = announce(&pool, chunk).await {
                tracing::warn!(error = %e, jobs = chunk.len(), "could not announce leased jobs; other nodes' watchers hear of them at their next change");
            }
        }
        leased.clear();
        for done in flushed.drain(..) {
            let _ = done.send(());
        }
    }
}

async fn announce(pool: &Pool, jobs: &[(String, i64)]) -> Result<(), String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let queues: Vec<&str> = jobs.iter().map(|(q, _)| q.as_str()).collect();
    let ids: Vec<i64> = jobs.iter().map(|(_, id)| *id).collect();
    client
        .exec(ANNOUNCE, &[&queues, &ids])
        .await
        .map_err(|e| crate::error::describe(&e))?;
    Ok(())
}
