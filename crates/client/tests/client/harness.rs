//! A fresh Buzzer per test, embedded or over HTTP to an in-process server, and the job types
//! the scenarios use.

use std::{sync::Arc, time::Duration};

use buzzer::{Buzzer, EngineConfig, Job, JobContext, JobError, SqliteOptions, Synchronous};
use buzzer_engine::{Engine, Services};
use buzzer_store_sqlite::SqliteStore;
use serde::{Deserialize, Serialize};
use tokio::{sync::oneshot, task::JoinHandle};

/// Tests wait on events; this only bounds how long a broken test hangs.
pub const PATIENCE: Duration = Duration::from_secs(20);

fn store_options() -> SqliteOptions {
    SqliteOptions {
        synchronous: Synchronous::Normal,
        quick_check: false,
        ..SqliteOptions::default()
    }
}

/// One Buzzer under test. `engine` is the engine underneath either way, to look at jobs
/// without going through the client under test.
pub struct Harness {
    pub buzzer: Buzzer,
    pub engine: Engine,
    server: Option<(
        oneshot::Sender<()>,
        JoinHandle<std::io::Result<()>>,
        Services,
    )>,
    /// The PostgreSQL URL and the schema to drop afterwards.
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn embedded() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let buzzer = Buzzer::open_with(
            dir.path().join("b.db"),
            store_options(),
            EngineConfig::default(),
        )
        .await
        .unwrap();
        let engine = buzzer.engine().unwrap().clone();
        Harness {
            buzzer,
            engine,
            server: None,
            schema: None,
            _dir: dir,
        }
    }

    /// Embedded over a fresh schema on the PostgreSQL of `BUZZER_TEST_POSTGRES_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/test`); `None` (the test passes without running)
    /// when it cannot be reached, unless `BUZZER_TEST_POSTGRES_REQUIRED` is set.
    #[cfg(feature = "postgres")]
    pub async fn postgres() -> Option<Harness> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SCHEMAS: AtomicUsize = AtomicUsize::new(0);
        let url = std::env::var("BUZZER_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let required =
            std::env::var("BUZZER_TEST_POSTGRES_REQUIRED").is_ok_and(|v| !v.is_empty() && v != "0");
        let schema = format!(
            "buzzer_client_{}_{}",
            std::process::id(),
            SCHEMAS.fetch_add(1, Ordering::Relaxed)
        );
        let opts = buzzer::PgOptions {
            schema: Some(schema.clone()),
            ..buzzer::PgOptions::default()
        };
        let buzzer = match Buzzer::open_postgres_with(&url, opts, EngineConfig::default()).await {
            Ok(buzzer) => buzzer,
            Err(buzzer::Error::Unavailable(why)) if !required => {
                eprintln!("SKIPPED: no PostgreSQL for the client tests: {why}");
                return None;
            }
            Err(e) => panic!("PostgreSQL at {url}: {e}"),
        };
        let engine = buzzer.engine().unwrap().clone();
        Some(Harness {
            buzzer,
            engine,
            server: None,
            schema: Some((url, schema)),
            _dir: tempfile::tempdir().unwrap(),
        })
    }

    pub async fn remote() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("b.db"), store_options()).unwrap();
        let engine = Engine::new(Arc::new(store), EngineConfig::default());
        let services = engine.start_services();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(buzzer_server::serve(
            listener,
            engine.clone(),
            buzzer_server::ServerConfig::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        let buzzer = Buzzer::connect(&url).await.unwrap();
        Harness {
            buzzer,
            engine,
            server: Some((stop, server, services)),
            schema: None,
            _dir: dir,
        }
    }

    pub async fn job(&self, id: buzzer::JobId) -> buzzer::JobRecord {
        self.engine.get(id).await.unwrap()
    }

    /// Waits (on the engine's own wake-ups) until `done` holds for the job.
    pub async fn until(
        &self,
        id: buzzer::JobId,
        what: &str,
        done: impl Fn(&buzzer::JobRecord) -> bool,
    ) -> buzzer::JobRecord {
        let wait = async {
            let mut watch = self.engine.watch(id);
            loop {
                let job = self.job(id).await;
                if done(&job) {
                    return job;
                }
                // A progress report publishes nothing: look again now and then as well.
                let _ = tokio::time::timeout(Duration::from_millis(50), watch.changed()).await;
            }
        };
        match tokio::time::timeout(PATIENCE, wait).await {
            Ok(job) => job,
            Err(_) => panic!("job {id} never got {what}: {:?}", self.job(id).await),
        }
    }

    pub async fn stop(self) {
        self.buzzer.shutdown().await.unwrap();
        if let Some((stop, server, services)) = self.server {
            let _ = stop.send(());
            server.await.unwrap().unwrap();
            self.engine.shutdown();
            services.join().await;
            self.engine.store().close().await.unwrap();
        }
        #[cfg(feature = "postgres")]
        if let Some((url, schema)) = self.schema {
            use buzzer_store_postgres::tokio_postgres;
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        }
    }
}

/// Answers its text back.
#[derive(Debug, Serialize, Deserialize)]
pub struct Echo(pub String);

impl Job for Echo {
    const QUEUE: &'static str = "echo";
    type Output = String;
}

pub async fn echo(_ctx: JobContext, job: Echo) -> Result<String, JobError> {
    Ok(job.0)
}

/// Does what it is told, so one handler covers every way an attempt can end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Task {
    Ok,
    Sleep(u64),
    /// Sleeps this long on the first attempt only.
    SleepOnce(u64),
    PanicOnce(String),
    Retry(String),
    RetryIn(String, u64),
    Fatal(String),
    Parse(String),
    /// Reports progress, then waits for cancellation.
    WaitCancel,
    /// Sleeps and never looks at cancellation.
    Stubborn(u64),
}

impl Job for Task {
    const QUEUE: &'static str = "tasks";
    type Output = String;
}

pub async fn task(ctx: JobContext, task: Task) -> Result<String, JobError> {
    let first = ctx.attempt() == 1;
    match task {
        Task::Ok => Ok(format!("done on attempt {}", ctx.attempt())),
        Task::Sleep(ms) | Task::Stubborn(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(format!("slept {ms}"))
        }
        Task::SleepOnce(ms) if first => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok("slept".into())
        }
        Task::PanicOnce(message) if first => panic!("{message}"),
        Task::SleepOnce(_) | Task::PanicOnce(_) => Ok(format!("done on attempt {}", ctx.attempt())),
        Task::Retry(m) => Err(JobError::retry(m)),
        Task::RetryIn(m, ms) => Err(JobError::retry_in(m, Duration::from_millis(ms))),
        Task::Fatal(m) => Err(JobError::fatal(m)),
        Task::Parse(s) => Ok(s.parse::<u32>()?.to_string()),
        Task::WaitCancel => {
            ctx.progress(serde_json::json!({"stage": "waiting"}))
                .await?;
            ctx.cancelled().await;
            Err(JobError::cancelled())
        }
    }
}
