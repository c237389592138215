//! Hand-off at enqueue: a job enqueued while a fetcher waits is leased to it in the insert's
//! own transaction ([`Store::job_insert_and_fetch`]), under the same rules as any fetch
//! (priorities and FIFO, paused queues, ordering keys, idempotency keys).

use std::time::Duration;

use buzzer_engine::EngineError;
use buzzer_store::{JobFetch, JobInsert, Urgency};
use buzzer_types::{EnqueueRequest, Job, JobState};
use futures::FutureExt;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::{
    StoreFactory, TestContext, job_insert,
    support::{PATIENCE, complete_req, fetch_req, raw, req, snapshot, within},
};

fn insert(queue: &str, priority: i32) -> JobInsert {
    JobInsert {
        priority,
        ..job_insert(queue, raw(json!({"priority": priority})))
    }
}

fn fetch(queue: &str, max_jobs: u32) -> JobFetch {
    JobFetch {
        queues: vec![queue.to_owned()],
        worker_id: "parked".into(),
        max_jobs,
        lease_ms: 30_000,
    }
}

pub async fn insert_and_fetch_leases_the_new_job_of_an_empty_queue<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let done = ctx
        .store()
        .job_insert_and_fetch(insert("q", 0), fetch("q", 10))
        .await
        .unwrap();
    assert!(done.inserted.created);
    let [leased] = done.fetched.as_slice() else {
        panic!("expected the new job leased, got {:?}", done.fetched);
    };
    assert_eq!(leased.id, done.inserted.job.id);
    assert_eq!(leased.state, JobState::Running);
    assert_eq!(leased.attempt, 1);
    assert!(leased.lease_token.is_some());
    assert_eq!(leased.worker_id.as_deref(), Some("parked"));
    // It is as leased as any fetched job: the token completes it.
    ctx.complete(leased).await;
    assert_eq!(ctx.get(leased.id).await.state, JobState::Completed);
}

/// The leased job handed over is the job as stored, to the last field: a store may answer it
/// from what its insert and lease wrote instead of reading it back.
pub async fn insert_and_fetch_answers_the_job_as_stored<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut metadata = serde_json::Map::new();
    metadata.insert("tenant".into(), json!("acme"));
    let job = JobInsert {
        priority: 3,
        max_attempts: 7,
        timeout_ms: Some(2_500),
        tags: vec!["a".into(), "b".into()],
        metadata,
        traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
        ..insert("q", 3)
    };
    let done = ctx
        .store()
        .job_insert_and_fetch(job, fetch("q", 10))
        .await
        .unwrap();
    let [leased] = done.fetched.as_slice() else {
        panic!("expected the new job leased, got {:?}", done.fetched);
    };
    // A read never shows the token; completing with it below shows it is the lease's.
    let shown = Job {
        lease_token: None,
        ..leased.clone()
    };
    assert_eq!(snapshot(&shown), snapshot(&ctx.get(leased.id).await));
    ctx.complete(leased).await;
    assert_eq!(ctx.get(leased.id).await.state, JobState::Completed);
}

/// The early form answers like the plain one, and once its `Durable` resolves the insert and
/// the lease are there for good (a reopen still sees both).
pub async fn insert_and_fetch_early_answers_like_insert_and_fetch<F: StoreFactory>(factory: F) {
    let mut ctx = TestContext::new(factory).await;
    for urgency in [Urgency::Now, Urgency::WithNext] {
        let (done, mut durable) = ctx
            .store()
            .job_insert_and_fetch_early(insert("q", 0), fetch("q", 10), urgency)
            .await
            .unwrap();
        assert!(done.inserted.created);
        assert_eq!(done.inserted.job.state, JobState::Available);
        let [leased] = done.fetched.as_slice() else {
            panic!("expected the new job leased, got {:?}", done.fetched);
        };
        assert_eq!(leased.id, done.inserted.job.id);
        assert_eq!(leased.state, JobState::Running);
        assert!(leased.lease_token.is_some());
        durable.wait().await.unwrap();
        let leased = leased.clone();
        ctx.reopen().await;
        let stored = ctx.get(leased.id).await;
        assert_eq!(stored.state, JobState::Running, "{urgency:?}");
        assert_eq!(stored.attempt, 1);
        ctx.complete(&leased).await;
        assert_eq!(ctx.get(leased.id).await.state, JobState::Completed);
    }
}

