//! Rule 3, retries: exponential backoff with full jitter
//! (`delay = rand(0, min(max, initial·factor^(attempt-1)))`), defaults visible on the job and
//! overridable per job, "retry in N ms" and "do not retry", the dead-letter queue and the
//! operator's ways back out of it.

use buzzer_types::{
    Ack, Backoff, BackoffSpec, DeadRetryRequest, EnqueueRequest, ErrorInput, FailRequest, Job,
    JobId, JobState,
};
use serde_json::{Map, json};

use crate::{
    StoreFactory, TestContext,
    support::{assert_conflict, assert_not_found, fail_req, ms_between, req, snapshot, token},
};

/// The delay the store gave a failed attempt: from the failure to the job's new due time,
/// both by the store's clock.
fn retry_delay_ms(failed: &Job) -> i64 {
    let at = failed
        .errors
        .last()
        .expect("a failed attempt is recorded")
        .at;
    ms_between(at, failed.scheduled_at)
}

fn with_backoff(initial_ms: u64, factor: f64, max_ms: u64, max_attempts: i32) -> EnqueueRequest {
    EnqueueRequest {
        backoff: Some(BackoffSpec {
            initial_ms: Some(initial_ms),
            max_ms: Some(max_ms),
            factor: Some(factor),
        }),
        max_attempts: Some(max_attempts),
        ..req(json!({}))
    }
}

/// A job in `queue` that has failed once with `retry: false`.
async fn dead_job<F: StoreFactory>(ctx: &TestContext<F>, queue: &str, tag: &str) -> Job {
    let job = ctx
        .enqueue(
            queue,
            EnqueueRequest {
                tags: Some(vec![tag.into()]),
                ..req(json!({"tag": tag}))
            },
        )
        .await;
    let leased = ctx.fetch_one(queue).await;
    assert_eq!(leased.id, job.id);
    let dead = ctx.fail_dead(&leased).await;
    assert_eq!(dead.state, JobState::Dead);
    dead
}

async fn states_of<F: StoreFactory>(ctx: &TestContext<F>, jobs: &[&Job]) -> Vec<JobState> {
    let mut out = Vec::new();
    for job in jobs {
        out.push(ctx.get(job.id).await.state);
    }
    out
}

pub async fn defaults_are_visible_on_the_job<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let enqueued = ctx.put("q", json!({})).await;
    for job in [enqueued.clone(), ctx.get(enqueued.id).await] {
        assert_eq!(job.max_attempts, 20);
        assert_eq!(
            job.backoff,
            Backoff {
                initial_ms: 1_000,
                max_ms: 3_600_000,
                factor: 2.0
            }
        );
        assert_eq!(job.priority, 0);
        assert_eq!(job.attempt, 0);
        assert_eq!(job.state, JobState::Available);
        assert_eq!(job.scheduled_at, job.created_at);
        assert!(job.errors.is_empty() && job.tags.is_empty() && job.metadata.is_empty());
        assert!(!job.cancel_requested);
        assert!(job.started_at.is_none() && job.finished_at.is_none());
        assert!(job.result.is_none() && job.progress.is_none() && job.timeout_ms.is_none());
        assert!(job.idempotency_key.is_none() && job.ordering_key.is_none());
        assert!(job.worker_id.is_none() && job.lease_expires_at.is_none());
    }
}

pub async fn per_job_backoff_and_max_attempts_override_the_defaults<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                backoff: Some(BackoffSpec {
                    initial_ms: Some(250),
                    factor: Some(3.5),
                    max_ms: None,
                }),
                max_attempts: Some(7),
                timeout_ms: Some(1_234),
                ..req(json!({}))
            },
        )
        .await;
    let capped = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                backoff: Some(BackoffSpec {
                    max_ms: Some(5_000),
                    ..Default::default()
                }),
                ..req(json!({}))
            },
        )
        .await;
    let job = ctx.get(job.id).await;
    assert_eq!(
        job.backoff,
        Backoff {
            initial_ms: 250,
            max_ms: 3_600_000,
            factor: 3.5
        }
    );
    assert_eq!(job.max_attempts, 7);
    assert_eq!(job.timeout_ms, Some(1_234));
    assert_eq!(
        ctx.get(capped.id).await.backoff,
        Backoff {
            initial_ms: 1_000,
            max_ms: 5_000,
            factor: 2.0
        }
    );
}

