//! Webhooks end to end through a real `buzzer serve`: publish → signed delivery to a receiver on
//! loopback that fails first, retries with the same `webhook-id`; every acknowledged publish
//! delivered across a `kill -9`; and the address policy of a server started without
//! `--allow-private-webhooks`; two nodes sharing PostgreSQL deliver each event once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod postgres_support;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use common::{Server, get, http, post};
use hmac::{Hmac, KeyInit, Mac};
use postgres_support::Schema;
use serde_json::{Value, json};
use sha2::Sha256;

/// What the receiver got: the headers it cares about and the raw body.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
}

/// Answers 500 to the first request and 200 to the others, keeping every request.
async fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    async fn answer(
        State(got): State<Arc<Mutex<Vec<Delivery>>>>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let mut got = got.lock().unwrap();
        got.push(Delivery {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: body.to_vec(),
        });
        if got.len() == 1 {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
    let app = Router::new().fallback(answer).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

/// The signature computed from the scheme's definition, not with Buzzer's code.
fn hmac_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn put(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let resp = client.put(url).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_published_event_reaches_a_flaky_webhook_signed_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("b.db"), &["--allow-private-webhooks"]);
    let client = http(None);
    let (url, got) = receiver().await;

    let (status, sub) = put(
        &client,
        &format!("{}/v1/topics/orders/subscriptions/analytics", server.url),
        json!({"webhook": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    let secret = sub["webhook"]["secret"]
        .as_str()
        .expect("the secret, shown once")
        .to_owned();

    let event = json!({"order": 42, "total": "19.99", "items": ["tea", "cake"]});
    let (status, published) = post(
        &client,
        &format!("{}/v1/topics/orders/events", server.url),
        json!({"payload": event}),
    )
    .await;
    assert_eq!(status, 202, "{published}");
    assert_eq!(published["deliveries"], 1);

    // The delivery job completes after one failed attempt.
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (_, list) = get(
            &client,
            &format!("{}/v1/jobs?queue=buzzer:webhooks", server.url),
        )
        .await;
        let job = list["jobs"][0].clone();
        if job["state"] == "completed" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "not delivered: {job}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["attempt"], 2);
    assert_eq!(job["metadata"]["topic"], "orders");
    assert_eq!(job["metadata"]["subscription"], "analytics");
    assert_eq!(job["metadata"]["event_id"], published["event_id"]);
    assert_eq!(job["errors"][0]["status"], 500);
    assert_eq!(job["result"]["status"], 200);

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "one failed attempt, one success");
    let expected_id = format!("msg_{}", job["id"].as_str().unwrap());
    for d in &got {
        assert_eq!(d.id, expected_id, "the same webhook-id on every attempt");
        assert_eq!(serde_json::from_slice::<Value>(&d.body).unwrap(), event);
        assert_eq!(
            d.signature,
            hmac_signature(&secret, &d.id, &d.timestamp, &d.body)
        );
    }

    let (_, sub) = get(
        &client,
        &format!("{}/v1/topics/orders/subscriptions/analytics", server.url),
    )
    .await;
    assert_eq!(sub["delivery"]["last_status"], 200, "{sub}");
    assert!(
        sub["webhook"].get("secret").is_none(),
        "the secret is not shown again"
    );
}

#[tokio::test]
async fn without_the_flag_literal_private_addresses_are_refused_at_put() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("b.db"));
    let client = http(None);
    for url in [
        "http://127.0.0.1:9/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://[::ffff:7f00:1]/",
        "http://localhost:8080/",
        "http://10.0.0.1/",
        "http://169.254.169.254/",
        "http://[fd00::1]/",
    ] {
        let (status, problem) = put(
            &client,
            &format!("{}/v1/topics/orders/subscriptions/x", server.url),
            json!({"webhook": {"url": url}}),
        )
        .await;
        assert_eq!(status, 422, "{url}: {problem}");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("webhook.url"), "{url}: {problem}");
    }
    let (status, _) = put(
        &client,
        &format!("{}/v1/topics/orders/subscriptions/x", server.url),
        json!({"webhook": {"url": "https://hooks.example.com/orders"}}),
    )
    .await;
    assert_eq!(status, 201);
}

