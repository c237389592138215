//! Rule 2, leases, not locks: a fetch leases a job under a fresh token, heartbeats extend the
//! lease, a stale token changes nothing, an expired lease is noticed within a second and counts
//! as a failed attempt, and a scheduled or retryable job becomes available within a second of
//! its time.

use std::{collections::HashSet, time::Duration};

use buzzer_engine::{EngineConfig, ServiceEvent};
use buzzer_store::{Finished, JobFinish, StoreError, Transition};
use buzzer_types::{
    BackoffSpec, CompleteRequest, EnqueueRequest, ErrorInput, FailRequest, HeartbeatRequest, Job,
    JobId, JobState, RawValue,
};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{
        assert_lease_lost, assert_not_found, complete_req, fail_req, fetch_req, ms_between,
        next_event, raw, req, snapshot, token, within,
    },
    test_config,
};

/// Services that only wake for a timer or a nudge: with `max_idle` this long, anything that
/// happens within a second was woken on purpose, not found by polling.
fn no_polling() -> EngineConfig {
    EngineConfig {
        max_idle: Duration::from_secs(30),
        ..test_config()
    }
}

fn heartbeat(job: &Job, lease_ms: u64) -> HeartbeatRequest {
    HeartbeatRequest {
        lease_token: token(job),
        lease_ms: Some(lease_ms),
        progress: None,
    }
}

/// A job on its second attempt: (the first attempt's lease, the second's).
async fn second_attempt<F: StoreFactory>(ctx: &TestContext<F>) -> (Job, Job) {
    ctx.put("q", json!({"work": 1})).await;
    let first = ctx.fetch_one("q").await;
    ctx.fail(&first, Some(0)).await;
    let second = ctx.fetch_wait("q").await;
    assert_eq!((second.id, second.attempt), (first.id, 2));
    (first, second)
}

/// Waits for the job to leave `running` and returns it as it is then.
async fn left_running<F: StoreFactory>(ctx: &TestContext<F>, id: JobId) -> Job {
    let mut watch = ctx.engine().watch(id);
    let job = ctx.get(id).await;
    if job.state != JobState::Running {
        return job;
    }
    within("the job to leave running", async {
        loop {
            let job = match watch.changed().await {
                Some(snapshot) => (*snapshot).clone(),
                None => ctx.get(id).await,
            };
            if job.state != JobState::Running {
                return job;
            }
        }
    })
    .await
}

pub async fn fetch_leases_with_a_fresh_token_each_attempt<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let (first, second) = second_attempt(&ctx).await;
    let (t1, t2) = (token(&first), token(&second));
    assert!(!t1.is_empty());
    assert_ne!(t1, t2, "each attempt gets a fresh token");

    for i in 0..20 {
        ctx.put("many", json!({"i": i})).await;
    }
    let jobs = ctx.fetch(&["many"], 20).await;
    assert_eq!(jobs.len(), 20);
    let mut tokens: HashSet<String> = jobs.iter().map(token).collect();
    tokens.insert(t1);
    tokens.insert(t2);
    assert_eq!(tokens.len(), 22, "tokens are never shared");
}

pub async fn fetch_marks_the_job_running_for_this_worker<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.put("q", json!({})).await;
    let before = ctx.now().await;
    let mut fetch = fetch_req(&["q"], 1, 0);
    fetch.worker_id = "worker-7".into();
    fetch.lease_ms = Some(10_000);
    let leased = ctx.engine().fetch(fetch).await.unwrap().pop().unwrap();
    let after = ctx.now().await;

    assert_eq!(leased.id, job.id);
    assert_eq!(leased.state, JobState::Running);
    assert_eq!(leased.attempt, 1);
    assert_eq!(leased.worker_id.as_deref(), Some("worker-7"));
    let started = leased.started_at.expect("started_at is set");
    assert!(
        before <= started && started <= after,
        "{before} <= {started} <= {after}"
    );
    assert!(leased.lease_expires_at.is_some());

    let got = ctx.get(job.id).await;
    assert_eq!(got.state, JobState::Running);
    assert_eq!(got.attempt, 1);
    assert_eq!(got.worker_id, leased.worker_id);
    assert_eq!(got.started_at, leased.started_at);
    assert_eq!(got.lease_expires_at, leased.lease_expires_at);
}

