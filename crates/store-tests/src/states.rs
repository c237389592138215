//! The state machine around the rules: cancellation from every non-terminal state, terminal
//! states that only an operator retry leaves, paused queues, queue counts and job lists.

use std::{collections::HashSet, time::Duration};

use buzzer_engine::JobList;
use buzzer_store::{JobFinish, StoreError, Transition};
use buzzer_types::{
    EnqueueRequest, ErrorInput, FailRequest, HeartbeatRequest, Job, JobId, JobState, RawValue,
    StateCounts,
};
use serde_json::{Map, json};

use crate::{
    StoreFactory, TestContext,
    support::{
        assert_conflict, assert_lease_lost, assert_not_found, complete_req, completion, fail_req,
        fetch_req, req, snapshot, token, within,
    },
};

fn heartbeat(job: &Job) -> HeartbeatRequest {
    HeartbeatRequest {
        lease_token: token(job),
        lease_ms: Some(30_000),
        progress: None,
    }
}

pub async fn cancel_of_a_waiting_job_is_immediate<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let scheduled = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                delay_ms: Some(3_600_000),
                ..req(json!({}))
            },
        )
        .await;
    ctx.put("q", json!({})).await;
    let failing = ctx.fetch_one("q").await;
    let retryable = ctx.fail(&failing, Some(3_600_000)).await;
    let available = ctx.put("q", json!({})).await;

    for (job, from) in [
        (&scheduled, JobState::Scheduled),
        (&available, JobState::Available),
        (&retryable, JobState::Retryable),
    ] {
        assert_eq!(ctx.get(job.id).await.state, from);
        let cancelled = ctx.engine().cancel(job.id).await.unwrap();
        assert_eq!(cancelled.state, JobState::Cancelled, "cancel from {from}");
        assert!(cancelled.finished_at.is_some(), "cancel from {from}");
        assert_eq!(snapshot(&ctx.get(job.id).await), snapshot(&cancelled));
    }
    ctx.assert_nothing_to_fetch("q").await;
    assert_eq!(
        ctx.store().job_next_due_at().await.unwrap(),
        None,
        "cancelled jobs are no longer due"
    );
    assert_eq!(ctx.counts("q").await.cancelled, 3);
}

pub async fn cancel_of_a_running_job_requests_cancellation<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_one("q").await;
    let requested = ctx.engine().cancel(job.id).await.unwrap();
    assert_eq!(
        requested.state,
        JobState::Running,
        "a running job is not stopped"
    );
    assert!(requested.cancel_requested);
    assert!(ctx.get(job.id).await.cancel_requested);

    let hb = ctx
        .engine()
        .heartbeat(job.id, heartbeat(&job))
        .await
        .unwrap();
    assert!(
        hb.cancel_requested,
        "the worker hears it on its next heartbeat"
    );

    let cancelled = ctx.fail(&job, None).await;
    assert_eq!(
        cancelled.state,
        JobState::Cancelled,
        "a failure then cancels"
    );
    assert_eq!(cancelled.errors.len(), 1);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(ctx.counts("q").await.cancelled, 1);
}

pub async fn worker_that_completes_despite_a_cancel_request_completes<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_one("q").await;
    ctx.engine().cancel(job.id).await.unwrap();
    let done = ctx
        .engine()
        .complete(job.id, complete_req(&job, Some(json!("done anyway"))))
        .await
        .unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.unwrap().get(), r#""done anyway""#);
}

/// The engine reads the job before a failure; the store closes the race with a cancel that
/// lands in between by turning the retry into a cancel itself.
pub async fn store_turns_a_retry_of_a_cancel_requested_job_into_cancel<F: StoreFactory>(
    factory: F,
) {
    let ctx = TestContext::with(factory, crate::test_config(), false).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_one("q").await;
    let requested = ctx.store().job_cancel(job.id).await.unwrap();
    assert!(requested.cancel_requested);
    let results = ctx
        .store()
        .job_finish_many(vec![JobFinish {
            id: job.id,
            lease_token: token(&job),
            transition: Transition::Retry {
                delay_ms: 0,
                error: ErrorInput::new("boom"),
            },
            require_lease_expired: false,
        }])
        .await
        .unwrap();
    let finished = match results.as_slice() {
        [Ok(job)] => job.clone(),
        other => panic!("expected the job, got {other:?}"),
    };
    assert_eq!(finished.state, JobState::Cancelled);
    assert_eq!(
        finished.errors.len(),
        1,
        "the failed attempt is still recorded"
    );
    assert_eq!(finished.errors[0].message, "boom");
}

