//! The dashboard in headless Chromium, driven over WebDriver: sign in, live counts, the wait
//! and run time charts, a job's page, retrying a dead job, pausing a queue, why a job waits
//! and deleting it, topics and schedules, escaping of hostile job data and a cross-site
//! POST. One chromedriver, one browser and one server for the whole file (starting Chromium is
//! the slow part), the steps run in order; every step leaves a screenshot in
//! `<target dir>/browser-artifacts/`, and a failing step one named `…-failed`.
//!
//! Without Chromium the test prints that it skipped; with `BUZZER_TEST_BROWSER_REQUIRED` set
//! (CI) it fails instead. `scripts/install-chromium.sh` installs the browser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod driver;
mod server;
mod steps;

use std::{
    future::Future,
    panic::AssertUnwindSafe,
    time::{Duration, Instant},
};

use fantoccini::{Client, Locator};
use futures::FutureExt;

use driver::{Driver, screenshot};
use server::Server;

const API_KEY: &str = "browser-test-key";
/// Long enough for a loaded two-core machine; conditions are polled, so a fast run is fast.
const PATIENCE: Duration = Duration::from_secs(20);

/// What every step gets: the browser and the server behind it.
#[derive(Debug)]
pub struct Ctx {
    pub browser: Client,
    pub server: Server,
}

impl Ctx {
    pub async fn goto(&self, path: &str) {
        self.browser.goto(&self.server.url(path)).await.unwrap();
    }

    pub async fn path(&self) -> String {
        self.browser.current_url().await.unwrap().path().to_owned()
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.browser
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn count(&self, css: &str) -> usize {
        self.browser
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .len()
    }

    /// Clicks the submit button of the POST form whose action ends in `action`.
    pub async fn submit(&self, action: &str) {
        self.find(&format!("form[action$='{action}'] button[type=submit]"))
            .await
            .click()
            .await
            .unwrap();
    }

    /// Polls until the element's text is `want` (the page's script updates it on its own).
    pub async fn wait_text(&self, css: &str, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.text(css).await;
            if now == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{css} still shows {now:?}, not {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn snap(&self, name: &str) {
        screenshot(&self.browser, name).await;
    }
}

/// Runs one step; a failure leaves a screenshot of what the browser showed, then fails.
async fn step<'a, F, Fut>(ctx: &'a Ctx, name: &str, f: F)
where
    F: FnOnce(&'a Ctx) -> Fut,
    Fut: Future<Output = ()> + 'a,
{
    let started = Instant::now();
    let outcome = AssertUnwindSafe(f(ctx)).catch_unwind().await;
    if let Err(panic) = outcome {
        screenshot(&ctx.browser, &format!("{name}-failed")).await;
        std::panic::resume_unwind(panic);
    }
    eprintln!("step {name}: ok in {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_headless_chromium() {
    if !driver::available_or_skip("the_dashboard_in_headless_chromium") {
        return;
    }
    let started = Instant::now();
    let profile = tempfile::tempdir().unwrap();
    let (server, driver) = tokio::join!(Server::start(API_KEY), Driver::start());
    let browser = driver.session(profile.path()).await;
    let ctx = Ctx { browser, server };

    step(&ctx, "sign-in", steps::sign_in).await;
    step(&ctx, "live-counts", steps::live_counts).await;
    step(&ctx, "time-charts", steps::time_charts).await;
    step(&ctx, "open-job", steps::open_job).await;
    step(&ctx, "retry-dead-job", steps::retry_dead_job).await;
    step(&ctx, "pause-queue", steps::pause_queue).await;
    step(
        &ctx,
        "why-not-running-and-delete",
        steps::why_not_running_and_delete,
    )
    .await;
    step(&ctx, "topics-and-schedules", steps::topics_and_schedules).await;
    step(&ctx, "hostile-job-data", steps::hostile_job_data).await;
    step(&ctx, "cross-site-post", steps::cross_site_post).await;

    ctx.browser.clone().close().await.unwrap();
    drop(driver);
    eprintln!("browser suite: {:?}", started.elapsed());
}