/// A fetched job is the whole job, token included, whatever the batch size (a store may read a
/// large batch back differently from a small one), and that token is the one its lease holds.
pub async fn fetch_hands_out_whole_jobs_in_batches_of_any_size<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut enqueued = Vec::new();
    for i in 0..40_i32 {
        let mut metadata = serde_json::Map::new();
        metadata.insert("i".into(), json!(i));
        let job = ctx
            .enqueue(
                "q",
                EnqueueRequest {
                    max_attempts: Some(2 + i % 5),
                    backoff: Some(BackoffSpec {
                        initial_ms: Some(100 + i as u64),
                        ..Default::default()
                    }),
                    timeout_ms: (i % 2 == 0).then_some(5_000),
                    idempotency_key: Some(format!("k{i}")),
                    tags: Some(vec![format!("t{i}")]),
                    metadata: Some(metadata),
                    traceparent: Some(format!("00-{:032x}-{:016x}-01", i + 1, i + 1)),
                    ..req(json!({"i": i, "pad": "x".repeat(i as usize)}))
                },
            )
            .await;
        enqueued.push(job.id);
    }
    let small = ctx.fetch(&["q"], 3).await;
    let large = ctx.fetch(&["q"], 100).await;
    assert_eq!((small.len(), large.len()), (3, 37));
    let fetched: Vec<Job> = small.into_iter().chain(large).collect();
    assert_eq!(
        fetched.iter().map(|j| j.id).collect::<Vec<_>>(),
        enqueued,
        "FIFO within one priority"
    );
    for job in fetched {
        assert_eq!(job.state, JobState::Running);
        assert!(job.lease_token.is_some(), "{}", job.id);
        let mut shown = job.clone();
        shown.lease_token = None;
        assert_eq!(snapshot(&shown), snapshot(&ctx.get(job.id).await));
        assert_eq!(ctx.complete(&job).await.state, JobState::Completed);
    }
}

pub async fn job_reads_never_reveal_the_lease_token<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.put("q", json!({})).await;
    assert!(job.lease_token.is_none(), "an enqueued job has no token");
    let leased = ctx.fetch_one("q").await;
    assert!(leased.lease_token.is_some());

    let got = ctx.store().job_get(job.id).await.unwrap().unwrap();
    assert!(got.lease_token.is_none(), "job_get shows no token");
    let listed = ctx
        .store()
        .job_list(buzzer_store::JobList {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].lease_token.is_none(), "job_list shows no token");
}

pub async fn heartbeat_extends_the_lease_from_store_now_and_records_progress<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 1_000).await;
    let before = ctx.now().await;
    let hb = ctx
        .engine()
        .heartbeat(
            job.id,
            HeartbeatRequest {
                progress: Some(raw(json!({"pct": 40}))),
                ..heartbeat(&job, 60_000)
            },
        )
        .await
        .unwrap();
    let after = ctx.now().await;

    let extended = ms_between(before, hb.lease_expires_at);
    let window = ms_between(before, after);
    assert!(
        (60_000..=60_000 + window).contains(&extended),
        "lease_expires_at is now + 60 s: got now + {extended} ms (calls took {window} ms)"
    );
    assert!(!hb.cancel_requested);

    let got = ctx.get(job.id).await;
    assert_eq!(got.lease_expires_at, Some(hb.lease_expires_at));
    assert_eq!(
        got.progress.as_ref().map(|p| p.get()),
        Some(r#"{"pct":40}"#)
    );
    assert_eq!((got.state, got.attempt), (JobState::Running, 1));
}

pub async fn stale_token_complete_is_rejected_and_changes_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let (first, second) = second_attempt(&ctx).await;
    let before = snapshot(&ctx.get(first.id).await);

    let stale = ctx
        .engine()
        .complete(first.id, complete_req(&first, Some(json!("stale"))))
        .await;
    assert_lease_lost(stale, "complete with the first attempt's token");
    let bogus = CompleteRequest {
        lease_token: "not-a-token".into(),
        result: None,
    };
    assert_lease_lost(
        ctx.engine().complete(first.id, bogus).await,
        "complete with a made-up token",
    );
    assert_eq!(
        snapshot(&ctx.get(first.id).await),
        before,
        "nothing changed"
    );

    let done = ctx.complete(&second).await;
    assert_eq!(
        done.state,
        JobState::Completed,
        "the current attempt is unharmed"
    );
}