pub async fn lease_expiry_of_a_cancel_requested_job_cancels_it<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_lease("q", 100).await;
    ctx.engine().cancel(job.id).await.unwrap();
    let ended = ctx
        .engine()
        .wait_terminal(job.id, crate::support::PATIENCE)
        .await;
    let ended = ended.unwrap();
    assert_eq!(ended.state, JobState::Cancelled, "{ended:?}");
    assert_eq!(ended.errors.len(), 1);
    assert_eq!(ended.errors[0].message, "lease expired");
}

pub async fn cancel_of_a_terminal_job_is_conflict<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    for state in [JobState::Completed, JobState::Dead, JobState::Cancelled] {
        let id = jobs[&state].id;
        let before = snapshot(&ctx.get(id).await);
        assert_conflict(
            ctx.engine().cancel(id).await,
            &format!("cancel of a {state} job"),
        );
        assert_eq!(
            snapshot(&ctx.get(id).await),
            before,
            "{state} job unchanged"
        );
    }
}

pub async fn cancel_of_unknown_job_is_not_found<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert_not_found(ctx.engine().cancel(JobId(987_654_321)).await, "cancel");
    assert!(matches!(
        ctx.store().job_cancel(JobId(987_654_321)).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn terminal_jobs_only_leave_by_operator_retry<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    for i in 0..3 {
        ctx.put("q", json!({"i": i})).await;
    }
    let leased = ctx.fetch(&["q"], 3).await;
    ctx.complete(&leased[0]).await;
    ctx.fail_dead(&leased[1]).await;
    ctx.engine().cancel(leased[2].id).await.unwrap();
    ctx.fail(&leased[2], None).await;

    for job in &leased {
        let before = ctx.get(job.id).await;
        assert!(before.state.is_terminal());
        let what = |op: &str| format!("{op} of a {} job", before.state);
        let late = ctx.engine().complete(job.id, complete_req(job, None)).await;
        assert_lease_lost(late, &what("complete"));
        let fail = FailRequest {
            retry_in_ms: Some(0),
            ..fail_req(job, "late")
        };
        assert_lease_lost(ctx.engine().fail(job.id, fail).await, &what("fail"));
        let hb = ctx.engine().heartbeat(job.id, heartbeat(job)).await;
        assert_lease_lost(hb, &what("heartbeat"));
        assert_conflict(ctx.engine().cancel(job.id).await, &what("cancel"));
        assert!(ctx.store().job_promote_due(100).await.unwrap().is_empty());
        assert!(
            ctx.store()
                .job_list_lease_expired(100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            snapshot(&ctx.get(job.id).await),
            snapshot(&before),
            "{}",
            what("any")
        );
    }

    assert_conflict(
        ctx.engine().retry(leased[0].id).await,
        "retry of a completed job",
    );
    for job in &leased[1..] {
        let retried = ctx.engine().retry(job.id).await.unwrap();
        assert_eq!(retried.state, JobState::Available);
    }
}

pub async fn paused_queue_accepts_jobs_but_hands_none_out<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let first = ctx.put("q", json!({})).await;
    let info = ctx.engine().set_paused("q", true).await.unwrap();
    assert!(info.paused);
    let second = ctx.put("q", json!({})).await;
    assert_eq!(
        second.state,
        JobState::Available,
        "a paused queue accepts jobs"
    );
    let elsewhere = ctx.put("other", json!({})).await;

    let got = ctx.fetch(&["q", "other"], 10).await;
    let ids: Vec<JobId> = got.iter().map(|j| j.id).collect();
    assert_eq!(
        ids,
        vec![elsewhere.id],
        "only the queue that is not paused hands out"
    );
    let info = ctx.engine().queue("q").await.unwrap();
    assert!(info.paused);
    assert_eq!(info.counts.available, 2);

    let info = ctx.engine().set_paused("q", false).await.unwrap();
    assert!(!info.paused);
    let got: HashSet<JobId> = ctx.fetch(&["q"], 10).await.iter().map(|j| j.id).collect();
    assert_eq!(got, HashSet::from([first.id, second.id]));
}

pub async fn resume_wakes_a_waiting_fetch<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let job = ctx.put("q", json!({})).await;
    ctx.engine().set_paused("q", true).await.unwrap();
    let engine = ctx.engine().clone();
    let waiter = tokio::spawn(async move { engine.fetch(fetch_req(&["q"], 1, 10_000)).await });
    // Let the fetch find nothing and start waiting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "a paused queue hands nothing out");

    let resumed_at = tokio::time::Instant::now();
    ctx.engine().set_paused("q", false).await.unwrap();
    let got = within("the waiting fetch", waiter).await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), vec![job.id]);
    let took = resumed_at.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "woke {took:?} after the resume"
    );
}

