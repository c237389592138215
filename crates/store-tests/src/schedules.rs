//! Cron schedules: what a store keeps of a schedule, and the compare-and-set that makes each
//! tick claimed exactly once.

use std::time::Duration;

use buzzer_store::{ScheduleClaimTick, SchedulePut};
use buzzer_types::{BackoffSpec, Schedule, ScheduleJobOptions, ScheduleRequest};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::{
    StoreFactory, TestContext,
    support::{ms_between, raw, within},
};

fn put(name: &str, cron: &str) -> SchedulePut {
    SchedulePut {
        name: name.into(),
        cron: cron.into(),
        timezone: "UTC".into(),
        queue: "reports".into(),
        payload: raw(json!({"report": name})),
        options: ScheduleJobOptions::default(),
    }
}

async fn get<F: StoreFactory>(ctx: &TestContext<F>, name: &str) -> Schedule {
    ctx.store()
        .schedule_get(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("schedule {name}"))
}

/// A context without the background services: the cron service would fire the schedules
/// these checks claim and fire by hand.
async fn quiet<F: StoreFactory>(factory: F) -> TestContext<F> {
    TestContext::with(factory, crate::test_config(), false).await
}

fn claim(name: &str, tick: Timestamp) -> ScheduleClaimTick {
    ScheduleClaimTick {
        name: name.into(),
        tick,
    }
}

pub async fn schedule_put_creates_then_replaces_keeping_the_last_tick<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    let before = ctx.now().await;
    let first = ctx
        .store()
        .schedule_put(put("nightly", "0 3 * * *"))
        .await
        .unwrap();
    assert!(first.created);
    assert!(ms_between(before, first.value.created_at) >= 0);
    assert_eq!(first.value.last_tick, None);
    let tick = Timestamp::from_second(1_700_000_000).unwrap();
    assert!(
        ctx.store()
            .schedule_claim_tick(claim("nightly", tick))
            .await
            .unwrap()
    );

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut replace = put("nightly", "0 4 * * *");
    replace.timezone = "Europe/Amsterdam".into();
    let second = ctx.store().schedule_put(replace).await.unwrap();
    assert!(!second.created);
    let s = second.value;
    assert_eq!(
        (s.cron.as_str(), s.timezone.as_str()),
        ("0 4 * * *", "Europe/Amsterdam")
    );
    assert_eq!(s.created_at, first.value.created_at);
    assert!(s.updated_at > first.value.updated_at);
    assert_eq!(s.last_tick, Some(tick), "a replace keeps the last tick");
    assert_eq!(get(&ctx, "nightly").await.updated_at, s.updated_at);
}

pub async fn schedule_fields_round_trip_exactly<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    let options = ScheduleJobOptions {
        priority: Some(-5),
        max_attempts: Some(3),
        backoff: Some(BackoffSpec {
            initial_ms: Some(10),
            max_ms: None,
            factor: Some(1.5),
        }),
        timeout_ms: Some(60_000),
        tags: Some(vec!["cron".into(), "nightly".into()]),
        metadata: Some(json!({"owner": "ops"}).as_object().cloned().unwrap()),
    };
    let mut p = put("every-10s", "*/10 * * * * *");
    p.payload =
        serde_json::value::RawValue::from_string(r#"{"n": 1.50, "s": "é"}"#.into()).unwrap();
    p.options = options.clone();
    ctx.store().schedule_put(p).await.unwrap();
    let s = get(&ctx, "every-10s").await;
    assert_eq!(s.cron, "*/10 * * * * *");
    assert_eq!(s.queue, "reports");
    assert_eq!(s.payload.get(), r#"{"n": 1.50, "s": "é"}"#, "byte for byte");
    assert_eq!(s.options, options);

    ctx.store()
        .schedule_put(put("plain", "* * * * *"))
        .await
        .unwrap();
    assert_eq!(
        get(&ctx, "plain").await.options,
        ScheduleJobOptions::default()
    );
}

pub async fn schedule_list_and_delete<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    for name in ["b", "c", "a"] {
        ctx.store()
            .schedule_put(put(name, "* * * * *"))
            .await
            .unwrap();
    }
    let names: Vec<String> = ctx
        .store()
        .schedule_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(ctx.store().schedule_delete("b").await.unwrap());
    assert!(!ctx.store().schedule_delete("b").await.unwrap());
    assert!(ctx.store().schedule_get("b").await.unwrap().is_none());
    assert_eq!(ctx.store().schedule_list().await.unwrap().len(), 2);
}

