//! Rule 6, ordering keys: jobs of one queue with the same `ordering_key` run one at a time in
//! enqueue order; the next is not handed out until the previous is completed, dead or
//! cancelled. Different keys, other queues and keyless jobs are not held back.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use buzzer_engine::ServiceEvent;
use buzzer_types::{BackoffSpec, EnqueueRequest, Job, JobId, JobState};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::{
    StoreFactory, TestContext,
    support::{completion, fetch_req, next_event, req, within},
};

fn keyed(key: &str, payload: Value) -> EnqueueRequest {
    EnqueueRequest {
        ordering_key: Some(key.into()),
        ..req(payload)
    }
}

fn ids(jobs: &[Job]) -> HashSet<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

/// Fetches everything that may be handed out now and checks it is exactly `expected`.
async fn assert_fetches<F: StoreFactory>(
    ctx: &TestContext<F>,
    queues: &[&str],
    expected: &[&Job],
) -> Vec<Job> {
    let got = ctx.fetch(queues, 100).await;
    let want: HashSet<JobId> = expected.iter().map(|j| j.id).collect();
    assert_eq!(ids(&got), want, "fetchable now");
    got
}

pub async fn one_key_runs_one_at_a_time_in_enqueue_order_across_workers<F: StoreFactory>(
    factory: F,
) {
    const KEYED: usize = 12;
    const KEYLESS: usize = 12;
    let ctx = TestContext::new(factory).await;
    for n in 0..KEYED {
        // Later jobs of the key have higher priority: the key's order must still win.
        let req = EnqueueRequest {
            priority: Some((n as i32 * 10).min(100)),
            ..keyed("k", json!({"n": n, "keyed": true}))
        };
        ctx.enqueue("q", req).await;
        ctx.put("q", json!({"n": n, "keyed": false})).await;
    }

    let order = Arc::new(Mutex::new(Vec::new()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (done_tx, mut done_rx) = watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let engine = ctx.engine().clone();
            let (order, in_flight, overlaps, stop, done_tx) = (
                order.clone(),
                in_flight.clone(),
                overlaps.clone(),
                stop.clone(),
                done_tx.clone(),
            );
            tokio::spawn(async move {
                let mut fetch = fetch_req(&["q"], 4, 100);
                fetch.worker_id = format!("worker-{w}");
                while !stop.load(Ordering::Acquire) {
                    for job in engine.fetch(fetch.clone()).await.unwrap() {
                        let payload: Value = serde_json::from_str(job.payload.get()).unwrap();
                        if payload["keyed"] == json!(true) {
                            if in_flight.fetch_add(1, Ordering::AcqRel) != 0 {
                                overlaps.fetch_add(1, Ordering::AcqRel);
                            }
                            order.lock().unwrap().push(payload["n"].as_u64().unwrap());
                            // Give a wrongly handed-out successor time to start beside us.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            // Leave before completing: the successor may start once we commit.
                            in_flight.fetch_sub(1, Ordering::AcqRel);
                        }
                        let complete = crate::support::complete_req(&job, None);
                        engine.complete(job.id, complete).await.unwrap();
                        done_tx.send_modify(|n| *n += 1);
                    }
                }
            })
        })
        .collect();
    drop(done_tx);
    let waited = within("every job to complete", async {
        done_rx
            .wait_for(|n| *n >= KEYED + KEYLESS)
            .await
            .map(|_| ())
    })
    .await;
    stop.store(true, Ordering::Release);
    for w in workers {
        within("workers to stop", w).await.unwrap();
    }
    waited.unwrap();

    assert_eq!(
        overlaps.load(Ordering::Acquire),
        0,
        "two jobs of one key ran at once"
    );
    let order = order.lock().unwrap().clone();
    assert_eq!(
        order,
        (0..KEYED as u64).collect::<Vec<_>>(),
        "enqueue order"
    );
    assert_eq!(ctx.counts("q").await.completed, (KEYED + KEYLESS) as u64);
}

pub async fn later_higher_priority_job_does_not_jump_its_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let first = ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let urgent = EnqueueRequest {
        priority: Some(100),
        ..keyed("k", json!({"n": 2}))
    };
    let second = ctx.enqueue("q", urgent).await;
    let got = assert_fetches(&ctx, &["q"], &[&first]).await;
    ctx.complete(&got[0]).await;
    assert_fetches(&ctx, &["q"], &[&second]).await;
}

pub async fn next_job_waits_until_the_previous_completes<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut jobs = Vec::new();
    for n in 0..3 {
        jobs.push(ctx.enqueue("q", keyed("k", json!({"n": n}))).await);
    }
    for job in &jobs {
        let got = assert_fetches(&ctx, &["q"], &[job]).await;
        assert_fetches(&ctx, &["q"], &[]).await;
        ctx.complete(&got[0]).await;
    }
    assert_fetches(&ctx, &["q"], &[]).await;
}

/// Heads of two keys and a keyless job completed in one store call: each key hands over to
/// its next job, and nobody else's.
pub async fn batch_completion_releases_the_next_job_of_each_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let a1 = ctx.enqueue("q", keyed("a", json!({"n": 1}))).await;
    let a2 = ctx.enqueue("q", keyed("a", json!({"n": 2}))).await;
    let free = ctx.put("q", json!({"n": 3})).await;
    let b1 = ctx.enqueue("q", keyed("b", json!({"n": 4}))).await;
    let b2 = ctx.enqueue("q", keyed("b", json!({"n": 5}))).await;
    let b3 = ctx.enqueue("q", keyed("b", json!({"n": 6}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&a1, &free, &b1]).await;
    let finishes = got.iter().map(completion).collect();
    let results = ctx.store().job_finish_many(finishes).await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(j) if j.state == JobState::Completed)),
        "{results:?}"
    );
    let next = assert_fetches(&ctx, &["q"], &[&a2, &b2]).await;
    for job in &next {
        ctx.complete(job).await;
    }
    assert_fetches(&ctx, &["q"], &[&b3]).await;
}

