//! Bad input: every answer is problem+json with the right status, never a 500.

use axum::{body::Body, http::Request};
use buzzer_server::{ServerConfig, router};
use reqwest::StatusCode;
use serde_json::json;
use tower::ServiceExt;

use crate::TestServer;

#[tokio::test]
async fn an_oversized_body_gets_413() {
    let config = ServerConfig {
        max_body: 1024,
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(config.clone()).await;
    let big = format!(r#"{{"payload": "{}"}}"#, "x".repeat(4096));
    s.post_raw("/v1/queues/q/jobs", big.clone())
        .await
        .problem(413, "payload-too-large");
    // Just under the limit is fine.
    let fits = format!(r#"{{"payload": "{}"}}"#, "x".repeat(1000));
    assert_eq!(
        s.post_raw("/v1/queues/q/jobs", fits).await.status,
        StatusCode::CREATED
    );

    // A chunked body declares no length: the limit holds while reading.
    let chunks: Vec<Result<String, std::io::Error>> = (0..8).map(|_| Ok("x".repeat(512))).collect();
    let req = Request::post("/v1/queues/q/jobs")
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let res = router(s.engine.clone(), config).oneshot(req).await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn malformed_json_gets_400_naming_the_position() {
    let s = TestServer::start().await;
    let p = s
        .post_raw("/v1/queues/q/jobs", "{\"payload\": {\"a\": 1,}")
        .await
        .problem(400, "invalid-body");
    assert!(
        p["detail"].as_str().unwrap().contains("line 1 column"),
        "{p}"
    );
    s.post_raw("/v1/queues/q/jobs", "")
        .await
        .problem(400, "invalid-body");
    s.post_raw("/v1/queues/q/jobs", "[1]")
        .await
        .problem(400, "invalid-body");
    s.post_raw("/v1/fetch", "{\"queues\": [\"q\"],")
        .await
        .problem(400, "invalid-body");
}

#[tokio::test]
async fn invalid_fields_get_422_naming_the_field() {
    let s = TestServer::start().await;
    let p = s
        .post("/v1/queues/q/jobs", json!({"priority": 1}))
        .await
        .invalid_field("payload");
    assert_eq!(p["detail"], "payload: is required");
    let p = s
        .post("/v1/queues/q/jobs", json!({"payload": 1, "priority": 101}))
        .await
        .invalid_field("priority");
    assert_eq!(p["detail"], "priority: must be between -100 and 100");
    s.post(
        "/v1/queues/q/jobs",
        json!({"payload": 1, "priority": "high"}),
    )
    .await
    .invalid_field("priority");
    s.post("/v1/queues/q/jobs", json!({"payload": 1, "colour": "red"}))
        .await
        .invalid_field("colour");
    s.post(
        "/v1/queues/q/jobs",
        json!({"payload": 1, "backoff": {"factor": 0.5}}),
    )
    .await
    .invalid_field("backoff.factor");
    s.post(
        "/v1/queues/q/jobs",
        json!({"payload": 1, "backoff": {"speed": 2}}),
    )
    .await
    .invalid_field("backoff.speed");
    s.post(
        "/v1/queues/q/jobs",
        json!({"payload": 1, "run_at": "tomorrow"}),
    )
    .await
    .invalid_field("run_at");
    s.post("/v1/jobs/0000000000001/complete", json!({"result": 1}))
        .await
        .invalid_field("lease_token");
    s.post(
        "/v1/jobs/0000000000001/fail",
        json!({"lease_token": "t", "error": {"code": 1}}),
    )
    .await
    .invalid_field("error.message");
    assert_eq!(
        s.get("/v1/queues/q").await.status,
        StatusCode::NOT_FOUND,
        "nothing stored"
    );
}

#[tokio::test]
async fn unknown_things_get_404_and_wrong_methods_405() {
    let s = TestServer::start().await;
    let p = s
        .get("/v1/jobs/0000000000zzz")
        .await
        .problem(404, "not-found");
    assert_eq!(p["detail"], "job 0000000000zzz not found");
    let p = s.get("/v1/jobs/not-an-id").await.problem(404, "not-found");
    assert_eq!(p["detail"], "job not-an-id not found");
    s.get("/v1/jobs/not-an-id/events")
        .await
        .problem(404, "not-found");
    s.get("/v1/jobs/0000000000zzz/events")
        .await
        .problem(404, "not-found");
    s.post(
        "/v1/jobs/0000000000zzz/complete",
        json!({"lease_token": "t"}),
    )
    .await
    .problem(404, "not-found");
    s.post("/v1/jobs/not-an-id/heartbeat", json!({"lease_token": "t"}))
        .await
        .problem(404, "not-found");
    s.post_raw("/v1/jobs/0000000000zzz/cancel", "")
        .await
        .problem(404, "not-found");
    s.post_raw("/v1/jobs/0000000000zzz/retry", "")
        .await
        .problem(404, "not-found");
    s.get("/nowhere").await.problem(404, "not-found");
    s.get("/v1/nowhere").await.problem(404, "not-found");

    let r = s.get("/v1/fetch").await;
    r.problem(405, "method-not-allowed");
    assert_eq!(r.header("allow"), Some("POST"));
    let r = crate::Reply::from(s.http.put(s.url("/v1/jobs/0000000000001"))).await;
    r.problem(405, "method-not-allowed");
}
