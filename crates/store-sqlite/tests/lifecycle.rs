//! The trait's contract as this store keeps it. The shared conformance suite
//! (`buzzer-store-tests`) covers the same ground for every store; these pin down SQLite's
//! own corners (batching, ordering flags, JSON columns).

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

mod common;

use buzzer_store::{
    JobFinish, JobHeartbeat, JobList, JobPrune, JobRetryDead, RunAt, Store, StoreError, Transition,
};
use buzzer_types::{ErrorInput, Job, JobId, JobState};
use common::{fetch, job, raw, store};
use serde_json::json;

fn finish(job: &Job, transition: Transition) -> JobFinish {
    JobFinish {
        id: job.id,
        lease_token: job.lease_token.clone().unwrap(),
        transition,
        require_lease_expired: false,
    }
}

fn complete(job: &Job) -> JobFinish {
    finish(
        job,
        Transition::Complete {
            result: Some(raw(r#"{"ok" : true}"#)),
        },
    )
}

/// Up to ten jobs of any queue, newest first.
async fn first_jobs(s: &impl Store) -> Vec<Job> {
    s.job_list(JobList {
        limit: 10,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn finish_one(s: &impl Store, f: JobFinish) -> Result<Job, StoreError> {
    s.job_finish_many(vec![f]).await.unwrap().pop().unwrap()
}

#[tokio::test]
async fn insert_keeps_json_byte_for_byte_and_sets_state_by_due_time() {
    let (_d, s) = store();
    let mut later = job("q");
    later.run_at = RunAt::Delay { ms: 60_000 };
    let mut past = job("q");
    past.run_at = RunAt::At(jiff::Timestamp::UNIX_EPOCH);
    let mut rich = job("q");
    rich.payload = raw(r#"{ "b":1,  "a" : [1.50, "é"] }"#);
    rich.tags = vec!["x".into(), "y".into()];
    rich.metadata = json!({"k": {"n": 1}}).as_object().unwrap().clone();
    let out = s.job_insert_many(vec![later, past, rich]).await.unwrap();
    assert!(out.iter().all(|i| i.created));
    assert_eq!(out[0].job.state, JobState::Scheduled);
    assert_eq!(out[1].job.state, JobState::Available);
    assert_eq!(out[1].job.scheduled_at, jiff::Timestamp::UNIX_EPOCH);
    let now = s.now().await.unwrap();
    let delay = out[0].job.scheduled_at.as_millisecond() - now.as_millisecond();
    assert!((59_000..=60_000).contains(&delay), "{delay}");
    let got = s.job_get(out[2].job.id).await.unwrap().unwrap();
    assert_eq!(got.payload.get(), r#"{ "b":1,  "a" : [1.50, "é"] }"#);
    assert_eq!(got.tags, vec!["x", "y"]);
    assert_eq!(got.metadata, out[2].job.metadata);
    // What insert answered is what a read sees.
    assert_eq!(
        serde_json::to_value(&got).unwrap(),
        serde_json::to_value(&out[2].job).unwrap()
    );
}

#[tokio::test]
async fn idempotency_keys_hold_per_queue_and_within_one_batch() {
    let (_d, s) = store();
    let keyed = |q: &str| {
        let mut j = job(q);
        j.idempotency_key = Some("k".into());
        j
    };
    let out = s
        .job_insert_many(vec![keyed("a"), keyed("a"), keyed("b")])
        .await
        .unwrap();
    assert!(out[0].created && !out[1].created && out[2].created);
    assert_eq!(out[0].job.id, out[1].job.id);
    assert_ne!(out[0].job.id, out[2].job.id);
    let again = s.job_insert_many(vec![keyed("a")]).await.unwrap();
    assert!(!again[0].created);
    assert_eq!(again[0].job.id, out[0].job.id);
    assert_eq!(first_jobs(&s).await.len(), 2);
}

/// A short batch goes in row by row; a long one by multi-row statements, which stop at the
/// first failing row (`OR FAIL`) and leave the earlier rows of the statement for the command's
/// rollback to undo. Either way nothing of the batch is left.
#[tokio::test]
async fn a_batch_with_a_bad_job_inserts_nothing() {
    for (len, bad_at) in [(3, 2), (100, 50)] {
        let (_d, s) = store();
        let mut jobs: Vec<_> = (0..len).map(|_| job("q")).collect();
        jobs[bad_at].max_attempts = 0; // the schema's CHECK refuses it
        let err = s.job_insert_many(jobs).await.unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{len}: {err:?}");
        assert!(first_jobs(&s).await.is_empty(), "{len}");
        assert!(s.queue_get("q").await.unwrap().is_none(), "{len}");
        let fine: Vec<_> = (0..len).map(|_| job("q")).collect();
        assert_eq!(s.job_insert_many(fine).await.unwrap().len(), len);
    }
}

#[tokio::test]
async fn concurrent_batches_in_one_group_fail_or_succeed_alone() {
    let (_d, s) = store();
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = std::sync::Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            // Long enough to go in by multi-row statements (`OR FAIL`), the bad job in the
            // middle of the first: its command's savepoint must undo the rows before it.
            let mut batch: Vec<_> = (0..40).map(|_| job("q")).collect();
            if i % 10 == 0 {
                batch[20].max_attempts = 0;
            }
            s.job_insert_many(batch).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 45);
    assert_eq!(
        s.queue_get("q").await.unwrap().unwrap().counts.available,
        45 * 40
    );
    let stats = s.stats();
    assert!(stats.commits < stats.commands, "{stats:?}");
}

#[tokio::test]
async fn fetch_takes_priority_then_fifo_across_queues_and_skips_paused() {
    let (_d, s) = store();
    let mut jobs = Vec::new();
    for (q, p) in [("a", 0), ("b", 5), ("a", 5), ("b", 0), ("c", 9)] {
        let mut j = job(q);
        j.priority = p;
        jobs.push(j);
    }
    let ids: Vec<JobId> = s
        .job_insert_many(jobs)
        .await
        .unwrap()
        .iter()
        .map(|i| i.job.id)
        .collect();
    s.queue_set_paused("c", true).await.unwrap();
    let got = s.job_fetch(fetch(&["a", "b", "c", "a"], 3)).await.unwrap();
    assert_eq!(
        got.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[1], ids[2], ids[0]]
    );
    for j in &got {
        assert_eq!(j.state, JobState::Running);
        assert_eq!(j.attempt, 1);
        assert_eq!(j.worker_id.as_deref(), Some("w1"));
        assert!(j.lease_token.as_ref().unwrap().len() > 32);
        assert!(j.started_at.is_some() && j.lease_expires_at.is_some());
    }
    assert_ne!(got[0].lease_token, got[1].lease_token);
    // The token is the worker's secret: reads do not show it.
    assert!(
        s.job_get(got[0].id)
            .await
            .unwrap()
            .unwrap()
            .lease_token
            .is_none()
    );
    assert!(
        s.job_fetch(fetch(&["c", "nope"], 5))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.job_fetch(fetch(&["b"], 5)).await.unwrap()[0].id, ids[3]);
    s.queue_set_paused("c", false).await.unwrap();
    assert_eq!(s.job_fetch(fetch(&["c"], 5)).await.unwrap()[0].id, ids[4]);
    assert!(matches!(
        s.queue_set_paused("nope", true).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn finish_is_guarded_by_the_lease() {
    let (_d, s) = store();
    s.job_insert_many(vec![job("q")]).await.unwrap();
    let j = s.job_fetch(fetch(&["q"], 1)).await.unwrap().remove(0);
    let mut stale = complete(&j);
    stale.lease_token = "0".repeat(32);
    let mut missing = complete(&j);
    missing.id = JobId(999);
    let mut rescuer = complete(&j);
    rescuer.require_lease_expired = true;
    let out = s
        .job_finish_many(vec![stale, missing, rescuer, complete(&j)])
        .await
        .unwrap();
    assert!(matches!(out[0], Err(StoreError::LeaseLost)));
    assert!(matches!(out[1], Err(StoreError::NotFound)));
    assert!(
        matches!(out[2], Err(StoreError::LeaseLost)),
        "lease not expired yet"
    );
    let done = out[3].as_ref().unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(done.result.as_ref().unwrap().get(), r#"{"ok" : true}"#);
    assert!(done.finished_at.is_some() && done.lease_expires_at.is_none());
    assert!(matches!(
        finish_one(&s, complete(&j)).await,
        Err(StoreError::LeaseLost)
    ));
}

#[tokio::test]
async fn failures_record_errors_and_retry_honours_cancel_requests() {
    let (_d, s) = store();
    s.job_insert_many(vec![job("q"), job("q")]).await.unwrap();
    let got = s.job_fetch(fetch(&["q"], 2)).await.unwrap();
    let mut error = ErrorInput::new("boom");
    error.details.insert("kind".into(), json!("io"));
    error.details.insert("at".into(), json!("not a time"));
    let retried = finish_one(
        &s,
        finish(
            &got[0],
            Transition::Retry {
                delay_ms: 5_000,
                error: error.clone(),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(retried.state, JobState::Retryable);
    assert!(retried.finished_at.is_none());
    assert_eq!(retried.errors.len(), 1);
    assert_eq!(retried.errors[0].attempt, 1);
    assert_eq!(retried.errors[0].message, "boom");
    assert_eq!(retried.errors[0].details.get("kind"), Some(&json!("io")));
    assert!(retried.scheduled_at > got[0].started_at.unwrap());
    assert_eq!(
        s.job_next_due_at().await.unwrap(),
        Some(retried.scheduled_at)
    );

    let running = s.job_cancel(got[1].id).await.unwrap();
    assert_eq!(running.state, JobState::Running);
    assert!(running.cancel_requested);
    let hb = s
        .job_heartbeat(JobHeartbeat {
            id: got[1].id,
            lease_token: got[1].lease_token.clone().unwrap(),
            lease_ms: 60_000,
            progress: Some(raw("[50]")),
        })
        .await
        .unwrap();
    assert!(hb.cancel_requested);
    let cancelled = finish_one(
        &s,
        finish(
            &got[1],
            Transition::Retry {
                delay_ms: 0,
                error: ErrorInput::new("x"),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(cancelled.errors.len(), 1);
    assert_eq!(cancelled.progress.unwrap().get(), "[50]");
}

#[tokio::test]
async fn heartbeat_extends_and_is_guarded() {
    let (_d, s) = store();
    s.job_insert_many(vec![job("q")]).await.unwrap();
    let j = s.job_fetch(fetch(&["q"], 1)).await.unwrap().remove(0);
    let hb = |token: String, id| JobHeartbeat {
        id,
        lease_token: token,
        lease_ms: 120_000,
        progress: None,
    };
    let out = s
        .job_heartbeat(hb(j.lease_token.clone().unwrap(), j.id))
        .await
        .unwrap();
    assert!(out.lease_expires_at > j.lease_expires_at.unwrap());
    assert!(!out.cancel_requested);
    assert!(matches!(
        s.job_heartbeat(hb("nope".into(), j.id)).await,
        Err(StoreError::LeaseLost)
    ));
    assert!(matches!(
        s.job_heartbeat(hb("nope".into(), JobId(77))).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        s.job_next_lease_expiry().await.unwrap(),
        Some(out.lease_expires_at)
    );
}

#[tokio::test]
async fn expired_leases_are_listed_with_tokens_for_the_rescuer() {
    let (_d, s) = store();
    s.job_insert_many(vec![job("q"), job("q")]).await.unwrap();
    let mut short = fetch(&["q"], 1);
    short.lease_ms = 10;
    let j = s.job_fetch(short).await.unwrap().remove(0);
    s.job_fetch(fetch(&["q"], 1)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let expired = s.job_list_lease_expired(10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].lease_token, j.lease_token);
    let mut rescue = finish(
        &expired[0],
        Transition::Dead {
            error: ErrorInput::new("lease expired"),
        },
    );
    rescue.require_lease_expired = true;
    let dead = finish_one(&s, rescue).await.unwrap();
    assert_eq!(dead.state, JobState::Dead);
    assert!(s.job_list_lease_expired(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn ordering_keys_run_one_at_a_time_in_enqueue_order() {
    let (_d, s) = store();
    let keyed = |key: &str| {
        let mut j = job("q");
        j.ordering_key = Some(key.into());
        j
    };
    let ids: Vec<JobId> = s
        .job_insert_many(vec![keyed("k"), keyed("k"), keyed("other"), keyed("k")])
        .await
        .unwrap()
        .iter()
        .map(|i| i.job.id)
        .collect();
    let first = s.job_fetch(fetch(&["q"], 10)).await.unwrap();
    assert_eq!(
        first.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
    // A retrying head keeps its key.
    finish_one(
        &s,
        finish(
            &first[0],
            Transition::Retry {
                delay_ms: 0,
                error: ErrorInput::new("again"),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(s.job_promote_due(10).await.unwrap().len(), 1);
    let again = s.job_fetch(fetch(&["q"], 10)).await.unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[0]]);
    // Cancelling a waiting job frees nothing; finishing the head frees the next.
    s.job_cancel(ids[1]).await.unwrap();
    assert!(s.job_fetch(fetch(&["q"], 10)).await.unwrap().is_empty());
    finish_one(&s, complete(&again[0])).await.unwrap();
    let next = s.job_fetch(fetch(&["q"], 10)).await.unwrap();
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![ids[3]]);
    // An operator retry queues behind the key's head.
    let revived = s.job_retry(ids[1]).await.unwrap();
    assert_eq!(revived.state, JobState::Available);
    assert!(s.job_fetch(fetch(&["q"], 10)).await.unwrap().is_empty());
    finish_one(
        &s,
        finish(
            &next[0],
            Transition::Dead {
                error: ErrorInput::new("x"),
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(s.job_fetch(fetch(&["q"], 10)).await.unwrap()[0].id, ids[1]);
}

#[tokio::test]
async fn cancel_and_retry_follow_the_state_machine() {
    let (_d, s) = store();
    let mut later = job("q");
    later.run_at = RunAt::Delay { ms: 3_600_000 };
    let ids: Vec<JobId> = s
        .job_insert_many(vec![later, job("q")])
        .await
        .unwrap()
        .iter()
        .map(|i| i.job.id)
        .collect();
    let c = s.job_cancel(ids[0]).await.unwrap();
    assert_eq!(c.state, JobState::Cancelled);
    assert!(c.finished_at.is_some());
    match s.job_cancel(ids[0]).await {
        Err(StoreError::Conflict(m)) => assert_eq!(m, "job is already cancelled"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.job_cancel(JobId(404)).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.job_retry(ids[1]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.job_retry(JobId(404)).await,
        Err(StoreError::NotFound)
    ));
    let r = s.job_retry(ids[0]).await.unwrap();
    assert_eq!(r.state, JobState::Available);
    assert!(r.finished_at.is_none() && !r.cancel_requested);
    assert_eq!(s.queue_get("q").await.unwrap().unwrap().counts.available, 2);
}

#[tokio::test]
async fn retry_dead_filters_by_tag_and_ids_oldest_first() {
    let (_d, s) = store();
    let tagged = |t: &str| {
        let mut j = job("q");
        j.tags = vec![t.into()];
        j
    };
    s.job_insert_many(vec![
        tagged("a"),
        tagged("b"),
        tagged("a"),
        tagged("a"),
        job("other"),
    ])
    .await
    .unwrap();
    let got = s.job_fetch(fetch(&["q", "other"], 10)).await.unwrap();
    let fin = got
        .iter()
        .map(|j| {
            finish(
                j,
                Transition::Dead {
                    error: ErrorInput::new("x"),
                },
            )
        })
        .collect();
    s.job_finish_many(fin).await.unwrap();
    let ids: Vec<JobId> = got.iter().map(|j| j.id).collect();
    let params = |tag: Option<&str>, ids: Option<Vec<JobId>>, limit| JobRetryDead {
        queue: "q".into(),
        tag: tag.map(Into::into),
        ids,
        limit,
    };
    assert_eq!(
        s.job_retry_dead(params(Some("a"), None, 1)).await.unwrap(),
        1
    );
    assert_eq!(
        s.job_get(ids[0]).await.unwrap().unwrap().state,
        JobState::Available
    );
    assert_eq!(
        s.job_retry_dead(params(None, Some(vec![ids[1], ids[4]]), 10))
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.job_retry_dead(params(None, None, 10)).await.unwrap(), 2);
    let q = s.queue_get("q").await.unwrap().unwrap();
    assert_eq!((q.counts.available, q.counts.dead), (4, 0));
    let retried = s.job_get(ids[0]).await.unwrap().unwrap();
    assert_eq!((retried.attempt, retried.errors.len()), (1, 1));
}

#[tokio::test]
async fn promote_and_prune() {
    let (_d, s) = store();
    let mut soon = job("q");
    soon.run_at = RunAt::Delay { ms: 20 };
    let mut later = job("q");
    later.run_at = RunAt::Delay { ms: 3_600_000 };
    let ids: Vec<JobId> = s
        .job_insert_many(vec![soon, later, job("q"), job("q")])
        .await
        .unwrap()
        .iter()
        .map(|i| i.job.id)
        .collect();
    assert!(s.job_promote_due(10).await.unwrap().is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let promoted = s.job_promote_due(10).await.unwrap();
    assert_eq!(promoted.len(), 1);
    assert_eq!((promoted[0].id, promoted[0].queue.as_str()), (ids[0], "q"));
    let got = s.job_fetch(fetch(&["q"], 2)).await.unwrap();
    s.job_finish_many(vec![
        complete(&got[0]),
        finish(
            &got[1],
            Transition::Dead {
                error: ErrorInput::new("x"),
            },
        ),
    ])
    .await
    .unwrap();
    let keep = JobPrune {
        finished_retention_ms: 60_000,
        dead_retention_ms: 60_000,
        limit: 10,
    };
    assert_eq!(s.job_prune(keep).await.unwrap(), 0);
    let finished_only = JobPrune {
        finished_retention_ms: 0,
        ..keep
    };
    assert_eq!(s.job_prune(finished_only).await.unwrap(), 1);
    let all = JobPrune {
        dead_retention_ms: 0,
        ..finished_only
    };
    assert_eq!(s.job_prune(all).await.unwrap(), 1);
    assert!(s.job_get(got[0].id).await.unwrap().is_none());
    assert!(s.job_get(got[1].id).await.unwrap().is_none());
}

#[tokio::test]
async fn list_pages_newest_first_with_filters_and_queues_count() {
    let (_d, s) = store();
    let mut tagged = job("a");
    tagged.tags = vec!["t".into()];
    let ids: Vec<JobId> = s
        .job_insert_many(vec![job("a"), tagged, job("b"), job("a")])
        .await
        .unwrap()
        .iter()
        .map(|i| i.job.id)
        .collect();
    let list = |p: JobList| async {
        s.job_list(p)
            .await
            .unwrap()
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(JobList {
            limit: 2,
            ..Default::default()
        })
        .await,
        vec![ids[3], ids[2]]
    );
    assert_eq!(
        list(JobList {
            limit: 2,
            before: Some(ids[2]),
            ..Default::default()
        })
        .await,
        vec![ids[1], ids[0]]
    );
    assert_eq!(
        list(JobList {
            queue: Some("a".into()),
            limit: 10,
            ..Default::default()
        })
        .await,
        vec![ids[3], ids[1], ids[0]]
    );
    assert_eq!(
        list(JobList {
            tag: Some("t".into()),
            limit: 10,
            ..Default::default()
        })
        .await,
        vec![ids[1]]
    );
    s.job_fetch(fetch(&["a"], 1)).await.unwrap();
    assert_eq!(
        list(JobList {
            queue: Some("a".into()),
            state: Some(JobState::Running),
            limit: 10,
            ..Default::default()
        })
        .await,
        vec![ids[0]]
    );
    let queues = s.queue_list().await.unwrap();
    assert_eq!(
        queues.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        vec!["a", "b"]
    );
    assert_eq!(
        (queues[0].counts.available, queues[0].counts.running),
        (2, 1)
    );
    assert!(!queues[0].paused);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(queues[1].oldest_available_age_ms < 60_000);
    assert!(
        s.queue_get("b")
            .await
            .unwrap()
            .unwrap()
            .oldest_available_age_ms
            >= 20
    );
    assert!(s.queue_get("zzz").await.unwrap().is_none());
}

/// The hand-off exists to save a commit: the insert and the lease share one transaction.
#[tokio::test]
async fn insert_and_fetch_is_one_commit() {
    let (_d, s) = store();
    let before = s.stats();
    let done = s
        .job_insert_and_fetch(job("q"), fetch(&["q"], 1))
        .await
        .unwrap();
    assert_eq!(done.fetched.len(), 1);
    let after = s.stats();
    assert_eq!(
        (after.commands, after.commits),
        (before.commands + 1, before.commits + 1)
    );
}

/// Batches go in by multi-row chunks where no key needs looking up; every job must still come
/// back with the id of its own row, in request order, whatever mix of chunks and single rows.
#[tokio::test]
async fn a_mixed_batch_answers_each_job_with_its_own_row() {
    let (_d, s) = store();
    let jobs: Vec<_> = (0..75)
        .map(|i| {
            let mut j = job(if i % 2 == 0 { "even" } else { "odd" });
            j.payload = raw(&format!(r#"{{"i": {i}}}"#));
            j.priority = i % 7;
            j.tags = vec![format!("t{i}")];
            match i {
                40 => j.idempotency_key = Some("once".into()),
                41 => j.ordering_key = Some("k".into()),
                70 => j.run_at = RunAt::Delay { ms: 60_000 },
                _ => {}
            }
            j
        })
        .collect();
    let inserted = s.job_insert_many(jobs).await.unwrap();
    assert_eq!(inserted.len(), 75);
    for (i, ins) in inserted.iter().enumerate() {
        assert!(ins.created);
        let stored = s.job_get(ins.job.id).await.unwrap().unwrap();
        assert_eq!(stored.payload.get(), format!(r#"{{"i": {i}}}"#), "job {i}");
        assert_eq!(stored.priority, i as i32 % 7);
        assert_eq!(stored.tags, vec![format!("t{i}")]);
        assert_eq!(stored.queue, ins.job.queue);
        assert_eq!(stored.state, ins.job.state);
        assert_eq!(stored.created_at, ins.job.created_at);
        assert_eq!(stored.scheduled_at, ins.job.scheduled_at);
    }
    let ids: Vec<i64> = inserted.iter().map(|i| i.job.id.0).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in request order");
    assert_eq!(inserted[70].job.state, JobState::Scheduled);
}
