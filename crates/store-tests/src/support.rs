//! What every check shares: a store under an engine, and short ways to drive a job.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use buzzer_engine::{Engine, EngineConfig, EngineError, ServiceEvent, Services};
use buzzer_store::{JobFinish, JobInsert, RunAt, Store, StoreError, Transition};
use buzzer_types::{
    Backoff, CompleteRequest, EnqueueRequest, ErrorInput, FailRequest, FetchRequest, Job, JobId,
    JobState, RawValue, StateCounts,
};
use jiff::Timestamp;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::StoreFactory;

/// The longest any check waits for something that should happen much sooner; reaching it is
/// a failure, never the expected path.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub const WORKER: &str = "conformance-worker";

/// Engine settings for the suite: services look around every 100 ms at the latest, and the
/// pruner stays out of the way unless a check runs it.
pub fn test_config() -> EngineConfig {
    EngineConfig {
        max_idle: Duration::from_millis(100),
        prune_interval: Duration::from_secs(3600),
        ..EngineConfig::default()
    }
}

/// A store over a fresh database, with an engine (and usually its services) above it. Dropping
/// it shuts the engine down.
pub struct TestContext<F: StoreFactory> {
    /// `None` only inside [`TestContext::reopen`].
    engine: Option<Engine>,
    factory: F,
    db: F::Database,
    config: EngineConfig,
    services: Option<Services>,
}

impl<F: StoreFactory> std::fmt::Debug for TestContext<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

impl<F: StoreFactory> TestContext<F> {
    /// [`test_config`], services running.
    pub async fn new(factory: F) -> Self {
        Self::with(factory, test_config(), true).await
    }

    pub async fn with(factory: F, config: EngineConfig, services: bool) -> Self {
        let db = factory.create().await;
        let store = factory.open(&db).await;
        let engine = Engine::new(store, config.clone());
        let services = services.then(|| engine.start_services());
        TestContext {
            engine: Some(engine),
            factory,
            db,
            config,
            services,
        }
    }

    pub fn engine(&self) -> &Engine {
        self.engine
            .as_ref()
            .expect("the engine is only absent inside reopen")
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine().store()
    }

    /// Stops the engine, closes the store and opens a new one over the same database, as a
    /// restarted server would. Nothing else may hold the old engine.
    pub async fn reopen(&mut self) {
        self.engine().shutdown();
        let had_services = match self.services.take() {
            Some(s) => {
                s.join().await;
                true
            }
            None => false,
        };
        // A check may have closed the store itself; a second close answers Unavailable.
        match self.store().close().await {
            Ok(()) | Err(StoreError::Unavailable(_)) => {}
            Err(e) => panic!("closing the store failed: {e}"),
        }
        // The old store must be gone before the new one opens (SQLite holds a file lock).
        self.engine = None;
        let store = self.factory.open(&self.db).await;
        let engine = Engine::new(store, self.config.clone());
        if had_services {
            self.services = Some(engine.start_services());
        }
        self.engine = Some(engine);
    }

    pub fn events(&self) -> broadcast::Receiver<ServiceEvent> {
        self.engine().service_events()
    }

    pub async fn now(&self) -> Timestamp {
        self.store().now().await.unwrap()
    }

    /// Enqueues one job that must be new.
    pub async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Job {
        let ins = self.engine().enqueue(queue, req).await.unwrap();
        assert!(
            ins.created,
            "expected a new job, got existing {}",
            ins.job.id
        );
        ins.job
    }

    /// Enqueues a job with this payload and every option at its default.
    pub async fn put(&self, queue: &str, payload: Value) -> Job {
        self.enqueue(queue, req(payload)).await
    }

    pub async fn get(&self, id: JobId) -> Job {
        self.engine().get(id).await.unwrap()
    }

    /// Leases up to `max_jobs` without waiting.
    pub async fn fetch(&self, queues: &[&str], max_jobs: u32) -> Vec<Job> {
        self.engine()
            .fetch(fetch_req(queues, max_jobs, 0))
            .await
            .unwrap()
    }

    /// Leases the one job that must be available now.
    pub async fn fetch_one(&self, queue: &str) -> Job {
        self.fetch_lease(queue, 30_000).await
    }

    pub async fn fetch_lease(&self, queue: &str, lease_ms: u64) -> Job {
        let mut req = fetch_req(&[queue], 1, 0);
        req.lease_ms = Some(lease_ms);
        let mut jobs = self.engine().fetch(req).await.unwrap();
        assert_eq!(jobs.len(), 1, "expected one job to fetch from {queue}");
        jobs.pop().unwrap()
    }

    /// Long-polls until a job arrives; not getting one within [`PATIENCE`] fails the check.
    pub async fn fetch_wait(&self, queue: &str) -> Job {
        let mut jobs = self
            .engine()
            .fetch(fetch_req(&[queue], 1, PATIENCE.as_millis() as u64))
            .await
            .unwrap();
        assert_eq!(
            jobs.len(),
            1,
            "no job arrived in {queue} within {PATIENCE:?}"
        );
        jobs.pop().unwrap()
    }

    pub async fn assert_nothing_to_fetch(&self, queue: &str) {
        let jobs = self.fetch(&[queue], 100).await;
        let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
        assert!(
            ids.is_empty(),
            "expected nothing to fetch from {queue}, got {ids:?}"
        );
    }

    pub async fn complete(&self, job: &Job) -> Job {
        self.engine()
            .complete(job.id, complete_req(job, None))
            .await
            .unwrap()
    }

    /// Fails the attempt; the job follows its backoff (or `retry_in_ms` when given).
    pub async fn fail(&self, job: &Job, retry_in_ms: Option<u64>) -> Job {
        let mut req = fail_req(job, "boom");
        req.retry_in_ms = retry_in_ms;
        self.engine().fail(job.id, req).await.unwrap()
    }

