//! The change feed: a dedicated connection `LISTEN`s on the schema's channel and turns every
//! notification (see `buzzer_notify` in the migration) into [`Change`]s on a broadcast channel,
//! which the engine's listener service turns into local wake-ups.
//!
//! The connection is not from the pool: a `LISTEN` belongs to its session, and a pooled
//! connection is handed to anyone. When it breaks (the database restarts, the network drops,
//! or the periodic check gets no answer) the listener reconnects with backoff and then sends
//! [`Change::Resync`]: whatever was committed meanwhile was not heard, so every waiter looks
//! again.

use std::time::Duration;

use buzzer_store::Change;
use buzzer_types::{JobId, JobState};
use futures::future::poll_fn;
use tokio::{
    sync::{broadcast, mpsc},
    task::JoinHandle,
};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Notification};
use tokio_util::sync::CancellationToken;

/// How many changes the feed holds for a slow receiver; one that falls further behind gets
/// `Lagged`, which the engine treats like a resync.
pub(crate) const FEED_CAPACITY: usize = 8_192;

const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

/// `buzzer_changes:<schema>`: one channel per schema, so separate installations in one
/// database (or parallel test schemas) never hear each other.
pub(crate) fn channel(schema: &str) -> String {
    format!("buzzer_changes:{schema}")
}

/// The running listener; [`Listener::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Listener {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Listener {
    /// Opens the first session before returning, so a store never starts deaf.
    pub(crate) async fn start(
        config: Config,
        channel: String,
        origin: String,
        feed: broadcast::Sender<Change>,
        check_every: Duration,
    ) -> Result<Listener, tokio_postgres::Error> {
        let session = Session::open(&config, &channel).await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(RunArgs {
            session,
            config,
            channel,
            origin,
            feed,
            check_every,
            stop: stop.clone(),
        }));
        Ok(Listener { stop, task })
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.cancel();
        self.task.abort();
    }
}

struct RunArgs {
    session: Session,
    config: Config,
    channel: String,
    origin: String,
    feed: broadcast::Sender<Change>,
    check_every: Duration,
    stop: CancellationToken,
}

async fn run(args: RunArgs) {
    let RunArgs {
        mut session,
        config,
        channel,
        origin,
        feed,
        check_every,
        stop,
    } = args;
    loop {
        match session.pump(&origin, &feed, check_every, &stop).await {
            Ended::Stopped => return,
            Ended::Broken(why) => {
                tracing::warn!(%why, "change listener lost its connection; reconnecting")
            }
        }
        drop(session);
        let mut delay = RECONNECT_MIN;
        session = loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            match Session::open(&config, &channel).await {
                Ok(s) => break s,
                Err(e) => {
                    tracing::debug!(error = %crate::error::describe(&e), "change listener cannot reconnect yet");
                    delay = (delay * 2).min(RECONNECT_MAX);
                }
            }
        };
        tracing::info!("change listener reconnected; waking every waiter to look again");
        // Nobody subscribed is fine.
        let _ = feed.send(Change::Resync);
    }
}

enum Ended {
    Stopped,
    Broken(String),
}

/// One listening connection: the client (for `LISTEN` and the health check) and the
/// notifications read off its connection by a driver task.
struct Session {
    client: Client,
    notifications: mpsc::UnboundedReceiver<Notification>,
    driver: JoinHandle<()>,
}

