//! `GET /metrics`: valid exposition text whose counters match the jobs processed.

use std::collections::BTreeMap;

use buzzer_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::{Reply, TestServer};

/// Samples by `name{labels}` (labels sorted, as written), after checking every line of the
/// text against the format: comments are `# HELP|TYPE|UNIT name …` or the final `# EOF`; a
/// sample's name belongs to a family declared before it; histogram buckets only grow and the
/// `+Inf` bucket equals `_count`.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    let mut lines = text.lines().peekable();
    let mut saw_eof = false;
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    while let Some(line) = lines.next() {
        assert!(!saw_eof, "text after # EOF: {line}");
        if line == "# EOF" {
            saw_eof = true;
            assert!(lines.peek().is_none(), "# EOF must be the last line");
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (kind, name) = (parts.next().unwrap(), parts.next().unwrap_or(""));
            assert!(name_ok(name), "bad family name in {line:?}");
            match kind {
                "TYPE" => {
                    let ty = parts.next().unwrap_or("");
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "summary",
                            "unknown",
                            "info",
                            "stateset"
                        ]
                        .contains(&ty),
                        "{line}"
                    );
                    families.insert(name.to_owned(), ty.to_owned());
                }
                "HELP" | "UNIT" => {}
                other => panic!("unknown comment {other:?} in {line:?}"),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (
                name,
                rest.strip_suffix('}')
                    .unwrap_or_else(|| panic!("unclosed labels: {line:?}")),
            ),
            None => (series, ""),
        };
        assert!(name_ok(name), "bad metric name in {line:?}");
        // Labels: k="v" pairs, values with \\ \" \n escapes only.
        let mut rest = labels;
        while !rest.is_empty() {
            let (key, after) = rest
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad label in {line:?}"));
            assert!(name_ok(key), "bad label name in {line:?}");
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => assert!(
                        matches!(chars.next(), Some((_, '\\' | '"' | 'n'))),
                        "bad escape in {line:?}"
                    ),
                    Some((i, '"')) => break i,
                    Some(_) => {}
                    None => panic!("unterminated label value in {line:?}"),
                }
            };
            rest = after[end + 1..]
                .strip_prefix(',')
                .unwrap_or(&after[end + 1..]);
        }
        let family = ["_total", "_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| families.contains_key(*f)))
            .unwrap_or(name);
        assert!(
            families.contains_key(family),
            "sample {name} has no # TYPE before it"
        );
        samples.insert(format!("{name}{{{labels}}}"), value);
    }
    assert!(saw_eof, "no # EOF");
    // Histograms: cumulative buckets, +Inf == count.
    for (key, count) in samples.iter().filter(|(k, _)| k.contains("_count{")) {
        let (name, labels) = key.split_once("_count{").unwrap();
        let labels = labels.trim_end_matches('}');
        let mut buckets: Vec<(f64, f64)> = samples
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&format!("{name}_bucket{{"))?;
                let (le, others) = rest.split_once("le=\"").map(|(before, after)| {
                    let (le, after) = after.split_once('"').unwrap();
                    (
                        le,
                        format!(
                            "{before}{}",
                            after.trim_start_matches(',').trim_end_matches('}')
                        ),
                    )
                })?;
                (others.trim_end_matches(',') == labels).then(|| {
                    (
                        if le == "+Inf" {
                            f64::INFINITY
                        } else {
                            le.parse().unwrap()
                        },
                        *v,
                    )
                })
            })
            .collect();
        if buckets.is_empty() {
            continue;
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(
            buckets.windows(2).all(|w| w[0].1 <= w[1].1),
            "{name}{{{labels}}} buckets shrink"
        );
        assert_eq!(
            buckets.last().unwrap(),
            &(f64::INFINITY, *count),
            "{name}{{{labels}}}: +Inf != count"
        );
    }
    samples
}