pub async fn claim_tick_only_moves_forward<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    ctx.store()
        .schedule_put(put("s", "* * * * * *"))
        .await
        .unwrap();
    let t1 = Timestamp::from_second(1_700_000_001).unwrap();
    let t0 = t1 - SignedDuration::from_secs(1);
    let t2 = t1 + SignedDuration::from_secs(1);
    let store = ctx.store();
    assert!(store.schedule_claim_tick(claim("s", t1)).await.unwrap());
    assert!(
        !store.schedule_claim_tick(claim("s", t1)).await.unwrap(),
        "claimed once"
    );
    assert!(
        !store.schedule_claim_tick(claim("s", t0)).await.unwrap(),
        "never backwards"
    );
    assert_eq!(get(&ctx, "s").await.last_tick, Some(t1));
    assert!(store.schedule_claim_tick(claim("s", t2)).await.unwrap());
    assert_eq!(get(&ctx, "s").await.last_tick, Some(t2));
    assert!(
        !store
            .schedule_claim_tick(claim("unknown", t2))
            .await
            .unwrap()
    );
}

pub async fn concurrent_claims_of_one_tick_succeed_once<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    ctx.store()
        .schedule_put(put("s", "* * * * * *"))
        .await
        .unwrap();
    let tick = Timestamp::from_second(1_700_000_000).unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = ctx.store().clone();
            tokio::spawn(async move { store.schedule_claim_tick(claim("s", tick)).await })
        })
        .collect();
    let mut won = 0;
    for t in tasks {
        if within("claims", t).await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}

pub async fn schedules_survive_reopen<F: StoreFactory>(factory: F) {
    let mut ctx = quiet(factory).await;
    ctx.store()
        .schedule_put(put("s", "0 0 * * *"))
        .await
        .unwrap();
    let tick = Timestamp::from_second(1_700_000_000).unwrap();
    ctx.store()
        .schedule_claim_tick(claim("s", tick))
        .await
        .unwrap();
    let before = get(&ctx, "s").await;
    ctx.reopen().await;
    let after = get(&ctx, "s").await;
    assert_eq!(
        (
            after.cron,
            after.last_tick,
            after.created_at,
            after.payload.get().to_owned()
        ),
        (
            before.cron,
            before.last_tick,
            before.created_at,
            before.payload.get().to_owned()
        )
    );
}

fn every_second(queue: &str) -> ScheduleRequest {
    ScheduleRequest::new("* * * * * *", queue, raw(json!({"report": "tick"})))
}

/// After downtime a schedule fires once, for its latest tick, not once per missed tick.
pub async fn a_schedule_fires_once_after_downtime<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    let engine = ctx.engine();
    engine
        .schedule_put("s", every_second("reports"))
        .await
        .unwrap();
    // The last run was ten seconds ago: ten ticks were missed.
    let long_ago = ctx.now().await - SignedDuration::from_secs(10);
    assert!(
        ctx.store()
            .schedule_claim_tick(claim("s", long_ago))
            .await
            .unwrap()
    );

    let (fired, next) = engine.cron_fire_due().await.unwrap();
    assert_eq!(fired, 1);
    let jobs = ctx.fetch(&["reports"], 100).await;
    assert_eq!(jobs.len(), 1, "one job for the whole missed period");
    let job = &jobs[0];
    let tick = get(&ctx, "s").await.last_tick.unwrap();
    assert_eq!(job.idempotency_key, Some(format!("schedule:s:{tick}")));
    assert_eq!(job.metadata["schedule"], "s");
    assert_eq!(job.metadata["tick"], tick.to_string());
    assert_eq!(job.payload.get(), r#"{"report":"tick"}"#);
    assert!(
        ms_between(tick, ctx.now().await) < 1_000 + 500,
        "the latest tick"
    );
    assert!(next.unwrap() > tick);

    // Evaluating again fires nothing more for that tick (only a later one, if a second
    // boundary passed meanwhile).
    let (again, _) = engine.cron_fire_due().await.unwrap();
    let more = ctx.fetch(&["reports"], 100).await;
    assert_eq!(more.len(), again);
    assert!(
        more.iter()
            .all(|j| j.idempotency_key != job.idempotency_key)
    );
}

