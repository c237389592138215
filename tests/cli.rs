//! The `buzzer` binary as operators meet it: `serve`'s refusals and graceful stop, and the
//! operator commands against a live server, human and `--json`.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// `libc::kill` sends SIGTERM/SIGINT to the server child: std can only send SIGKILL.
#![allow(unsafe_code)]

mod common;

use std::{
    process::Output,
    time::{Duration, Instant},
};

use common::{
    Server, buzzer, enqueue, get, http, ok, ok_json, post, serve_command, stderr, stdout,
};
use serde_json::{Value, json};

const KEY: &str = "test-key-123";

/// Runs `buzzer serve ARGS…` over a temp database and expects it to refuse to start.
fn serve_refused(db: &std::path::Path, args: &[&str]) -> String {
    let out = serve_command(db, args).output().unwrap();
    assert!(
        !out.status.success(),
        "serve should have failed: {}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).is_empty(),
        "nothing on stdout: {}",
        stdout(&out)
    );
    last_line(&out)
}

/// The error line (logs, if any, come before it).
fn last_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_owned()
}

#[test]
fn serve_refuses_a_network_address_without_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let err = serve_refused(&db, &["--listen", addr]);
        assert!(err.starts_with("error: refusing to listen on"), "{err}");
        assert!(err.contains("without an API key"), "{err}");
    }
    assert!(!db.exists(), "a refused start creates no database");
}

#[tokio::test]
async fn serve_on_a_network_address_requires_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let server = Server::start_with(&db, &["--listen", "0.0.0.0:0", "--api-key", KEY]);
    assert!(
        server
            .banner
            .starts_with("buzzer listening on http://0.0.0.0:"),
        "{}",
        server.banner
    );
    let (status, _) = get(&http(None), &format!("{}/healthz", server.url)).await;
    assert_eq!(status, 200, "/healthz stays open");
    let (status, _) = get(&http(None), &format!("{}/v1/queues", server.url)).await;
    assert_eq!(status, 401);
    let (status, _) = get(&http(Some(KEY)), &format!("{}/v1/queues", server.url)).await;
    assert_eq!(status, 200);
    drop(server);

    // BUZZER_API_KEY holds several keys, separated by commas.
    let mut cmd = serve_command(&db, &["--listen", "0.0.0.0:0"]);
    cmd.env("BUZZER_API_KEY", "first,second");
    let server = Server::spawn(cmd, &db);
    let (status, _) = get(&http(Some("second")), &format!("{}/v1/queues", server.url)).await;
    assert_eq!(status, 200);
    let (status, _) = get(&http(Some("third")), &format!("{}/v1/queues", server.url)).await;
    assert_eq!(status, 401);
}

/// PostgreSQL works (tests/postgres.rs); one that cannot be reached is named in a one-line
/// error, without its password.
#[test]
fn an_unreachable_postgres_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://postgres:secret@127.0.0.1:1/test",
        "postgresql://postgres:secret@127.0.0.1:1/test?schema=x",
    ] {
        let out = buzzer()
            .args(["serve", "--listen", "127.0.0.1:0", "--database", url])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = last_line(&out);
        assert!(err.contains("cannot reach PostgreSQL at postgres"), "{err}");
        assert!(err.contains("127.0.0.1:1/test"), "{err}");
        assert!(!stderr(&out).contains("secret"), "{}", stderr(&out));
    }
}

#[test]
fn a_corrupt_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let garbage: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, &garbage).unwrap();
    let err = serve_refused(&db, &[]);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("b.db"), "the message names the file: {err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        garbage,
        "the file is untouched"
    );
}