pub async fn pause_of_unknown_queue_is_not_found<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert_not_found(ctx.engine().set_paused("nope", true).await, "pause");
    assert!(matches!(
        ctx.store().queue_set_paused("nope", true).await,
        Err(StoreError::NotFound)
    ));
    assert!(ctx.store().queue_get("nope").await.unwrap().is_none());
}

pub async fn paused_flag_survives_reopen<F: StoreFactory>(factory: F) {
    let mut ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    ctx.engine().set_paused("q", true).await.unwrap();
    ctx.reopen().await;
    assert!(ctx.engine().queue("q").await.unwrap().paused);
    ctx.assert_nothing_to_fetch("q").await;
}

pub async fn queue_counts_every_state<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.one_job_in_each_state("q").await;
    ctx.put("other", json!({})).await;
    let info = ctx.engine().queue("q").await.unwrap();
    for state in JobState::ALL {
        assert_eq!(info.counts.get(state), 1, "{state} in {:?}", info.counts);
    }
    assert!(!info.paused);
    let listed = ctx.engine().queues().await.unwrap();
    let q = listed.iter().find(|q| q.name == "q").expect("q is listed");
    assert_eq!(q.counts, info.counts);
    let other = listed
        .iter()
        .find(|q| q.name == "other")
        .expect("other is listed");
    assert_eq!((other.counts.available, other.counts.completed), (1, 0));
}

/// Jobs waiting behind their ordering key's head are counted in their own state, and each
/// queue counts only its own jobs, whichever index a store counts a state from.
pub async fn queue_counts_jobs_waiting_behind_an_ordering_key<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.one_job_in_each_state("other").await;
    let keyed = |delay_ms: Option<u64>| EnqueueRequest {
        ordering_key: Some("k".into()),
        delay_ms,
        ..req(json!({}))
    };
    ctx.enqueue("q", keyed(None)).await;
    let waiting = ctx.enqueue("q", keyed(None)).await;
    ctx.enqueue("q", keyed(Some(3_600_000))).await;
    assert_eq!(waiting.state, JobState::Available);
    let mut expected = StateCounts {
        available: 2,
        scheduled: 1,
        ..StateCounts::default()
    };
    assert_eq!(
        ctx.counts("q").await,
        expected,
        "the head and the one behind it"
    );

    let head = ctx.fetch_one("q").await;
    expected.available -= 1;
    expected.running += 1;
    assert_eq!(ctx.counts("q").await, expected, "the head runs");
    ctx.complete(&head).await;
    expected.running -= 1;
    expected.completed += 1;
    assert_eq!(ctx.counts("q").await, expected, "the next one is released");
    let other = ctx.counts("other").await;
    for state in JobState::ALL {
        assert_eq!(other.get(state), 1, "{state} in {other:?}");
    }
}