/// A new schedule fires from its next tick on, never for ticks before it existed.
pub async fn a_new_schedule_waits_for_its_first_tick<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    let yearly = ScheduleRequest::new("0 0 1 1 *", "reports", raw(json!({})));
    let made = ctx.engine().schedule_put("yearly", yearly).await.unwrap();
    assert!(made.created);
    assert_eq!(made.value.next_fire_times.len(), 5);
    assert!(made.value.next_fire_times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ctx.engine().cron_fire_due().await.unwrap().0, 0);
    assert!(
        ctx.engine().queue("reports").await.is_err(),
        "no job, no queue"
    );
}

/// Two nodes evaluating the same tick at once make one job and one claim between them.
pub async fn two_engines_firing_one_tick_make_one_job<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    ctx.engine()
        .schedule_put("s", every_second("reports"))
        .await
        .unwrap();
    let long_ago = ctx.now().await - SignedDuration::from_secs(60);
    ctx.store()
        .schedule_claim_tick(claim("s", long_ago))
        .await
        .unwrap();
    let other = buzzer_engine::Engine::new(ctx.store().clone(), crate::test_config());
    let (a, b) = tokio::join!(ctx.engine().cron_fire_due(), other.cron_fire_due());
    let (a, b) = (a.unwrap().0, b.unwrap().0);
    let jobs = ctx.fetch(&["reports"], 100).await;
    // A second boundary between the two evaluations makes a second, later tick: never two
    // jobs of one tick.
    let mut keys: Vec<_> = jobs.iter().map(|j| j.idempotency_key.clone()).collect();
    keys.dedup();
    assert_eq!(keys.len(), jobs.len(), "one job per tick: {keys:?}");
    assert_eq!(
        jobs.len(),
        a + b,
        "a job for every claim, a claim for every job"
    );
    assert!((1..=2).contains(&jobs.len()));
}

pub async fn schedule_requests_are_validated_naming_the_field<F: StoreFactory>(factory: F) {
    let ctx = quiet(factory).await;
    let mut bad_tz = every_second("q");
    bad_tz.timezone = Some("Nowhere/City".into());
    let mut bad_priority = every_second("q");
    bad_priority.priority = Some(1_000);
    let cases = [
        (ScheduleRequest::new("* * *", "q", raw(json!({}))), "cron"),
        (
            ScheduleRequest::new("0 25 * * *", "q", raw(json!({}))),
            "cron",
        ),
        (
            ScheduleRequest::new("* * * * *", "bad queue", raw(json!({}))),
            "queue",
        ),
        (bad_tz, "timezone"),
        (bad_priority, "priority"),
    ];
    for (req, field) in cases {
        match ctx.engine().schedule_put("s", req).await {
            Err(buzzer_engine::EngineError::Invalid(e)) => assert_eq!(e.field, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    assert!(ctx.store().schedule_list().await.unwrap().is_empty());
}

/// With the services running, the leader's cron service fires a per-second schedule by
/// itself, and a fetch waiting on the queue wakes for the job.
pub async fn the_cron_service_fires_on_its_own<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.engine()
        .schedule_put("s", every_second("ticks"))
        .await
        .unwrap();
    let job = ctx.fetch_wait("ticks").await;
    assert_eq!(job.metadata["schedule"], "s");
    let tick: Timestamp = job.metadata["tick"].as_str().unwrap().parse().unwrap();
    assert_eq!(job.idempotency_key, Some(format!("schedule:s:{tick}")));
    // The claim follows the enqueue: it may land just after the job is fetched.
    within("the claim of the tick", async {
        while get(&ctx, "s").await.last_tick.is_none_or(|t| t < tick) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
