//! Topics and schedules with real processes: publishes acknowledged before a `kill -9` keep
//! every delivery, and a per-second cron on two servers sharing PostgreSQL fires once per
//! tick, not once per node.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod postgres_support;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{Server, get, http, ok, ok_json, post, stderr};
use postgres_support::Schema;
use serde_json::{Value, json};

const SUBSCRIBERS: [(&str, &str); 3] = [("email", "emails"), ("audit", "audit"), ("crm", "crm")];
const PUBLISHERS: usize = 6;
const LOAD: Duration = Duration::from_millis(1500);

async fn put(http: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let resp = http.put(url).json(&body).send().await.expect("PUT");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every job of a queue, following the cursor.
async fn all_jobs(http: &reqwest::Client, base: &str, queue: &str) -> Vec<Value> {
    let mut jobs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/jobs?queue={queue}&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(http, &url).await;
        assert_eq!(status, 200, "{page}");
        jobs.extend(page["jobs"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return jobs,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_publish_load_keeps_every_delivery_of_every_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    let client = http(None);
    for (name, queue) in SUBSCRIBERS {
        let url = format!("{}/v1/topics/orders/subscriptions/{name}", server.url);
        let (status, body) = put(&client, &url, json!({ "queue": queue })).await;
        assert_eq!(status, 201, "{body}");
    }

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let url = format!("{}/v1/topics/orders/events", server.url);
        let acked = Arc::clone(&acked);
        publishers.push(tokio::spawn(async move {
            let http = http(None);
            for n in 0.. {
                let body = json!({"payload": {"publisher": p, "n": n}});
                // A publish that got no answer was never acknowledged: it may be lost, but
                // then wholly.
                let Ok(resp) = http.post(&url).json(&body).send().await else {
                    break;
                };
                let status = resp.status().as_u16();
                let Ok(text) = resp.text().await else { break };
                if status == 202 {
                    let answer: Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(answer["deliveries"], SUBSCRIBERS.len(), "{answer}");
                    let id = answer["event_id"].as_str().unwrap().to_owned();
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    tokio::time::sleep(LOAD).await;
    server.kill();
    for p in publishers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "only {} publishes were acknowledged under load; the test proves little",
        acked.len()
    );

    let server = Server::start(&db);
    let mut per_event: HashMap<String, Vec<&str>> = HashMap::new();
    for (name, queue) in SUBSCRIBERS {
        for job in all_jobs(&client, &server.url, queue).await {
            assert_eq!(job["metadata"]["topic"], "orders");
            assert_eq!(job["metadata"]["subscription"], name);
            let event = job["metadata"]["event_id"].as_str().unwrap().to_owned();
            per_event.entry(event).or_default().push(queue);
        }
    }
    for id in &acked {
        let queues = per_event.get(id).cloned().unwrap_or_default();
        assert_eq!(
            queues.len(),
            SUBSCRIBERS.len(),
            "acknowledged event {id} has deliveries in {queues:?} only"
        );
    }
    // Unacknowledged publishes in flight at the kill: all of their deliveries or none.
    let partial: Vec<_> = per_event
        .iter()
        .filter(|(_, q)| q.len() != SUBSCRIBERS.len())
        .collect();
    assert!(partial.is_empty(), "half-published events: {partial:?}");
    eprintln!(
        "kill -9 under publish load: {} events acknowledged, {} stored with all {} deliveries",
        acked.len(),
        per_event.len(),
        SUBSCRIBERS.len()
    );
}

/// The distinct ticks of the jobs in `queue`, checking that no tick has two jobs.
async fn ticks(http: &reqwest::Client, base: &str, queue: &str) -> Vec<jiff::Timestamp> {
    let jobs = all_jobs(http, base, queue).await;
    let mut seen = HashSet::new();
    let mut ticks = Vec::new();
    for job in &jobs {
        let tick = job["metadata"]["tick"].as_str().unwrap().to_owned();
        assert!(
            seen.insert(tick.clone()),
            "two jobs for tick {tick}: {jobs:?}"
        );
        ticks.push(tick.parse().unwrap());
    }
    ticks.sort();
    ticks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_second_cron_on_two_nodes_fires_once_per_tick() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let url = schema.url();
    let a = postgres_support::serve(dir.path(), "a", &url, &["--node-id", "node-a"]);
    let b = postgres_support::serve(dir.path(), "b", &url, &["--node-id", "node-b"]);
    let client = http(None);
    let (status, made) = put(
        &client,
        &format!("{}/v1/schedules/heartbeat", a.url),
        json!({"cron": "* * * * * *", "queue": "ticks", "payload": {"beat": true}}),
    )
    .await;
    assert_eq!(status, 201, "{made}");

    // The first tick fires once a leader is elected; then watch five seconds of ticks.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticks(&client, &b.url, "ticks").await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no tick fired within 30 s; logs:\n{}\n{}",
            a.log(),
            b.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let watched = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, _) = get(&client, &format!("{}/v1/schedules/heartbeat", b.url)).await;
    assert_eq!(status, 200, "both nodes see the schedule");
    let resp = client
        .delete(format!("{}/v1/schedules/heartbeat", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let elapsed = watched.elapsed().as_secs_f64();

    let ticks = ticks(&client, &a.url, "ticks").await;
    let first = ticks[0];
    let last = *ticks.last().unwrap();
    let span = (last - first).get_seconds() as usize + 1;
    assert!(
        ticks.windows(2).all(|w| (w[1] - w[0]).get_seconds() >= 1),
        "ticks are whole seconds apart: {ticks:?}"
    );
    // About one job per second in total; a leader hiccup on a loaded machine may merge a few
    // ticks into one, never duplicate one.
    assert!(
        ticks.len() as f64 >= elapsed - 2.0 && ticks.len() as f64 <= elapsed + 2.0,
        "{} jobs over {elapsed:.1} s: {ticks:?}",
        ticks.len()
    );
    assert!(ticks.len() <= span, "{} jobs for {span} ticks", ticks.len());
    eprintln!(
        "two nodes, per-second cron: {} jobs over {elapsed:.1} s, {span} ticks spanned",
        ticks.len()
    );
}

#[tokio::test]
async fn topics_and_schedules_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut server = Server::start(&db);
    let client = http(None);
    let (status, made) = put(
        &client,
        &format!("{}/v1/topics/t/subscriptions/s", server.url),
        json!({"queue": "q", "filter": {"kind": "a"}}),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (status, _) = put(
        &client,
        &format!("{}/v1/schedules/nightly", server.url),
        json!({"cron": "0 3 * * *", "timezone": "Europe/Paris", "queue": "q", "payload": {}}),
    )
    .await;
    assert_eq!(status, 201);
    server.kill();
    let server = Server::start(&db);
    let (_, sub) = get(
        &client,
        &format!("{}/v1/topics/t/subscriptions/s", server.url),
    )
    .await;
    assert_eq!(sub["filter"], json!({"kind": "a"}));
    let (_, s) = get(&client, &format!("{}/v1/schedules/nightly", server.url)).await;
    assert_eq!(s["timezone"], "Europe/Paris");
    let (status, answer) = post(
        &client,
        &format!("{}/v1/topics/t/events", server.url),
        json!({"payload": {"kind": "a"}}),
    )
    .await;
    assert_eq!((status, answer["deliveries"].clone()), (202, json!(1)));
}

#[tokio::test]
async fn topics_subscriptions_and_schedules_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("b.db"));
    assert!(ok(&server.cli(None, &["topics"])).contains("no topics yet"));

    let text = ok(&server.cli(
        None,
        &[
            "subscriptions",
            "create",
            "orders",
            "email",
            "--queue",
            "emails",
        ],
    ));
    assert!(text.contains("queue emails"), "{text}");
    let made = ok_json(&server.cli(
        None,
        &[
            "--json",
            "subscriptions",
            "create",
            "orders",
            "analytics",
            "--webhook",
            "https://analytics.example.com/in",
            "--filter",
            "status=placed",
            "--filter",
            "total=30",
        ],
    ));
    assert!(
        made["webhook"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(made["filter"], json!({"status": "placed", "total": 30}));

    let table = ok(&server.cli(None, &["subscriptions"]));
    assert!(
        table.contains("TOPIC") && table.contains("FAILURES IN A ROW"),
        "{table}"
    );
    assert!(
        table.contains("webhook https://analytics.example.com/in"),
        "{table}"
    );
    assert!(!table.contains("whsec_"), "no secret in lists: {table}");
    let list = ok_json(&server.cli(
        None,
        &["--json", "subscriptions", "list", "--topic", "orders"],
    ));
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 2);
    let topics = ok_json(&server.cli(None, &["--json", "topics"]));
    assert_eq!(
        topics,
        json!({"topics": [{"name": "orders", "subscriptions": 2}]})
    );
    assert!(ok(&server.cli(None, &["topics"])).contains("orders"));

    let bad = server.cli(
        None,
        &[
            "subscriptions",
            "create",
            "orders",
            "x",
            "--webhook",
            "ftp://nope/",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("webhook.url"), "{}", stderr(&bad));

    ok(&server.cli(None, &["subscriptions", "delete", "orders", "analytics"]));
    let gone = server.cli(None, &["subscriptions", "delete", "orders", "analytics"]);
    assert_eq!(gone.status.code(), Some(1));

    let text = ok(&server.cli(
        None,
        &[
            "schedules",
            "create",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--queue",
            "reports",
            "--timezone",
            "Europe/Paris",
            "--payload",
            r#"{"report": "sales"}"#,
        ],
    ));
    assert!(text.contains("next at"), "{text}");
    let table = ok(&server.cli(None, &["schedules"]));
    assert!(
        table.contains("nightly") && table.contains("Europe/Paris"),
        "{table}"
    );
    let list = ok_json(&server.cli(None, &["--json", "schedules", "list"]));
    assert_eq!(list["schedules"][0]["payload"], json!({"report": "sales"}));
    let bad = server.cli(
        None,
        &["schedules", "create", "x", "--cron", "nope", "--queue", "q"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("cron"), "{}", stderr(&bad));
    ok(&server.cli(None, &["schedules", "delete", "nightly"]));
    assert!(ok(&server.cli(None, &["schedules"])).contains("no schedules"));
}