pub async fn stale_token_fail_is_rejected_and_changes_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let (first, second) = second_attempt(&ctx).await;
    let before = snapshot(&ctx.get(first.id).await);

    let retry = ctx.engine().fail(first.id, fail_req(&first, "stale")).await;
    assert_lease_lost(retry, "fail with the first attempt's token");
    let dead = FailRequest {
        retry: Some(false),
        ..fail_req(&first, "stale")
    };
    assert_lease_lost(
        ctx.engine().fail(first.id, dead).await,
        "fail (retry: false) with the first attempt's token",
    );
    assert_eq!(
        snapshot(&ctx.get(first.id).await),
        before,
        "nothing changed"
    );

    let failed = ctx.fail(&second, Some(0)).await;
    assert_eq!(
        failed.state,
        JobState::Retryable,
        "the current attempt is unharmed"
    );
    assert_eq!(failed.errors.len(), 2);
}

pub async fn stale_token_heartbeat_is_rejected_and_changes_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let (first, second) = second_attempt(&ctx).await;
    let before = snapshot(&ctx.get(first.id).await);

    let stale = HeartbeatRequest {
        progress: Some(raw(json!("stale progress"))),
        ..heartbeat(&first, 3_600_000)
    };
    assert_lease_lost(
        ctx.engine().heartbeat(first.id, stale).await,
        "heartbeat with the first attempt's token",
    );
    assert_eq!(
        snapshot(&ctx.get(first.id).await),
        before,
        "nothing changed"
    );

    let hb = ctx
        .engine()
        .heartbeat(second.id, heartbeat(&second, 5_000))
        .await;
    assert!(hb.is_ok(), "the current attempt is unharmed: {hb:?}");
}

pub async fn second_complete_is_lease_lost<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_one("q").await;
    ctx.engine()
        .complete(job.id, complete_req(&job, Some(json!("first"))))
        .await
        .unwrap();
    let before = snapshot(&ctx.get(job.id).await);

    let again = ctx
        .engine()
        .complete(job.id, complete_req(&job, Some(json!("second"))))
        .await;
    assert_lease_lost(again, "a second complete");
    assert_lease_lost(
        ctx.engine().fail(job.id, fail_req(&job, "late")).await,
        "a fail after complete",
    );
    assert_lease_lost(
        ctx.engine().heartbeat(job.id, heartbeat(&job, 1_000)).await,
        "a heartbeat after complete",
    );
    let after = ctx.get(job.id).await;
    assert_eq!(snapshot(&after), before, "nothing changed");
    assert_eq!(after.result.unwrap().get(), r#""first""#);
}

pub async fn finish_of_unknown_job_is_not_found<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let unknown = JobId(987_654_321);
    let results = ctx
        .store()
        .job_finish_many(vec![JobFinish {
            id: unknown,
            lease_token: "whatever".into(),
            transition: Transition::Complete { result: None },
            require_lease_expired: false,
        }])
        .await
        .unwrap();
    assert!(
        matches!(results.as_slice(), [Err(StoreError::NotFound)]),
        "{results:?}"
    );
    let complete = CompleteRequest {
        lease_token: "whatever".into(),
        result: None,
    };
    assert_not_found(ctx.engine().complete(unknown, complete).await, "complete");
    let fail = FailRequest {
        lease_token: "whatever".into(),
        error: ErrorInput::new("x"),
        retry: None,
        retry_in_ms: None,
    };
    assert_not_found(ctx.engine().fail(unknown, fail).await, "fail");
}

/// A worker's finish of `job` under `lease_token`.
fn finish(job: &Job, lease_token: String, transition: Transition) -> JobFinish {
    JobFinish {
        id: job.id,
        lease_token,
        transition,
        require_lease_expired: false,
    }
}

