//! Concurrency and shutdown.

use std::time::Duration;

use buzzer_types::JobState;
use buzzer_webhooks::WebhookConfig;

use crate::support::{Harness, Receiver, Reply, secret, target};

#[tokio::test]
async fn deliveries_run_in_parallel_up_to_the_limit() {
    let slow = Reply::status(200, "ok").after(Duration::from_millis(400));
    let receiver = Receiver::start(vec![slow; 12]).await;
    let h = Harness::start(WebhookConfig {
        allow_private: true,
        concurrency: 4,
        ..WebhookConfig::default()
    })
    .await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let mut jobs = Vec::new();
    for _ in 0..12 {
        jobs.push(h.deliver("t", "s", "{}", 1).await);
    }
    for job in &jobs {
        assert_eq!(h.finished(job).await.state, JobState::Completed);
    }
    let most = receiver.max_in_flight();
    assert!(most > 1, "deliveries ran one at a time");
    assert!(most <= 4, "{most} deliveries at once, over the limit of 4");
    h.stop().await;
}

#[tokio::test]
async fn shutdown_hands_deliveries_in_flight_back() {
    let stuck = Reply::status(200, "late").after(Duration::from_secs(20));
    let receiver = Receiver::start(vec![stuck]).await;
    let h = Harness::start(WebhookConfig {
        allow_private: true,
        attempt_timeout: Duration::from_secs(30),
        shutdown_grace: Duration::from_millis(100),
        ..WebhookConfig::default()
    })
    .await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let job = h.deliver("t", "s", "{}", 5).await;
    receiver.wait_for(1).await;
    let engine = h.engine.clone();
    tokio::time::timeout(Duration::from_secs(10), h.stop())
        .await
        .expect("the dispatcher stops within its grace");
    let back = engine.get(job.id).await.unwrap();
    assert_eq!(back.state, JobState::Available, "{back:?}");
    assert!(
        back.errors.is_empty(),
        "a handed-back attempt is no failure"
    );
}
