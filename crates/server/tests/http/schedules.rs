//! Cron schedules over HTTP.

use reqwest::StatusCode;
use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn schedules_are_created_listed_replaced_and_deleted() {
    let s = TestServer::start().await;
    let body = json!({"cron": "0 9 * * 1-5", "timezone": "Europe/Amsterdam",
                      "queue": "reports", "payload": {"report": "daily"}, "priority": 5});
    let r = s.put("/v1/schedules/daily-report", body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let made = r.json();
    assert_eq!(made["cron"], "0 9 * * 1-5");
    assert_eq!(made["timezone"], "Europe/Amsterdam");
    assert_eq!(made["priority"], 5);
    assert_eq!(made["payload"], json!({"report": "daily"}));
    let next = made["next_fire_times"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    assert!(made["last_tick_at"].is_null());

    assert_eq!(
        s.put("/v1/schedules/daily-report", body).await.status,
        StatusCode::OK
    );
    let one = s.get("/v1/schedules/daily-report").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["next_fire_times"], made["next_fire_times"]);
    let list = s.get("/v1/schedules").await.json();
    assert_eq!(list["schedules"].as_array().unwrap().len(), 1);

    assert_eq!(
        s.delete("/v1/schedules/daily-report").await.status,
        StatusCode::NO_CONTENT
    );
    s.get("/v1/schedules/daily-report")
        .await
        .problem(404, "not-found");
    s.delete("/v1/schedules/daily-report")
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn a_per_second_schedule_enqueues_jobs() {
    let s = TestServer::start().await;
    let r = s
        .put(
            "/v1/schedules/tick",
            json!({"cron": "* * * * * *", "queue": "ticks", "payload": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let got = s
        .post(
            "/v1/fetch",
            json!({"queues": ["ticks"], "worker_id": "w", "wait_ms": 10_000}),
        )
        .await
        .json();
    let job = &got["jobs"][0];
    assert_eq!(job["metadata"]["schedule"], "tick", "{got}");
    assert!(
        job["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("schedule:tick:")
    );
}

#[tokio::test]
async fn bad_schedules_name_the_field() {
    let s = TestServer::start().await;
    let path = "/v1/schedules/s";
    let ok = json!({"cron": "* * * * *", "queue": "q", "payload": {}});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    s.put(path, with("cron", json!("every day")))
        .await
        .invalid_field("cron");
    s.put(path, with("timezone", json!("Atlantis/Capital")))
        .await
        .invalid_field("timezone");
    s.put(path, with("queue", json!("no spaces")))
        .await
        .invalid_field("queue");
    s.put(path, with("max_attempts", json!(0)))
        .await
        .invalid_field("max_attempts");
    s.put(path, json!({"cron": "* * * * *", "queue": "q"}))
        .await
        .problem(422, "invalid-field");
    assert_eq!(
        s.get("/v1/schedules").await.json(),
        json!({"schedules": []})
    );
}