/// One store call with a good, a stale, a failing and an unknown item: each gets its own
/// answer, and the good ones apply.
pub async fn finish_many_answers_per_item<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for i in 0..3 {
        ctx.put("q", json!({"i": i})).await;
    }
    let jobs = ctx.fetch(&["q"], 3).await;
    let [a, b, c] = [&jobs[0], &jobs[1], &jobs[2]];
    let results = ctx
        .store()
        .job_finish_many(vec![
            finish(a, token(a), Transition::Complete { result: None }),
            finish(b, "stale".into(), Transition::Complete { result: None }),
            finish(
                c,
                token(c),
                Transition::Retry {
                    delay_ms: 3_600_000,
                    error: ErrorInput::new("later"),
                },
            ),
            JobFinish {
                id: JobId(987_654_321),
                ..finish(a, token(a), Transition::Complete { result: None })
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 4, "{results:?}");
    assert!(matches!(&results[0], Ok(j) if j.id == a.id && j.state == JobState::Completed));
    assert!(
        matches!(&results[1], Err(StoreError::LeaseLost)),
        "{:?}",
        results[1]
    );
    assert!(matches!(&results[2], Ok(j) if j.id == c.id && j.state == JobState::Retryable));
    assert!(
        matches!(&results[3], Err(StoreError::NotFound)),
        "{:?}",
        results[3]
    );

    assert_eq!(ctx.get(b.id).await.state, JobState::Running);
    assert_eq!(ctx.complete(b).await.state, JobState::Completed);
}

/// The brief answer (the acknowledgement path) applies exactly what the full one does and
/// answers each item with where its job ended up: a completion keeps its result's exact text,
/// a stale token and an unknown id fail alone, a retry answers `retryable` with the time its
/// error was recorded, and a completed head of an ordering key releases the next job.
pub async fn finish_many_brief_answers_like_finish_many<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let keyed = |i: i32| EnqueueRequest {
        ordering_key: Some("k".into()),
        ..req(json!({"i": i}))
    };
    for i in 0..3 {
        ctx.put("q", json!({"i": i})).await;
    }
    ctx.enqueue("q", keyed(3)).await;
    let next = ctx.enqueue("q", keyed(4)).await;
    let jobs = ctx.fetch(&["q"], 10).await;
    assert_eq!(jobs.len(), 4, "the second keyed job waits for the first");
    let [a, b, c, head] = [&jobs[0], &jobs[1], &jobs[2], &jobs[3]];
    let done = |result: &str| Transition::Complete {
        result: Some(RawValue::from_string(result.into()).unwrap()),
    };
    let results = ctx
        .store()
        .job_finish_many_brief(vec![
            finish(a, token(a), done(r#"{"ok": 1}"#)),
            finish(b, "stale".into(), Transition::Complete { result: None }),
            finish(
                c,
                token(c),
                Transition::Retry {
                    delay_ms: 3_600_000,
                    error: ErrorInput::new("later"),
                },
            ),
            finish(head, token(head), Transition::Complete { result: None }),
            JobFinish {
                id: JobId(987_654_321),
                ..finish(a, token(a), Transition::Complete { result: None })
            },
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "{results:?}");
    let stored_a = ctx.get(a.id).await;
    assert_eq!(results[0].as_ref().ok(), Some(&Finished::of(&stored_a)));
    assert_eq!(
        stored_a.result.as_deref().map(RawValue::get),
        Some(r#"{"ok": 1}"#)
    );
    assert!(
        matches!(&results[1], Err(StoreError::LeaseLost)),
        "{:?}",
        results[1]
    );
    let retried = ctx.get(c.id).await;
    assert_eq!(retried.state, JobState::Retryable);
    assert_eq!(results[2].as_ref().ok(), Some(&Finished::of(&retried)));
    let stored_head = ctx.get(head.id).await;
    assert_eq!(results[3].as_ref().ok(), Some(&Finished::of(&stored_head)));
    assert_eq!(stored_head.ordering_key.as_deref(), Some("k"));
    assert!(
        matches!(&results[4], Err(StoreError::NotFound)),
        "{:?}",
        results[4]
    );

    assert_eq!(ctx.get(b.id).await.state, JobState::Running);
    assert_eq!(
        ctx.fetch_one("q").await.id,
        next.id,
        "the key's next job is released"
    );
}

/// A batch of completions only (the throughput path) still answers per item: a good one with
/// its result's exact text, a stale token, an unknown id, and a job named twice (the second
/// mention finds it completed). Nothing else changes.
pub async fn finish_many_of_completions_answers_per_item<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for i in 0..4 {
        ctx.put("q", json!({"i": i})).await;
    }
    let jobs = ctx.fetch(&["q"], 4).await;
    let [a, b, c, d] = [&jobs[0], &jobs[1], &jobs[2], &jobs[3]];
    let complete = |id: JobId, lease_token: String, result: Option<&str>| JobFinish {
        id,
        lease_token,
        transition: Transition::Complete {
            result: result.map(|r| RawValue::from_string(r.into()).unwrap()),
        },
        require_lease_expired: false,
    };
    let results = ctx
        .store()
        .job_finish_many(vec![
            complete(c.id, token(c), Some(r#"{"kept" :  [1, 2]}"#)),
            complete(b.id, "stale".into(), None),
            complete(JobId(987_654_321), token(a), None),
            complete(a.id, token(a), None),
            complete(c.id, token(c), Some(r#""again""#)),
        ])
        .await
        .unwrap();
    assert_eq!(results.len(), 5, "{results:?}");
    match &results[0] {
        Ok(job) => {
            assert_eq!((job.id, job.state), (c.id, JobState::Completed));
            assert_eq!(job.result.as_ref().unwrap().get(), r#"{"kept" :  [1, 2]}"#);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&results[1], Err(StoreError::LeaseLost)),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(&results[2], Err(StoreError::NotFound)),
        "{:?}",
        results[2]
    );
    assert!(matches!(&results[3], Ok(j) if j.id == a.id && j.state == JobState::Completed));
    assert!(
        matches!(&results[4], Err(StoreError::LeaseLost)),
        "{:?}",
        results[4]
    );

    let kept = ctx.get(c.id).await;
    assert_eq!(kept.result.unwrap().get(), r#"{"kept" :  [1, 2]}"#);
    assert_eq!(ctx.get(b.id).await.state, JobState::Running);
    assert_eq!(ctx.get(d.id).await.state, JobState::Running);
    assert_eq!(ctx.complete(b).await.state, JobState::Completed);
}

pub async fn expired_lease_is_rescued_within_a_second_as_a_failed_attempt<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::with(factory, no_polling(), true).await;
    let mut events = ctx.events();
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                backoff: Some(BackoffSpec {
                    initial_ms: Some(60_000),
                    ..Default::default()
                }),
                ..req(json!({}))
            },
        )
        .await;
    let leased = ctx.fetch_lease("q", 200).await;
    let expires = leased.lease_expires_at.unwrap();

    let rescued = left_running(&ctx, job.id).await;
    assert_eq!(rescued.state, JobState::Retryable, "{rescued:?}");
    assert_eq!(rescued.attempt, 1);
    assert_eq!(rescued.errors.len(), 1);
    let error = &rescued.errors[0];
    assert_eq!(error.message, "lease expired");
    assert_eq!(error.attempt, 1);
    let late = ms_between(expires, error.at);
    assert!(
        (0..1_000).contains(&late),
        "rescued {late} ms after the lease expired (must be within [0, 1000))"
    );
    let delay = ms_between(error.at, rescued.scheduled_at);
    assert!(
        (0..=60_000).contains(&delay),
        "the rescue follows the job's backoff: delay {delay} ms"
    );
    next_event(&mut events, "a Rescued event", |e| {
        matches!(e, ServiceEvent::Rescued(_))
    })
    .await;
}

pub async fn expired_lease_at_max_attempts_goes_dead<F: StoreFactory>(factory: F) {
    let ctx = TestContext::with(factory, no_polling(), true).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                max_attempts: Some(1),
                ..req(json!({}))
            },
        )
        .await;
    ctx.fetch_lease("q", 100).await;
    let dead = left_running(&ctx, job.id).await;
    assert_eq!(dead.state, JobState::Dead, "{dead:?}");
    assert_eq!(dead.attempt, 1);
    assert_eq!(dead.errors.len(), 1);
    assert_eq!(dead.errors[0].message, "lease expired");
    assert!(dead.finished_at.is_some());
}

pub async fn rescued_job_rejects_its_old_token<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                backoff: Some(BackoffSpec {
                    initial_ms: Some(1),
                    ..Default::default()
                }),
                ..req(json!({}))
            },
        )
        .await;
    let old = ctx.fetch_lease("q", 100).await;
    let new = ctx.fetch_wait("q").await;
    assert_eq!((new.id, new.attempt), (job.id, 2));
    assert_eq!(new.errors[0].message, "lease expired");
    let before = snapshot(&ctx.get(job.id).await);

    let late = ctx
        .engine()
        .complete(job.id, complete_req(&old, Some(json!("late"))))
        .await;
    assert_lease_lost(late, "complete by the worker whose lease expired");
    assert_lease_lost(
        ctx.engine()
            .heartbeat(job.id, heartbeat(&old, 60_000))
            .await,
        "heartbeat by the worker whose lease expired",
    );
    assert_lease_lost(
        ctx.engine().fail(job.id, fail_req(&old, "late")).await,
        "fail by the worker whose lease expired",
    );
    assert_eq!(snapshot(&ctx.get(job.id).await), before, "nothing changed");
    assert_eq!(ctx.complete(&new).await.state, JobState::Completed);
}

pub async fn heartbeats_keep_a_lease_alive_past_its_first_expiry<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut events = ctx.events();
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 500).await;
    let first_expiry = job.lease_expires_at.unwrap();
    // Three lease lengths, heartbeating every 100 ms.
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hb = ctx.engine().heartbeat(job.id, heartbeat(&job, 500)).await;
        assert!(
            hb.is_ok(),
            "a heartbeat before expiry keeps the lease: {hb:?}"
        );
    }
    let got = ctx.get(job.id).await;
    assert!(got.lease_expires_at.unwrap() > first_expiry);
    assert_eq!((got.state, got.attempt), (JobState::Running, 1));
    assert!(got.errors.is_empty(), "{:?}", got.errors);
    while let Ok(e) = events.try_recv() {
        assert!(!matches!(e, ServiceEvent::Rescued(_)), "unexpected {e:?}");
    }
    assert_eq!(ctx.complete(&job).await.state, JobState::Completed);
}

