//! `serve` stops promptly: waits in flight answer at once instead of holding the shutdown.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::{Reply, TestServer, events::Events};

#[tokio::test]
async fn shutdown_ends_long_polls_and_streams_at_once() {
    let mut s = TestServer::start().await;
    let id = s.enqueue("idle", json!(1)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetch =
        tokio::spawn(Reply::from(s.http.post(s.url("/v1/fetch")).body(
            r#"{"queues": ["empty"], "worker_id": "w", "wait_ms": 120000}"#,
        )));
    let hybrid = tokio::spawn(Reply::from(
        s.http
            .post(s.url("/v1/queues/idle/jobs"))
            .header("prefer", "wait=120")
            .body(r#"{"payload": 2}"#),
    ));
    let get = tokio::spawn(Reply::from(
        s.http
            .get(s.url(&format!("/v1/jobs/{id}")))
            .header("prefer", "wait=120"),
    ));
    let res = s
        .http
        .get(s.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    let mut events = Events::new(res);
    assert_eq!(events.next().await.unwrap().0, "available");
    // Let the requests reach their waits.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    s.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    let fetch = fetch.await.unwrap();
    assert_eq!(fetch.status, StatusCode::OK);
    assert_eq!(fetch.json(), json!({"jobs": []}));
    assert_eq!(hybrid.await.unwrap().status, StatusCode::ACCEPTED);
    let get = get.await.unwrap();
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.json()["state"], "available");
    assert!(events.next().await.is_none());
}
