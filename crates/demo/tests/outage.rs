//! The outage guarantee: while the email provider is down, sync checkouts fail and async and
//! hybrid ones succeed; no async order loses its email: each one is sent once the provider is
//! back, or waits in the dead-letter queue to be replayed.

mod support;

use std::time::Duration;

use support::{Emails, checkout, emails, eventually, fast_config, retries, start};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_queued_during_an_outage_are_sent_when_it_ends() {
    // Enough attempts with short backoffs to ride out the outage.
    let demo = start(fast_config(200, 100)).await;
    demo.shop.providers.set_email_outage(true);

    for _ in 0..5 {
        let (status, body) = checkout(&demo, "sync").await;
        assert_eq!(
            status, 502,
            "a sync checkout needs the email provider: {body}"
        );
        assert_eq!(body["type"], "urn:buzzer:problem:provider-failed");
    }
    for mode in ["async", "hybrid"] {
        for _ in 0..10 {
            let (status, body) = checkout(&demo, mode).await;
            assert_eq!(status, 200, "{mode} checkout during the outage: {body}");
            assert_eq!(
                body["email_now"],
                if mode == "async" {
                    "queued"
                } else {
                    "on its way"
                }
            );
        }
    }
    // The emails really ran into the outage: every one of them failed at least once.
    eventually("every email to fail an attempt", LIMIT, || async {
        retries(&demo, "emails") >= 20
    })
    .await;
    assert_eq!(demo.shop.providers.emails_delivered(), 0);
    let during = emails(&demo).await;
    assert_eq!(during.delivered, 0);
    assert_eq!(during.dead, 0, "the attempts outlast the outage");
    assert_eq!(during.pending, 20);

    demo.shop.providers.set_email_outage(false);
    eventually("every queued email to be delivered", LIMIT, || async {
        emails(&demo).await.delivered == 20
    })
    .await;
    assert_eq!(
        emails(&demo).await,
        Emails {
            delivered: 20,
            dead: 0,
            pending: 0
        }
    );
    // Sync orders never queued an email: they failed, and the customer was told so.
    let summary = demo.shop.orders.summary();
    assert_eq!(summary[0].counts.failed, 5);
    assert_eq!(summary[1].counts.confirmed, 10);
    assert_eq!(summary[2].counts.confirmed, 10);
    demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emails_out_of_attempts_wait_in_the_dlq_and_are_replayed() {
    let demo = start(fast_config(2, 20)).await;
    demo.shop.providers.set_email_outage(true);
    for _ in 0..8 {
        let (status, body) = checkout(&demo, "async").await;
        assert_eq!(status, 200, "{body}");
    }
    eventually("every email to reach the DLQ", LIMIT, || async {
        emails(&demo).await.dead == 8
    })
    .await;
    assert_eq!(demo.shop.providers.emails_delivered(), 0);

    // The page shows them as dead.
    let state: serde_json::Value = reqwest::get(format!("http://{}/demo/state", demo.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = state["orders"].as_array().unwrap();
    assert_eq!(listed.len(), 8);
    assert!(
        listed.iter().all(|o| o["email_now"] == "in the DLQ"),
        "{state}"
    );
    assert_eq!(state["queues"][0]["name"], "emails");
    assert_eq!(state["queues"][0]["dead"], 8);

    // The provider is back; an operator replays the DLQ from the page.
    demo.shop.providers.set_email_outage(false);
    let replayed: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{}/demo/dlq/replay", demo.addr))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(replayed["retried"], 8);
    eventually("the replayed emails to be delivered", LIMIT, || async {
        emails(&demo).await.delivered == 8
    })
    .await;
    demo.stop().await.unwrap();
}