    /// Fails the attempt with `retry: false`.
    pub async fn fail_dead(&self, job: &Job) -> Job {
        let mut req = fail_req(job, "fatal");
        req.retry = Some(false);
        self.engine().fail(job.id, req).await.unwrap()
    }

    pub async fn counts(&self, queue: &str) -> StateCounts {
        self.engine().queue(queue).await.unwrap().counts
    }

    /// One job in each of the seven states, all in `queue`, made in this order: running,
    /// completed, dead, retryable (due in an hour), cancelled, scheduled (in an hour),
    /// available.
    pub async fn one_job_in_each_state(&self, queue: &str) -> HashMap<JobState, Job> {
        let mut out = HashMap::new();
        self.put(queue, serde_json::json!({"s": "running"})).await;
        let running = self.fetch_one(queue).await;
        self.put(queue, serde_json::json!({"s": "completed"})).await;
        let done = self.fetch_one(queue).await;
        let completed = self.complete(&done).await;
        self.put(queue, serde_json::json!({"s": "dead"})).await;
        let doomed = self.fetch_one(queue).await;
        let dead = self.fail_dead(&doomed).await;
        self.put(queue, serde_json::json!({"s": "retryable"})).await;
        let failing = self.fetch_one(queue).await;
        let retryable = self.fail(&failing, Some(3_600_000)).await;
        let to_cancel = self.put(queue, serde_json::json!({"s": "cancelled"})).await;
        let cancelled = self.engine().cancel(to_cancel.id).await.unwrap();
        let scheduled = self
            .enqueue(
                queue,
                EnqueueRequest {
                    delay_ms: Some(3_600_000),
                    ..req(serde_json::json!({"s": "scheduled"}))
                },
            )
            .await;
        let available = self.put(queue, serde_json::json!({"s": "available"})).await;
        for job in [
            running, completed, dead, retryable, cancelled, scheduled, available,
        ] {
            out.insert(job.state, job);
        }
        assert_eq!(out.len(), 7, "expected one job in each state: {out:?}");
        out
    }
}

impl<F: StoreFactory> Drop for TestContext<F> {
    fn drop(&mut self) {
        if let Some(engine) = &self.engine {
            engine.shutdown();
        }
    }
}

/// A job due now in `queue`, every option at its default (3 attempts): what a store test
/// inserts directly, without the engine.
pub fn job_insert(queue: &str, payload: Box<RawValue>) -> JobInsert {
    JobInsert {
        queue: queue.to_owned(),
        payload,
        priority: 0,
        run_at: RunAt::Now,
        max_attempts: 3,
        backoff: Backoff::default(),
        timeout_ms: None,
        idempotency_key: None,
        ordering_key: None,
        tags: Vec::new(),
        metadata: Default::default(),
        traceparent: None,
    }
}

pub fn raw(v: Value) -> Box<RawValue> {
    RawValue::from_string(v.to_string()).unwrap()
}

pub fn req(payload: Value) -> EnqueueRequest {
    EnqueueRequest::new(raw(payload))
}

pub fn fetch_req(queues: &[&str], max_jobs: u32, wait_ms: u64) -> FetchRequest {
    FetchRequest {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        worker_id: WORKER.into(),
        max_jobs: Some(max_jobs),
        lease_ms: None,
        wait_ms: Some(wait_ms),
        brief: false,
    }
}

/// A plain completion of `job` under its own lease, for the store's batch finishes.
pub fn completion(job: &Job) -> JobFinish {
    JobFinish {
        id: job.id,
        lease_token: token(job),
        transition: Transition::Complete { result: None },
        require_lease_expired: false,
    }
}

pub fn token(job: &Job) -> String {
    job.lease_token
        .clone()
        .expect("a fetched job carries its lease token")
}

pub fn complete_req(job: &Job, result: Option<Value>) -> CompleteRequest {
    CompleteRequest {
        lease_token: token(job),
        result: result.map(raw),
    }
}

pub fn fail_req(job: &Job, message: &str) -> FailRequest {
    FailRequest {
        lease_token: token(job),
        error: ErrorInput::new(message),
        retry: None,
        retry_in_ms: None,
    }
}

/// The job as its JSON, to compare every field at once.
pub fn snapshot(job: &Job) -> Value {
    serde_json::to_value(job).unwrap()
}

/// `b - a` in milliseconds.
pub fn ms_between(a: Timestamp, b: Timestamp) -> i64 {
    b.as_millisecond() - a.as_millisecond()
}

/// Awaits `fut`, failing the check if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {PATIENCE:?} waiting for {what}"),
    }
}

/// Waits for the first service event that `pick` accepts.
pub async fn next_event(
    events: &mut broadcast::Receiver<ServiceEvent>,
    what: &str,
    mut pick: impl FnMut(ServiceEvent) -> bool,
) -> ServiceEvent {
    within(what, async {
        loop {
            match events.recv().await {
                Ok(e) if pick(e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("service events closed"),
            }
        }
    })
    .await
}

pub fn assert_lease_lost<T: std::fmt::Debug>(r: Result<T, EngineError>, what: &str) {
    match r {
        Err(EngineError::LeaseLost) => {}
        other => panic!("{what}: expected LeaseLost, got {other:?}"),
    }
}

pub fn assert_conflict<T: std::fmt::Debug>(r: Result<T, EngineError>, what: &str) {
    match r {
        Err(EngineError::Conflict(_)) => {}
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

pub fn assert_not_found<T: std::fmt::Debug>(r: Result<T, EngineError>, what: &str) {
    match r {
        Err(EngineError::NotFound(_)) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}
