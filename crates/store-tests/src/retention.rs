//! Rule 8, retention: completed and cancelled jobs are pruned after `finished_retention`, dead
//! jobs after `dead_retention`, nothing else ever; pruning deletes in small batches.

use std::time::Duration;

use buzzer_engine::{EngineConfig, ServiceEvent};
use buzzer_store::JobPrune;
use buzzer_types::{Ack, Job, JobState};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{next_event, req, snapshot, token},
    test_config,
};

/// Long enough for a retention of a few ms to pass, measured on the store's clock.
const AGE: Duration = Duration::from_millis(30);
const HOUR_MS: u64 = 3_600_000;

fn prune(finished_retention_ms: u64, dead_retention_ms: u64, limit: u32) -> JobPrune {
    JobPrune {
        finished_retention_ms,
        dead_retention_ms,
        limit,
    }
}

/// No services: these checks decide when pruning happens.
async fn quiet<F: StoreFactory>(factory: F, config: EngineConfig) -> TestContext<F> {
    TestContext::with(factory, config, false).await
}

async fn exists<F: StoreFactory>(ctx: &TestContext<F>, job: &Job) -> bool {
    ctx.store().job_get(job.id).await.unwrap().is_some()
}

/// `n` completed jobs in `queue`, finished in one batch of acks.
async fn completed_jobs<F: StoreFactory>(ctx: &TestContext<F>, queue: &str, n: usize) {
    let reqs = (0..n).map(|i| req(json!({"i": i}))).collect();
    ctx.engine().enqueue_many(queue, reqs).await.unwrap();
    let jobs = ctx.fetch(&[queue], n as u32).await;
    assert_eq!(jobs.len(), n);
    let acks = jobs
        .iter()
        .map(|job| Ack {
            id: job.id,
            lease_token: token(job),
            result: None,
            error: None,
            retry: None,
            retry_in_ms: None,
        })
        .collect();
    for done in ctx.engine().ack_many(acks).await.unwrap() {
        assert_eq!(done.unwrap().state, JobState::Completed);
    }
}

pub async fn completed_and_cancelled_are_pruned_after_finished_retention<F: StoreFactory>(
    factory: F,
) {
    let ctx = quiet(factory, test_config()).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    let [completed, cancelled, dead] =
        [JobState::Completed, JobState::Cancelled, JobState::Dead].map(|s| &jobs[&s]);

    let n = ctx
        .store()
        .job_prune(prune(60_000, 60_000, 100))
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing has been finished for a minute yet");
    assert!(exists(&ctx, completed).await && exists(&ctx, cancelled).await);

    tokio::time::sleep(AGE).await;
    let n = ctx.store().job_prune(prune(5, HOUR_MS, 100)).await.unwrap();
    assert_eq!(n, 2);
    assert!(!exists(&ctx, completed).await, "completed job pruned");
    assert!(!exists(&ctx, cancelled).await, "cancelled job pruned");
    assert!(
        exists(&ctx, dead).await,
        "dead jobs keep their own, longer retention"
    );
    let counts = ctx.counts("q").await;
    assert_eq!((counts.completed, counts.cancelled, counts.dead), (0, 0, 1));
}

pub async fn dead_jobs_are_pruned_after_dead_retention<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory, test_config()).await;
    ctx.put("q", json!({})).await;
    let completed = ctx.complete(&ctx.fetch_one("q").await).await;
    ctx.put("q", json!({})).await;
    let dead = ctx.fail_dead(&ctx.fetch_one("q").await).await;
    tokio::time::sleep(AGE).await;

    let n = ctx.store().job_prune(prune(HOUR_MS, 5, 100)).await.unwrap();
    assert_eq!(n, 1);
    assert!(!exists(&ctx, &dead).await, "dead job pruned");
    assert!(
        exists(&ctx, &completed).await,
        "completed job is within its retention"
    );
}

pub async fn non_terminal_jobs_are_never_pruned<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory, test_config()).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    let mut before = Vec::new();
    for state in JobState::ALL.into_iter().filter(|s| !s.is_terminal()) {
        before.push(snapshot(&ctx.get(jobs[&state].id).await));
    }
    tokio::time::sleep(AGE).await;

    let n = ctx.store().job_prune(prune(0, 0, 1_000)).await.unwrap();
    assert_eq!(n, 3, "the three terminal jobs");
    let mut after = Vec::new();
    for state in JobState::ALL.into_iter().filter(|s| !s.is_terminal()) {
        after.push(snapshot(&ctx.get(jobs[&state].id).await));
    }
    assert_eq!(
        after, before,
        "scheduled, available, running and retryable are untouched"
    );
}

pub async fn prune_deletes_at_most_its_limit_per_call<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory, test_config()).await;
    completed_jobs(&ctx, "q", 25).await;
    tokio::time::sleep(AGE).await;
    let mut deleted = Vec::new();
    for _ in 0..4 {
        deleted.push(ctx.store().job_prune(prune(5, 5, 10)).await.unwrap());
    }
    assert_eq!(deleted, vec![10, 10, 5, 0]);
    assert_eq!(ctx.counts("q").await.completed, 0);
}

pub async fn engine_prunes_everything_due_in_batches<F: StoreFactory>(factory: F) {
    let config = EngineConfig {
        finished_retention: Duration::from_millis(5),
        prune_batch: 10,
        ..test_config()
    };
    let ctx = quiet(factory, config).await;
    let mut events = ctx.events();
    completed_jobs(&ctx, "q", 100).await;
    tokio::time::sleep(AGE).await;
    assert_eq!(ctx.engine().prune_now().await.unwrap(), 100);
    let event = next_event(&mut events, "a Pruned event", |e| {
        matches!(e, ServiceEvent::Pruned(_))
    })
    .await;
    assert_eq!(event, ServiceEvent::Pruned(100));
    assert_eq!(ctx.counts("q").await.completed, 0);
}

pub async fn pruner_service_prunes_on_its_interval<F: StoreFactory>(factory: F) {
    let config = EngineConfig {
        finished_retention: Duration::from_millis(5),
        prune_interval: Duration::from_millis(100),
        ..test_config()
    };
    let ctx = TestContext::with(factory, config, true).await;
    let mut events = ctx.events();
    completed_jobs(&ctx, "q", 3).await;
    let mut pruned = 0;
    while pruned < 3 {
        match next_event(&mut events, "the pruner", |e| {
            matches!(e, ServiceEvent::Pruned(_))
        })
        .await
        {
            ServiceEvent::Pruned(n) => pruned += n,
            _ => unreachable!(),
        }
    }
    assert_eq!(pruned, 3);
    assert_eq!(ctx.counts("q").await.completed, 0);
}

/// An id is never handed out twice, even after the newest job was pruned: a client holding
/// an old id must never see a different job under it.
pub async fn pruned_ids_are_never_reused<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory, test_config()).await;
    let old = ctx.put("q", json!({})).await;
    ctx.complete(&ctx.fetch_one("q").await).await;
    tokio::time::sleep(AGE).await;
    assert_eq!(ctx.store().job_prune(prune(5, 5, 10)).await.unwrap(), 1);
    let new = ctx.put("q", json!({})).await;
    assert!(new.id > old.id, "new id {} after pruned {}", new.id, old.id);
}
