//! Rule 5, idempotency keys: an enqueue with a key returns the existing job while a job with
//! that key exists in the queue and has not been pruned.

use std::time::Duration;

use buzzer_engine::EngineConfig;
use buzzer_types::{EnqueueRequest, JobState};
use serde_json::{Value, json};

use crate::{
    StoreFactory, TestContext,
    support::{assert_not_found, req, within},
    test_config,
};

fn keyed(key: &str, payload: Value) -> EnqueueRequest {
    EnqueueRequest {
        idempotency_key: Some(key.into()),
        ..req(payload)
    }
}

pub async fn same_key_same_queue_returns_the_existing_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let first = ctx.enqueue("q", keyed("k", json!({"v": 1}))).await;
    let again = ctx
        .engine()
        .enqueue("q", keyed("k", json!({"v": 2})))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.job.id, first.id);
    assert_eq!(again.job.payload.get(), r#"{"v":1}"#, "the original job");
    assert_eq!(ctx.counts("q").await.available, 1);

    // The answer shows the job as it is now, without the running attempt's token.
    let leased = ctx.fetch_one("q").await;
    let again = ctx
        .engine()
        .enqueue("q", keyed("k", json!({"v": 3})))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        (again.job.id, again.job.state),
        (leased.id, JobState::Running)
    );
    assert!(again.job.lease_token.is_none());
}

pub async fn same_key_in_another_queue_is_another_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let a = ctx.enqueue("a", keyed("k", json!({}))).await;
    let b = ctx.enqueue("b", keyed("k", json!({}))).await;
    assert_ne!(a.id, b.id);
    assert_eq!((a.queue.as_str(), b.queue.as_str()), ("a", "b"));
}

pub async fn duplicate_key_inside_one_batch_inserts_once<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let batch = vec![
        keyed("k", json!({"v": 0})),
        keyed("x", json!({"v": 1})),
        keyed("k", json!({"v": 2})),
        req(json!({"v": 3})),
    ];
    let got = ctx.engine().enqueue_many("q", batch).await.unwrap();
    let created: Vec<bool> = got.iter().map(|i| i.created).collect();
    assert_eq!(created, vec![true, true, false, true]);
    assert_eq!(got[2].job.id, got[0].job.id);
    assert_eq!(got[2].job.payload.get(), r#"{"v":0}"#);
    assert_ne!(got[1].job.id, got[0].job.id);
    assert_eq!(ctx.counts("q").await.available, 3);
}

pub async fn key_is_held_by_a_finished_job_until_it_is_pruned<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let completed = ctx.enqueue("q", keyed("completed", json!({}))).await;
    ctx.complete(&ctx.fetch_one("q").await).await;
    let dead = ctx.enqueue("q", keyed("dead", json!({}))).await;
    ctx.fail_dead(&ctx.fetch_one("q").await).await;
    let cancelled = ctx.enqueue("q", keyed("cancelled", json!({}))).await;
    ctx.engine().cancel(cancelled.id).await.unwrap();

    for (key, job, state) in [
        ("completed", &completed, JobState::Completed),
        ("dead", &dead, JobState::Dead),
        ("cancelled", &cancelled, JobState::Cancelled),
    ] {
        let again = ctx
            .engine()
            .enqueue("q", keyed(key, json!({})))
            .await
            .unwrap();
        assert!(!again.created, "{key}");
        assert_eq!((again.job.id, again.job.state), (job.id, state));
    }
}

pub async fn key_is_free_again_after_the_job_is_pruned<F: StoreFactory>(factory: F) {
    let config = EngineConfig {
        finished_retention: Duration::from_millis(1),
        ..test_config()
    };
    let ctx = TestContext::with(factory, config, false).await;
    let old = ctx.enqueue("q", keyed("k", json!({"v": 1}))).await;
    ctx.complete(&ctx.fetch_one("q").await).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(ctx.engine().prune_now().await.unwrap(), 1);
    assert_not_found(ctx.engine().get(old.id).await, "the pruned job");

    let new = ctx.enqueue("q", keyed("k", json!({"v": 2}))).await;
    assert_ne!(new.id, old.id);
    assert_eq!(new.payload.get(), r#"{"v":2}"#);
}

pub async fn concurrent_enqueues_with_one_key_create_one_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let engine = ctx.engine().clone();
            tokio::spawn(async move { engine.enqueue("q", keyed("k", json!({"i": i}))).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(within("concurrent enqueues", t).await.unwrap().unwrap());
    }
    let created = answers.iter().filter(|i| i.created).count();
    assert_eq!(created, 1, "exactly one enqueue creates the job");
    assert!(answers.iter().all(|i| i.job.id == answers[0].job.id));
    assert_eq!(ctx.counts("q").await.available, 1);
}
