//! Enqueue (plain, idempotent, hybrid, batch), get, list, cancel, retry.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Reply, TestServer};

#[tokio::test]
async fn enqueue_answers_201_with_the_job_and_its_location() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/v1/queues/emails/jobs",
            json!({"payload": {"to": "ada"}, "priority": 10, "tags": ["welcome"],
                   "metadata": {"k": "v"}, "max_attempts": 3}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let job = r.json();
    let id = job["id"].as_str().unwrap();
    assert_eq!(r.location(), Some(format!("/v1/jobs/{id}").as_str()));
    assert_eq!(job["queue"], "emails");
    assert_eq!(job["state"], "available");
    assert_eq!(job["payload"], json!({"to": "ada"}));
    assert_eq!(job["priority"], 10);
    assert_eq!(job["attempt"], 0);
    assert_eq!(job["max_attempts"], 3);
    assert_eq!(job["tags"], json!(["welcome"]));
    assert_eq!(job["metadata"], json!({"k": "v"}));
    assert_eq!(job["cancel_requested"], false);
    assert_eq!(job["errors"], json!([]));
    for field in [
        "created_at",
        "scheduled_at",
        "started_at",
        "finished_at",
        "result",
        "idempotency_key",
        "ordering_key",
        "progress",
    ] {
        assert!(job.get(field).is_some(), "{field} missing from {job}");
    }
    assert!(job.get("lease_token").is_none());

    let got = s.get(&format!("/v1/jobs/{id}")).await;
    assert_eq!(got.status, StatusCode::OK);
    let mut got = got.json();
    // A read also says why the job is not running (tests/http/operator.rs).
    assert_eq!(got["waiting_reason"]["kind"], "no_worker", "{got}");
    got.as_object_mut().unwrap().remove("waiting_reason");
    assert_eq!(got, job);
}

