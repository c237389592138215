//! Fetch (long-poll), heartbeat, complete, fail, acks, and the lease fence.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn a_long_poll_fetch_is_woken_by_an_enqueue() {
    let s = TestServer::start().await;
    let started = Instant::now();
    let (r, enqueued) = tokio::join!(
        s.post(
            "/v1/fetch",
            json!({"queues": ["lp"], "worker_id": "w1", "wait_ms": 20_000}),
        ),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            s.enqueue("lp", json!({"n": 1})).await
        }
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the timeout, not the enqueue"
    );
    let jobs = r.json()["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["id"], enqueued["id"]);
    assert_eq!(jobs[0]["state"], "running");
    assert_eq!(jobs[0]["attempt"], 1);
    assert_eq!(jobs[0]["worker_id"], "w1");
    assert!(
        jobs[0]["lease_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    // Nothing there and no wait: an empty answer at once.
    assert!(s.fetch("lp", 5).await.is_empty());
}

/// `"brief": true` answers each job with what a worker runs it with, and only that: the
/// payload byte for byte, the attempt, the options a handler sees, the lease token.
#[tokio::test]
async fn a_brief_fetch_answers_only_what_a_worker_runs_a_job_with() {
    let s = TestServer::start().await;
    let with_options = s
        .post(
            "/v1/queues/brief/jobs",
            json!({"payload": {"to": "a@b.c"}, "timeout_ms": 1500, "metadata": {"tenant": "acme"},
                   "tags": ["t"], "priority": 5}),
        )
        .await;
    assert_eq!(
        with_options.status,
        StatusCode::CREATED,
        "{}",
        with_options.text
    );
    let plain = s.enqueue("brief", json!([1, 2])).await;

    let r = s
        .post(
            "/v1/fetch",
            json!({"queues": ["brief"], "worker_id": "w1", "max_jobs": 2, "brief": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let jobs = r.json()["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2);
    let keys = |job: &serde_json::Value| {
        let mut keys: Vec<String> = job.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    assert_eq!(
        keys(&jobs[0]),
        [
            "attempt",
            "id",
            "lease_token",
            "metadata",
            "payload",
            "queue",
            "timeout_ms"
        ]
    );
    assert_eq!(jobs[0]["id"], with_options.json()["id"]);
    assert_eq!(jobs[0]["queue"], "brief");
    assert_eq!(jobs[0]["payload"], json!({"to": "a@b.c"}));
    assert_eq!(jobs[0]["attempt"], 1);
    assert_eq!(jobs[0]["timeout_ms"], 1500);
    assert_eq!(jobs[0]["metadata"], json!({"tenant": "acme"}));
    // No options: nothing to say about them.
    assert_eq!(
        keys(&jobs[1]),
        ["attempt", "id", "lease_token", "payload", "queue"]
    );
    assert_eq!(jobs[1]["id"], plain["id"]);
    assert_eq!(jobs[1]["payload"], json!([1, 2]));

    // The lease is the one stored: the brief token completes the job.
    let id = jobs[1]["id"].as_str().unwrap();
    let done = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": jobs[1]["lease_token"]}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);

    let wrong = s
        .post(
            "/v1/fetch",
            json!({"queues": ["brief"], "worker_id": "w1", "brief": "yes"}),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.text
    );
    assert!(wrong.text.contains("brief"), "{}", wrong.text);
}

#[tokio::test]
async fn heartbeat_then_complete() {
    let s = TestServer::start().await;
    s.enqueue("w", json!(1)).await;
    let job = s.fetch("w", 1).await.remove(0);
    let (id, token) = (job["id"].as_str().unwrap(), &job["lease_token"]);

    let hb = s
        .post(
            &format!("/v1/jobs/{id}/heartbeat"),
            json!({"lease_token": token, "lease_ms": 60_000, "progress": {"pct": 50}}),
        )
        .await;
    assert_eq!(hb.status, StatusCode::OK, "{}", hb.text);
    let hb = hb.json();
    assert_eq!(hb["cancel_requested"], false);
    // RFC 3339, and the lease now runs about a minute from now (the default was 30 s).
    let expires: jiff::Timestamp = hb["lease_expires_at"].as_str().unwrap().parse().unwrap();
    let ahead = expires.duration_since(jiff::Timestamp::now());
    assert!(ahead > jiff::SignedDuration::from_secs(45), "{hb}");
    assert_eq!(
        s.get(&format!("/v1/jobs/{id}")).await.json()["progress"],
        json!({"pct": 50})
    );

    let done = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": token, "result": {"ok": true}}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let done = done.json();
    assert_eq!(done["state"], "completed");
    assert_eq!(done["result"], json!({"ok": true}));
    assert!(done["finished_at"].is_string());

    // The same token again: the lease is gone.
    s.post(
        &format!("/v1/jobs/{id}/heartbeat"),
        json!({"lease_token": token}),
    )
    .await
    .problem(409, "lease-lost");
}

#[tokio::test]
async fn fail_retries_or_buries_the_job() {
    let s = TestServer::start().await;
    s.post(
        "/v1/queues/f/jobs",
        json!({"payload": 1, "max_attempts": 5}),
    )
    .await;
    let job = s.fetch("f", 1).await.remove(0);
    let id = job["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": job["lease_token"], "error": {"message": "SMTP timeout", "code": 421},
                   "retry_in_ms": 60_000}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let failed = r.json();
    assert_eq!(failed["state"], "retryable");
    assert_eq!(failed["errors"][0]["message"], "SMTP timeout");
    assert_eq!(failed["errors"][0]["attempt"], 1);
    assert_eq!(failed["errors"][0]["code"], 421);

    s.enqueue("f", json!(2)).await;
    let job = s.fetch("f", 1).await.remove(0);
    let id = job["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": job["lease_token"], "error": {"message": "bad address"}, "retry": false}),
        )
        .await;
    assert_eq!(r.json()["state"], "dead");
}

#[tokio::test]
async fn a_stale_lease_token_gets_409_and_changes_nothing() {
    let s = TestServer::start().await;
    s.enqueue("fence", json!(1)).await;
    let job = s.fetch("fence", 1).await.remove(0);
    let id = job["id"].as_str().unwrap();
    for (path, body) in [
        (
            "complete",
            json!({"lease_token": "stale", "result": "overwrite"}),
        ),
        (
            "fail",
            json!({"lease_token": "stale", "error": {"message": "x"}}),
        ),
        ("heartbeat", json!({"lease_token": "stale"})),
    ] {
        let r = s.post(&format!("/v1/jobs/{id}/{path}"), body).await;
        r.problem(409, "lease-lost");
    }
    let now = s.get(&format!("/v1/jobs/{id}")).await.json();
    assert_eq!(now["state"], "running");
    assert_eq!(now["attempt"], 1);
    assert_eq!(now["result"], serde_json::Value::Null);
    assert_eq!(now["errors"], json!([]));
    assert_eq!(now["lease_expires_at"], job["lease_expires_at"]);
}

#[tokio::test]
async fn acks_answer_what_each_single_call_would_have() {
    let s = TestServer::start().await;
    for i in 0..3 {
        s.enqueue("acks", json!(i)).await;
    }
    let jobs = s.fetch("acks", 3).await;
    assert_eq!(jobs.len(), 3);
    let r = s
        .post(
            "/v1/acks",
            json!({"acks": [
                {"id": jobs[0]["id"], "lease_token": jobs[0]["lease_token"], "result": 1},
                {"id": jobs[1]["id"], "lease_token": jobs[1]["lease_token"],
                 "error": {"message": "no"}, "retry": false},
                {"id": jobs[2]["id"], "lease_token": "stale"},
                {"id": "0000000000zzz", "lease_token": "t"},
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let results = r.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 4);
    assert_eq!(
        results[0],
        json!({"id": jobs[0]["id"], "status": 200, "state": "completed"})
    );
    assert_eq!(
        results[1],
        json!({"id": jobs[1]["id"], "status": 200, "state": "dead"})
    );
    assert_eq!(results[2]["status"], 409);
    assert!(results[2]["error"].is_string());
    assert_eq!(results[3]["status"], 404);
    assert_eq!(results[3]["id"], "0000000000zzz");

    s.post(
        "/v1/acks",
        json!({"acks": [{"id": "nope", "lease_token": "t"}]}),
    )
    .await
    .invalid_field("acks[0].id");
}

#[tokio::test]
async fn fetch_rejects_bad_requests_naming_the_field() {
    let s = TestServer::start().await;
    s.post("/v1/fetch", json!({"queues": [], "worker_id": "w"}))
        .await
        .invalid_field("queues");
    s.post("/v1/fetch", json!({"queues": ["q"]}))
        .await
        .invalid_field("worker_id");
    s.post(
        "/v1/fetch",
        json!({"queues": ["q"], "worker_id": "w", "max_jobs": 0}),
    )
    .await
    .invalid_field("max_jobs");
    s.post(
        "/v1/fetch",
        json!({"queues": ["q"], "worker_id": "w", "wait_ms": 300_001}),
    )
    .await
    .invalid_field("wait_ms");
    s.post(
        "/v1/fetch",
        json!({"queues": ["bad name"], "worker_id": "w"}),
    )
    .await
    .invalid_field("queues[0]");
}

#[tokio::test]
async fn release_hands_a_job_back_and_a_stale_token_gets_409() {
    let s = TestServer::start().await;
    s.enqueue("rel", json!(1)).await;
    let job = s.fetch("rel", 1).await.remove(0);
    let (id, token) = (job["id"].as_str().unwrap(), &job["lease_token"]);

    let released = s
        .post(
            &format!("/v1/jobs/{id}/release"),
            json!({"lease_token": token}),
        )
        .await;
    assert_eq!(released.status, StatusCode::OK, "{}", released.text);
    let released = released.json();
    assert_eq!(released["state"], "available");
    assert_eq!(released["attempt"], 0);
    assert_eq!(released["errors"], json!([]));

    let again = s
        .post(
            &format!("/v1/jobs/{id}/release"),
            json!({"lease_token": token}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text);
    assert_eq!(s.fetch("rel", 1).await[0]["attempt"], 1);
}

/// The acknowledgement that finishes a hybrid call's job wakes the call; the call's answer goes
/// out first, as its caller is waiting and the worker only needs its answer to free its next
/// batch. On one thread both answers are written, and read, in the server's order.
#[tokio::test]
async fn a_hybrid_call_is_answered_before_the_ack_that_finished_its_job() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let worker = {
        let (s, order) = (s.clone(), order.clone());
        tokio::spawn(async move {
            let fetched = s
                .post(
                    "/v1/fetch",
                    json!({"queues": ["hy"], "worker_id": "w1", "wait_ms": 20_000}),
                )
                .await;
            let job = fetched.json()["jobs"][0].clone();
            let ack = s
                .post(
                    "/v1/acks",
                    json!({"acks": [{"id": job["id"], "lease_token": job["lease_token"], "result": 2}]}),
                )
                .await;
            order.lock().unwrap().push("ack");
            assert_eq!(ack.status, StatusCode::OK, "{}", ack.text);
        })
    };
    // The fetch parks first, so the call's job is handed to it.
    tokio::time::timeout(Duration::from_secs(10), async {
        while s.engine.waiting_fetchers("hy") != 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the worker's fetch parked");
    let call = {
        let (s, order) = (s.clone(), order.clone());
        tokio::spawn(async move {
            let r = s
                .post("/v1/queues/hy/jobs?wait_ms=20000", json!({"payload": 1}))
                .await;
            order.lock().unwrap().push("call");
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            assert_eq!(r.json()["result"], 2);
        })
    };
    worker.await.unwrap();
    call.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["call", "ack"]);
}
