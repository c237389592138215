//! Runs the real `buzzer` binary for end-to-end tests: a server child process on a free port
//! over a temp database, killed when the handle drops, and the operator CLI.

// Each test file uses a different part of this module.
#![allow(dead_code)]

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_buzzer");

/// How long a debug build gets to open its database and bind.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary with none of the developer's `BUZZER_*` settings leaking in.
pub fn buzzer() -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "BUZZER_LISTEN",
        "BUZZER_DATABASE_URL",
        "BUZZER_API_KEY",
        "BUZZER_SERVER",
        "BUZZER_ALLOW_PRIVATE_WEBHOOKS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

/// `buzzer serve --listen 127.0.0.1:0 --database sqlite:<db> ARGS…`, to adjust before
/// [`Server::spawn`]. `ARGS` may name another `--listen`.
pub fn serve_command(db: &Path, args: &[&str]) -> Command {
    let mut cmd = buzzer();
    cmd.arg("serve")
        .arg("--database")
        .arg(format!("sqlite:{}", db.display()));
    if !args.contains(&"--listen") {
        cmd.arg("--listen").arg("127.0.0.1:0");
    }
    cmd.args(args);
    cmd
}

/// A running `buzzer serve`. Dropping it kills the process (SIGKILL).
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Base URL to call, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The line the server printed, e.g. `buzzer listening on http://0.0.0.0:41234`.
    pub banner: String,
    pub db: PathBuf,
    log: PathBuf,
    /// Kept open: the server must never write into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Starts a server over `db` on a free loopback port.
    pub fn start(db: &Path) -> Server {
        Server::spawn(serve_command(db, &[]), db)
    }

    /// Starts a server with extra `serve` flags.
    pub fn start_with(db: &Path, args: &[&str]) -> Server {
        Server::spawn(serve_command(db, args), db)
    }

    /// Runs `cmd` and waits for its "listening on" line; panics with its log if none comes.
    pub fn spawn(mut cmd: Command, db: &Path) -> Server {
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = db.with_extension(format!("server{n}.log"));
        let log_file = File::create(&log).expect("create the server log");
        // stderr goes to a file: a pipe nobody drains would block the server under load.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("spawn buzzer serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            let _ = tx.send((read.map(|_| line), reader));
        });
        let (line, stdout) = match rx.recv_timeout(START_TIMEOUT) {
            Ok((Ok(line), reader)) if !line.is_empty() => (line, reader),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let outcome = other.map(|(line, _)| line);
                panic!(
                    "buzzer serve printed no listening line ({outcome:?}); its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        let banner = line.trim_end().to_owned();
        let addr = banner
            .strip_prefix("buzzer listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {banner:?}"));
        // A wildcard bind is reached through loopback.
        let addr = addr
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("[::]:", "[::1]:");
        Server {
            child,
            url: format!("http://{addr}"),
            banner,
            db: db.to_owned(),
            log,
            _stdout: stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit by itself; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server logged so far, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs an operator command against this server.
    pub fn cli(&self, key: Option<&str>, args: &[&str]) -> Output {
        cli(&self.url, key, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `buzzer --server URL [--api-key KEY] ARGS…`.
pub fn cli(url: &str, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = buzzer();
    cmd.arg("--server").arg(url);
    if let Some(key) = key {
        cmd.arg("--api-key").arg(key);
    }
    cmd.args(args).stdin(Stdio::null());
    cmd.output().expect("run buzzer")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// Asserts success and parses stdout as one JSON document.
#[track_caller]
pub fn ok_json(out: &Output) -> serde_json::Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// An HTTP client that sends `key` as a bearer token.
pub fn http(key: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(key) = key {
        let value = format!("Bearer {key}").parse().expect("header value");
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// POSTs JSON and returns the status and the JSON answer.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let resp = http.post(url).json(&body).send().await.expect("POST");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

pub async fn get(http: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let resp = http.get(url).send().await.expect("GET");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// Enqueues one job and returns its id; panics unless the answer is 201.
pub async fn enqueue(
    http: &reqwest::Client,
    base: &str,
    queue: &str,
    body: serde_json::Value,
) -> String {
    let (status, job) = post(http, &format!("{base}/v1/queues/{queue}/jobs"), body).await;
    assert_eq!(status, 201, "enqueue answered {status}: {job}");
    job["id"].as_str().expect("job id").to_owned()
}

/// Every job id of a queue, following the cursor.
pub async fn all_ids(http: &reqwest::Client, base: &str, queue: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/jobs?queue={queue}&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = get(http, &url).await;
        assert_eq!(status, 200, "{page}");
        for job in page["jobs"].as_array().expect("jobs") {
            ids.push(job["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}
