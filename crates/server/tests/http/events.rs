//! Server-Sent Events of one job's state changes.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::TestServer;

/// Reads SSE events off a response, one at a time.
pub struct Events {
    // reqwest and axum share the `bytes` crate's `Bytes`.
    body: futures::stream::BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    buf: String,
}

impl Events {
    pub fn new(res: reqwest::Response) -> Events {
        Events {
            body: res.bytes_stream().boxed(),
            buf: String::new(),
        }
    }

    /// The next `(event, data)`, or `None` when the stream ends.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut event = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(e) = line.strip_prefix("event:") {
                        event = Some(e.trim().to_owned());
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if let Some(event) = event {
                    return Some((event, serde_json::from_str(&data).unwrap()));
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("no SSE event within 10 s")?
                .unwrap();
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

#[tokio::test]
async fn events_follow_a_job_to_its_end_then_close() {
    let s = TestServer::start().await;
    let id = s.enqueue("sse", json!({"n": 1})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = s
        .http
        .get(s.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut events = Events::new(res);

    let (event, job) = events.next().await.unwrap();
    assert_eq!(
        (event.as_str(), &job["state"]),
        ("available", &json!("available"))
    );
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["payload"], json!({"n": 1}));

    let leased = s.fetch("sse", 1).await.remove(0);
    let (event, job) = events.next().await.unwrap();
    assert_eq!(event, "running");
    assert_eq!(job["attempt"], 1);
    assert!(
        job.get("lease_token").is_none(),
        "the token stays with the worker"
    );

    // A heartbeat changes no state: no event.
    s.post(
        &format!("/v1/jobs/{id}/heartbeat"),
        json!({"lease_token": leased["lease_token"]}),
    )
    .await;
    let r = s
        .post(
            &format!("/v1/jobs/{id}/complete"),
            json!({"lease_token": leased["lease_token"], "result": "done"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let (event, job) = events.next().await.unwrap();
    assert_eq!(event, "completed");
    assert_eq!(job["result"], "done");
    assert!(
        events.next().await.is_none(),
        "the stream closes after a terminal state"
    );
}

#[tokio::test]
async fn events_of_a_finished_job_close_after_one_event() {
    let s = TestServer::start().await;
    let id = s.enqueue("sse", json!(1)).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.post_raw(&format!("/v1/jobs/{id}/cancel"), "").await;
    let res = s
        .http
        .get(s.url(&format!("/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    let mut events = Events::new(res);
    assert_eq!(events.next().await.unwrap().0, "cancelled");
    assert!(events.next().await.is_none());
}
