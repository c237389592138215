//! Rule 4, priorities: higher `priority` first (range −100..100, default 0), then enqueue
//! order, also across the queues of one fetch.

use std::collections::HashSet;

use buzzer_engine::EngineError;
use buzzer_types::{EnqueueRequest, Job, JobId};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{assert_not_found, req},
};

fn with_priority(priority: i32) -> EnqueueRequest {
    EnqueueRequest {
        priority: Some(priority),
        ..req(json!({"priority": priority}))
    }
}

/// Fetches one job at a time from `queues` until none is left.
async fn drain_one_by_one<F: StoreFactory>(ctx: &TestContext<F>, queues: &[&str]) -> Vec<JobId> {
    let mut order = Vec::new();
    loop {
        let jobs = ctx.fetch(queues, 1).await;
        match jobs.as_slice() {
            [] => return order,
            [job] => order.push(job.id),
            more => panic!("asked for one job, got {}", more.len()),
        }
    }
}

async fn enqueue_all<F: StoreFactory>(
    ctx: &TestContext<F>,
    jobs: impl IntoIterator<Item = (&'static str, i32)>,
) -> Vec<Job> {
    let mut out = Vec::new();
    for (queue, priority) in jobs {
        out.push(ctx.enqueue(queue, with_priority(priority)).await);
    }
    out
}

pub async fn higher_priority_is_fetched_first<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let priorities = [0, 5, -3, 100, -100, 5, 0];
    let jobs = enqueue_all(&ctx, priorities.map(|p| ("q", p))).await;
    let expected: Vec<JobId> = [3, 1, 5, 0, 6, 2, 4].iter().map(|&i| jobs[i].id).collect();
    assert_eq!(drain_one_by_one(&ctx, &["q"]).await, expected);
}

pub async fn fifo_within_a_priority<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let jobs = enqueue_all(&ctx, (0..30).map(|_| ("q", 7))).await;
    let expected: Vec<JobId> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(drain_one_by_one(&ctx, &["q"]).await, expected);
}

pub async fn one_fetch_takes_the_best_jobs<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let priorities = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3];
    let jobs = enqueue_all(&ctx, priorities.map(|p| ("q", p))).await;
    let fetched: HashSet<JobId> = ctx.fetch(&["q"], 4).await.iter().map(|j| j.id).collect();
    let best: HashSet<JobId> = [5, 7, 4, 8].iter().map(|&i| jobs[i].id).collect();
    assert_eq!(fetched, best, "priorities 9, 6, 5, 5 (the older 5 first)");
}

pub async fn priority_out_of_range_is_invalid_naming_priority<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for p in [101, -101, i32::MAX, i32::MIN] {
        match ctx.engine().enqueue("q", with_priority(p)).await {
            Err(EngineError::Invalid(inv)) => assert_eq!(inv.field, "priority"),
            other => panic!("priority {p}: expected Invalid, got {other:?}"),
        }
    }
    let batch = vec![with_priority(0), with_priority(200)];
    match ctx.engine().enqueue_many("q", batch).await {
        Err(EngineError::Invalid(inv)) => assert_eq!(inv.field, "jobs[1].priority"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_not_found(ctx.engine().queue("q").await, "nothing was enqueued");

    let edges = enqueue_all(&ctx, [("q", -100), ("q", 100)]).await;
    assert_eq!((edges[0].priority, edges[1].priority), (-100, 100));
    assert_eq!(ctx.get(edges[0].id).await.priority, -100);
}

pub async fn priority_and_fifo_apply_across_queues_in_one_fetch<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let jobs = enqueue_all(&ctx, [("a", 0), ("b", 0), ("a", 10), ("b", 50), ("a", 0)]).await;
    let expected: Vec<JobId> = [3, 2, 0, 1, 4].iter().map(|&i| jobs[i].id).collect();
    assert_eq!(drain_one_by_one(&ctx, &["a", "b"]).await, expected);
}