pub async fn insert_and_fetch_keeps_priority_and_fifo<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let store = ctx.store();
    let older = store.job_insert_many(vec![insert("q", 0)]).await.unwrap();
    // An equal priority queues behind the older job: the fetch takes the older one.
    let done = store
        .job_insert_and_fetch(insert("q", 0), fetch("q", 1))
        .await
        .unwrap();
    let ids: Vec<_> = done.fetched.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![older[0].job.id]);
    let behind = done.inserted.job.id;
    assert_eq!(ctx.get(behind).await.state, JobState::Available);
    // A higher priority goes first; room for two takes both, best first.
    let done = store
        .job_insert_and_fetch(insert("q", 5), fetch("q", 2))
        .await
        .unwrap();
    let ids: Vec<_> = done.fetched.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![done.inserted.job.id, behind]);
}

pub async fn insert_and_fetch_leases_nothing_from_a_paused_queue_or_a_blocked_key<
    F: StoreFactory,
>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let first = ctx.put("q", json!({"first": true})).await;
    ctx.engine().set_paused("q", true).await.unwrap();
    let done = ctx
        .store()
        .job_insert_and_fetch(insert("q", 0), fetch("q", 10))
        .await
        .unwrap();
    assert!(done.fetched.is_empty(), "a paused queue hands nothing out");
    assert_eq!(
        ctx.get(done.inserted.job.id).await.state,
        JobState::Available
    );

    ctx.engine().set_paused("q", false).await.unwrap();
    let keyed = |n: i32| JobInsert {
        ordering_key: Some("k".into()),
        ..insert("keyed", n)
    };
    let head = ctx.store().job_insert_many(vec![keyed(0)]).await.unwrap();
    let done = ctx
        .store()
        .job_insert_and_fetch(keyed(1), fetch("keyed", 10))
        .await
        .unwrap();
    let ids: Vec<_> = done.fetched.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![head[0].job.id], "only the head of the key runs");
    assert_eq!(ctx.get(first.id).await.state, JobState::Available);
}

pub async fn insert_and_fetch_with_a_held_idempotency_key_returns_the_existing_job<
    F: StoreFactory,
>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let keyed = || JobInsert {
        idempotency_key: Some("once".into()),
        ..insert("q", 0)
    };
    let first = ctx.store().job_insert_many(vec![keyed()]).await.unwrap();
    let done = ctx
        .store()
        .job_insert_and_fetch(keyed(), fetch("q", 10))
        .await
        .unwrap();
    assert!(!done.inserted.created);
    assert_eq!(done.inserted.job.id, first[0].job.id);
    let ids: Vec<_> = done.fetched.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        vec![first[0].job.id],
        "the existing job is still fetchable"
    );
    let counts = ctx.counts("q").await;
    assert_eq!(counts.available + counts.running, 1);
}

/// A long-polling fetch of up to five jobs of `q`, in its own task, once it waits.
async fn waiting_fetch<F: StoreFactory>(
    ctx: &TestContext<F>,
) -> JoinHandle<Result<Vec<Job>, EngineError>> {
    let engine = ctx.engine().clone();
    let fetch = tokio::spawn(async move {
        engine
            .fetch(fetch_req(&["q"], 5, PATIENCE.as_millis() as u64))
            .await
    });
    parked(ctx, "q", 1).await;
    fetch
}

/// Waits until `n` fetchers of `queue` are parked in the engine.
async fn parked<F: StoreFactory>(ctx: &TestContext<F>, queue: &str, n: usize) {
    within("the fetcher to wait", async {
        while ctx.engine().waiting_fetchers(queue) != n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

pub async fn an_enqueue_leases_to_a_waiting_fetcher<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let fetcher = waiting_fetch(&ctx).await;
    let enqueued = ctx.put("q", json!({"handed": true})).await;
    // The enqueue answers with the job as it now is: running, its token kept from the caller.
    assert_eq!(enqueued.state, JobState::Running);
    assert_eq!(enqueued.attempt, 1);
    assert_eq!(enqueued.lease_token, None);
    let jobs = within("the fetch to answer", fetcher)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![enqueued.id]);
    assert_eq!(ctx.engine().waiting_fetchers("q"), 0);
    ctx.complete(&jobs[0]).await;
    assert_eq!(ctx.get(enqueued.id).await.state, JobState::Completed);
}

pub async fn a_delayed_or_paused_job_is_not_handed_to_a_waiting_fetcher<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let fetcher = waiting_fetch(&ctx).await;
    let later = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(60_000),
                ..req(json!({"later": true}))
            },
        )
        .await;
    assert_eq!(later.state, JobState::Scheduled);
    assert_eq!(ctx.engine().waiting_fetchers("q"), 1, "still waiting");

    ctx.engine().set_paused("q", true).await.unwrap();
    let paused = ctx.put("q", json!({"paused": true})).await;
    assert_eq!(paused.state, JobState::Available);
    // The fetcher the paused enqueue took found nothing and waits again.
    parked(&ctx, "q", 1).await;
    ctx.engine().set_paused("q", false).await.unwrap();
    let jobs = within("the fetch to answer", fetcher)
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<_> = jobs.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![paused.id]);
}

