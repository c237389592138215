//! Trace context on enqueue and fetch, "why isn't it running?" in `GET /v1/jobs/{id}`, and
//! `DELETE /v1/jobs/{id}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{Reply, TestServer};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TP2: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00";

async fn post_with_header(s: &TestServer, path: &str, traceparent: &str, body: Value) -> Reply {
    Reply::from(
        s.http
            .post(s.url(path))
            .header("traceparent", traceparent)
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn a_traceparent_field_or_header_is_stored_and_handed_to_the_worker() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/v1/queues/q/jobs",
            json!({"payload": 1, "traceparent": TP}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["traceparent"], TP);
    let by_field = r.json()["id"].as_str().unwrap().to_owned();

    let r = post_with_header(&s, "/v1/queues/q/jobs", TP2, json!({"payload": 2})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let by_header = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(r.json()["traceparent"], TP2);

    // The job's own field wins over the request's header.
    let r = post_with_header(
        &s,
        "/v1/queues/q/jobs",
        TP2,
        json!({"payload": 3, "traceparent": TP}),
    )
    .await;
    assert_eq!(r.json()["traceparent"], TP);

    let plain = s.enqueue("q", json!(4)).await;
    assert_eq!(plain["traceparent"], Value::Null);

    let got = s.get(&format!("/v1/jobs/{by_header}")).await.json();
    assert_eq!(got["traceparent"], TP2);

    let fetched = s.fetch("q", 10).await;
    let of = |id: &str| {
        fetched
            .iter()
            .find(|j| j["id"] == id)
            .map(|j| j["traceparent"].clone())
            .unwrap()
    };
    assert_eq!(of(&by_field), TP);
    assert_eq!(of(&by_header), TP2);
}

#[tokio::test]
async fn a_batch_takes_the_header_for_jobs_without_their_own() {
    let s = TestServer::start().await;
    let r = post_with_header(
        &s,
        "/v1/queues/q/jobs/batch",
        TP,
        json!({"jobs": [{"payload": 1}, {"payload": 2, "traceparent": TP2}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let jobs = r.json()["jobs"].clone();
    assert_eq!(jobs[0]["traceparent"], TP);
    assert_eq!(jobs[1]["traceparent"], TP2);
}

#[tokio::test]
async fn an_invalid_traceparent_is_422_naming_it_and_enqueues_nothing() {
    let s = TestServer::start().await;
    for bad in [
        "nope",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let r = s
            .post(
                "/v1/queues/q/jobs",
                json!({"payload": 1, "traceparent": bad}),
            )
            .await;
        r.invalid_field("traceparent");
        let r = post_with_header(&s, "/v1/queues/q/jobs", bad, json!({"payload": 1})).await;
        let p = r.invalid_field("traceparent");
        assert!(p["detail"].as_str().unwrap().contains("header"), "{p}");
    }
    let r = s
        .post(
            "/v1/queues/q/jobs/batch",
            json!({"jobs": [{"payload": 1}, {"payload": 2, "traceparent": "x"}]}),
        )
        .await;
    r.invalid_field("jobs[1].traceparent");
    assert_eq!(s.get("/v1/queues/q").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_publish_hands_its_traceparent_header_to_every_delivery() {
    let s = TestServer::start().await;
    let put = Reply::from(
        s.http
            .put(s.url("/v1/topics/orders/subscriptions/billing"))
            .json(&json!({"queue": "billing"})),
    )
    .await;
    assert!(put.status.is_success(), "{}", put.text);
    let r = post_with_header(
        &s,
        "/v1/topics/orders/events",
        TP,
        json!({"payload": {"id": 1}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let delivery = s.fetch("billing", 1).await.remove(0);
    assert_eq!(delivery["traceparent"], TP);

    let bad = post_with_header(
        &s,
        "/v1/topics/orders/events",
        "00-x",
        json!({"payload": 2}),
    )
    .await;
    bad.invalid_field("traceparent");
}

async fn reason(s: &TestServer, id: &Value) -> Value {
    let r = s.get(&format!("/v1/jobs/{}", id.as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json()["waiting_reason"].clone()
}

#[tokio::test]
async fn get_says_why_a_job_is_not_running() {
    let s = TestServer::start().await;
    let free = s.enqueue("q", json!(1)).await;
    let r = reason(&s, &free["id"]).await;
    assert_eq!(r["kind"], "no_worker", "{r}");
    assert!(r["message"].as_str().unwrap().contains("worker"), "{r}");

    let later = s
        .post(
            "/v1/queues/q/jobs",
            json!({"payload": 2, "delay_ms": 3_600_000}),
        )
        .await
        .json();
    let r = reason(&s, &later["id"]).await;
    assert_eq!(r["kind"], "scheduled", "{r}");
    assert_eq!(r["until"], later["scheduled_at"]);

    let leased = s.fetch("q", 1).await.remove(0);
    let r = reason(&s, &leased["id"]).await;
    assert_eq!(r["kind"], "leased", "{r}");
    assert_eq!(r["worker_id"], "w1");
    assert_eq!(r["lease_expires_at"], leased["lease_expires_at"]);
    assert!(r["message"].as_str().unwrap().contains("w1"), "{r}");

    let head = s
        .post(
            "/v1/queues/k/jobs",
            json!({"payload": 1, "ordering_key": "acct-1"}),
        )
        .await
        .json();
    let behind = s
        .post(
            "/v1/queues/k/jobs",
            json!({"payload": 2, "ordering_key": "acct-1"}),
        )
        .await
        .json();
    let r = reason(&s, &behind["id"]).await;
    assert_eq!(r["kind"], "ordering_key", "{r}");
    assert_eq!(r["ahead_job_id"], head["id"]);

    assert_eq!(
        s.post("/v1/queues/k/pause", json!({})).await.status,
        StatusCode::OK
    );
    let r = reason(&s, &head["id"]).await;
    assert_eq!(r["kind"], "queue_paused", "{r}");

    let token = leased["lease_token"].as_str().unwrap();
    let id = leased["id"].as_str().unwrap();
    let done = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": token}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let got = s.get(&format!("/v1/jobs/{id}")).await.json();
    assert!(got.get("waiting_reason").is_some(), "present, as null");
    assert_eq!(got["waiting_reason"], Value::Null);
}

#[tokio::test]
async fn delete_removes_a_job_but_not_a_running_one() {
    let s = TestServer::start().await;
    let job = s.enqueue("q", json!({"x": 1})).await;
    let id = job["id"].as_str().unwrap();
    let r = Reply::from(s.http.delete(s.url(&format!("/v1/jobs/{id}")))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["id"], job["id"]);
    assert_eq!(r.json()["state"], "available");
    s.get(&format!("/v1/jobs/{id}"))
        .await
        .problem(404, "not-found");
    let again = Reply::from(s.http.delete(s.url(&format!("/v1/jobs/{id}")))).await;
    again.problem(404, "not-found");

    s.enqueue("q", json!({"x": 2})).await;
    let running = s.fetch("q", 1).await.remove(0);
    let rid = running["id"].as_str().unwrap();
    let r = Reply::from(s.http.delete(s.url(&format!("/v1/jobs/{rid}")))).await;
    let p = r.problem(409, "conflict");
    assert!(
        p["detail"].as_str().unwrap().contains("cancel it first"),
        "{p}"
    );
    assert_eq!(
        s.get(&format!("/v1/jobs/{rid}")).await.json()["state"],
        "running"
    );

    let bad = Reply::from(s.http.delete(s.url("/v1/jobs/not-an-id"))).await;
    assert_eq!(bad.status.as_u16(), 404, "{}", bad.text);
}