/// Completed counts per queue follow batch and single completions, a stale completion that
/// changes nothing, deletes, and a reopen (a store may keep them apart from the jobs).
pub async fn completed_counts_follow_every_way_in_and_out<F: StoreFactory>(factory: F) {
    let mut ctx = TestContext::new(factory).await;
    for _ in 0..5 {
        ctx.put("a", json!({})).await;
    }
    ctx.put("b", json!({})).await;
    let batch = ctx.fetch(&["a"], 3).await;
    let mut finishes: Vec<JobFinish> = batch.iter().map(completion).collect();
    // The same job twice in one batch, and a stale token: neither completes anything more.
    finishes.push(JobFinish {
        lease_token: "stale".into(),
        ..finishes[0].clone()
    });
    let answers = ctx.store().job_finish_many_brief(finishes).await.unwrap();
    assert_eq!(
        answers.iter().filter(|r| r.is_ok()).count(),
        3,
        "{answers:?}"
    );
    let single = ctx.complete(&ctx.fetch_one("a").await).await;
    ctx.complete(&ctx.fetch_one("b").await).await;
    assert_eq!(
        (
            ctx.counts("a").await.completed,
            ctx.counts("b").await.completed
        ),
        (4, 1)
    );
    ctx.engine().delete(single.id).await.unwrap();
    let dead = ctx.fail_dead(&ctx.fetch_one("a").await).await;
    ctx.engine().delete(dead.id).await.unwrap();
    assert_eq!(
        ctx.counts("a").await.completed,
        3,
        "only the completed delete counts"
    );
    ctx.reopen().await;
    assert_eq!(
        (
            ctx.counts("a").await.completed,
            ctx.counts("b").await.completed
        ),
        (3, 1),
        "after a reopen"
    );
}

pub async fn oldest_available_age_grows_while_a_job_waits<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    ctx.fetch_one("q").await;
    let info = ctx.engine().queue("q").await.unwrap();
    assert_eq!(info.oldest_available_age_ms, 0, "no job is waiting");

    ctx.put("q", json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    ctx.put("q", json!({})).await;
    let age = ctx
        .engine()
        .queue("q")
        .await
        .unwrap()
        .oldest_available_age_ms;
    assert!(
        (200..5_000).contains(&age),
        "the oldest waiting job is {age} ms old"
    );

    ctx.fetch(&["q"], 10).await;
    assert_eq!(
        ctx.engine()
            .queue("q")
            .await
            .unwrap()
            .oldest_available_age_ms,
        0
    );
}

pub async fn queue_exists_once_a_job_names_it<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert!(ctx.store().queue_get("q").await.unwrap().is_none());
    assert_not_found(ctx.engine().queue("q").await, "an unnamed queue");
    assert!(ctx.engine().queues().await.unwrap().is_empty());

    ctx.put("q", json!({})).await;
    ctx.put("r", json!({})).await;
    let info = ctx.engine().queue("q").await.unwrap();
    assert_eq!((info.name.as_str(), info.counts.available), ("q", 1));
    let names: HashSet<String> = ctx
        .engine()
        .queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, HashSet::from(["q".to_owned(), "r".to_owned()]));
}

