//! Waiters are woken by the change they wait for, not by polling: long-poll fetches, hybrid
//! waits for a terminal state, and watches of one job.

use std::time::Duration;

use buzzer_types::{EnqueueRequest, JobState};
use serde_json::json;
use tokio::time::Instant;

use crate::{
    StoreFactory, TestContext,
    support::{complete_req, fetch_req, ms_between, req, within},
};

/// Lets a spawned long-poll find nothing and start waiting.
const SETTLE: Duration = Duration::from_millis(100);

pub async fn long_poll_fetch_wakes_on_enqueue_from_another_task<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["q"], 1, 5_000)).await });
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished());

    let engine = ctx.engine().clone();
    let producer = tokio::spawn(async move { engine.enqueue("q", req(json!({}))).await });
    let job = within("the enqueue", producer).await.unwrap().unwrap().job;
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, job.id);
    let gap = ms_between(job.created_at, got[0].started_at.unwrap());
    assert!(
        (0..=100).contains(&gap),
        "leased {gap} ms after it was enqueued (want within 100 ms)"
    );
}

pub async fn long_poll_fetch_wakes_for_any_of_its_queues<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["a", "b"], 1, 5_000)).await });
    tokio::time::sleep(SETTLE).await;
    let job = ctx.put("b", json!({})).await;
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job.id]);
    let gap = ms_between(job.created_at, got[0].started_at.unwrap());
    assert!(
        (0..=100).contains(&gap),
        "leased {gap} ms after it was enqueued"
    );
}

pub async fn long_poll_fetch_returns_empty_when_the_wait_ends<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let started = Instant::now();
    let got = ctx.engine().fetch(fetch_req(&["q"], 1, 300)).await.unwrap();
    let took = started.elapsed();
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "a 300 ms wait took {took:?}"
    );
}

pub async fn long_poll_fetch_wakes_on_operator_retry<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let dead = ctx.fail_dead(&ctx.fetch_one("q").await).await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["q"], 1, 5_000)).await });
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished());

    let retried_at = Instant::now();
    ctx.engine().retry(dead.id).await.unwrap();
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![dead.id]);
    let took = retried_at.elapsed();
    assert!(
        took < Duration::from_millis(200),
        "woke {took:?} after the retry"
    );
}

pub async fn wait_terminal_returns_as_soon_as_the_job_completes<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.put("q", json!({})).await;
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move {
        let job = engine.wait_terminal(job.id, Duration::from_secs(10)).await;
        (job, Instant::now())
    });
    let leased = ctx.fetch_one("q").await;
    tokio::time::sleep(SETTLE).await;
    assert!(!waiter.is_finished(), "the job is still running");

    let completing = Instant::now();
    ctx.engine()
        .complete(leased.id, complete_req(&leased, Some(json!({"ok": true}))))
        .await
        .unwrap();
    let (got, returned) = within("wait_terminal", waiter).await.unwrap();
    let got = got.unwrap();
    assert_eq!(got.state, JobState::Completed);
    assert_eq!(got.result.unwrap().get(), r#"{"ok":true}"#);
    let took = returned - completing;
    assert!(
        took < Duration::from_millis(100),
        "returned {took:?} after the complete call began"
    );
}

pub async fn wait_terminal_gives_the_current_job_when_time_is_up<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.put("q", json!({})).await;
    let started = Instant::now();
    let got = ctx
        .engine()
        .wait_terminal(job.id, Duration::from_millis(200))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!((got.id, got.state), (job.id, JobState::Available));
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

pub async fn watch_sees_available_running_completed<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(200),
                ..req(json!({}))
            },
        )
        .await;
    assert_eq!(job.state, JobState::Scheduled);
    let mut watch = ctx.engine().watch(job.id);
    let mut seen = Vec::new();
    let mut next = async || {
        let snapshot = within("the next change", watch.changed()).await;
        let snapshot = snapshot.expect("the watcher fell behind");
        assert!(
            snapshot.lease_token.is_none(),
            "watchers never see the token"
        );
        snapshot.state
    };

    seen.push(next().await);
    let leased = ctx.fetch_one("q").await;
    seen.push(next().await);
    ctx.complete(&leased).await;
    seen.push(next().await);
    assert_eq!(
        seen,
        vec![JobState::Available, JobState::Running, JobState::Completed]
    );
}
