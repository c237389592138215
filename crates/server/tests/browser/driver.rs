//! Headless Chromium behind chromedriver, for the dashboard tests: finding the browser,
//! starting chromedriver on a free port, opening a WebDriver session, and saving screenshots
//! as build artefacts under `target/browser-artifacts/`.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Map, Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether the browser tests can run here. Without Chromium they are skipped with a loud line,
/// unless `BUZZER_TEST_BROWSER_REQUIRED` is set (as in CI), where a missing browser fails.
pub fn available_or_skip(test: &str) -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    let why = format!(
        "{CHROMIUM} or {CHROMEDRIVER} is missing (scripts/install-chromium.sh installs them)"
    );
    let required =
        std::env::var("BUZZER_TEST_BROWSER_REQUIRED").is_ok_and(|v| !v.is_empty() && v != "0");
    if required {
        panic!("{test}: BUZZER_TEST_BROWSER_REQUIRED is set but {why}");
    }
    eprintln!("\n*** SKIPPED {test}: {why} ***\n");
    false
}

/// A chromedriver process; killed when dropped.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub async fn start() -> Driver {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{}/status", driver.url))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            if ready.is_some() {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A new headless browser session with its own profile directory.
    pub async fn session(&self, profile: &Path) -> Client {
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1360,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let caps: Map<String, Value> = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        }))
        .unwrap();
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("open a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<target dir>/browser-artifacts/`: beside the `tmp` directory cargo gives integration tests,
/// so it follows `CARGO_TARGET_DIR`.
fn artifact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("browser-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves what the browser shows as `browser-artifacts/{name}.png`.
pub async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    let path = artifact_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}