pub async fn dead_head_releases_the_next_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    assert_eq!(ctx.fail_dead(&got[0]).await.state, JobState::Dead);
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn retrying_head_blocks_its_key_until_it_succeeds<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    let failed = ctx.fail(&got[0], Some(300)).await;
    assert_eq!(failed.state, JobState::Retryable);
    assert_fetches(&ctx, &["q"], &[]).await;

    let retried = ctx.fetch_wait("q").await;
    assert_eq!(
        (retried.id, retried.attempt),
        (head.id, 2),
        "the retrying head comes back before the next job"
    );
    assert_fetches(&ctx, &["q"], &[]).await;
    ctx.complete(&retried).await;
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn rescued_head_keeps_its_key_blocked<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut events = ctx.events();
    let head = EnqueueRequest {
        backoff: Some(BackoffSpec {
            initial_ms: Some(1),
            ..Default::default()
        }),
        ..keyed("k", json!({"n": 1}))
    };
    let head = ctx.enqueue("q", head).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    ctx.fetch_lease("q", 100).await;
    next_event(&mut events, "the rescue", |e| {
        matches!(e, ServiceEvent::Rescued(_))
    })
    .await;

    let again = ctx.fetch_wait("q").await;
    assert_eq!((again.id, again.attempt), (head.id, 2));
    ctx.complete(&again).await;
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn cancelling_the_head_releases_the_next_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    // A retryable head.
    let head = ctx.enqueue("q", keyed("b", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("b", json!({"n": 2}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    ctx.fail(&got[0], Some(3_600_000)).await;
    assert_fetches(&ctx, &["q"], &[]).await;
    ctx.engine().cancel(head.id).await.unwrap();
    let got = assert_fetches(&ctx, &["q"], &[&next]).await;
    ctx.complete(&got[0]).await;

    // An available head that never ran.
    let head = ctx.enqueue("q", keyed("a", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("a", json!({"n": 2}))).await;
    ctx.engine().cancel(head.id).await.unwrap();
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn cancelling_a_running_head_releases_the_next_job_when_it_finishes<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    let requested = ctx.engine().cancel(head.id).await.unwrap();
    assert_eq!(requested.state, JobState::Running);
    assert_fetches(&ctx, &["q"], &[]).await;
    assert_eq!(ctx.fail(&got[0], None).await.state, JobState::Cancelled);
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn scheduled_head_blocks_later_jobs_of_its_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let later = EnqueueRequest {
        delay_ms: Some(3_600_000),
        ..keyed("k", json!({"n": 1}))
    };
    let head = ctx.enqueue("q", later).await;
    assert_eq!(head.state, JobState::Scheduled);
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    assert_fetches(&ctx, &["q"], &[]).await;
    ctx.engine().cancel(head.id).await.unwrap();
    assert_fetches(&ctx, &["q"], &[&next]).await;
}

pub async fn different_keys_run_in_parallel<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let a1 = ctx.enqueue("q", keyed("a", json!({}))).await;
    ctx.enqueue("q", keyed("a", json!({}))).await;
    let b1 = ctx.enqueue("q", keyed("b", json!({}))).await;
    ctx.enqueue("q", keyed("b", json!({}))).await;
    assert_fetches(&ctx, &["q"], &[&a1, &b1]).await;
}

pub async fn ordering_keys_are_per_queue<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let in_a = ctx.enqueue("a", keyed("k", json!({}))).await;
    let in_b = ctx.enqueue("b", keyed("k", json!({}))).await;
    assert_fetches(&ctx, &["a", "b"], &[&in_a, &in_b]).await;
}

pub async fn keyless_jobs_are_not_held_back<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let k1 = ctx.enqueue("q", keyed("k", json!({}))).await;
    let n1 = ctx.put("q", json!({})).await;
    ctx.enqueue("q", keyed("k", json!({}))).await;
    let n2 = ctx.put("q", json!({})).await;
    let n3 = ctx.put("q", json!({})).await;
    assert_fetches(&ctx, &["q"], &[&k1, &n1, &n2, &n3]).await;
}

pub async fn waiting_fetch_wakes_when_the_head_finishes<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    let head = ctx.fetch_one("q").await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["q"], 1, 10_000)).await });
    // Let the fetch find nothing and start waiting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the next job must not be handed out yet"
    );

    let completed_at = tokio::time::Instant::now();
    ctx.complete(&head).await;
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![next.id]);
    let took = completed_at.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "woke {took:?} after the head completed"
    );
}

pub async fn released_head_keeps_its_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k", json!({"n": 1}))).await;
    let next = ctx.enqueue("q", keyed("k", json!({"n": 2}))).await;
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    ctx.engine()
        .release(head.id, crate::support::token(&got[0]))
        .await
        .unwrap();
    let got = assert_fetches(&ctx, &["q"], &[&head]).await;
    ctx.complete(&got[0]).await;
    assert_fetches(&ctx, &["q"], &[&next]).await;
}
