//! Queues: list, one queue, pause/resume, DLQ replay.

use reqwest::StatusCode;
use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn queues_show_counts_per_state() {
    let s = TestServer::start().await;
    s.enqueue("emails", json!(1)).await;
    s.enqueue("emails", json!(2)).await;
    s.fetch("emails", 1).await;
    s.enqueue("sms", json!(3)).await;

    let r = s.get("/v1/queues").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let queues = r.json()["queues"].as_array().unwrap().clone();
    let emails = queues.iter().find(|q| q["name"] == "emails").unwrap();
    assert_eq!(emails["paused"], false);
    assert_eq!(
        emails["counts"],
        json!({"scheduled": 0, "available": 1, "running": 1, "retryable": 0,
               "completed": 0, "dead": 0, "cancelled": 0})
    );
    assert!(emails["oldest_available_age_ms"].is_u64());
    assert!(queues.iter().any(|q| q["name"] == "sms"));

    let one = s.get("/v1/queues/emails").await;
    assert_eq!(one.status, StatusCode::OK);
    let one = one.json();
    assert_eq!(one["name"], "emails");
    assert_eq!(one["counts"], emails["counts"]);
    assert!(one["oldest_available_age_ms"].is_u64());
}

#[tokio::test]
async fn unknown_and_badly_named_queues() {
    let s = TestServer::start().await;
    s.get("/v1/queues/nope").await.problem(404, "not-found");
    s.post_raw("/v1/queues/nope/pause", "")
        .await
        .problem(404, "not-found");
    s.post_raw("/v1/queues/nope/resume", "")
        .await
        .problem(404, "not-found");
    s.post_raw("/v1/queues/nope/dead/retry", "")
        .await
        .problem(404, "not-found");
    s.get("/v1/queues/bad%20name").await.invalid_field("queue");
    s.post("/v1/queues/bad%21/jobs", json!({"payload": 1}))
        .await
        .invalid_field("queue");
}

#[tokio::test]
async fn a_paused_queue_accepts_jobs_but_hands_none_out() {
    let s = TestServer::start().await;
    s.enqueue("p", json!(1)).await;
    let r = s.post_raw("/v1/queues/p/pause", "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json()["paused"], true);
    assert_eq!(r.json()["name"], "p");
    s.enqueue("p", json!(2)).await;
    assert!(s.fetch("p", 10).await.is_empty());

    let r = s.post_raw("/v1/queues/p/resume", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["paused"], false);
    assert_eq!(s.fetch("p", 10).await.len(), 2);
}

#[tokio::test]
async fn the_dead_letter_queue_replays() {
    let s = TestServer::start().await;
    for tag in ["a", "a", "b"] {
        s.post("/v1/queues/d/jobs", json!({"payload": 1, "tags": [tag]}))
            .await;
    }
    for job in s.fetch("d", 3).await {
        let r = s
            .post(
                &format!("/v1/jobs/{}/fail", job["id"].as_str().unwrap()),
                json!({"lease_token": job["lease_token"], "error": {"message": "x"}, "retry": false}),
            )
            .await;
        assert_eq!(r.json()["state"], "dead");
    }
    let r = s.post("/v1/queues/d/dead/retry", json!({"tag": "b"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json(), json!({"retried": 1}));
    let r = s.post_raw("/v1/queues/d/dead/retry", "").await;
    assert_eq!(r.json(), json!({"retried": 2}));
    let r = s.post_raw("/v1/queues/d/dead/retry", "").await;
    assert_eq!(r.json(), json!({"retried": 0}));
    s.post("/v1/queues/d/dead/retry", json!({"limit": "all"}))
        .await
        .invalid_field("limit");
}