pub async fn list_is_newest_first_with_cursor_paging<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let mut all = Vec::new();
    for i in 0..25 {
        all.push(ctx.put("q", json!({"i": i})).await.id);
    }
    all.reverse();

    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = ctx
            .engine()
            .list(JobList {
                limit: 10,
                before,
                ..JobList::default()
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.jobs.iter().map(|j| j.id));
        match page.next_cursor {
            Some(cursor) => before = Some(cursor.parse::<JobId>().unwrap()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, all, "newest first, every job once");
    assert_eq!(pages, 3);
}

pub async fn list_filters_by_queue_state_and_tag<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let jobs = ctx.one_job_in_each_state("q").await;
    let mut tagged = Vec::new();
    for tags in [vec!["x"], vec!["x", "y"], vec!["y"]] {
        let req = EnqueueRequest {
            tags: Some(tags.into_iter().map(str::to_owned).collect()),
            ..req(json!({}))
        };
        tagged.push(ctx.enqueue("r", req).await);
    }
    let list = |queue: Option<&str>, state: Option<JobState>, tag: Option<&str>| JobList {
        queue: queue.map(str::to_owned),
        state,
        tag: tag.map(str::to_owned),
        before: None,
        limit: 100,
    };
    let ids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let store = ctx.store();

    let completed = store
        .job_list(list(None, Some(JobState::Completed), None))
        .await;
    assert_eq!(ids(completed.unwrap()), vec![jobs[&JobState::Completed].id]);
    let available_q = store
        .job_list(list(Some("q"), Some(JobState::Available), None))
        .await;
    assert_eq!(
        ids(available_q.unwrap()),
        vec![jobs[&JobState::Available].id]
    );
    let x_in_r = store.job_list(list(Some("r"), None, Some("x"))).await;
    assert_eq!(ids(x_in_r.unwrap()), vec![tagged[1].id, tagged[0].id]);
    let y = store.job_list(list(None, None, Some("y"))).await;
    assert_eq!(ids(y.unwrap()), vec![tagged[2].id, tagged[1].id]);
    let in_q = store.job_list(list(Some("q"), None, None)).await.unwrap();
    assert_eq!(in_q.len(), 7);
    assert_eq!(
        store.job_list(list(None, None, None)).await.unwrap().len(),
        10
    );
    let none = store
        .job_list(list(Some("r"), Some(JobState::Dead), None))
        .await;
    assert!(none.unwrap().is_empty());
}

pub async fn job_fields_round_trip_exactly<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    let payload = r#"{"b": [1, 2.50, "é\u00e9 ✓"],  "a": null, "n": 12345678901234567890}"#;
    let metadata: Map<String, serde_json::Value> =
        serde_json::from_value(json!({"m": {"n": [1, "two"]}, "empty": {}})).unwrap();
    let job = ctx
        .enqueue(
            "q",
            EnqueueRequest {
                tags: Some(vec!["z".into(), "a".into(), "m:1".into()]),
                metadata: Some(metadata.clone()),
                idempotency_key: Some("idem-✓".into()),
                ordering_key: Some("order-1".into()),
                timeout_ms: Some(9_000),
                ..EnqueueRequest::new(RawValue::from_string(payload.into()).unwrap())
            },
        )
        .await;
    let leased = ctx.fetch_one("q").await;
    let result = r#"[1,  {"x": true},"ü"]"#;
    ctx.engine()
        .complete(
            job.id,
            buzzer_types::CompleteRequest {
                lease_token: token(&leased),
                result: Some(RawValue::from_string(result.into()).unwrap()),
            },
        )
        .await
        .unwrap();

    let got = ctx.get(job.id).await;
    assert_eq!(got.payload.get(), payload, "payload byte for byte");
    assert_eq!(
        got.result.as_ref().unwrap().get(),
        result,
        "result byte for byte"
    );
    assert_eq!(got.tags, vec!["z", "a", "m:1"], "tags in their order");
    assert_eq!(got.metadata, metadata);
    assert_eq!(got.idempotency_key.as_deref(), Some("idem-✓"));
    assert_eq!(got.ordering_key.as_deref(), Some("order-1"));
    assert_eq!(got.timeout_ms, Some(9_000));
    assert_eq!(got.queue, "q");
}

pub async fn unknown_job_reads_as_none<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    assert!(
        ctx.store()
            .job_get(JobId(987_654_321))
            .await
            .unwrap()
            .is_none()
    );
    assert_not_found(ctx.engine().get(JobId(987_654_321)).await, "get");
}

pub async fn release_of_a_cancel_requested_job_cancels_it<F: StoreFactory>(factory: F) {
    let ctx = TestContext::new(factory).await;
    ctx.put("q", json!({})).await;
    let job = ctx.fetch_one("q").await;
    ctx.engine().cancel(job.id).await.unwrap();
    let released = ctx
        .engine()
        .release(job.id, crate::support::token(&job))
        .await
        .unwrap();
    assert_eq!(released.state, JobState::Cancelled);
    assert!(released.finished_at.is_some());
}
