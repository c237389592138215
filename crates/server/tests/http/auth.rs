//! API keys guard `/v1`; `/healthz` stays open.

use buzzer_server::ServerConfig;
use reqwest::StatusCode;

use crate::{Reply, TestServer};

#[tokio::test]
async fn v1_needs_a_listed_bearer_key() {
    let s = TestServer::start_with(ServerConfig {
        api_keys: vec!["first".into(), "s3cret".into()],
        ..ServerConfig::default()
    })
    .await;

    let r = s.get("/v1/queues").await;
    r.problem(401, "unauthorized");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));

    let r = Reply::from(s.http.get(s.url("/v1/queues")).bearer_auth("wrong")).await;
    r.problem(401, "unauthorized");
    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/q/jobs"))
            .body(r#"{"payload":1}"#),
    )
    .await;
    r.problem(401, "unauthorized");

    let r = Reply::from(s.http.get(s.url("/v1/queues")).bearer_auth("s3cret")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = Reply::from(
        s.http
            .post(s.url("/v1/queues/q/jobs"))
            .bearer_auth("first")
            .body(r#"{"payload":1}"#),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let r = s.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
}