/// `buzzer migrate` on a SQLite file prints each step as it does for PostgreSQL, finds nothing
/// to do the second time, and refuses a file a server holds; `serve` logs the migrations it
/// applies itself, and none on a file already migrated.
#[tokio::test]
async fn migrate_a_sqlite_file_reports_each_step_and_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("m.db");
    let url = format!("sqlite:{}", db.display());
    let migrate = || {
        buzzer()
            .args(["migrate", "--database", &url])
            .output()
            .unwrap()
    };
    let first = ok(&migrate());
    assert!(first.contains("m.db: at version 0"), "{first}");
    let latest: u32 = first
        .split("this build writes version ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no version in {first}"));
    assert!(first.contains("applying 0001_init …"), "{first}");
    assert!(
        first.contains("applied  0009_state_as_integer in "),
        "{first}"
    );
    assert!(
        first.contains(&format!("migrated from version 0 to {latest}")),
        "{first}"
    );
    let again = ok(&migrate());
    assert!(
        again.contains(&format!("is up to date (version {latest})")),
        "{again}"
    );
    assert!(!again.contains("applying"), "{again}");

    let server = Server::start(&db);
    assert!(
        !server.log().contains("applied a migration"),
        "nothing left to migrate: {}",
        server.log()
    );
    let held = migrate();
    assert_eq!(held.status.code(), Some(1), "{}", stdout(&held));
    assert!(last_line(&held).contains("in use"), "{}", stderr(&held));
    let id = enqueue(&http(None), &server.url, "q", json!({"payload": {}})).await;
    assert!(!id.is_empty());

    // A server opening a new file migrates it itself, and logs each migration it applies.
    let fresh = Server::start(&dir.path().join("fresh.db"));
    let log = fresh.log();
    assert!(log.contains("migrating the SQLite schema"), "{log}");
    assert!(
        log.contains("applied a migration") && log.contains("state_as_integer"),
        "{log}"
    );
}

#[tokio::test]
async fn a_second_server_on_the_same_database_fails() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let first = Server::start(&db);
    let err = serve_refused(&db, &[]);
    assert!(err.contains("b.db"), "the message names the file: {err}");
    assert!(err.contains("in use"), "{err}");
    let (status, _) = get(&http(None), &format!("{}/healthz", first.url)).await;
    assert_eq!(status, 200, "the first server is unharmed");
}

#[tokio::test]
async fn sigterm_and_sigint_stop_gracefully_and_keep_acknowledged_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let mut ids = Vec::new();
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut server = Server::start(&db);
        ids.push(enqueue(&http(None), &server.url, "q", json!({"payload": {"n": 1}})).await);
        let started = Instant::now();
        // SAFETY: plain kill(2) on our own child's pid, which has not been waited on yet.
        let rc = unsafe { libc::kill(server.pid() as libc::pid_t, signal) };
        assert_eq!(rc, 0);
        let status = server
            .wait_exit(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("still running after signal {signal}:\n{}", server.log()));
        assert!(
            status.success(),
            "exit {status:?} after signal {signal}:\n{}",
            server.log()
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    let server = Server::start(&db);
    for id in &ids {
        let (status, job) = get(&http(None), &format!("{}/v1/jobs/{id}", server.url)).await;
        assert_eq!(status, 200, "job {id} survived the restart: {job}");
    }
}

#[tokio::test]
async fn serve_defaults_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    // No --database: ./buzzer.db in the working directory.
    let mut cmd = buzzer();
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path());
    let server = Server::spawn(cmd, &dir.path().join("default.db"));
    assert!(dir.path().join("buzzer.db").exists());
    drop(server);

    // Every URL form opens the same kind of store; --max-body reaches the server.
    let db = dir.path().join("b.db");
    let url = format!("sqlite://{}", db.display()); // sqlite:///abs/path
    let mut cmd = buzzer();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .args(["--max-body", "1024", "--sqlite-synchronous", "normal"]);
    let server = Server::spawn(cmd, &db);
    let big = json!({"payload": {"pad": "x".repeat(2048)}});
    let (status, _) = post(
        &http(None),
        &format!("{}/v1/queues/q/jobs", server.url),
        big,
    )
    .await;
    assert_eq!(status, 413);
    enqueue(&http(None), &server.url, "q", json!({"payload": 1})).await;
    assert!(db.exists());
}

/// Makes `n` dead jobs in `queue` (one attempt each, failed with `"retry": false`).
async fn make_dead(url: &str, queue: &str, n: usize, tags: &[&str]) -> Vec<String> {
    let http = http(Some(KEY));
    let jobs: Vec<Value> = (0..n)
        .map(|i| json!({"payload": {"i": i}, "max_attempts": 1, "tags": tags}))
        .collect();
    let (status, batch) = post(
        &http,
        &format!("{url}/v1/queues/{queue}/jobs/batch"),
        json!({"jobs": jobs}),
    )
    .await;
    assert_eq!(status, 201, "{batch}");
    let fetch = json!({"queues": [queue], "worker_id": "w", "max_jobs": n});
    let (status, fetched) = post(&http, &format!("{url}/v1/fetch"), fetch).await;
    assert_eq!(status, 200, "{fetched}");
    let fetched = fetched["jobs"].as_array().unwrap();
    assert_eq!(fetched.len(), n);
    let acks: Vec<Value> = fetched
        .iter()
        .map(|j| json!({"id": j["id"], "lease_token": j["lease_token"], "error": {"message": "boom: downstream said no"}, "retry": false}))
        .collect();
    let (status, answer) = post(&http, &format!("{url}/v1/acks"), json!({"acks": acks})).await;
    assert_eq!(status, 200, "{answer}");
    fetched
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_owned())
        .collect()
}

