//! Background services. Each runs as one task per engine. The **elector** keeps this node's
//! leadership (a store serving one process always grants it); the scheduler, rescuer and
//! pruner only work while this node leads, so with PostgreSQL exactly one node runs them and
//! another takes over within `leader_ttl` when it dies. The **listener** runs on every node and
//! turns changes committed by other nodes into local wake-ups.
//!
//! | service   | moves jobs                                  | wakes                               |
//! |-----------|---------------------------------------------|-------------------------------------|
//! | scheduler | `scheduled`/`retryable` → `available`       | at the next due time, or when nudged |
//! | rescuer   | `running` with an expired lease → retry/dead | at the next lease expiry, or nudged |
//! | pruner    | deletes old terminal jobs in small batches  | every `prune_interval`              |
//! | cron      | enqueues one job per schedule tick          | at the next tick, or when nudged    |

mod cron;
mod elector;
mod listener;
mod pruner;
mod rescuer;
mod scheduler;

use std::time::Duration;

use jiff::Timestamp;
use tokio::{sync::Notify, task::JoinHandle};

use crate::Engine;

/// What a service just did; tests wait on these instead of sleeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceEvent {
    /// Scheduled or retryable jobs became available.
    Promoted(usize),
    /// Expired leases were turned into failed attempts.
    Rescued(usize),
    /// Old terminal jobs were deleted.
    Pruned(u64),
    /// Cron schedules fired this many jobs.
    CronFired(usize),
    /// This node became (`true`) or stopped being (`false`) the leader.
    Leader(bool),
}

/// The running services; [`Services::join`] waits for them after [`Engine::shutdown`].
#[derive(Debug)]
pub struct Services {
    handles: Vec<JoinHandle<()>>,
}

impl Services {
    pub async fn join(self) {
        for h in self.handles {
            // A panicked service has already been logged by the runtime.
            let _ = h.await;
        }
    }
}

/// Pause after a store error before a service tries again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

impl Engine {
    /// Starts the scheduler, rescuer and pruner on the current tokio runtime.
    pub fn start_services(&self) -> Services {
        let mut handles = vec![
            tokio::spawn(elector::run(self.clone())),
            tokio::spawn(scheduler::run(self.clone())),
            tokio::spawn(rescuer::run(self.clone())),
            tokio::spawn(pruner::run(self.clone())),
            tokio::spawn(cron::run(self.clone())),
        ];
        if let Some(feed) = self.inner.store.change_feed() {
            handles.push(tokio::spawn(listener::run(self.clone(), feed)));
        }
        Services { handles }
    }

    pub(crate) fn emit(&self, event: ServiceEvent) {
        // Nobody listening is the normal case outside tests.
        let _ = self.inner.events.send(event);
    }

    /// A lease was handed out or extended: the rescuer must wake by its expiry at the latest.
    pub(crate) fn services_lease_granted(&self, lease_ms: u64) {
        let expires = Timestamp::now().as_millisecond() + lease_ms as i64;
        let planned = self
            .inner
            .rescuer_wake_at
            .load(std::sync::atomic::Ordering::Acquire);
        if expires < planned {
            self.inner.rescuer_nudge.notify_one();
        }
    }

    /// Sleeps until `due` (by the store's clock), `max_idle`, a nudge or shutdown, whichever
    /// comes first. Returns false on shutdown.
    pub(crate) async fn sleep_until_due(
        &self,
        due: Option<Timestamp>,
        nudge: &Notify,
        planned: Option<&std::sync::atomic::AtomicI64>,
    ) -> bool {
        let max_idle = self.inner.config.max_idle;
        let wait = match due {
            Some(due) => match self.inner.store.now().await {
                Ok(now) => {
                    let ms = due.as_millisecond().saturating_sub(now.as_millisecond());
                    Duration::from_millis(ms.max(0) as u64).min(max_idle)
                }
                Err(_) => ERROR_PAUSE,
            },
            None => max_idle,
        };
        if let Some(p) = planned {
            let at = Timestamp::now().as_millisecond() + wait.as_millis() as i64;
            p.store(at, std::sync::atomic::Ordering::Release);
        }
        if wait.is_zero() {
            return !self.is_shutting_down();
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = nudge.notified() => true,
            _ = self.inner.closing.cancelled() => false,
        }
    }

    pub(crate) async fn pause_after_error(&self, service: &str, e: impl std::fmt::Display) -> bool {
        tracing::warn!(service, error = %e, "background service failed; trying again shortly");
        tokio::select! {
            _ = tokio::time::sleep(ERROR_PAUSE) => true,
            _ = self.inner.closing.cancelled() => false,
        }
    }
}