#[tokio::test]
async fn metrics_parse_and_count_the_jobs_processed() {
    let s = TestServer::start().await;
    let q = "metered";
    let jobs: Vec<_> = (0..5).map(|i| json!({"payload": {"n": i}})).collect();
    let r = s
        .post(&format!("/v1/queues/{q}/jobs/batch"), json!({"jobs": jobs}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // An idempotent repeat is not a new job.
    for _ in 0..2 {
        s.post(
            &format!("/v1/queues/{q}/jobs"),
            json!({"payload": 1, "idempotency_key": "k"}),
        )
        .await;
    }
    let leased = s.fetch(q, 4).await;
    assert_eq!(leased.len(), 4);
    let token = |j: &serde_json::Value| j["lease_token"].as_str().unwrap().to_owned();
    let id = |j: &serde_json::Value| j["id"].as_str().unwrap().to_owned();
    for j in &leased[..2] {
        let r = s
            .post(
                &format!("/v1/jobs/{}/complete", id(j)),
                json!({"lease_token": token(j)}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = s
        .post(
            &format!("/v1/jobs/{}/fail", id(&leased[2])),
            // An hour's backoff: with the default one (up to a second, jittered) the job could
            // be available again before the scrape.
            json!({"lease_token": token(&leased[2]), "error": {"message": "again"},
                   "retry_in_ms": 3_600_000}),
        )
        .await;
    assert_eq!(r.json()["state"], "retryable");
    let dead = id(&leased[3]);
    let r = s
        .post(
            &format!("/v1/jobs/{dead}/fail"),
            json!({"lease_token": token(&leased[3]), "error": {"message": "no"}, "retry": false}),
        )
        .await;
    assert_eq!(r.json()["state"], "dead");
    let r = s.post(&format!("/v1/jobs/{dead}/retry"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let cancel = s.enqueue(q, json!("cancel me")).await;
    let r = s
        .post(
            &format!("/v1/jobs/{}/cancel", cancel["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(r.json()["state"], "cancelled");

    let r = s.get("/metrics").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let m = parse_exposition(&r.text);
    let get = |key: &str| {
        *m.get(key)
            .unwrap_or_else(|| panic!("no {key} in\n{}", r.text))
    };
    let ql = format!("queue=\"{q}\"");
    assert_eq!(get(&format!("buzzer_jobs_enqueued_total{{{ql}}}")), 7.0);
    assert_eq!(get(&format!("buzzer_jobs_completed_total{{{ql}}}")), 2.0);
    assert_eq!(get(&format!("buzzer_jobs_failed_total{{{ql}}}")), 2.0);
    assert_eq!(get(&format!("buzzer_jobs_retried_total{{{ql}}}")), 1.0);
    assert_eq!(get(&format!("buzzer_jobs_dead_total{{{ql}}}")), 1.0);
    assert_eq!(get(&format!("buzzer_jobs_cancelled_total{{{ql}}}")), 1.0);
    assert_eq!(get(&format!("buzzer_jobs_requeued_total{{{ql}}}")), 1.0);
    assert_eq!(get(&format!("buzzer_job_wait_seconds_count{{{ql}}}")), 4.0);
    assert_eq!(get(&format!("buzzer_job_run_seconds_count{{{ql}}}")), 4.0);
    // Gauges, read from the store at scrape time.
    assert_eq!(
        get(&format!("buzzer_queue_jobs{{{ql},state=\"completed\"}}")),
        2.0
    );
    assert_eq!(
        get(&format!("buzzer_queue_jobs{{{ql},state=\"available\"}}")),
        3.0
    );
    assert_eq!(
        get(&format!("buzzer_queue_jobs{{{ql},state=\"retryable\"}}")),
        1.0
    );
    assert_eq!(get(&format!("buzzer_queue_paused{{{ql}}}")), 0.0);
    assert!(
        get(&format!(
            "buzzer_queue_oldest_available_age_seconds{{{ql}}}"
        )) >= 0.0
    );
    // HTTP durations by route template, never by raw path.
    assert_eq!(
        get(
            "buzzer_http_request_duration_seconds_count{method=\"POST\",route=\"/v1/jobs/{id}/complete\",status=\"200\"}"
        ),
        2.0
    );
    assert!(
        !r.text.contains(&format!("/v1/jobs/{dead}")),
        "a raw path leaked into a label"
    );
    assert!(
        get("buzzer_store_call_duration_seconds_count{op=\"job_fetch\",outcome=\"ok\"}") >= 1.0
    );
}

#[tokio::test]
async fn metrics_need_the_key_when_keys_are_set() {
    let s = TestServer::start_with(ServerConfig {
        api_keys: vec!["k1".into()],
        ..ServerConfig::default()
    })
    .await;
    s.get("/metrics").await.problem(401, "unauthorized");
    let r = Reply::from(s.http.get(s.url("/metrics")).bearer_auth("k1")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    parse_exposition(&r.text);
}