/// The rescuer's guarded finish (`require_lease_expired`) fails on a lease that still runs.
pub async fn rescue_guard_rejects_a_lease_that_has_not_expired<F: StoreFactory>(factory: F) {
    let ctx = TestContext::with(factory, test_config(), false).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 60_000).await;
    let before = snapshot(&ctx.get(job.id).await);
    let results = ctx
        .store()
        .job_finish_many(vec![rescue(&job)])
        .await
        .unwrap();
    assert!(
        matches!(results.as_slice(), [Err(StoreError::LeaseLost)]),
        "{results:?}"
    );
    assert_eq!(snapshot(&ctx.get(job.id).await), before, "nothing changed");
}

/// The race the guard closes: the rescuer lists an expired lease, the worker heartbeats, then
/// the rescuer's finish must lose.
pub async fn rescue_guard_loses_to_a_heartbeat_after_expiry<F: StoreFactory>(factory: F) {
    let ctx = TestContext::with(factory, test_config(), false).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 50).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let expired = ctx.store().job_list_lease_expired(10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].lease_token, job.lease_token);

    let hb = ctx
        .engine()
        .heartbeat(job.id, heartbeat(&job, 60_000))
        .await;
    assert!(
        hb.is_ok(),
        "the lease is not rescued yet, so the token holds: {hb:?}"
    );
    let results = ctx
        .store()
        .job_finish_many(vec![rescue(&expired[0])])
        .await
        .unwrap();
    assert!(
        matches!(results.as_slice(), [Err(StoreError::LeaseLost)]),
        "{results:?}"
    );
    let got = ctx.get(job.id).await;
    assert_eq!((got.state, got.attempt), (JobState::Running, 1));
    assert!(got.errors.is_empty());
    assert_eq!(ctx.complete(&job).await.state, JobState::Completed);
}

