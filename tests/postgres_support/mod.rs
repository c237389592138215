//! PostgreSQL for the end-to-end tests: a fresh schema per test on the server named by
//! `BUZZER_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), `buzzer
//! serve` processes over it, and a proxy to cut the database off.
//!
//! Unreachable database: each test prints one loud `SKIPPED` line and passes, unless
//! `BUZZER_TEST_POSTGRES_REQUIRED` is set (CI sets it), in which case it fails.

#![allow(dead_code)]

// The same cut-off proxy the PostgreSQL store's own outage tests use.
#[path = "../../crates/store-postgres/tests/common/proxy.rs"]
pub mod proxy;

use std::{
    net::TcpStream,
    path::Path,
    process::Command,
    sync::{
        OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::{Server, buzzer};

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

/// Whether the test database answers; see the module docs.
pub fn available() -> bool {
    static REACHABLE: OnceLock<bool> = OnceLock::new();
    let reachable = *REACHABLE.get_or_init(|| {
        let url = url();
        let reachable = proxy::target_opt(&url)
            .is_some_and(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok());
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

#[macro_export]
macro_rules! require_postgres {
    () => {
        if !postgres_support::available() {
            return;
        }
    };
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

/// A schema of its own on the test database, dropped with everything in it at the end.
#[derive(Debug)]
pub struct Schema {
    pub name: String,
    pub base_url: String,
}

impl Schema {
    /// Named `bt_<pid>_…`: the store crate's tests drop such schemas of dead processes.
    pub async fn create() -> Schema {
        static N: AtomicUsize = AtomicUsize::new(0);
        let base_url = url();
        let name = format!(
            "bt_{}_e{}_{:04x}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            rand_u16()
        );
        connect(&base_url)
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .expect("create a test schema");
        Schema { name, base_url }
    }

    /// The URL `buzzer serve` gets: Buzzer's `schema=` parameter names this schema.
    pub fn url(&self) -> String {
        with_schema(&self.base_url, &self.name)
    }

    /// A direct connection with this schema on its search_path, to look at the tables.
    pub async fn client(&self) -> tokio_postgres::Client {
        let client = connect(&self.base_url).await;
        client
            .batch_execute(&format!("SET search_path = {}", self.name))
            .await
            .unwrap();
        client
    }
}

pub fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.base_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async {
                connect(&url)
                    .await
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

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    (nanos ^ (nanos >> 16)) as u16
}

/// `buzzer serve --listen 127.0.0.1:0 --database URL ARGS…`.
pub fn serve_command(database_url: &str, args: &[&str]) -> Command {
    let mut cmd = buzzer();
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database_url,
    ]);
    cmd.args(args);
    cmd
}

/// Starts `buzzer serve` over PostgreSQL; its log goes next to `log_dir`'s `name`.
pub fn serve(log_dir: &Path, name: &str, database_url: &str, args: &[&str]) -> Server {
    Server::spawn(serve_command(database_url, args), &log_dir.join(name))
}
