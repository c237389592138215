//! What each kind of answer does to a delivery, and what the receiver gets.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use buzzer_types::{JobState, PreviousSecret, webhook_signature::SECRET_PREFIX};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::support::{Harness, Receiver, Reply, secret, target};

/// The signature computed here from the spec, not with the crate's signing code.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_until_it_answers_2xx() {
    let receiver = Receiver::start(vec![
        Reply::status(500, "boom"),
        Reply::status(502, "still down"),
    ])
    .await;
    let h = Harness::private().await;
    let key = secret(7);
    h.subscribe(
        "orders",
        "audit",
        target(receiver.url("/hook"), key.clone()),
    )
    .await;
    let payload = r#"{"order":42,"total":"19.99","note":"é"}"#;
    let job = h.deliver("orders", "audit", payload, 5).await;
    let done = h.finished(&job).await;

    assert_eq!(done.state, JobState::Completed, "{done:?}");
    assert_eq!(done.attempt, 3);
    let got = receiver.wait_for(3).await;
    assert_eq!(got.len(), 3);
    let id = format!("msg_{}", job.id);
    for r in &got {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.body, payload.as_bytes());
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("webhook-id"), id, "the same id on every attempt");
        let ts = r.header("webhook-timestamp");
        let sent: i64 = ts.parse().unwrap();
        assert!((jiff::Timestamp::now().as_second() - sent).abs() < 60);
        assert_eq!(
            r.header("webhook-signature"),
            expected_signature(&key, &id, ts, &r.body)
        );
    }

    // Each attempt is kept: errors carry the failed answers, the result the good one.
    assert_eq!(done.errors.len(), 2);
    assert_eq!(done.errors[0].details["status"], 500);
    assert_eq!(done.errors[0].details["body"], "boom");
    assert!(done.errors[0].details["latency_ms"].is_u64());
    assert!(
        done.errors[0].message.contains("500"),
        "{}",
        done.errors[0].message
    );
    assert_eq!(done.errors[1].details["status"], 502);
    assert_eq!(done.errors[1].details["webhook_id"], id.as_str());
    let result: serde_json::Value =
        serde_json::from_str(done.result.as_ref().unwrap().get()).unwrap();
    assert_eq!(result["status"], 200);
    assert_eq!(result["body"], "thanks");
    assert_eq!(result["webhook_id"], id.as_str());

    let sub = h
        .engine
        .store()
        .subscription_get("orders", "audit")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.delivery.last_status, Some(200));
    assert_eq!(sub.delivery.failures_in_row, 0);
    assert!(sub.delivery.last_success_at.is_some());
    h.stop().await;
}

#[tokio::test]
async fn exhausted_attempts_go_to_the_dead_letter_queue() {
    let receiver = Receiver::start(vec![Reply::status(500, "a"), Reply::status(500, "b")]).await;
    let h = Harness::private().await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let done = h.finished(&h.deliver("t", "s", "{}", 2).await).await;
    assert_eq!(done.state, JobState::Dead);
    assert_eq!(done.errors.len(), 2);
    let sub = h
        .engine
        .store()
        .subscription_get("t", "s")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.delivery.failures_in_row, 2);
    assert_eq!(sub.delivery.last_status, Some(500));
    h.stop().await;
}

