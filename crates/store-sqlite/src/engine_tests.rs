//! The engine's hand-off above a store whose syncs the test holds shut: a hybrid call's job
//! reaches the waiting worker at its commit, but no caller hears of a write before it is on
//! disk, and a plain enqueue's job reaches the worker only then.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Condvar, Mutex},
    time::Duration,
};

use buzzer_engine::{Engine, EngineError};
use buzzer_store::Inserted;
use buzzer_store_tests::test_config;
use buzzer_types::{EnqueueRequest, FetchRequest, Job, JobState, RawValue};
use tokio::task::JoinHandle;

use crate::{SqliteStore, writer::SyncFn};

/// Long enough for anything that is not held to happen.
const SETTLE: Duration = Duration::from_millis(300);
const PATIENCE: Duration = Duration::from_secs(10);

/// Every sync waits while the gate is shut.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn shut(&self) {
        *self.0.0.lock().unwrap() = true;
    }

    fn open(&self) {
        *self.0.0.lock().unwrap() = false;
        self.0.1.notify_all();
    }

    fn sync(&self) -> SyncFn {
        let gate = self.clone();
        Box::new(move || {
            let (shut, turn) = &*gate.0;
            let mut held = shut.lock().unwrap();
            while *held {
                held = turn.wait(held).unwrap();
            }
            Ok(())
        })
    }
}

struct Setup {
    engine: Engine,
    gate: Gate,
    _dir: tempfile::TempDir,
}

/// A failed check must not leave the writer stuck in a sync while the store shuts down.
impl Drop for Setup {
    fn drop(&mut self) {
        self.gate.open();
    }
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let gate = Gate::default();
    let store = SqliteStore::open_with_sync(&dir.path().join("gated.db"), gate.sync()).unwrap();
    Setup {
        engine: Engine::new(Arc::new(store), test_config()),
        gate,
        _dir: dir,
    }
}

/// A worker's long-poll on `q`, parked before this returns.
async fn parked_fetch(engine: &Engine) -> JoinHandle<Result<Vec<Job>, EngineError>> {
    let fetch = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .fetch(FetchRequest {
                    queues: vec!["q".into()],
                    worker_id: "gated".into(),
                    max_jobs: Some(1),
                    lease_ms: None,
                    wait_ms: Some(PATIENCE.as_millis() as u64),
                    brief: false,
                })
                .await
        }
    });
    tokio::time::timeout(PATIENCE, async {
        while engine.waiting_fetchers("q") != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the fetch never parked");
    fetch
}

fn request() -> EnqueueRequest {
    EnqueueRequest::new(RawValue::from_string("{}".into()).unwrap())
}

async fn answer<T>(task: JoinHandle<Result<T, EngineError>>, what: &str) -> T {
    tokio::time::timeout(PATIENCE, task)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer once the disk caught up"))
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hybrid_call_hands_its_job_over_at_the_commit_but_answers_once_durable() {
    let setup = setup().await;
    let (engine, gate) = (&setup.engine, &setup.gate);
    let fetch = parked_fetch(engine).await;
    gate.shut();
    let call: JoinHandle<Result<Inserted, EngineError>> = tokio::spawn({
        let engine = engine.clone();
        async move {
            engine
                .enqueue_wait("q", request(), Duration::from_millis(50))
                .await
        }
    });
    let handed = tokio::time::timeout(PATIENCE, fetch)
        .await
        .expect("the job should reach the worker at the commit, before the sync")
        .unwrap()
        .unwrap();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].state, JobState::Running);
    // Far past the call's own wait: its answer (a 202 over HTTP) still waits for the disk.
    tokio::time::sleep(SETTLE).await;
    assert!(
        !call.is_finished(),
        "the hybrid call answered before its enqueue was durable"
    );
    gate.open();
    let answered = answer(call, "the hybrid call").await;
    assert_eq!(answered.job.id, handed[0].id);
    assert!(answered.created);
    assert_eq!(answered.job.state, JobState::Running, "not done: a 202");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_enqueue_reaches_the_worker_only_once_durable() {
    let setup = setup().await;
    let (engine, gate) = (&setup.engine, &setup.gate);
    let fetch = parked_fetch(engine).await;
    gate.shut();
    let enqueue = tokio::spawn({
        let engine = engine.clone();
        async move { engine.enqueue("q", request()).await }
    });
    tokio::time::sleep(SETTLE).await;
    assert!(!enqueue.is_finished(), "answered before durable");
    assert!(
        !fetch.is_finished(),
        "the worker got a job whose enqueue was not yet durable"
    );
    gate.open();
    let inserted = answer(enqueue, "the enqueue").await;
    let handed = answer(fetch, "the fetch").await;
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].id, inserted.job.id);
}