fn find_queue<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == name)
        .unwrap_or_else(|| panic!("no queue {name} in {list}"))
}

#[tokio::test]
async fn operator_commands_against_a_live_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let server = Server::start_with(&db, &["--api-key", KEY]);
    let key = Some(KEY);
    let http = http(key);
    let url = server.url.clone();
    let a = enqueue(
        &http,
        &url,
        "emails",
        json!({"payload": {"to": "ada"}, "tags": ["welcome"]}),
    )
    .await;
    let b = enqueue(&http, &url, "emails", json!({"payload": {"to": "bob"}})).await;
    let c = enqueue(
        &http,
        &url,
        "emails",
        json!({"payload": {"to": "cy"}, "priority": 5}),
    )
    .await;
    let dead = make_dead(&url, "reports", 3, &[]).await;
    let monthly = make_dead(&url, "reports", 1, &["monthly"]).await;

    // jobs get
    let text = ok(&server.cli(key, &["jobs", "get", &a]));
    assert!(
        text.contains(&a) && text.contains("emails") && text.contains("available"),
        "{text}"
    );
    assert!(
        text.contains(r#"{"to":"ada"}"#) && text.contains("welcome"),
        "{text}"
    );
    assert!(
        text.contains("why not running: Ready to run: waiting for a worker"),
        "{text}"
    );
    let job = ok_json(&server.cli(key, &["--json", "jobs", "get", &a]));
    assert_eq!(job["id"], a.as_str());
    assert_eq!(job["payload"], json!({"to": "ada"}));
    assert_eq!(job["waiting_reason"]["kind"], "no_worker");
    let text = ok(&server.cli(key, &["jobs", "get", &dead[0]]));
    assert!(
        text.contains("boom: downstream said no"),
        "errors are shown: {text}"
    );

    // jobs list: newest first, filters, paging
    let page = ok_json(&server.cli(key, &["jobs", "list", "--queue", "emails", "--json"]));
    let ids: Vec<&str> = page["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [c.as_str(), b.as_str(), a.as_str()]);
    assert_eq!(page["next_cursor"], Value::Null);
    let page = ok_json(&server.cli(
        key,
        &["--json", "jobs", "list", "-q", "emails", "--limit", "2"],
    ));
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let text = ok(&server.cli(key, &["jobs", "list", "-q", "emails", "--limit", "2"]));
    assert!(text.contains(&format!("--cursor {cursor}")), "{text}");
    let rest = ok_json(&server.cli(
        key,
        &[
            "--json", "jobs", "list", "-q", "emails", "--limit", "2", "--cursor", &cursor,
        ],
    ));
    assert_eq!(rest["jobs"][0]["id"], a.as_str());
    let tagged = ok_json(&server.cli(key, &["--json", "jobs", "list", "--tag", "welcome"]));
    assert_eq!(tagged["jobs"].as_array().unwrap().len(), 1);
    let text = ok(&server.cli(key, &["jobs", "list", "--state", "dead"]));
    for id in dead.iter().chain(&monthly) {
        assert!(text.contains(id.as_str()), "{text}");
    }
    assert!(
        text.contains("ID") && text.contains("ATTEMPT") && text.contains("1/1"),
        "{text}"
    );
    assert!(!text.contains(&a), "{text}");

    // jobs cancel / retry
    let text = ok(&server.cli(key, &["jobs", "cancel", &b]));
    assert_eq!(text.trim(), format!("cancelled job {b}"));
    let out = server.cli(key, &["jobs", "cancel", &b]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cancelled job cannot be cancelled again"
    );
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let job = ok_json(&server.cli(key, &["--json", "jobs", "retry", &b]));
    assert_eq!(job["state"], "available");
    let text = ok(&server.cli(key, &["jobs", "retry", &dead[0]]));
    assert!(
        text.contains(&dead[0]) && text.contains("available"),
        "{text}"
    );

    // jobs delete: gone afterwards; a second delete is an error
    let doomed = enqueue(&http, &url, "emails", json!({"payload": 1})).await;
    let text = ok(&server.cli(key, &["jobs", "delete", &doomed]));
    assert_eq!(
        text.trim(),
        format!("deleted job {doomed} (it was available)")
    );
    let out = server.cli(key, &["jobs", "delete", &doomed]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));

    // queues, pause, resume
    let text = ok(&server.cli(key, &["queues"]));
    assert!(
        text.contains("QUEUE") && text.contains("emails") && text.contains("reports"),
        "{text}"
    );
    let list = ok_json(&server.cli(key, &["queues", "list", "--json"]));
    let emails = find_queue(&list, "emails");
    assert_eq!(emails["counts"]["available"], 3);
    assert_eq!(emails["paused"], false);
    assert_eq!(find_queue(&list, "reports")["counts"]["dead"], 3);
    let paused = ok_json(&server.cli(key, &["--json", "queues", "pause", "emails"]));
    assert_eq!(paused["paused"], true);
    let fetch = json!({"queues": ["emails"], "worker_id": "w"});
    let (_, got) = post(&http, &format!("{url}/v1/fetch"), fetch.clone()).await;
    assert_eq!(got["jobs"], json!([]), "a paused queue hands out nothing");
    let text = ok(&server.cli(key, &["queues", "resume", "emails"]));
    assert!(text.starts_with("resumed queue emails"), "{text}");
    let info = ok_json(&server.cli(key, &["queues", "--json"]));
    assert_eq!(find_queue(&info, "emails")["paused"], false);

    // dlq list / retry
    let text = ok(&server.cli(key, &["dlq", "list", "reports"]));
    assert!(
        text.contains("LAST ERROR") && text.contains("boom: downstream said no"),
        "{text}"
    );
    assert!(
        text.contains(&monthly[0]) && !text.contains(&dead[0]),
        "{text}"
    );
    let page = ok_json(&server.cli(key, &["dlq", "list", "--json"]));
    let listed = page["jobs"].as_array().unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed.iter().all(|j| j["state"] == "dead"), "{page}");
    let replay = ok_json(&server.cli(
        key,
        &["--json", "dlq", "retry", "reports", "--tag", "monthly"],
    ));
    assert_eq!(replay["retried"], 1, "{replay}");
    let text = ok(&server.cli(key, &["dlq", "retry", "reports"]));
    assert_eq!(text.trim(), "retried 2 dead jobs of queue reports");
    let text = ok(&server.cli(key, &["dlq", "list", "reports"]));
    assert_eq!(text.trim(), "no jobs");

    // A DLQ bigger than one replay batch (1000) is replayed in several calls.
    make_dead(&url, "bulk", 1_200, &[]).await;
    let replay = ok_json(&server.cli(key, &["dlq", "retry", "bulk", "--json", "--limit", "1100"]));
    assert_eq!(replay["retried"], 1_100, "{replay}");
    let replay = ok_json(&server.cli(key, &["dlq", "retry", "bulk", "--json"]));
    assert_eq!(replay["retried"], 100, "{replay}");
    let (_, bulk) = get(&http, &format!("{url}/v1/queues/bulk")).await;
    assert_eq!(bulk["counts"]["dead"], 0);
    assert_eq!(bulk["counts"]["available"], 1_200);

    // Server and key from the environment.
    let out = buzzer()
        .args(["--json", "queues"])
        .env("BUZZER_SERVER", &url)
        .env("BUZZER_API_KEY", KEY)
        .output()
        .unwrap();
    assert_eq!(ok_json(&out)["queues"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn operator_errors_are_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(&dir.path().join("b.db"), &["--api-key", KEY]);

    let out = server.cli(None, &["queues"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let out = server.cli(Some(KEY), &["jobs", "get", "0000000000zzz"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: ") && stderr(&out).contains("not found"),
        "{}",
        stderr(&out)
    );
    let out = server.cli(Some(KEY), &["queues", "pause", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("http://127.0.0.1:{port}");
    let out = common::cli(&down, None, &["jobs", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("error: cannot reach the Buzzer server at {down} (is 'buzzer serve' running?)\n")
    );

    // Usage errors are clap's (exit 2), before any request.
    let out = common::cli(&down, None, &["jobs", "list", "--state", "sleeping"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown job state"),
        "{}",
        stderr(&out)
    );
}