#[tokio::test]
async fn a_rotated_secret_signs_beside_the_new_one() {
    let receiver = Receiver::start(vec![]).await;
    let h = Harness::private().await;
    let (old, new) = (secret(1), secret(2));
    let mut t = target(receiver.url("/"), new.clone());
    t.previous_secret = Some(PreviousSecret {
        secret: old.clone(),
        until: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1),
    });
    h.subscribe("t", "s", t).await;
    let job = h.deliver("t", "s", r#"{"a":1}"#, 1).await;
    assert_eq!(h.finished(&job).await.state, JobState::Completed);
    let r = &receiver.wait_for(1).await[0];
    let (id, ts) = (r.header("webhook-id"), r.header("webhook-timestamp"));
    let signatures: Vec<&str> = r.header("webhook-signature").split(' ').collect();
    assert_eq!(
        signatures,
        [
            expected_signature(&new, id, ts, &r.body),
            expected_signature(&old, id, ts, &r.body)
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn retry_after_on_503_sets_the_next_attempt() {
    let receiver =
        Receiver::start(vec![Reply::status(503, "busy").header("retry-after", "2")]).await;
    let h = Harness::private().await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let job = h.deliver("t", "s", "{}", 3).await;
    let done = h.finished(&job).await;
    assert_eq!(done.state, JobState::Completed);
    let got = receiver.wait_for(2).await;
    let gap = got[1].at - got[0].at;
    // The job's own backoff is 50 ms: only Retry-After explains the wait.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    assert!(
        done.errors[0].message.contains("Retry-After"),
        "{}",
        done.errors[0].message
    );
    h.stop().await;
}

#[tokio::test]
async fn gone_disables_the_subscription_and_later_deliveries_are_dropped() {
    let receiver = Receiver::start(vec![Reply::status(410, "unsubscribed")]).await;
    let h = Harness::private().await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let done = h.finished(&h.deliver("t", "s", "{}", 5).await).await;
    assert_eq!(done.state, JobState::Dead, "410 does not retry");
    assert_eq!(done.attempt, 1);
    assert!(
        done.errors[0].message.contains("410"),
        "{}",
        done.errors[0].message
    );
    assert_eq!(done.errors[0].details["status"], 410);
    let sub = h
        .engine
        .store()
        .subscription_get("t", "s")
        .await
        .unwrap()
        .unwrap();
    assert!(sub.disabled);
    assert!(sub.disabled_reason.unwrap().contains("410"));

    let next = h.finished(&h.deliver("t", "s", "{}", 5).await).await;
    assert_eq!(next.state, JobState::Cancelled);
    assert!(
        next.errors[0].message.contains("disabled"),
        "{:?}",
        next.errors
    );
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing sent to a disabled subscription"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_deleted_subscription_cancels_its_deliveries() {
    let h = Harness::private().await;
    let done = h.finished(&h.deliver("t", "gone", "{}", 5).await).await;
    assert_eq!(done.state, JobState::Cancelled);
    assert!(
        done.errors[0].message.contains("t/gone was deleted"),
        "{:?}",
        done.errors
    );
    h.stop().await;
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let receiver = Receiver::start(vec![]).await;
    let elsewhere = receiver.url("/elsewhere");
    let redirecting =
        Receiver::start(vec![Reply::status(302, "").header("location", &elsewhere)]).await;
    let h = Harness::private().await;
    h.subscribe("t", "s", target(redirecting.url("/"), secret(1)))
        .await;
    let done = h.finished(&h.deliver("t", "s", "{}", 1).await).await;
    assert_eq!(done.state, JobState::Dead);
    assert_eq!(done.errors[0].details["status"], 302);
    assert!(receiver.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let mut slow = Reply::status(200, "late");
    slow.delay = Duration::from_secs(10);
    let receiver = Receiver::start(vec![slow]).await;
    let h = Harness::start(buzzer_webhooks::WebhookConfig {
        allow_private: true,
        attempt_timeout: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let done = h.finished(&h.deliver("t", "s", "{}", 1).await).await;
    assert_eq!(done.state, JobState::Dead);
    assert_eq!(done.errors[0].message, "no answer within 300 ms");
    assert!(done.errors[0].details["status"].is_null());
    h.stop().await;
}

#[tokio::test]
async fn long_bodies_are_cut_to_the_excerpt() {
    let receiver = Receiver::start(vec![Reply::status(500, &"é".repeat(1000))]).await;
    let h = Harness::private().await;
    h.subscribe("t", "s", target(receiver.url("/"), secret(1)))
        .await;
    let done = h.finished(&h.deliver("t", "s", "{}", 1).await).await;
    let body = done.errors[0].details["body"].as_str().unwrap();
    assert_eq!(body, "é".repeat(256), "512 bytes, whole characters");
    h.stop().await;
}
