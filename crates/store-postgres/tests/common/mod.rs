//! A fresh PostgreSQL schema per test, dropped afterwards, on the server named by
//! `BUZZER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//!
//! When that server cannot be reached, each test prints one loud `SKIPPED` line and passes,
//! unless `BUZZER_TEST_POSTGRES_REQUIRED` is set (CI sets it): then every test fails.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod proxy;

use std::{
    net::{TcpStream, ToSocketAddrs},
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use buzzer_store::{JobFetch, JobInsert};
use buzzer_store_postgres::{PgOptions, PgStore, tokio_postgres};
use buzzer_types::RawValue;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn url() -> String {
    std::env::var("BUZZER_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned())
}

fn required() -> bool {
    std::env::var("BUZZER_TEST_POSTGRES_REQUIRED").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Whether the test database answers. Unreachable: panics when required, else prints
/// `SKIPPED` once and answers false.
pub fn available() -> bool {
    static REACHABLE: OnceLock<bool> = OnceLock::new();
    let reachable = *REACHABLE.get_or_init(|| {
        let url = url();
        let reachable = probe(&url);
        if !reachable && !required() {
            eprintln!(
                "\n*** SKIPPED: PostgreSQL not reachable at {url}; the PostgreSQL tests pass \
                 without running. Set BUZZER_TEST_POSTGRES_URL, or BUZZER_TEST_POSTGRES_REQUIRED=1 \
                 to fail instead. ***\n"
            );
        }
        reachable
    });
    assert!(
        reachable || !required(),
        "PostgreSQL is not reachable at {} and BUZZER_TEST_POSTGRES_REQUIRED is set",
        url()
    );
    reachable
}

/// A TCP connect to the URL's first host and port.
fn probe(url: &str) -> bool {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        panic!("BUZZER_TEST_POSTGRES_URL {url:?} is not a PostgreSQL URL");
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else {
        return false;
    };
    addrs
        .into_iter()
        .any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// `return`s from the calling test when PostgreSQL is not there (and not required).
#[macro_export]
macro_rules! require_postgres {
    () => {
        if !common::available() {
            return;
        }
    };
}

/// A schema of its own, dropped (with everything in it) when this is dropped.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
    pub url: String,
}

impl Schema {
    /// Creates a fresh, empty schema. Names carry this process's id, so schemas left behind
    /// by a killed run are recognised and dropped by the next one.
    pub async fn create() -> Schema {
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = url();
        let client = connect(&url).await;
        drop_stale(&client).await;
        let name = format!(
            "bt_{}_{}_{:04x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand::random::<u16>()
        );
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create a test schema");
        Schema { name, url }
    }

    pub fn options(&self) -> PgOptions {
        PgOptions {
            schema: Some(self.name.clone()),
            max_connections: 8,
            ..PgOptions::default()
        }
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url, self.options())
            .await
            .expect("connect the PostgreSQL store")
    }

    /// The URL with Buzzer's `schema=` parameter, as `buzzer serve` takes it.
    pub fn url_with_schema(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}schema={}", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop runs inside a test's runtime, which must not be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = connect(&url).await;
                client
                    .batch_execute(&format!(
                        "SET lock_timeout = '20s'; DROP SCHEMA IF EXISTS {name} CASCADE"
                    ))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// Drops `bt_<pid>_…` schemas whose process is gone (once per process).
async fn drop_stale(client: &tokio_postgres::Client) {
    static DONE: OnceLock<()> = OnceLock::new();
    if DONE.set(()).is_err() {
        return;
    }
    let rows = client
        .query(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bt\\_%'",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .await;
        }
    }
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

pub fn job(queue: &str) -> JobInsert {
    buzzer_store_tests::job_insert(queue, raw(r#"{"n": 1}"#))
}

pub fn fetch(queues: &[&str], max_jobs: u32) -> JobFetch {
    JobFetch {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        worker_id: "w1".into(),
        max_jobs,
        lease_ms: 30_000,
    }
}
