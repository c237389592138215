//! The demo's routes: the page and its assets, bad input as problem+json, the JSON state, and
//! Buzzer's own dashboard and API on the same port.

mod support;

use support::{checkout, fast_config, start};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_uses_only_its_own_script_and_style() {
    let demo = start(fast_config(3, 20)).await;
    let response = reqwest::get(demo.url()).await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains(r#"<script src="/demo/assets/demo.js" defer>"#),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "no inline script");
    for mode in ["sync", "async", "hybrid"] {
        assert!(
            html.contains(&format!(r#"data-mode="{mode}""#)),
            "{mode} button"
        );
    }

    let js = reqwest::get(format!("http://{}/demo/assets/demo.js", demo.addr))
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let missing = reqwest::get(format!("http://{}/demo/assets/x.js", demo.addr))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Buzzer's dashboard and API answer on the same port, over the same engine.
    let (status, _) = checkout(&demo, "async").await;
    assert_eq!(status, 200);
    assert_eq!(
        reqwest::get(format!("http://{}/", demo.addr))
            .await
            .unwrap()
            .status(),
        200
    );
    let queues: serde_json::Value = reqwest::get(format!("http://{}/v1/queues", demo.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(queues.to_string().contains("\"emails\""), "{queues}");
    demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_problem_json_naming_the_field() {
    let demo = start(fast_config(3, 20)).await;
    let base = format!("http://{}", demo.addr);

    let (status, body) = checkout(&demo, "later").await;
    assert_eq!(status, 422);
    assert_eq!(body["field"], "mode");
    assert_eq!(body["type"], "urn:buzzer:problem:invalid-field");

    // A form post (what another site could make a browser send) is refused.
    let response = client()
        .post(format!("{base}/demo/outage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("on=true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(!demo.shop.providers.email_outage());

    for (body, field) in [
        (r#"{"failure_rate": 2}"#, "failure_rate"),
        (r#"{"latency_ms": 600000}"#, "latency_ms"),
    ] {
        let response = client()
            .post(format!("{base}/demo/email"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422);
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["field"], field);
    }
    let response = client()
        .post(format!("{base}/demo/email"))
        .header("content-type", "application/json")
        .body(r#"{"latency_ms": 5, "failure_rate": 0.5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let email = demo.shop.providers.email().behaviour();
    assert_eq!(email.latency.as_millis(), 5);
    assert_eq!(email.failure_rate, 0.5);

    let response = client()
        .post(format!("{base}/demo/outage"))
        .header("content-type", "application/json")
        .body(r#"{"on": "yes"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert!(!demo.shop.providers.email_outage());
    demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_mode_answers_and_the_state_shows_it() {
    let mut config = fast_config(3, 20);
    // A budget no loaded machine misses for a 30 ms email.
    config.hybrid_budget = std::time::Duration::from_secs(10);
    let demo = start(config).await;
    let (status, sync) = checkout(&demo, "sync").await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["email_now"], "sent");
    assert_eq!(sync["order"]["email"], "sent");
    let (status, queued) = checkout(&demo, "async").await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(queued["email_now"], "queued");
    assert!(queued["order"]["job"].is_string(), "{queued}");
    // The email (30 ms) answers within the hybrid budget.
    let (status, hybrid) = checkout(&demo, "hybrid").await;
    assert_eq!(status, 200, "{hybrid}");
    assert_eq!(hybrid["email_now"], "sent", "{hybrid}");

    let state: serde_json::Value = reqwest::get(format!("http://{}/demo/state", demo.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let modes: Vec<&str> = state["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["mode"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["hybrid", "async", "sync"], "newest first");
    for summary in state["modes"].as_array().unwrap() {
        assert_eq!(summary["confirmed"], 1, "{summary}");
        assert!(summary["p50_ms"].as_f64().unwrap() > 0.0);
    }
    let names: Vec<&str> = state["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["emails", "invoices", "analytics"]);
    assert_eq!(state["providers"].as_array().unwrap().len(), 5);
    assert_eq!(state["outage"], false);
    demo.stop().await.unwrap();
}
