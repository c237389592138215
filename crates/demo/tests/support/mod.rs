//! A demo on a free port with fast providers, and helpers to wait on it.

// Test support: each test file uses a different part, and panics are how tests fail.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use buzzer::JobState;
use buzzer_demo::{Behaviour, Demo, DemoConfig, ProviderConfig, RetryPolicy, SendConfirmation};

/// Fast providers that never fail on their own, so only the outage switch makes emails fail.
pub fn fast_config(attempts: u32, backoff_max_ms: u64) -> DemoConfig {
    DemoConfig {
        database: None,
        providers: ProviderConfig {
            payment: Behaviour::new(1, 0.0),
            inventory: Behaviour::new(1, 0.0),
            email: Behaviour::new(30, 0.0),
            invoice: Behaviour::new(5, 0.0),
            analytics: Behaviour::new(5, 0.0),
        },
        retry: RetryPolicy {
            attempts,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(backoff_max_ms),
        },
        hybrid_budget: Duration::from_millis(100),
        worker_concurrency: 20,
    }
}

pub async fn start(config: DemoConfig) -> Demo {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Demo::start(config, listener).await.unwrap()
}

/// `POST /demo/checkout/{mode}`: the status and the JSON answer.
pub async fn checkout(demo: &Demo, mode: &str) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{}/demo/checkout/{mode}", demo.addr))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Where every email the shop queued is: delivered, dead (in the DLQ), or still pending.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Emails {
    pub delivered: usize,
    pub dead: usize,
    pub pending: usize,
}

pub async fn emails(demo: &Demo) -> Emails {
    let mut seen = Emails::default();
    for (order, job) in demo.shop.orders.queued_emails() {
        if demo.shop.providers.email_sent_at(order).is_some() {
            seen.delivered += 1;
            continue;
        }
        let job = demo
            .shop
            .buzzer
            .handle::<SendConfirmation>(job)
            .status()
            .await
            .unwrap();
        match job.state {
            JobState::Dead => seen.dead += 1,
            JobState::Completed => {
                panic!("job {} completed but order {order} got no email", job.id)
            }
            _ => seen.pending += 1,
        }
    }
    seen
}

/// Polls `check` every 50 ms until it holds; a loaded machine gets a generous `limit`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn retries(demo: &Demo, queue: &str) -> u64 {
    demo.shop
        .buzzer
        .engine()
        .unwrap()
        .metrics()
        .queue_totals(queue)
        .retried
}
