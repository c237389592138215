//! An embedded Buzzer delivers webhook subscriptions itself, with the server's address policy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use buzzer::{Buzzer, SubscriptionRequest};
use buzzer_store::JobList;
use buzzer_types::WEBHOOK_QUEUE;

#[tokio::test]
async fn a_webhook_subscription_is_delivered_from_the_embedded_engine() {
    let dir = tempfile::tempdir().unwrap();
    let buzzer = Buzzer::open(dir.path().join("jobs.db")).await.unwrap();
    let hook = SubscriptionRequest::webhook("http://127.0.0.1:9/hook");
    buzzer.subscribe("orders", "hook", hook).await.unwrap();
    let published = buzzer
        .publish("orders", &serde_json::json!({"order": 1}))
        .await
        .unwrap();
    assert_eq!(published.deliveries, 1);

    // The dispatcher leased the delivery and made an attempt, which the guard refused: an
    // embedded engine reaches public addresses only.
    let engine = buzzer.engine().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        let list = engine
            .list(JobList {
                queue: Some(WEBHOOK_QUEUE.into()),
                state: None,
                tag: None,
                before: None,
                limit: 10,
            })
            .await
            .unwrap();
        if let Some(job) = list.jobs.into_iter().find(|j| !j.errors.is_empty()) {
            break job;
        }
        assert!(Instant::now() < deadline, "no delivery attempt was made");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let message = &job.errors[0].message;
    assert!(message.starts_with("refused: "), "{message}");
    assert!(message.contains("loopback"), "{message}");
    // The attempt shows in the subscription's delivery health (recorded before the job's).
    let subs = buzzer.subscriptions(Some("orders")).await.unwrap();
    let health = subs[0].delivery.unwrap();
    assert!(health.failures_in_row >= 1, "{health:?}");
    assert_eq!(health.last_status, None, "no HTTP answer");
    buzzer.shutdown().await.unwrap();
}