fn rescue(job: &Job) -> JobFinish {
    JobFinish {
        id: job.id,
        lease_token: token(job),
        transition: Transition::Retry {
            delay_ms: 0,
            error: ErrorInput::new("lease expired"),
        },
        require_lease_expired: true,
    }
}

pub async fn lease_expired_lists_only_expired_leases_with_tokens<F: StoreFactory>(factory: F) {
    let ctx = TestContext::with(factory, test_config(), false).await;
    for i in 0..3 {
        ctx.put("q", json!({"i": i})).await;
    }
    let a = ctx.fetch_lease("q", 50).await;
    let b = ctx.fetch_lease("q", 60_000).await;
    let c = ctx.fetch_lease("q", 80).await;
    assert_eq!(
        ctx.store().job_next_lease_expiry().await.unwrap(),
        a.lease_expires_at,
        "the earliest expiry"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;

    let expired = ctx.store().job_list_lease_expired(10).await.unwrap();
    let got: Vec<_> = expired
        .iter()
        .map(|j| (j.id, j.lease_token.clone()))
        .collect();
    assert_eq!(
        got,
        vec![(a.id, a.lease_token.clone()), (c.id, c.lease_token.clone())],
        "expired leases, oldest expiry first, with their tokens; not {}",
        b.id
    );
    let one = ctx.store().job_list_lease_expired(1).await.unwrap();
    assert_eq!(one.iter().map(|j| j.id).collect::<Vec<_>>(), vec![a.id]);
}

pub async fn scheduled_job_becomes_available_within_a_second_of_its_time<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::with(factory, no_polling(), true).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(500),
                ..req(json!({}))
            },
        )
        .await;
    assert_eq!(job.state, JobState::Scheduled);
    let leased = ctx.fetch_wait("q").await;
    assert_eq!(leased.id, job.id);
    let gap = ms_between(job.scheduled_at, leased.started_at.unwrap());
    assert!(
        (0..1_000).contains(&gap),
        "handed out {gap} ms after its time (must be within [0, 1000))"
    );
}

