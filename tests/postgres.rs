//! `buzzer serve` and `buzzer migrate` over PostgreSQL, as operators run them: migrations
//! ahead of time or at start (several at once), and a database outage under load: 503 with
//! `Retry-After` while it is gone, never a 2xx for a job that was not stored, recovery without
//! a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod postgres_support;

use std::{
    process::Output,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{buzzer, http, ok, post};
use postgres_support::{Schema, proxy::Proxy};
use serde_json::json;

fn migrate(url: &str) -> Output {
    buzzer()
        .args(["migrate", "--database", url])
        .output()
        .expect("run buzzer migrate")
}

async fn migrations(schema: &Schema) -> Vec<(i32, String)> {
    schema
        .client()
        .await
        .query(
            "SELECT version, name FROM buzzer_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every migration this build carries, as the schema's history should list them once applied.
fn all_migrations() -> Vec<(i32, String)> {
    buzzer_store_postgres::MIGRATIONS
        .iter()
        .map(|m| (m.version, m.name.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_reports_each_step_and_then_finds_nothing_to_do() {
    require_postgres!();
    let schema = Schema::create().await;
    let first = ok(&migrate(&schema.url()));
    assert!(
        first.contains(&format!("schema {}: at version 0", schema.name)),
        "{first}"
    );
    assert!(first.contains("applying 0001_init"), "{first}");
    let latest = buzzer_store_postgres::latest();
    assert!(
        first.contains(&format!("migrated from version 0 to {latest}")),
        "{first}"
    );
    let again = ok(&migrate(&schema.url()));
    assert!(
        again.contains(&format!("is up to date (version {latest})")),
        "{again}"
    );
    assert!(!again.contains("applying"), "{again}");
    assert_eq!(migrations(&schema).await, all_migrations());

    // A server over the migrated schema serves at once.
    let dir = tempfile::tempdir().unwrap();
    let server = postgres_support::serve(dir.path(), "s", &schema.url(), &[]);
    let (status, job) = post(
        &http(None),
        &format!("{}/v1/queues/q/jobs", server.url),
        json!({"payload": {"hello": "postgres"}}),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["id"], "0000000000001");
}

/// Nodes of a fresh deployment start together: every one migrates (under an advisory lock),
/// exactly one applies each migration, and all serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_and_migrations_started_together_on_a_fresh_schema_all_succeed() {
    require_postgres!();
    let schema = Schema::create().await;
    let dir = tempfile::tempdir().unwrap();
    let url = schema.url();
    let migrations_running: Vec<_> = (0..3)
        .map(|_| {
            buzzer()
                .args(["migrate", "--database", &url])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let servers: Vec<_> = (0..2)
        .map(|i| {
            let cmd = postgres_support::serve_command(&url, &[]);
            std::thread::spawn({
                let log = dir.path().join(format!("s{i}"));
                move || common::Server::spawn(cmd, &log)
            })
        })
        .collect();
    for m in migrations_running {
        ok(&m.wait_with_output().unwrap());
    }
    let servers: Vec<_> = servers.into_iter().map(|s| s.join().unwrap()).collect();
    assert_eq!(migrations(&schema).await, all_migrations());
    for s in &servers {
        let (status, _) = post(
            &http(None),
            &format!("{}/v1/queues/q/jobs", s.url),
            json!({"payload": {}}),
        )
        .await;
        assert_eq!(status, 201, "{}", s.log());
    }
}

/// Producers enqueue over HTTP without pause while the database disappears for two seconds
/// (the proxy between server and database is cut, as in a restart) and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_answers_503_and_recovers_unaided() {
    require_postgres!();
    const PRODUCERS: usize = 4;
    let schema = Schema::create().await;
    let proxy = Proxy::start(postgres_support::proxy::target_opt(&schema.base_url).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let server = postgres_support::serve(dir.path(), "s", &proxy.url(&schema.url()), &[]);
    let acked = Arc::new(Mutex::new(Vec::<(Instant, String)>::new()));
    let refused = Arc::new(Mutex::new(0usize));
    let stop_at = Instant::now() + Duration::from_secs(6);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = format!("{}/v1/queues/load/jobs", server.url);
            let (acked, refused) = (acked.clone(), refused.clone());
            tokio::spawn(async move {
                let http = http(None);
                let mut n = 0;
                while Instant::now() < stop_at {
                    n += 1;
                    let resp = http
                        .post(&url)
                        .json(&json!({"payload": {"p": p, "n": n}}))
                        .send()
                        .await
                        .expect("the server itself stays up");
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().get("retry-after").cloned();
                    let body: serde_json::Value = resp.json().await.unwrap();
                    match status {
                        201 => acked
                            .lock()
                            .unwrap()
                            .push((Instant::now(), body["id"].as_str().unwrap().to_owned())),
                        503 => {
                            assert!(retry_after.is_some(), "a 503 says when to retry: {body}");
                            *refused.lock().unwrap() += 1;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        other => panic!(
                            "only 201 or 503 while the database comes and goes, got {other}: {body}"
                        ),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let restored = Instant::now();
    proxy.restore();
    for p in producers {
        p.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let refused = *refused.lock().unwrap();
    let after_restore = acked.iter().filter(|(at, _)| *at > restored).count();
    eprintln!(
        "{} acknowledged, {refused} answered 503 while down, {after_restore} after the restore",
        acked.len()
    );
    assert!(refused > 0, "the outage was felt");
    assert!(after_restore > 0, "the server recovered by itself");

    // Every acknowledged job is in the database (looked at directly, not through the proxy).
    let client = schema.client().await;
    let stored: Vec<i64> = client
        .query("SELECT id FROM buzzer_jobs WHERE queue = 'load'", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let stored: std::collections::HashSet<String> = stored.iter().map(|id| job_id(*id)).collect();
    let lost: Vec<_> = acked
        .iter()
        .filter(|(_, id)| !stored.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged jobs lost: {lost:?}");
    assert!(
        stored.len() <= acked.len() + PRODUCERS,
        "{} stored for {} acknowledged: at most one in-flight insert per producer may have \
         committed without its answer",
        stored.len(),
        acked.len()
    );
}

/// The API's form of a job id: 13 characters of Crockford base32.
fn job_id(id: i64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut v = id as u64;
    let mut out = [b'0'; 13];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// `buzzer bench` on PostgreSQL starts each run from a `CHECKPOINT`; a role without the right
/// to one still gets its figures, with a note naming PostgreSQL's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_checkpoints_first_or_says_why_not() {
    require_postgres!();
    let schema = Schema::create().await;
    let bench = |url: &str| {
        buzzer()
            .args(["--json", "bench", "w1", "--jobs", "200", "--database", url])
            .output()
            .expect("run buzzer bench")
    };
    let as_superuser = bench(&schema.url());
    let report = ok(&as_superuser);
    assert!(report.contains("processed_per_s"), "{report}");
    assert!(
        !common::stderr(&as_superuser).contains("CHECKPOINT"),
        "{}",
        common::stderr(&as_superuser)
    );

    // The owner of a schema of its own, and nothing more.
    let schema = Schema::create().await;
    let role = format!("{}_bench", schema.name);
    let admin = postgres_support::connect(&postgres_support::url()).await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role}; ALTER SCHEMA {} OWNER TO {role}",
            schema.name
        ))
        .await
        .unwrap();
    let as_owner = bench(&format!("{}&options=-c%20role%3D{role}", schema.url()));
    admin
        .batch_execute(&format!(
            "DROP SCHEMA {} CASCADE; DROP ROLE {role}",
            schema.name
        ))
        .await
        .unwrap();
    let report = ok(&as_owner);
    assert!(report.contains("processed_per_s"), "{report}");
    let note = common::stderr(&as_owner);
    assert!(
        note.contains("could not CHECKPOINT") && note.contains("42501"),
        "{note}"
    );
}
