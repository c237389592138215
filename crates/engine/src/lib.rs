//! Buzzer's job lifecycle, written once above the [`Store`] trait.
//!
//! The [`Engine`] validates requests, applies the retry policy, wakes waiting fetchers and
//! watchers, and runs the background services (scheduler, rescuer, pruner). Stores only
//! persist and select; the HTTP server and the client library only talk to the engine.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn buzzer_store::Store>) -> Result<(), buzzer_engine::EngineError> {
//! use buzzer_engine::{Engine, EngineConfig};
//! use buzzer_types::{EnqueueRequest, RawValue};
//!
//! let engine = Engine::new(store, EngineConfig::default());
//! let services = engine.start_services();
//! let payload = RawValue::from_string(r#"{"to":"ada@example.com"}"#.into()).unwrap();
//! let inserted = engine.enqueue("emails", EnqueueRequest::new(payload)).await?;
//! println!("enqueued {}", inserted.job.id);
//! engine.shutdown();
//! services.join().await;
//! # Ok(()) }
//! ```

mod config;
mod enqueue;
mod error;
mod finish;
mod finish_on_drop;
mod handoff;
mod manage;
mod metered;
mod metrics;
mod notify;
mod policy;
mod schedules;
mod services;
mod topics;
mod wait;
mod waiting;

use std::sync::{
    Arc,
    atomic::{AtomicBool, AtomicI64, Ordering},
};

pub use buzzer_store::{Inserted, JobList, Store};
pub use config::EngineConfig;
pub use error::EngineError;
pub use metrics::{EngineMetrics, JobTimes, JobTotals};
pub use notify::JobWatch;
pub use policy::{Outcome, RetryRequest, backoff_delay_ms, resolve, retry_transition};
pub use services::{ServiceEvent, Services};
pub use topics::{SECRET_ROTATION_OVERLAP, generate_webhook_secret};

use notify::Notifier;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

/// The job lifecycle over one store. Cheap to clone: every clone shares the same state.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The store, wrapped in the metered layer: every call is traced and timed, every
    /// transition counted.
    store: Arc<dyn Store>,
    metrics: Arc<EngineMetrics>,
    config: EngineConfig,
    notifier: Arc<Notifier>,
    /// Fetchers waiting for a job, for an enqueue to lease to directly.
    handoff: handoff::Handoff,
    /// Wakes the scheduler early: a job was scheduled or began a backoff.
    scheduler_nudge: Notify,
    /// Wakes the cron service: a schedule was created or changed.
    cron_nudge: Notify,
    /// Wakes the rescuer early: a lease was handed out.
    rescuer_nudge: Notify,
    /// When the rescuer plans to wake (local ms), so only an earlier lease nudges it.
    rescuer_wake_at: AtomicI64,
    /// Whether this node runs the scheduler, rescuer and pruner (see the elector service).
    leader: AtomicBool,
    events: broadcast::Sender<ServiceEvent>,
    /// Cancelled by [`Engine::shutdown`]: services stop and long-polls answer at once.
    closing: CancellationToken,
}

impl Engine {
    pub fn new(store: Arc<dyn Store>, config: EngineConfig) -> Engine {
        let (events, _) = broadcast::channel(1024);
        let metrics = Arc::new(EngineMetrics::new());
        let store: Arc<dyn Store> = Arc::new(metered::Metered::new(store, metrics.clone()));
        Engine {
            inner: Arc::new(Inner {
                store,
                metrics,
                config,
                notifier: Arc::new(Notifier::default()),
                handoff: handoff::Handoff::default(),
                scheduler_nudge: Notify::new(),
                cron_nudge: Notify::new(),
                rescuer_nudge: Notify::new(),
                rescuer_wake_at: AtomicI64::new(i64::MAX),
                leader: AtomicBool::new(false),
                events,
                closing: CancellationToken::new(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Job counters, wait and run times and store call durations, for `/metrics` and the
    /// dashboard.
    pub fn metrics(&self) -> &EngineMetrics {
        &self.inner.metrics
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// What the background services did, for tests and metrics to wait on.
    pub fn service_events(&self) -> broadcast::Receiver<ServiceEvent> {
        self.inner.events.subscribe()
    }

    /// Stops the services and ends every long-poll early (they answer with what they have).
    pub fn shutdown(&self) {
        self.inner.closing.cancel();
    }

    /// Resolves once [`Engine::shutdown`] has been called: streams that outlive a request
    /// (SSE) end on it.
    pub async fn closed(&self) {
        self.inner.closing.cancelled().await;
    }

    /// Whether this node currently runs the background services.
    pub fn is_leader(&self) -> bool {
        self.inner.leader.load(Ordering::Acquire)
    }

    /// How many long-polling fetchers of `queue` are waiting for a job right now (an enqueue
    /// leases to the longest-waiting one directly). For tests and diagnostics.
    pub fn waiting_fetchers(&self, queue: &str) -> usize {
        self.inner.handoff.parked(queue)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.closing.is_cancelled()
    }

    /// Subscribes to one job's state changes.
    pub fn watch(&self, id: buzzer_types::JobId) -> JobWatch {
        self.inner.notifier.watch(id)
    }
}