pub async fn backoff_delay_stays_within_the_ceiling_of_each_attempt<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.enqueue("q", with_backoff(10, 2.0, 80, 7)).await;
    for attempt in 1..=6 {
        let leased = ctx.fetch_wait("q").await;
        assert_eq!((leased.id, leased.attempt), (job.id, attempt));
        let failed = ctx.fail(&leased, None).await;
        assert_eq!(failed.state, JobState::Retryable);
        assert_eq!(failed.errors.last().unwrap().attempt, attempt);
        let ceiling = (10 * 2_i64.pow(attempt as u32 - 1)).min(80);
        let delay = retry_delay_ms(&failed);
        assert!(
            (0..=ceiling).contains(&delay),
            "attempt {attempt}: delay {delay} ms outside [0, {ceiling}]"
        );
    }
    let last = ctx.fetch_wait("q").await;
    assert_eq!(last.attempt, 7);
    assert_eq!(ctx.fail(&last, None).await.state, JobState::Dead);
}

/// Full jitter, not a fixed delay: forty first failures with a 1 s ceiling spread over the
/// range. (All forty landing in one half has a chance of about 2 in 10^12.)
pub async fn backoff_delays_spread_over_the_whole_jitter_range<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let reqs = (0..40)
        .map(|_| with_backoff(1_000, 2.0, 3_600_000, 5))
        .collect();
    ctx.engine().enqueue_many("q", reqs).await.unwrap();
    let jobs = ctx.fetch(&["q"], 40).await;
    assert_eq!(jobs.len(), 40);
    let acks = jobs
        .iter()
        .map(|job| Ack {
            id: job.id,
            lease_token: token(job),
            result: None,
            error: Some(ErrorInput::new("boom")),
            retry: None,
            retry_in_ms: None,
        })
        .collect();
    let mut delays = Vec::new();
    for done in ctx.engine().ack_many(acks).await.unwrap() {
        let done = done.unwrap();
        assert_eq!(done.state, JobState::Retryable);
        delays.push(retry_delay_ms(&ctx.get(done.id).await));
    }
    delays.sort_unstable();
    assert!(delays.iter().all(|d| (0..=1_000).contains(d)), "{delays:?}");
    assert!(
        delays[0] < 500 && delays[39] >= 500,
        "delays do not spread over [0, 1000]: {delays:?}"
    );
}

pub async fn default_backoff_first_retry_is_within_one_second<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let leased = ctx.fetch_one("q").await;
    let failed = ctx.fail(&leased, None).await;
    assert_eq!(failed.state, JobState::Retryable);
    let delay = retry_delay_ms(&failed);
    assert!((0..=1_000).contains(&delay), "delay {delay} ms");
}

pub async fn retry_in_ms_is_honoured_exactly<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.enqueue("q", with_backoff(3_600_000, 2.0, 3_600_000, 5))
        .await;
    let leased = ctx.fetch_one("q").await;
    let failed = ctx.fail(&leased, Some(250)).await;
    assert_eq!(failed.state, JobState::Retryable);
    assert_eq!(
        retry_delay_ms(&failed),
        250,
        "scheduled_at = failure + 250 ms"
    );
    let again = ctx.fetch_wait("q").await;
    assert_eq!(again.attempt, 2);
    assert!(
        again.started_at.unwrap() >= failed.scheduled_at,
        "not before its time"
    );

    let failed = ctx.fail(&again, Some(0)).await;
    assert_eq!(retry_delay_ms(&failed), 0);
}

pub async fn retry_false_goes_dead_at_once<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let leased = ctx.fetch_one("q").await;
    let dead = ctx.fail_dead(&leased).await;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!((dead.attempt, dead.max_attempts), (1, 20));
    assert!(dead.finished_at.is_some());
    assert_eq!(dead.errors.len(), 1);
    assert_eq!(dead.errors[0].message, "fatal");
    ctx.assert_nothing_to_fetch("q").await;
    assert_eq!(ctx.counts("q").await.dead, 1);
}

pub async fn exhausted_attempts_go_dead<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.enqueue(
        "q",
        EnqueueRequest {
            max_attempts: Some(3),
            ..req(json!({}))
        },
    )
    .await;
    let mut last = None;
    for attempt in 1..=3 {
        let leased = ctx.fetch_wait("q").await;
        assert_eq!(leased.attempt, attempt);
        let failed = ctx.fail(&leased, Some(0)).await;
        let expected = if attempt < 3 {
            JobState::Retryable
        } else {
            JobState::Dead
        };
        assert_eq!(failed.state, expected, "after attempt {attempt}");
        last = Some(failed);
    }
    let dead = last.unwrap();
    let attempts: Vec<i32> = dead.errors.iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, vec![1, 2, 3]);
    ctx.assert_nothing_to_fetch("q").await;
}

