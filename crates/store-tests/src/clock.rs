//! Rule 7, time comes from the store's clock, never from workers: delays are added to the
//! store's `now`, leases run from it, and every time a job records is the store's.

use std::time::Duration;

use buzzer_types::{EnqueueRequest, HeartbeatRequest, JobState};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{ms_between, req, token},
};

/// Asserts `before <= t <= after`.
fn assert_between(what: &str, t: Option<Timestamp>, before: Timestamp, after: Timestamp) {
    let t = t.unwrap_or_else(|| panic!("{what} is not set"));
    assert!(
        before <= t && t <= after,
        "{what} {t} is outside the store's clock during the call [{before}, {after}]"
    );
}

pub async fn delay_is_added_to_the_store_clock_exactly<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let before = ctx.now().await;
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(60_000),
                ..req(json!({}))
            },
        )
        .await;
    let after = ctx.now().await;
    assert_eq!(job.state, JobState::Scheduled);
    assert_between("created_at", Some(job.created_at), before, after);
    assert_eq!(
        ms_between(job.created_at, job.scheduled_at),
        60_000,
        "scheduled_at = created_at + delay_ms"
    );
    assert_eq!(ctx.get(job.id).await.scheduled_at, job.scheduled_at);
}

pub async fn lease_expires_at_is_started_at_plus_lease_ms<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 7_000).await;
    let lease = ms_between(job.started_at.unwrap(), job.lease_expires_at.unwrap());
    assert!(
        (7_000..=7_005).contains(&lease),
        "lease_expires_at = started_at + {lease} ms, want + 7000 ms"
    );

    let before = ctx.now().await;
    let hb = ctx
        .engine()
        .heartbeat(
            job.id,
            HeartbeatRequest {
                lease_token: token(&job),
                lease_ms: Some(9_000),
                progress: None,
            },
        )
        .await
        .unwrap();
    let after = ctx.now().await;
    let from = before + SignedDuration::from_millis(9_000);
    let to = after + SignedDuration::from_millis(9_000);
    assert_between(
        "the heartbeat's lease_expires_at",
        Some(hb.lease_expires_at),
        from,
        to,
    );
}

pub async fn store_now_is_monotone_and_close_to_system_time<F: StoreFactory>(factory: F) {
    let skew = factory.max_clock_skew();
    let ctx = TestContext::new(factory).await;
    let mut last = ctx.now().await;
    for _ in 0..200 {
        let now = ctx.now().await;
        assert!(
            now >= last,
            "the store's clock went back: {last} then {now}"
        );
        last = now;
    }
    let system = Timestamp::now();
    let store = ctx.now().await;
    let apart = ms_between(system, store).unsigned_abs();
    assert!(
        Duration::from_millis(apart) <= skew,
        "the store's clock is {apart} ms from this process's (at most {skew:?})"
    );
}

pub async fn run_at_in_the_past_is_available_immediately<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let run_at = ctx.now().await - SignedDuration::from_hours(1);
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                run_at: Some(run_at),
                ..req(json!({}))
            },
        )
        .await;
    assert_eq!(job.state, JobState::Available);
    assert_eq!(job.scheduled_at, run_at, "scheduled_at is the run_at given");
    assert_eq!(ctx.fetch_one("q").await.id, job.id);
}

pub async fn run_at_in_the_future_waits_until_then<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let run_at = ctx.now().await + SignedDuration::from_millis(300);
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                run_at: Some(run_at),
                ..req(json!({}))
            },
        )
        .await;
    assert_eq!(job.state, JobState::Scheduled);
    assert_eq!(job.scheduled_at, run_at);
    ctx.assert_nothing_to_fetch("q").await;
    let leased = ctx.fetch_wait("q").await;
    assert_eq!(leased.id, job.id);
    let late = ms_between(run_at, leased.started_at.unwrap());
    assert!(
        (0..1_000).contains(&late),
        "handed out {late} ms after run_at"
    );
}

/// Workers never send times: every time a job records for them is read from the store's
/// clock during the call.
pub async fn worker_transitions_are_stamped_by_the_store<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for i in 0..3 {
        ctx.put("q", json!({"i": i})).await;
    }

    let before = ctx.now().await;
    let jobs = ctx.fetch(&["q"], 3).await;
    let after = ctx.now().await;
    for job in &jobs {
        assert_between("started_at", job.started_at, before, after);
    }

    let before = ctx.now().await;
    let done = ctx.complete(&jobs[0]).await;
    let after = ctx.now().await;
    assert_between(
        "finished_at of a completion",
        done.finished_at,
        before,
        after,
    );

    let before = ctx.now().await;
    let dead = ctx.fail_dead(&jobs[1]).await;
    let after = ctx.now().await;
    assert_between("finished_at of a dead job", dead.finished_at, before, after);
    assert_between("errors[0].at", Some(dead.errors[0].at), before, after);

    ctx.engine().cancel(jobs[2].id).await.unwrap();
    let before = ctx.now().await;
    let cancelled = ctx.fail(&jobs[2], None).await;
    let after = ctx.now().await;
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_between(
        "finished_at of a cancellation",
        cancelled.finished_at,
        before,
        after,
    );
}