/// A fetcher whose request goes away while an enqueue leases to it: the jobs go back at once
/// (not after their lease), and the attempt is not counted. Which of the two the abort beats
/// varies from run to run; either way the job must be fetchable again at once.
pub async fn a_fetcher_that_goes_away_leaves_no_job_leased_to_it<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for round in 0..20 {
        let fetcher = waiting_fetch(&ctx).await;
        let enqueue = ctx.put("q", json!({"round": round}));
        let abort = async {
            tokio::task::yield_now().await;
            fetcher.abort();
        };
        let (job, ()) = tokio::join!(enqueue, abort);
        if let Ok(Ok(jobs)) = fetcher.await {
            // The fetch answered before the abort: the job is its to finish.
            for job in &jobs {
                ctx.complete(job).await;
            }
            continue;
        }
        // Handed back by the enqueue itself, or, if the abort came after the hand, by the
        // fetch's own clean-up: at once either way, not when the 30 s lease runs out.
        let mut watch = ctx.engine().watch(job.id);
        let mut now = ctx.get(job.id).await;
        while now.state == JobState::Running {
            now = within("the hand-back", watch.changed())
                .await
                .map_or(now, |j| (*j).clone());
        }
        assert_eq!(now.state, JobState::Available, "round {round}");
        assert_eq!(
            now.attempt, 0,
            "round {round}: the hand-back counts no attempt"
        );
        let fetched = ctx.fetch_one("q").await;
        assert_eq!(fetched.id, job.id);
        ctx.complete(&fetched).await;
    }
}

/// The hybrid call over a hand-off: the wait follows the job from before its worker had it,
/// so even a job finished at once is seen finishing.
pub async fn a_hybrid_call_handed_to_a_waiting_fetcher_answers_with_the_result<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    for round in 0..10 {
        let engine = ctx.engine().clone();
        let worker = tokio::spawn(async move {
            let mut jobs = engine
                .fetch(fetch_req(&["q"], 1, PATIENCE.as_millis() as u64))
                .await
                .unwrap();
            let job = jobs.pop().expect("a job within the wait");
            let req = complete_req(&job, Some(json!({"round": round})));
            engine.complete(job.id, req).await.unwrap();
        });
        parked(&ctx, "q", 1).await;
        let answer = ctx
            .engine()
            .enqueue_wait("q", req(json!({"round": round})), PATIENCE)
            .await
            .unwrap();
        assert!(answer.created);
        assert_eq!(answer.job.state, JobState::Completed, "round {round}");
        let result = answer.job.result.as_ref().map(|r| r.get().to_owned());
        assert_eq!(
            result.as_deref(),
            Some(format!(r#"{{"round":{round}}}"#).as_str())
        );
        within("the worker", worker).await.unwrap();
    }
    // Nobody to hand it to: the wait ends with the job still waiting.
    let answer = ctx
        .engine()
        .enqueue_wait("idle", req(json!({})), Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(answer.job.state, JobState::Available);
}

/// An enqueue whose caller stops waiting once it has started (a request closed mid-way) still
/// finishes the hand-off: the waiting fetcher gets the job rather than its lease running out.
pub async fn an_abandoned_enqueue_still_reaches_the_waiting_fetcher<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let fetcher = waiting_fetch(&ctx).await;
    // Polled once, so it has taken the fetcher, then dropped.
    let started = ctx
        .engine()
        .enqueue("q", req(json!({"abandoned": true})))
        .now_or_never();
    assert!(
        started.is_none(),
        "an enqueue cannot finish without the store"
    );
    let jobs = within("the fetch to answer", fetcher)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(jobs.len(), 1, "the fetcher got the abandoned enqueue's job");
    ctx.complete(&jobs[0]).await;
}