pub async fn errors_record_every_attempt_with_its_details<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let details: Map<String, serde_json::Value> = serde_json::from_value(json!({
        "kind": "Timeout",
        "code": 504,
        "trace": ["a", "b", {"line": 3}],
    }))
    .unwrap();

    let mut windows = Vec::new();
    let leased = ctx.fetch_one("q").await;
    let before = ctx.now().await;
    let fail = FailRequest {
        error: ErrorInput {
            message: "timed out".into(),
            details: details.clone(),
        },
        retry_in_ms: Some(0),
        ..fail_req(&leased, "")
    };
    ctx.engine().fail(leased.id, fail).await.unwrap();
    windows.push((before, ctx.now().await));

    let leased = ctx.fetch_wait("q").await;
    let before = ctx.now().await;
    ctx.fail(&leased, Some(0)).await;
    windows.push((before, ctx.now().await));

    let leased = ctx.fetch_wait("q").await;
    let before = ctx.now().await;
    let dead = ctx.fail_dead(&leased).await;
    windows.push((before, ctx.now().await));

    assert_eq!(dead.state, JobState::Dead);
    let errors = ctx.get(dead.id).await.errors;
    assert_eq!(errors, dead.errors);
    assert_eq!(errors.len(), 3);
    let summary: Vec<(i32, &str)> = errors
        .iter()
        .map(|e| (e.attempt, e.message.as_str()))
        .collect();
    assert_eq!(summary, vec![(1, "timed out"), (2, "boom"), (3, "fatal")]);
    assert_eq!(errors[0].details, details, "extra fields are kept as sent");
    assert!(errors[1].details.is_empty() && errors[2].details.is_empty());
    for (e, (before, after)) in errors.iter().zip(windows) {
        assert!(
            before <= e.at && e.at <= after,
            "attempt {}: at {} outside [{before}, {after}]",
            e.attempt,
            e.at
        );
    }
}

pub async fn operator_retry_of_dead_job_keeps_attempt_and_errors<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let dead = dead_job(&ctx, "q", "t").await;
    let retried = ctx.engine().retry(dead.id).await.unwrap();
    assert_eq!(retried.state, JobState::Available);
    assert_eq!(retried.attempt, 1, "the attempt counter is kept");
    assert_eq!(retried.errors, dead.errors, "the history is kept");
    assert!(!retried.cancel_requested);
    assert_eq!(snapshot(&ctx.get(dead.id).await), snapshot(&retried));

    let leased = ctx.fetch_one("q").await;
    assert_eq!((leased.id, leased.attempt), (dead.id, 2));
    let done = ctx.complete(&leased).await;
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.errors, dead.errors);
}

pub async fn operator_retry_of_cancelled_job_makes_it_available<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let waiting = ctx.put("q", json!({"n": 1})).await;
    let cancelled = ctx.engine().cancel(waiting.id).await.unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    let retried = ctx.engine().retry(waiting.id).await.unwrap();
    assert_eq!((retried.state, retried.attempt), (JobState::Available, 0));
    assert_eq!(ctx.fetch_one("q").await.id, waiting.id);

    // A job cancelled while running: cancel_requested is cleared, the attempt and error kept.
    ctx.put("r", json!({"n": 2})).await;
    let running = ctx.fetch_one("r").await;
    ctx.engine().cancel(running.id).await.unwrap();
    let cancelled = ctx.fail(&running, None).await;
    assert_eq!(cancelled.state, JobState::Cancelled);
    let retried = ctx.engine().retry(running.id).await.unwrap();
    assert_eq!(retried.state, JobState::Available);
    assert!(!retried.cancel_requested, "cancel_requested is cleared");
    assert_eq!(retried.attempt, 1);
    assert_eq!(retried.errors, cancelled.errors);
}

pub async fn operator_retry_of_a_job_that_is_not_dead_or_cancelled_is_conflict<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::new(factory).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    for state in [
        JobState::Scheduled,
        JobState::Available,
        JobState::Running,
        JobState::Retryable,
        JobState::Completed,
    ] {
        let id = jobs[&state].id;
        let before = snapshot(&ctx.get(id).await);
        assert_conflict(
            ctx.engine().retry(id).await,
            &format!("retry of a {state} job"),
        );
        assert_eq!(
            snapshot(&ctx.get(id).await),
            before,
            "{state} job unchanged"
        );
    }
}

