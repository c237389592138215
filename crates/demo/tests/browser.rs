//! `/demo` in headless Chromium: place an order in each mode and see the times appear, then
//! switch the email provider off and see sync fail while async still succeeds. Screenshots go
//! to `<target dir>/browser-artifacts/demo-*.png`.
//!
//! Without Chromium the test prints that it skipped; with `BUZZER_TEST_BROWSER_REQUIRED` set
//! (CI) it fails instead. `scripts/install-chromium.sh` installs the browser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The dashboard's browser tests' WebDriver set-up, shared rather than written twice.
#[path = "../../server/tests/browser/driver.rs"]
mod driver;
mod support;

use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};

use driver::{Driver, screenshot};
use support::{fast_config, start};

/// Long enough for a loaded two-core machine; conditions are polled, so a fast run is fast.
const PATIENCE: Duration = Duration::from_secs(30);

/// The element's text; `None` while it is missing or was just replaced (the page redraws its
/// tables every second, so an element found a moment ago can be gone).
async fn text(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// Polls until the element's text satisfies `ok` (the page's script updates it on its own).
async fn wait_for(browser: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = text(browser, css).await;
        if let Some(now) = now.as_deref().filter(|t| ok(t)) {
            return now.to_owned();
        }
        if Instant::now() > deadline {
            screenshot(browser, "demo-failed").await;
            panic!("{css} shows {now:?}, not {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn count(browser: &Client, css: &str) -> usize {
    browser.find_all(Locator::Css(css)).await.unwrap().len()
}

async fn order(browser: &Client, mode: &str) {
    browser
        .find(Locator::Css(&format!("button.order[data-mode={mode}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_in_each_mode_show_their_times() {
    if !driver::available_or_skip("orders_in_each_mode_show_their_times") {
        return;
    }
    let mut config = fast_config(200, 100);
    // The 30 ms email always answers within the budget: hybrid says "email sent".
    config.hybrid_budget = Duration::from_secs(10);
    let profile = tempfile::tempdir().unwrap();
    let (demo, driver) = tokio::join!(start(config), Driver::start());
    let browser = driver.session(profile.path()).await;
    browser.goto(&demo.url()).await.unwrap();

    for mode in ["sync", "async", "hybrid"] {
        order(&browser, mode).await;
        let result = wait_for(
            &browser,
            &format!("#mode-{mode} output.last"),
            "a confirmed order with its time",
            |t| t.starts_with("confirmed in ") && t.contains(" ms"),
        )
        .await;
        eprintln!("{mode}: {result}");
    }
    // The list, the summary and the chart catch up on their next refresh.
    for mode in ["sync", "async", "hybrid"] {
        let row = wait_for(
            &browser,
            &format!("#orders tr[data-mode={mode}]"),
            "the order with its response time",
            |t| t.contains(" ms"),
        )
        .await;
        assert!(row.contains("confirmed"), "{row}");
        wait_for(&browser, "#summary tbody", "a row per mode", |t| {
            t.lines().count() == 3
        })
        .await;
        let deadline = Instant::now() + PATIENCE;
        while count(&browser, &format!("#chart g.dots.{mode} circle")).await == 0 {
            assert!(Instant::now() < deadline, "no {mode} dot on the chart");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    screenshot(&browser, "demo-orders").await;

    // The outage switch: sync checkouts fail, async ones still succeed.
    browser
        .find(Locator::Css("#outage"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !demo.shop.providers.email_outage() {
        assert!(
            Instant::now() < deadline,
            "the switch did not reach the demo"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    order(&browser, "sync").await;
    wait_for(&browser, "#mode-sync output.last", "a failed order", |t| {
        t.starts_with("A provider failed")
    })
    .await;
    order(&browser, "async").await;
    wait_for(
        &browser,
        "#mode-async output.last",
        "a confirmed order",
        |t| t.starts_with("confirmed in ") && t.ends_with("email queued"),
    )
    .await;
    wait_for(
        &browser,
        "#orders tbody tr:first-child",
        "its email retrying",
        |t| t.contains("retrying"),
    )
    .await;
    screenshot(&browser, "demo-outage").await;

    browser.close().await.unwrap();
    drop(driver);
    demo.stop().await.unwrap();
}