/// Keeps the payload of every request and answers 200 after a short pause, so deliveries are
/// in flight when the server dies.
async fn slow_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    async fn answer(State(got): State<Arc<Mutex<Vec<Value>>>>, body: Bytes) -> StatusCode {
        tokio::time::sleep(Duration::from_millis(20)).await;
        got.lock()
            .unwrap()
            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
        StatusCode::NO_CONTENT
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/in", listener.local_addr().unwrap());
    let app = Router::new().fallback(answer).with_state(got.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_publish_is_delivered_across_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    // A short attempt limit makes the lease short: deliveries the dead server held are
    // retried within seconds of the restart.
    let flags = ["--allow-private-webhooks", "--webhook-timeout-ms", "1000"];
    let mut server = Server::start_with(&db, &flags);
    let (url, got) = slow_receiver().await;
    let (status, sub) = put(
        &http(None),
        &format!("{}/v1/topics/orders/subscriptions/hook", server.url),
        json!({"webhook": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");

    let acked: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let mut publishers = Vec::new();
    for p in 0..4 {
        let url = format!("{}/v1/topics/orders/events", server.url);
        let acked = Arc::clone(&acked);
        publishers.push(tokio::spawn(async move {
            let client = http(None);
            for n in 0.. {
                let body = json!({"payload": {"p": p, "n": n}});
                // No answer: never acknowledged, so it may be lost.
                let Ok(resp) = client.post(&url).json(&body).send().await else {
                    break;
                };
                if resp.status().as_u16() == 202 {
                    acked.lock().unwrap().push((p, n));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.kill();
    for p in publishers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 20,
        "only {} publishes acknowledged",
        acked.len()
    );

    let server = Server::start_with(&db, &flags);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen: HashSet<(usize, u64)> = got
            .lock()
            .unwrap()
            .iter()
            .filter_map(|v| Some((v["p"].as_u64()? as usize, v["n"].as_u64()?)))
            .collect();
        let missing: Vec<_> = acked.iter().filter(|k| !seen.contains(k)).collect();
        if missing.is_empty() {
            eprintln!(
                "kill -9 during publishing: {} acknowledged, all delivered ({} requests)",
                acked.len(),
                got.lock().unwrap().len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} acknowledged events never arrived, e.g. {:?}\n{}",
            missing.len(),
            acked.len(),
            &missing[..missing.len().min(5)],
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_sharing_postgres_deliver_each_event_once() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--allow-private-webhooks"];
    let a = postgres_support::serve(dir.path(), "a", &schema.url(), &flags);
    let b = postgres_support::serve(dir.path(), "b", &schema.url(), &flags);
    let (url, got) = slow_receiver().await;
    let client = http(None);
    let (status, sub) = put(
        &client,
        &format!("{}/v1/topics/orders/subscriptions/hook", a.url),
        json!({"webhook": {"url": url}}),
    )
    .await;
    assert_eq!(status, 201, "{sub}");

    const EVENTS: u64 = 60;
    for n in 0..EVENTS {
        let node = if n % 2 == 0 { &a } else { &b };
        let (status, answer) = post(
            &client,
            &format!("{}/v1/topics/orders/events", node.url),
            json!({"payload": {"p": 0, "n": n}}),
        )
        .await;
        assert_eq!(status, 202, "{answer}");
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    while got.lock().unwrap().len() < EVENTS as usize {
        assert!(
            Instant::now() < deadline,
            "{} of {EVENTS} delivered\n{}\n{}",
            got.lock().unwrap().len(),
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything sent twice would arrive within moments of the rest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap().clone();
    let distinct: HashSet<u64> = got.iter().filter_map(|v| v["n"].as_u64()).collect();
    assert_eq!(distinct.len(), EVENTS as usize);
    assert_eq!(got.len(), EVENTS as usize, "an event was delivered twice");

    let (_, list) = get(
        &client,
        &format!("{}/v1/jobs?queue=buzzer:webhooks&limit=1000", b.url),
    )
    .await;
    let jobs = list["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), EVENTS as usize);
    assert!(jobs.iter().all(|j| j["state"] == "completed"), "{list}");
    let nodes: HashSet<&str> = jobs
        .iter()
        .filter_map(|j| j["worker_id"].as_str())
        .collect();
    eprintln!("deliveries made by {nodes:?}");
}