pub async fn retryable_job_becomes_available_within_a_second_of_its_time<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::with(factory, no_polling(), true).await;
    ctx.put("q", json!({})).await;
    let first = ctx.fetch_one("q").await;
    let failed = ctx.fail(&first, Some(500)).await;
    assert_eq!(failed.state, JobState::Retryable);
    let leased = ctx.fetch_wait("q").await;
    assert_eq!((leased.id, leased.attempt), (first.id, 2));
    let gap = ms_between(failed.scheduled_at, leased.started_at.unwrap());
    assert!(
        (0..1_000).contains(&gap),
        "handed out {gap} ms after its time (must be within [0, 1000))"
    );
}

pub async fn release_hands_the_job_back_at_once_without_counting_the_attempt<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({"work": 1})).await;
    let leased = ctx.fetch_lease("q", 3_600_000).await;
    assert_eq!(leased.attempt, 1);

    let released = ctx
        .engine()
        .release(leased.id, token(&leased))
        .await
        .unwrap();
    assert_eq!(released.state, JobState::Available);
    assert_eq!(released.attempt, 0, "the attempt does not count");
    assert!(released.errors.is_empty(), "no error is recorded");
    assert_eq!(released.lease_expires_at, None);
    assert_eq!(
        released.scheduled_at, leased.scheduled_at,
        "it keeps its place"
    );

    let again = ctx.fetch_wait("q").await;
    assert_eq!((again.id, again.attempt), (leased.id, 1));
    assert_ne!(token(&again), token(&leased), "a fresh lease");
}

pub async fn stale_token_release_is_rejected_and_changes_nothing<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let (first, second) = second_attempt(&ctx).await;
    let before = snapshot(&ctx.get(first.id).await);
    assert_lease_lost(
        ctx.engine().release(first.id, token(&first)).await,
        "release with the first attempt's token",
    );
    assert_eq!(
        snapshot(&ctx.get(first.id).await),
        before,
        "nothing changed"
    );
    assert_eq!(
        ctx.engine()
            .release(second.id, token(&second))
            .await
            .unwrap()
            .state,
        JobState::Available
    );
}