#[tokio::test]
async fn an_idempotent_repeat_answers_200_with_the_same_job() {
    let s = TestServer::start().await;
    let body = json!({"payload": 1, "idempotency_key": "order-7"});
    let first = s.post("/v1/queues/q/jobs", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = s.post("/v1/queues/q/jobs", body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["id"], first.json()["id"]);
}

#[tokio::test]
async fn a_unicode_payload_round_trips_byte_for_byte() {
    let s = TestServer::start().await;
    let payload = r#"{"s":"héllo 🐝 \u00e9","n":1.50}"#;
    let r = s
        .post_raw("/v1/queues/q/jobs", format!(r#"{{"payload": {payload}}}"#))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(
        r.text.contains(&format!(r#""payload":{payload}"#)),
        "{}",
        r.text
    );
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let got = s.get(&format!("/v1/jobs/{id}")).await;
    assert!(
        got.text.contains(&format!(r#""payload":{payload}"#)),
        "{}",
        got.text
    );
}

/// Leases the next job of `queue` (waiting for it) and completes it with `result`.
async fn work_one(s: &TestServer, queue: &str, result: Value) {
    let r = s
        .post(
            "/v1/fetch",
            json!({"queues": [queue], "worker_id": "w", "wait_ms": 10_000}),
        )
        .await;
    let job = r.json()["jobs"][0].clone();
    let id = job["id"].as_str().unwrap();
    let done = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": job["lease_token"], "result": result}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
}

#[tokio::test]
async fn hybrid_answers_200_with_the_result_when_the_job_finishes_in_time() {
    let s = TestServer::start().await;
    let (r, ()) = tokio::join!(
        Reply::from(
            s.http
                .post(s.url("/v1/queues/thumbs/jobs"))
                .header("prefer", "respond-async, wait=10")
                .body(r#"{"payload": {"image": "cat.png"}}"#)
        ),
        work_one(&s, "thumbs", json!({"w": 64}))
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("preference-applied"), Some("wait=10"));
    let job = r.json();
    assert_eq!(job["state"], "completed");
    assert_eq!(job["result"], json!({"w": 64}));

    // An idempotent repeat of a finished job answers at once.
    let body = r#"{"payload": 1, "idempotency_key": "k"}"#;
    let (first, ()) = tokio::join!(
        Reply::from(
            s.http
                .post(s.url("/v1/queues/thumbs/jobs?wait_ms=10000"))
                .body(body)
        ),
        work_one(&s, "thumbs", json!("ok"))
    );
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let started = Instant::now();
    let again = Reply::from(
        s.http
            .post(s.url("/v1/queues/thumbs/jobs"))
            .header("prefer", "wait=10")
            .body(body),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn hybrid_answers_202_with_a_location_when_time_runs_out() {
    let s = TestServer::start().await;
    let started = Instant::now();
    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/slow/jobs?wait_ms=300"))
            .header("prefer", "wait=100")
            .body(r#"{"payload": 1}"#),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the query wins over Prefer"
    );
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.header("preference-applied"), None);
    let job = r.json();
    assert_eq!(job["state"], "available");
    let id = job["id"].as_str().unwrap();
    assert_eq!(r.location(), Some(format!("/v1/jobs/{id}").as_str()));

    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/slow/jobs"))
            .header("prefer", "wait=0.2")
            .body(r#"{"payload": 2}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.header("preference-applied"), Some("wait=0.2"));
}

#[tokio::test]
async fn hybrid_waits_are_capped() {
    let s = TestServer::start().await;
    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/q/jobs?wait_ms=300001"))
            .body(r#"{"payload": 1}"#),
    )
    .await;
    r.invalid_field("wait_ms");
    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/q/jobs"))
            .header("prefer", "wait=301")
            .body(r#"{"payload": 1}"#),
    )
    .await;
    r.invalid_field("Prefer");
    assert_eq!(
        s.get("/v1/queues/q").await.status,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
}

#[tokio::test]
async fn get_with_prefer_wait_long_polls_until_terminal() {
    let s = TestServer::start().await;
    let id = s.enqueue("lp", json!(1)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let (r, ()) = tokio::join!(
        Reply::from(
            s.http
                .get(s.url(&format!("/v1/jobs/{id}")))
                .header("prefer", "wait=10")
        ),
        work_one(&s, "lp", json!(true))
    );
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "completed");
    assert_eq!(r.header("preference-applied"), Some("wait=10"));
    assert!(started.elapsed() < Duration::from_secs(8));

    // Not finished in time: the job as it is.
    let id = s.enqueue("lp", json!(2)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = Reply::from(
        s.http
            .get(s.url(&format!("/v1/jobs/{id}")))
            .header("prefer", "wait=0.2"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["state"], "available");
}

#[tokio::test]
async fn batch_enqueue_is_all_or_nothing() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/v1/queues/b/jobs/batch",
            json!({"jobs": [{"payload": 1}, {"payload": 2, "priority": 5}, {"payload": 3}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let jobs = r.json()["jobs"].as_array().unwrap().clone();
    let payloads: Vec<_> = jobs.iter().map(|j| j["payload"].clone()).collect();
    assert_eq!(payloads, vec![json!(1), json!(2), json!(3)]);
    assert_eq!(jobs[1]["priority"], 5);

    let r = s
        .post(
            "/v1/queues/b2/jobs/batch",
            json!({"jobs": [{"payload": 1}, {"payload": 2}, {"payload": 3, "priority": 101}]}),
        )
        .await;
    r.invalid_field("jobs[2].priority");
    let r = s
        .post(
            "/v1/queues/b2/jobs/batch",
            json!({"jobs": [{"payload": 1}, {"payload": 2, "priority": "high"}]}),
        )
        .await;
    r.invalid_field("jobs[1].priority");
    assert_eq!(s.get("/v1/queues/b2").await.status, StatusCode::NOT_FOUND);

    s.post("/v1/queues/b2/jobs/batch", json!({"jobs": []}))
        .await
        .invalid_field("jobs");
}

#[tokio::test]
async fn list_pages_newest_first_with_a_cursor() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            s.enqueue("pages", json!(i)).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    s.enqueue("other", json!("x")).await;
    ids.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut path = "/v1/jobs?queue=pages&limit=3".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let page = r.json();
        pages += 1;
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_owned()),
        );
        match &page["next_cursor"] {
            Value::String(c) => cursor = Some(c.clone()),
            Value::Null => break,
            other => panic!("next_cursor {other}"),
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    let all = s.get("/v1/jobs").await.json();
    assert_eq!(all["jobs"].as_array().unwrap().len(), 8);
    assert_eq!(all["next_cursor"], Value::Null);
}

#[tokio::test]
async fn list_filters_by_state_and_tag() {
    let s = TestServer::start().await;
    s.post("/v1/queues/f/jobs", json!({"payload": 1, "tags": ["red"]}))
        .await;
    s.post("/v1/queues/f/jobs", json!({"payload": 2, "tags": ["blue"]}))
        .await;
    s.fetch("f", 1).await;
    let running = s.get("/v1/jobs?queue=f&state=running").await.json();
    assert_eq!(running["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(running["jobs"][0]["payload"], 1);
    let blue = s.get("/v1/jobs?tag=blue").await.json();
    assert_eq!(blue["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(blue["jobs"][0]["payload"], 2);
}

#[tokio::test]
async fn list_rejects_bad_filters_naming_the_field() {
    let s = TestServer::start().await;
    s.get("/v1/jobs?state=sleeping")
        .await
        .invalid_field("state");
    s.get("/v1/jobs?cursor=not-a-cursor")
        .await
        .invalid_field("cursor");
    s.get("/v1/jobs?limit=1001").await.invalid_field("limit");
    s.get("/v1/jobs?limit=0").await.invalid_field("limit");
    s.get("/v1/jobs?limit=ten").await.invalid_field("limit");
    s.get("/v1/jobs?queue=bad%20name")
        .await
        .invalid_field("queue");
}

#[tokio::test]
async fn cancel_and_retry_follow_the_state_rules() {
    let s = TestServer::start().await;
    let id = s.enqueue("c", json!(1)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.post_raw(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["state"], "cancelled");
    s.post_raw(&format!("/v1/jobs/{id}/cancel"), "")
        .await
        .problem(409, "conflict");

    let r = s.post_raw(&format!("/v1/jobs/{id}/retry"), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["state"], "available");
    s.post_raw(&format!("/v1/jobs/{id}/retry"), "")
        .await
        .problem(409, "conflict");

    // A running job only gets cancel_requested.
    let job = s.fetch("c", 1).await.remove(0);
    let id = job["id"].as_str().unwrap();
    let r = s.post_raw(&format!("/v1/jobs/{id}/cancel"), "").await;
    assert_eq!(r.json()["state"], "running");
    assert_eq!(r.json()["cancel_requested"], true);
}
