//! Rule 1, at-least-once: a job enqueued with a success answer is never lost. It ends in a
//! terminal state or is still pending, across concurrent producers and workers, a restart, and
//! a shutdown in the middle of a load; a batch is inserted all or nothing.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use buzzer_engine::{EngineError, JobList};
use buzzer_types::{EnqueueRequest, FailRequest, Job, JobId, JobState};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    StoreFactory, TestContext,
    support::{complete_req, fail_req, fetch_req, req, snapshot, within},
};

/// Every job of the store, newest first.
async fn all_jobs<F: StoreFactory>(ctx: &TestContext<F>) -> Vec<Job> {
    let jobs = ctx
        .engine()
        .list(JobList {
            limit: 1_000,
            ..JobList::default()
        })
        .await
        .unwrap()
        .jobs;
    assert!(jobs.len() < 1_000, "all_jobs reads one page only");
    jobs
}

fn payload_n(job: &Job) -> u64 {
    let v: Value = serde_json::from_str(job.payload.get()).unwrap();
    v["n"].as_u64().unwrap()
}

pub async fn concurrent_producers_and_workers_finish_every_acknowledged_job<F: StoreFactory>(
    factory: F,
) {
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 100;
    const WORKERS: usize = 4;
    const TOTAL: usize = (PRODUCERS * PER_PRODUCER) as usize;
    let ctx = TestContext::new(factory).await;
    let completions: Arc<Mutex<HashMap<JobId, u32>>> = Arc::default();
    let (done_tx, mut done_rx) = watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let stop = Arc::new(AtomicBool::new(false));

    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let (engine, completions, done_tx, stop) = (
            ctx.engine().clone(),
            completions.clone(),
            done_tx.clone(),
            stop.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut fetch = fetch_req(&["q"], 8, 100);
            fetch.worker_id = format!("worker-{w}");
            while !stop.load(Ordering::Acquire) {
                for job in engine.fetch(fetch.clone()).await.unwrap() {
                    // Every fifth job fails its first attempt, so some go through `retryable`.
                    if payload_n(&job).is_multiple_of(5) && job.attempt == 1 {
                        let fail = FailRequest {
                            retry_in_ms: Some(0),
                            ..fail_req(&job, "first attempt fails")
                        };
                        engine.fail(job.id, fail).await.unwrap();
                        continue;
                    }
                    engine
                        .complete(job.id, complete_req(&job, None))
                        .await
                        .unwrap();
                    let mut c = completions.lock().unwrap();
                    *c.entry(job.id).or_default() += 1;
                    done_tx.send_replace(c.values().sum::<u32>() as usize);
                }
            }
        }));
    }
    drop(done_tx);

    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let engine = ctx.engine().clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..PER_PRODUCER {
                    let n = p * PER_PRODUCER + i;
                    let ins = engine.enqueue("q", req(json!({"n": n}))).await.unwrap();
                    assert!(ins.created);
                    acked.push(ins.job.id);
                }
                acked
            })
        })
        .collect();
    let mut acknowledged = HashSet::new();
    for p in producers {
        acknowledged.extend(within("producers", p).await.unwrap());
    }
    assert_eq!(acknowledged.len(), TOTAL, "every enqueue got its own id");

    let waited = within("workers to complete every job", async {
        done_rx.wait_for(|n| *n >= TOTAL).await.map(|_| ())
    })
    .await;
    stop.store(true, Ordering::Release);
    for w in workers {
        within("workers to stop", w).await.unwrap();
    }
    waited.unwrap();

    let completions = completions.lock().unwrap().clone();
    let completed: HashSet<JobId> = completions.keys().copied().collect();
    assert_eq!(
        completed, acknowledged,
        "completed jobs == acknowledged jobs"
    );
    let twice: Vec<_> = completions.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs completed more than once: {twice:?}");

    let counts = ctx.counts("q").await;
    assert_eq!(counts.completed, TOTAL as u64, "{counts:?}");
    for state in JobState::ALL
        .into_iter()
        .filter(|s| *s != JobState::Completed)
    {
        assert_eq!(counts.get(state), 0, "{state} in {counts:?}");
    }
    for job in all_jobs(&ctx).await {
        let expected_attempts = if payload_n(&job).is_multiple_of(5) {
            2
        } else {
            1
        };
        assert_eq!(job.attempt, expected_attempts, "job {}", job.id);
        assert_eq!(
            job.errors.len() as i32,
            expected_attempts - 1,
            "job {}",
            job.id
        );
    }
}