impl Session {
    async fn open(config: &Config, channel: &str) -> Result<Session, tokio_postgres::Error> {
        let (client, mut connection) = config.connect(NoTls).await?;
        let (tx, notifications) = mpsc::unbounded_channel();
        // The connection must be polled for the client to make progress at all; reading its
        // messages is how notifications arrive. Ends when the connection does.
        let driver = tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(error = %crate::error::describe(&e), "change listener connection ended");
                        return;
                    }
                }
            }
        });
        // A quoted identifier: the channel holds a ':'.
        let listen = format!("LISTEN \"{}\"", channel.replace('"', "\"\""));
        if let Err(e) = client.batch_execute(&listen).await {
            driver.abort();
            return Err(e);
        }
        Ok(Session {
            client,
            notifications,
            driver,
        })
    }

    async fn pump(
        &mut self,
        origin: &str,
        feed: &broadcast::Sender<Change>,
        check_every: Duration,
        stop: &CancellationToken,
    ) -> Ended {
        let mut check = tokio::time::interval(check_every);
        check.tick().await;
        let mut changes = Vec::new();
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ended::Stopped,
                n = self.notifications.recv() => {
                    let Some(n) = n else {
                        return Ended::Broken("the connection closed".into());
                    };
                    decode(n.payload(), origin, &mut changes);
                    for change in changes.drain(..) {
                        let _ = feed.send(change);
                    }
                }
                _ = check.tick() => {
                    let ping = tokio::time::timeout(check_every, self.client.simple_query("SELECT 1"));
                    match ping.await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return Ended::Broken(crate::error::describe(&e)),
                        Err(_) => return Ended::Broken(format!("no answer to a check within {check_every:?}")),
                    }
                }
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// One notification payload as changes; nothing for the store's own (`origin`). A payload
/// this build cannot read (a newer Buzzer on another node) becomes a resync: safe, if costly.
pub(crate) fn decode(payload: &str, origin: &str, out: &mut Vec<Change>) {
    let mut parts = payload.splitn(3, ' ');
    let (Some(from), Some(queue), Some(items)) = (parts.next(), parts.next(), parts.next()) else {
        out.push(Change::Resync);
        return;
    };
    if from == origin {
        return;
    }
    if items == "*" {
        out.push(Change::QueueReady {
            queue: queue.to_owned(),
        });
        return;
    }
    let (bulk, items) = match items.strip_prefix('!') {
        Some(rest) => (true, rest),
        None => (false, items),
    };
    let mut parsed = Vec::new();
    for item in items.split(',') {
        let Some(change) = item
            .split_at_checked(1)
            .and_then(|(code, id)| Some((state(code)?, id.parse::<i64>().ok()?)))
        else {
            out.push(Change::Resync);
            return;
        };
        parsed.push(change);
    }
    // A bulk change names one job per state; watchers of the others must look again, unless
    // the jobs are new (nobody can watch those) or merely became available.
    let resync = bulk
        && parsed
            .iter()
            .any(|(s, _)| !matches!(s, JobState::Available | JobState::Scheduled));
    out.extend(parsed.into_iter().map(|(state, id)| Change::Job {
        id: JobId(id),
        queue: queue.to_owned(),
        state,
    }));
    if resync {
        out.push(Change::Resync);
    }
}

fn state(code: &str) -> Option<JobState> {
    Some(match code {
        "s" => JobState::Scheduled,
        "a" => JobState::Available,
        "r" => JobState::Running,
        "y" => JobState::Retryable,
        "c" => JobState::Completed,
        "d" => JobState::Dead,
        "x" => JobState::Cancelled,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes(payload: &str) -> Vec<Change> {
        let mut out = Vec::new();
        decode(payload, "me", &mut out);
        out
    }

    fn job(id: i64, queue: &str, state: JobState) -> Change {
        Change::Job {
            id: JobId(id),
            queue: queue.into(),
            state,
        }
    }

    #[test]
    fn per_job_payloads() {
        assert_eq!(
            changes("other q.1 a12,r13,x14"),
            vec![
                job(12, "q.1", JobState::Available),
                job(13, "q.1", JobState::Running),
                job(14, "q.1", JobState::Cancelled),
            ]
        );
        assert_eq!(changes("- q y5"), vec![job(5, "q", JobState::Retryable)]);
    }

    #[test]
    fn own_changes_are_skipped() {
        assert!(changes("me q a1").is_empty());
        assert!(changes("me q *").is_empty());
    }

    #[test]
    fn queue_ready_and_bulk() {
        assert_eq!(
            changes("- q *"),
            vec![Change::QueueReady { queue: "q".into() }]
        );
        // New jobs: no resync needed.
        assert_eq!(
            changes("- q !a1,s2"),
            vec![
                job(1, "q", JobState::Available),
                job(2, "q", JobState::Scheduled)
            ]
        );
        // Many jobs finished at once: watchers must look again.
        assert_eq!(
            changes("- q !c7"),
            vec![job(7, "q", JobState::Completed), Change::Resync]
        );
    }

    #[test]
    fn unreadable_payloads_resync() {
        for bad in ["", "x", "- q", "- q z1", "- q a", "- q a1,", "- q ab"] {
            assert_eq!(changes(bad), vec![Change::Resync], "{bad:?}");
        }
    }
}
