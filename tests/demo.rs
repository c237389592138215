//! `buzzer demo` as a user runs it: the page on a port until SIGTERM, and the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Server, buzzer, stderr, stdout};

/// Fast providers, so a test does not wait on a 3 s email.
const FAST: [&str; 16] = [
    "--payment-ms",
    "1",
    "--email-ms",
    "100",
    "--invoice-ms",
    "5",
    "--analytics-ms",
    "5",
    "--payment-decline-rate",
    "0",
    "--email-failure-rate",
    "0",
    "--invoice-failure-rate",
    "0",
    "--analytics-failure-rate",
    "0",
];

#[tokio::test]
async fn the_demo_serves_its_page_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = buzzer();
    cmd.args(["demo", "--listen", "127.0.0.1:0"]).args(FAST);
    let mut demo = Server::spawn(cmd, &dir.path().join("demo.db"));

    let page = reqwest::get(format!("{}/demo", demo.url)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Checkout: now, or later?")
    );
    let answer = reqwest::Client::new()
        .post(format!("{}/demo/checkout/async", demo.url))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    sigterm(demo.pid());
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("the demo did not stop; its log:\n{}", demo.log()));
    assert!(status.success(), "{status:?}: {}", demo.log());
}

/// std can only send SIGKILL; kill(1) sends the graceful signal.
fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn the_report_measures_every_mode() {
    let out = buzzer()
        .args(["demo", "--report", "--orders", "6", "--concurrency", "3"])
        .args(FAST)
        // Every hybrid email misses this budget, so all 12 async and hybrid emails are queued.
        .args(["--hybrid-budget-ms", "1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("6 orders per mode, 3 in flight"), "{text}");
    for mode in ["sync", "async", "hybrid"] {
        let row = text
            .lines()
            .find(|l| l.starts_with(&format!("│ {mode} ")))
            .unwrap_or_else(|| panic!("no {mode} row in\n{text}"));
        assert!(row.contains("100 %"), "every order succeeds: {row}");
    }
    assert!(text.contains("× faster"), "{text}");
    assert!(text.contains("delivered 12 of 12 queued"), "{text}");
}

#[test]
fn the_demo_listens_on_loopback_only() {
    let out = buzzer()
        .args(["demo", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("loopback"), "{}", stderr(&out));
}

#[test]
fn report_flags_need_the_report() {
    let out = buzzer().args(["demo", "--orders", "5"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--report"), "{}", stderr(&out));
    let out = buzzer()
        .args(["demo", "--report", "--email-failure-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("between 0 and 1"), "{}", stderr(&out));
}