pub async fn every_job_survives_close_and_reopen_unchanged<F: StoreFactory>(factory: F) {
    let mut ctx = TestContext::new(factory).await;
    let states = ctx.one_job_in_each_state("q").await;
    let batch = ctx
        .engine()
        .enqueue_many(
            "batch",
            (0..50)
                .map(|i| EnqueueRequest {
                    idempotency_key: Some(format!("key-{i}")),
                    tags: Some(vec!["t".into()]),
                    ..req(json!({"i": i, "text": "ünïcode ✓"}))
                })
                .collect(),
        )
        .await
        .unwrap();
    let before: Vec<Value> = all_jobs(&ctx).await.iter().map(snapshot).collect();
    let counts_before = (ctx.counts("q").await, ctx.counts("batch").await);
    assert_eq!(before.len(), 57);

    ctx.reopen().await;

    let after: Vec<Value> = all_jobs(&ctx).await.iter().map(snapshot).collect();
    assert_eq!(
        after, before,
        "every job reads back the same after a reopen"
    );
    assert_eq!(
        (ctx.counts("q").await, ctx.counts("batch").await),
        counts_before
    );

    // The lease survives the restart: the worker still holding it can finish its attempt.
    let done = ctx.complete(&states[&JobState::Running]).await;
    assert_eq!(done.state, JobState::Completed);
    // So do idempotency keys.
    let again = ctx
        .engine()
        .enqueue(
            "batch",
            EnqueueRequest {
                idempotency_key: Some("key-7".into()),
                ..req(json!({}))
            },
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.job.id, batch[7].job.id);
}

pub async fn close_during_load_keeps_every_acknowledged_job<F: StoreFactory>(factory: F) {
    const PRODUCERS: usize = 4;
    let mut ctx = TestContext::new(factory).await;
    let (acked_tx, mut acked_rx) = watch::channel(0usize);
    let acked_tx = Arc::new(acked_tx);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (engine, acked_tx) = (ctx.engine().clone(), acked_tx.clone());
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0.. {
                    match engine.enqueue("q", req(json!({"p": p, "i": i}))).await {
                        Ok(ins) => {
                            acked.push(ins.job);
                            acked_tx.send_modify(|n| *n += 1);
                        }
                        Err(EngineError::Unavailable(_)) => break,
                        Err(e) => panic!("an enqueue after close must answer Unavailable: {e:?}"),
                    }
                }
                acked
            })
        })
        .collect();

    within(
        "200 acknowledged enqueues",
        acked_rx.wait_for(|n| *n >= 200),
    )
    .await
    .unwrap();
    ctx.store().close().await.unwrap();
    let mut acknowledged = Vec::new();
    for p in producers {
        acknowledged.extend(within("producers to see the close", p).await.unwrap());
    }
    drop(acked_tx);

    ctx.reopen().await;
    for job in &acknowledged {
        let got = ctx.store().job_get(job.id).await.unwrap();
        let got = got.unwrap_or_else(|| panic!("acknowledged job {} was lost", job.id));
        assert_eq!(got.payload.get(), job.payload.get());
        assert_eq!(got.state, JobState::Available);
    }
    // An enqueue in flight at the close may have been committed without its answer arriving.
    let stored = ctx.counts("q").await.available as usize;
    assert!(
        (acknowledged.len()..=acknowledged.len() + PRODUCERS).contains(&stored),
        "{stored} stored, {} acknowledged",
        acknowledged.len()
    );
}

pub async fn batch_with_an_invalid_job_inserts_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut reqs: Vec<_> = (0..4).map(|i| req(json!({"i": i}))).collect();
    reqs[2].priority = Some(1_000);
    match ctx.engine().enqueue_many("q", reqs).await {
        Err(EngineError::Invalid(inv)) => assert_eq!(inv.field, "jobs[2].priority"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(all_jobs(&ctx).await.is_empty());
    assert!(ctx.store().queue_get("q").await.unwrap().is_none());
}

/// A concurrent reader sees none of a batch or all of it, never a part.
pub async fn batch_insert_becomes_visible_all_at_once<F: StoreFactory>(factory: F) {
    const N: u64 = 2_000;
    let ctx = TestContext::with(factory, crate::test_config(), false).await;
    let store = ctx.store().clone();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut started = Some(started_tx);
        loop {
            let n = store
                .queue_get("q")
                .await
                .unwrap()
                .map_or(0, |q| q.counts.available);
            seen.push(n);
            if let Some(tx) = started.take() {
                let _ = tx.send(());
            }
            if n == N {
                return seen;
            }
            tokio::task::yield_now().await;
        }
    });
    started_rx.await.unwrap();
    let inserted = ctx
        .engine()
        .enqueue_many("q", (0..N).map(|i| req(json!({"i": i}))).collect())
        .await
        .unwrap();
    assert_eq!(inserted.len() as u64, N);
    let seen = within("the reader to see the batch", reader).await.unwrap();
    let partial: Vec<_> = seen.iter().filter(|n| **n != 0 && **n != N).collect();
    assert!(
        partial.is_empty(),
        "a reader saw part of a batch: {partial:?}"
    );
}

pub async fn batch_insert_returns_jobs_in_request_order<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let inserted = ctx
        .engine()
        .enqueue_many("q", (0..20).map(|i| req(json!({"n": i}))).collect())
        .await
        .unwrap();
    assert_eq!(inserted.len(), 20);
    for (i, ins) in inserted.iter().enumerate() {
        assert!(ins.created);
        assert_eq!(payload_n(&ins.job), i as u64);
        assert_eq!(ins.job.state, JobState::Available);
        assert_eq!(ins.job.queue, "q");
    }
    assert!(
        inserted.windows(2).all(|w| w[0].job.id < w[1].job.id),
        "ids grow in request order"
    );
    assert_eq!(ctx.counts("q").await.available, 20);
}
