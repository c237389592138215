//! Topics: subscriptions, secrets shown once, publishing.

use reqwest::StatusCode;
use serde_json::json;

use crate::TestServer;

#[tokio::test]
async fn publish_fans_out_to_queue_and_webhook_subscriptions() {
    let s = TestServer::start().await;
    let r = s
        .put(
            "/v1/topics/orders/subscriptions/email",
            json!({"queue": "emails"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json()["queue"], "emails");

    let r = s
        .put(
            "/v1/topics/orders/subscriptions/analytics",
            json!({"webhook": {"url": "https://analytics.example.com/in"},
                   "filter": {"status": "placed"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let made = r.json();
    let secret = made["webhook"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{made}");
    assert_eq!(made["delivery"]["failures_in_row"], 0);

    let read = s
        .get("/v1/topics/orders/subscriptions/analytics")
        .await
        .json();
    assert!(
        read["webhook"].get("secret").is_none(),
        "shown once: {read}"
    );
    assert_eq!(
        read["webhook"]["secret_prefix"],
        format!("{}…", &secret[..10])
    );

    let again = s
        .put(
            "/v1/topics/orders/subscriptions/email",
            json!({"queue": "emails"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "a replace is 200");

    let topics = s.get("/v1/topics").await.json();
    assert_eq!(
        topics,
        json!({"topics": [{"name": "orders", "subscriptions": 2}]})
    );
    let subs = s.get("/v1/topics/orders/subscriptions").await.json();
    let names: Vec<_> = subs["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["analytics", "email"]);
    assert_eq!(s.get("/v1/subscriptions").await.json(), subs);

    let r = s
        .post(
            "/v1/topics/orders/events",
            json!({"payload": {"order": 42, "status": "placed"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let published = r.json();
    assert_eq!(published["deliveries"], 2);
    let event_id = published["event_id"].as_str().unwrap();

    let emails = s.fetch("emails", 10).await;
    assert_eq!(emails.len(), 1);
    assert_eq!(
        emails[0]["payload"],
        json!({"order": 42, "status": "placed"})
    );
    assert_eq!(emails[0]["metadata"]["topic"], "orders");
    assert_eq!(emails[0]["metadata"]["event_id"], event_id);
    let hooks = s.fetch("buzzer:webhooks", 10).await;
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0]["metadata"]["subscription"], "analytics");

    // The filter holds back events that do not match.
    let r = s
        .post(
            "/v1/topics/orders/events",
            json!({"payload": {"order": 43, "status": "cancelled"}}),
        )
        .await;
    assert_eq!(r.json()["deliveries"], 1);

    assert_eq!(
        s.delete("/v1/topics/orders/subscriptions/analytics")
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    s.delete("/v1/topics/orders/subscriptions/analytics")
        .await
        .problem(404, "not-found");
    s.get("/v1/topics/orders/subscriptions/analytics")
        .await
        .problem(404, "not-found");
}

#[tokio::test]
async fn keyed_publish_repeats_answer_the_first_event() {
    let s = TestServer::start().await;
    s.put("/v1/topics/t/subscriptions/a", json!({"queue": "qa"}))
        .await;
    let body = json!({"payload": {"n": 1}, "idempotency_key": "order-1"});
    let first = s.post("/v1/topics/t/events", body.clone()).await;
    let second = s.post("/v1/topics/t/events", body).await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(first.json(), second.json());
    assert_eq!(s.fetch("qa", 10).await.len(), 1);

    let none = s
        .post("/v1/topics/nobody/events", json!({"payload": {}}))
        .await;
    assert_eq!(none.status, StatusCode::ACCEPTED);
    assert_eq!(none.json()["deliveries"], 0);
}

#[tokio::test]
async fn bad_subscriptions_and_publishes_name_the_field() {
    let s = TestServer::start().await;
    let path = "/v1/topics/t/subscriptions/s";
    s.put(path, json!({"webhook": {"url": "gopher://x.example/"}}))
        .await
        .invalid_field("webhook.url");
    s.put(
        path,
        json!({"webhook": {"url": "https://x.example/", "secret": "abc"}}),
    )
    .await
    .invalid_field("webhook.secret");
    s.put(
        path,
        json!({"queue": "q", "webhook": {"url": "https://x.example/"}}),
    )
    .await
    .invalid_field("webhook");
    s.put(path, json!({"queue": "q", "colour": "red"}))
        .await
        .problem(422, "invalid-field");
    s.put(path, json!({"queue": "q", "filter": {"a..b": 1}}))
        .await
        .invalid_field("filter.a..b");
    s.put(
        "/v1/topics/bad%20topic/subscriptions/s",
        json!({"queue": "q"}),
    )
    .await
    .invalid_field("topic");
    s.post("/v1/topics/t/events", json!({"idempotency_key": "k"}))
        .await
        .problem(422, "invalid-field");
    s.post(
        "/v1/topics/t/events",
        json!({"payload": 1, "idempotency_key": ""}),
    )
    .await
    .invalid_field("idempotency_key");
    assert_eq!(s.get("/v1/topics").await.json(), json!({"topics": []}));
}

#[tokio::test]
async fn private_webhook_addresses_need_the_flag() {
    let config = buzzer_server::ServerConfig {
        allow_private_webhooks: true,
        ..Default::default()
    };
    let s = TestServer::start_with(config).await;
    let r = s
        .put(
            "/v1/topics/t/subscriptions/local",
            json!({"webhook": {"url": "http://127.0.0.1:9/hook"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}
