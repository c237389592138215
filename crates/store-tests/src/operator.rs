//! An operator's view and reach beyond the lifecycle rules: deleting a job, the ordering key's
//! head, "why isn't it running?" for each reason, and the W3C trace context a job carries.

use buzzer_types::{EnqueueRequest, JobId, JobState, WaitingKind};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{assert_conflict, assert_not_found, req},
};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn keyed(key: &str) -> EnqueueRequest {
    EnqueueRequest {
        ordering_key: Some(key.into()),
        ..req(json!({"key": key}))
    }
}

pub async fn delete_removes_a_job_in_any_state_but_running<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    for (state, job) in &jobs {
        let r = ctx.engine().delete(job.id).await;
        if *state == JobState::Running {
            assert_conflict(r, "delete of a running job");
            assert_eq!(ctx.get(job.id).await.state, JobState::Running, "unchanged");
        } else {
            let deleted = r.unwrap();
            assert_eq!((deleted.id, deleted.state), (job.id, *state), "as it was");
            assert_not_found(ctx.engine().get(job.id).await, "get after delete");
        }
    }
    let counts = ctx.counts("q").await;
    assert_eq!(counts.running, 1);
    assert_eq!(
        counts.available + counts.scheduled + counts.retryable + counts.completed,
        0
    );
    assert_eq!(counts.dead + counts.cancelled, 0);
    assert_not_found(ctx.engine().delete(JobId(987_654_321)).await, "unknown job");
}

pub async fn deleting_the_head_of_an_ordering_key_releases_the_next<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k")).await;
    let next = ctx.enqueue("q", keyed("k")).await;
    ctx.engine().delete(head.id).await.unwrap();
    let leased = ctx.fetch_one("q").await;
    assert_eq!(leased.id, next.id);
}

pub async fn deleting_a_waiting_job_of_a_key_keeps_the_head<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let head = ctx.enqueue("q", keyed("k")).await;
    let second = ctx.enqueue("q", keyed("k")).await;
    let third = ctx.enqueue("q", keyed("k")).await;
    ctx.engine().delete(second.id).await.unwrap();
    let store = ctx.store();
    assert_eq!(
        store.job_ordering_head("q", "k").await.unwrap(),
        Some(head.id)
    );
    let leased = ctx.fetch(&["q"], 10).await;
    assert_eq!(leased.len(), 1, "only the head runs");
    assert_eq!(leased[0].id, head.id);
    ctx.complete(&leased[0]).await;
    assert_eq!(ctx.fetch_one("q").await.id, third.id);
}

pub async fn ordering_head_is_the_job_holding_the_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let store = ctx.store();
    assert_eq!(store.job_ordering_head("q", "k").await.unwrap(), None);
    let first = ctx.enqueue("q", keyed("k")).await;
    let second = ctx.enqueue("q", keyed("k")).await;
    ctx.enqueue("other", keyed("k")).await;
    assert_eq!(
        store.job_ordering_head("q", "k").await.unwrap(),
        Some(first.id)
    );
    let leased = ctx.fetch_one("q").await;
    assert_eq!(
        store.job_ordering_head("q", "k").await.unwrap(),
        Some(first.id)
    );
    ctx.complete(&leased).await;
    assert_eq!(
        store.job_ordering_head("q", "k").await.unwrap(),
        Some(second.id)
    );
    let leased = ctx.fetch_one("q").await;
    ctx.complete(&leased).await;
    assert_eq!(store.job_ordering_head("q", "k").await.unwrap(), None);
}

pub async fn waiting_reason_names_each_cause<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let ctx = &ctx;
    let engine = ctx.engine();
    let kind = |id: JobId| async move {
        let job = ctx.get(id).await;
        engine.waiting_reason(&job).await.unwrap()
    };

    let free = ctx.put("q", json!({})).await;
    let r = kind(free.id).await.unwrap();
    assert_eq!(r.kind, WaitingKind::NoWorker, "{r:?}");
    assert!(r.message.contains("worker"), "{r:?}");

    let later = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(3_600_000),
                ..req(json!({}))
            },
        )
        .await;
    let r = kind(later.id).await.unwrap();
    assert_eq!(r.kind, WaitingKind::Scheduled);
    assert_eq!(r.until, Some(later.scheduled_at));

    let leased = ctx.fetch_one("q").await;
    assert_eq!(leased.id, free.id);
    let r = kind(free.id).await.unwrap();
    assert_eq!(r.kind, WaitingKind::Leased);
    assert_eq!(r.worker_id, leased.worker_id);
    assert_eq!(r.lease_expires_at, leased.lease_expires_at);
    assert!(
        r.message.contains(leased.worker_id.as_deref().unwrap()),
        "{r:?}"
    );

    let retrying = ctx.fail(&leased, Some(3_600_000)).await;
    let r = kind(retrying.id).await.unwrap();
    assert_eq!(
        r.kind,
        WaitingKind::Scheduled,
        "a backoff is a wait until a time"
    );
    assert_eq!(r.until, Some(retrying.scheduled_at));

    let head = ctx.enqueue("keys", keyed("k")).await;
    let behind = ctx.enqueue("keys", keyed("k")).await;
    assert_eq!(kind(head.id).await.unwrap().kind, WaitingKind::NoWorker);
    let r = kind(behind.id).await.unwrap();
    assert_eq!(r.kind, WaitingKind::OrderingKey);
    assert_eq!(r.ahead_job_id, Some(head.id));
    assert!(r.message.contains(&head.id.to_string()), "{r:?}");

    engine.set_paused("keys", true).await.unwrap();
    assert_eq!(kind(head.id).await.unwrap().kind, WaitingKind::QueuePaused);
    engine.set_paused("keys", false).await.unwrap();

    let done = ctx.put("done", json!({})).await;
    let leased = ctx.fetch_one("done").await;
    ctx.complete(&leased).await;
    assert_eq!(
        kind(done.id).await,
        None,
        "a finished job waits for nothing"
    );
}

pub async fn traceparent_is_stored_and_handed_to_the_worker<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                traceparent: Some(TRACEPARENT.into()),
                ..req(json!({}))
            },
        )
        .await;
    assert_eq!(job.traceparent.as_deref(), Some(TRACEPARENT));
    let plain = ctx.put("q", json!({})).await;
    assert_eq!(
        ctx.get(job.id).await.traceparent.as_deref(),
        Some(TRACEPARENT)
    );
    assert_eq!(ctx.get(plain.id).await.traceparent, None);
    let leased = ctx.fetch(&["q"], 2).await;
    let traced = leased.iter().find(|j| j.id == job.id).unwrap();
    assert_eq!(traced.traceparent.as_deref(), Some(TRACEPARENT));

    let bad = ctx
        .engine()
        .enqueue(
            "q",
            EnqueueRequest {
                traceparent: Some("00-not-a-trace-01".into()),
                ..req(json!({}))
            },
        )
        .await;
    match bad {
        Err(buzzer_engine::EngineError::Invalid(i)) => assert_eq!(i.field, "traceparent"),
        other => panic!("expected an invalid traceparent, got {other:?}"),
    }
}
