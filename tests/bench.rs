//! `buzzer bench` end to end, on small job counts: every workload in-process and over HTTP
//! (a server and a worker process of its own, or a server named with `--server`), each
//! answering one JSON line with its figures. The figures themselves are not judged here: a
//! loaded CI machine says nothing about speed. The bench fails by itself if the store does not
//! count every job completed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Server, buzzer, ok_json, stderr};
use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = buzzer()
        .args(["bench", "--json"])
        .args(args)
        .output()
        .unwrap();
    ok_json(&out)
}

fn positive(report: &Value, key: &str) -> f64 {
    let v = report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {report}"));
    assert!(v.is_finite() && v > 0.0, "{key} = {v} in {report}");
    v
}

#[test]
fn w1_drains_in_process_and_over_http() {
    for mode in ["inprocess", "http"] {
        let report = bench(&[
            "w1",
            "--mode",
            mode,
            "--jobs",
            "2500",
            "--concurrency",
            "64",
        ]);
        assert_eq!(report["workload"], "W1");
        assert_eq!(report["mode"], mode);
        assert_eq!(report["jobs"], 2500);
        positive(&report, "enqueue_per_s");
        positive(&report, "processed_per_s");
    }
}

#[test]
fn w2_reports_latency_percentiles_from_the_store() {
    let report = bench(&["W2", "--mode", "http", "--jobs", "200", "--reps", "2"]);
    assert_eq!(report["reps"], 2);
    assert_eq!(report["runs"].as_array().unwrap().len(), 2);
    positive(&report, "jobs_per_s");
    let p50 = report["latency_p50_ms"].as_f64().unwrap();
    let p99 = report["latency_p99_ms"].as_f64().unwrap();
    assert!(0.0 <= p50 && p50 <= p99, "{report}");
}

#[test]
fn w3_measures_the_hybrid_call_against_a_named_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("w3.db"));
    let report = bench(&[
        "--server",
        &server.url,
        "w3",
        "--mode",
        "http",
        "--jobs",
        "100",
    ]);
    assert_eq!(report["database"], "server");
    positive(&report, "call_p50_ms");
    positive(&report, "calls_per_s");
    // The calls went to the named server: its queue has them all, completed.
    let queues = common::cli(&server.url, None, &["--json", "queues"]);
    let queues = ok_json(&queues);
    let completed: u64 = queues["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["counts"]["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(completed, 200, "100 measured calls and 100 warm-up calls");
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let out = buzzer()
        .args(["bench", "w1", "--jobs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--jobs"), "{}", stderr(&out));
    let out = buzzer()
        .args(["bench", "w1", "--database", "mysql://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("mysql"), "{}", stderr(&out));
}

#[test]
fn scale_compares_latency_empty_and_full_and_reports_memory() {
    let report = bench(&["scale", "--mode", "http", "--jobs", "3000"]);
    assert_eq!(report["workload"], "scale");
    for key in [
        "enqueue_empty_p50_ms",
        "enqueue_full_p50_ms",
        "fetch_empty_p50_ms",
        "fetch_full_p50_ms",
        "enqueue_p50_ratio",
        "fetch_p50_ratio",
        "store_rss_mib",
        "store_peak_rss_mib",
    ] {
        positive(&report, key);
    }
}