pub async fn operator_retry_of_unknown_job_is_not_found<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert_not_found(ctx.engine().retry(JobId(987_654_321)).await, "retry");
}

pub async fn dead_letter_replay_filters_by_tag_and_limit_oldest_first<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut a = Vec::new();
    let mut b = Vec::new();
    for tag in ["a", "b", "a", "a", "b", "a", "b", "a"] {
        let dead = dead_job(&ctx, "q", tag).await;
        if tag == "a" { &mut a } else { &mut b }.push(dead);
    }
    let elsewhere = dead_job(&ctx, "other", "a").await;
    let completed = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                tags: Some(vec!["a".into()]),
                ..req(json!({}))
            },
        )
        .await;
    let leased = ctx.fetch_one("q").await;
    ctx.complete(&leased).await;

    let replay = |tag: Option<&str>, limit: Option<u32>| DeadRetryRequest {
        tag: tag.map(str::to_owned),
        ids: None,
        limit,
    };
    let n = ctx
        .engine()
        .retry_dead("q", replay(Some("a"), Some(3)), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 3);
    let a_refs: Vec<&Job> = a.iter().collect();
    use JobState::{Available as Av, Dead};
    assert_eq!(
        states_of(&ctx, &a_refs).await,
        vec![Av, Av, Av, Dead, Dead],
        "the oldest three"
    );
    let n = ctx
        .engine()
        .retry_dead("q", replay(Some("a"), None), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(states_of(&ctx, &a_refs).await, vec![Av; 5]);
    let b_refs: Vec<&Job> = b.iter().collect();
    assert_eq!(
        states_of(&ctx, &b_refs).await,
        vec![Dead; 3],
        "other tags stay"
    );
    assert_eq!(ctx.get(elsewhere.id).await.state, Dead, "other queues stay");
    assert_eq!(ctx.get(completed.id).await.state, JobState::Completed);

    let n = ctx
        .engine()
        .retry_dead("q", replay(None, None), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert_eq!(states_of(&ctx, &b_refs).await, vec![Av; 3]);
    let n = ctx
        .engine()
        .retry_dead("q", replay(None, None), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 0, "nothing dead is left");
    for job in a.iter().chain(&b) {
        let got = ctx.get(job.id).await;
        assert_eq!((got.attempt, &got.errors), (1, &job.errors), "history kept");
    }

    // The store call alone honours its limit too.
    let more: Vec<Job> = [
        dead_job(&ctx, "z", "t").await,
        dead_job(&ctx, "z", "t").await,
    ]
    .into();
    let moved = ctx
        .store()
        .job_retry_dead(buzzer_store::JobRetryDead {
            queue: "z".into(),
            tag: None,
            ids: None,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(moved, 1);
    let more_refs: Vec<&Job> = more.iter().collect();
    assert_eq!(states_of(&ctx, &more_refs).await, vec![Av, Dead]);
}

pub async fn dead_letter_replay_by_ids<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let dead: Vec<Job> = [
        dead_job(&ctx, "q", "t").await,
        dead_job(&ctx, "q", "t").await,
        dead_job(&ctx, "q", "t").await,
    ]
    .into();
    ctx.put("q", json!({})).await;
    let done = ctx.complete(&ctx.fetch_one("q").await).await;

    let by_ids = |ids: Vec<JobId>| DeadRetryRequest {
        tag: None,
        ids: Some(ids),
        limit: None,
    };
    let n = ctx
        .engine()
        .retry_dead("q", by_ids(vec![dead[1].id]), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 1);
    let refs: Vec<&Job> = dead.iter().collect();
    assert_eq!(
        states_of(&ctx, &refs).await,
        vec![JobState::Dead, JobState::Available, JobState::Dead]
    );
    let n = ctx
        .engine()
        .retry_dead("q", by_ids(vec![done.id]), |_| {})
        .await
        .unwrap();
    assert_eq!(n, 0, "only dead jobs are replayed");
    assert_eq!(ctx.get(done.id).await.state, JobState::Completed);
}

pub async fn dead_letter_replay_of_unknown_queue_is_not_found<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let r = ctx
        .engine()
        .retry_dead("nope", DeadRetryRequest::default(), |_| {})
        .await;
    assert_not_found(r, "replay of an unknown queue");
}
