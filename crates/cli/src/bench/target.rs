//! What a benchmark runs against: the library's embedded engine in this process, or a server
//! (started here, or named with `--server`) with worker processes of its own.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use buzzer::{Buzzer, Engine, JobContext, JobError, Worker, WorkerHandle};
use buzzer_types::{
    CompleteRequest, FetchRequest, FetchResponse, JobListResponse, QueueInfo, StateCounts,
};
use tempfile::TempDir;

use super::{BenchJob, CallJob, Handler, Mode};
use crate::{database_url::DatabaseUrl, http_client::ApiClient};

pub(crate) struct TargetSpec {
    pub mode: Mode,
    pub database: Option<DatabaseUrl>,
    pub server: Option<String>,
    pub api_key: Option<String>,
    pub concurrency: usize,
    pub worker_processes: usize,
}

pub(crate) struct Target {
    /// Enqueues and hybrid calls go through this client: embedded, or over HTTP.
    pub client: Buzzer,
    admin: Admin,
    server: Option<Child>,
    database_kind: &'static str,
    concurrency: usize,
    worker_processes: usize,
    /// The temporary database and the server's log; removed when the target is dropped.
    _dir: TempDir,
}

/// The bounds of the wait between two asks for the completed count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PollEvery {
    pub floor: Duration,
    pub ceiling: Duration,
}

/// Counts and lists, read straight from the engine or from the server's API.
enum Admin {
    Engine(Engine),
    Http {
        api: ApiClient,
        url: String,
        api_key: Option<String>,
    },
}

impl Target {
    pub async fn start(spec: &TargetSpec) -> anyhow::Result<Target> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let database = spec
            .database
            .clone()
            .unwrap_or_else(|| DatabaseUrl::Sqlite(dir.path().join("bench.db")));
        let database_kind = match (&spec.server, &database) {
            (Some(_), _) => "server",
            (None, DatabaseUrl::Sqlite(_)) => "sqlite",
            (None, DatabaseUrl::Postgres(_)) => "postgres",
        };
        let mut target = match spec.mode {
            Mode::Inprocess => {
                if spec.server.is_some() {
                    anyhow::bail!("--server needs --mode http");
                }
                let client = match &database {
                    DatabaseUrl::Sqlite(path) => Buzzer::open(path).await?,
                    DatabaseUrl::Postgres(url) => Buzzer::open_postgres(url).await?,
                };
                let engine = client
                    .engine()
                    .cloned()
                    .context("an embedded client has an engine")?;
                Target {
                    client,
                    admin: Admin::Engine(engine),
                    server: None,
                    database_kind,
                    concurrency: spec.concurrency,
                    worker_processes: spec.worker_processes,
                    _dir: dir,
                }
            }
            Mode::Http => {
                let (url, server) = match &spec.server {
                    Some(url) => (url.clone(), None),
                    None => {
                        let (url, child) =
                            start_server(&database, spec.api_key.as_deref(), dir.path())?;
                        (url, Some(child))
                    }
                };
                let client = match &spec.api_key {
                    Some(key) => Buzzer::connect_with(&url, key).await?,
                    None => Buzzer::connect(&url).await?,
                };
                let api = ApiClient::new(&url, spec.api_key.clone())?;
                Target {
                    client,
                    admin: Admin::Http {
                        api,
                        url,
                        api_key: spec.api_key.clone(),
                    },
                    server,
                    database_kind,
                    concurrency: spec.concurrency,
                    worker_processes: spec.worker_processes,
                    _dir: dir,
                }
            }
        };
        if let Err(e) = target.wait_healthy().await {
            target.kill_server();
            return Err(e);
        }
        Ok(target)
    }

    pub fn database_kind(&self) -> &'static str {
        self.database_kind
    }

    /// The queue's counts per state; all zero for a queue nothing has named yet.
    pub async fn counts(&self, queue: &str) -> anyhow::Result<StateCounts> {
        let info: Result<QueueInfo, anyhow::Error> = match &self.admin {
            Admin::Engine(engine) => match engine.queue(queue).await {
                Err(buzzer_engine::EngineError::NotFound(_)) => return Ok(StateCounts::default()),
                other => other.map_err(Into::into),
            },
            Admin::Http { api, .. } => match api.get(&["v1", "queues", queue], &[]).await {
                Err(crate::http_client::ApiError::Problem { status, .. })
                    if status == reqwest::StatusCode::NOT_FOUND =>
                {
                    return Ok(StateCounts::default());
                }
                other => other.map_err(Into::into),
            },
        };
        Ok(info?.counts)
    }

    /// How many of the queue's jobs the store has completed, read cheaply enough to poll:
    /// in-process from the engine's counter of committed completions (a `COUNT(*)` every few
    /// milliseconds would steal a core from the work measured), over HTTP from the queue's
    /// counts. [`Target::counts`] has the store's own figure.
    pub async fn completed(&self, queue: &str) -> anyhow::Result<u64> {
        match &self.admin {
            Admin::Engine(engine) => Ok(engine.metrics().queue_totals(queue).completed),
            Admin::Http { .. } => Ok(self.counts(queue).await?.completed),
        }
    }

    /// W1's batch enqueues in flight at once, so that group commit has company. SQLite's one
    /// writer takes them from a queue: with four, all four went into one group and the writer
    /// then waited 2–4 ms while the producer built the next four (11% of W1's enqueue phase);
    /// with sixteen, batches are built while others commit (W1 enqueued 412,000 against
    /// 364,600/s, medians of 8 alternating pairs, ahead in 7). On PostgreSQL each is a
    /// transaction of its own on the same cores, and sixteen contended: 94,300–115,000 against
    /// 125,400–139,800/s with four (4 pairs). A named server's store is not known here: four.
    pub fn enqueue_in_flight(&self) -> usize {
        if self.database_kind == "sqlite" {
            16
        } else {
            4
        }
    }

    /// How often [`Target::completed`] is worth asking. In-process it reads a counter, so it is
    /// asked at the floor throughout; over HTTP every ask counts the queue in the store.
    pub fn poll_every(&self) -> PollEvery {
        match &self.admin {
            Admin::Engine(_) => PollEvery {
                floor: Duration::from_millis(2),
                ceiling: Duration::from_millis(2),
            },
            Admin::Http { .. } => PollEvery {
                floor: Duration::from_millis(10),
                ceiling: Duration::from_millis(500),
            },
        }
    }

    /// One page of a queue's completed jobs, newest first.
    pub async fn completed_page(
        &self,
        queue: &str,
        cursor: Option<String>,
    ) -> anyhow::Result<JobListResponse> {
        const PAGE: u32 = 1000;
        match &self.admin {
            Admin::Engine(engine) => {
                let before = cursor.map(|c| c.parse()).transpose()?;
                let params = buzzer_store::JobList {
                    queue: Some(queue.to_owned()),
                    state: Some(buzzer_types::JobState::Completed),
                    tag: None,
                    before,
                    limit: PAGE,
                };
                Ok(engine.list(params).await?)
            }
            Admin::Http { api, .. } => {
                let mut query = vec![
                    ("queue", queue.to_owned()),
                    ("state", "completed".to_owned()),
                    ("limit", PAGE.to_string()),
                ];
                if let Some(cursor) = cursor {
                    query.push(("cursor", cursor));
                }
                Ok(api.get(&["v1", "jobs"], &query).await?)
            }
        }
    }

    /// Leases one job of `queue` without waiting, answering how long the lease took, then
    /// completes it (not timed) so the queue keeps its shape. Fails when nothing was leased.
    pub async fn time_fetch(&self, queue: &str) -> anyhow::Result<Duration> {
        let req = FetchRequest {
            queues: vec![queue.to_owned()],
            worker_id: "bench-scale".to_owned(),
            max_jobs: Some(1),
            lease_ms: None,
            wait_ms: None,
            brief: false,
        };
        let started = std::time::Instant::now();
        let jobs = match &self.admin {
            Admin::Engine(engine) => engine.fetch(req).await?,
            Admin::Http { api, .. } => {
                api.post::<FetchResponse>(&["v1", "fetch"], Some(&req))
                    .await?
                    .jobs
            }
        };
        let took = started.elapsed();
        let job = jobs
            .into_iter()
            .next()
            .with_context(|| format!("nothing to lease in {queue}"))?;
        let complete = CompleteRequest {
            lease_token: job.lease_token.unwrap_or_default(),
            result: None,
        };
        match &self.admin {
            Admin::Engine(engine) => {
                engine.complete(job.id, complete).await?;
            }
            Admin::Http { api, .. } => {
                let id = job.id.to_string();
                api.post::<serde_json::Value>(&["v1", "jobs", &id, "complete"], Some(&complete))
                    .await?;
            }
        }
        Ok(took)
    }

    /// Resident memory of the process that holds the store, in bytes: now and at its peak
    /// (`VmRSS`, `VmHWM`). `None` for a server named with `--server`, which may be anywhere.
    pub fn store_memory(&self) -> Option<(u64, u64)> {
        let status = match (&self.admin, &self.server) {
            (Admin::Engine(_), _) => std::fs::read_to_string("/proc/self/status").ok()?,
            (Admin::Http { .. }, Some(server)) => {
                std::fs::read_to_string(format!("/proc/{}/status", server.id())).ok()?
            }
            (Admin::Http { .. }, None) => return None,
        };
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Starts the workers for `queue`: in this process, or as worker processes.
    pub async fn start_workers(&self, queue: &str, handler: Handler) -> anyhow::Result<Workers> {
        match &self.admin {
            Admin::Engine(_) => {
                let builder = Worker::builder(&self.client);
                let builder = match handler {
                    Handler::Noop => builder.register_in::<BenchJob, _>(queue, noop),
                    Handler::Echo => builder.register_in::<CallJob, _>(queue, echo),
                };
                let worker = builder
                    .queue_concurrency(queue, self.concurrency)
                    .build()?
                    .spawn();
                Ok(Workers::InProcess(worker))
            }
            Admin::Http { url, api_key, .. } => {
                let mut children = Vec::with_capacity(self.worker_processes);
                for _ in 0..self.worker_processes {
                    let child =
                        start_worker(url, api_key.as_deref(), queue, self.concurrency, handler);
                    match child {
                        Ok(child) => children.push(child),
                        Err(e) => {
                            Workers::Processes(children).stop().await;
                            return Err(e);
                        }
                    }
                }
                Ok(Workers::Processes(children))
            }
        }
    }

    async fn wait_healthy(&self) -> anyhow::Result<()> {
        let Admin::Http { api, url, .. } = &self.admin else {
            return Ok(());
        };
        for _ in 0..100 {
            if api
                .get::<serde_json::Value>(&["healthz"], &[])
                .await
                .is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("the server at {url} did not answer /healthz")
    }

    pub async fn stop(mut self) {
        let _ = self.client.shutdown().await;
        self.kill_server();
    }

    fn kill_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGKILL is safe here: every acknowledged write is already durable.
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.kill_server();
    }
}

pub(crate) async fn noop(_ctx: JobContext, _job: BenchJob) -> Result<(), JobError> {
    Ok(())
}

pub(crate) async fn echo(_ctx: JobContext, job: CallJob) -> Result<u64, JobError> {
    Ok(job.0.n)
}

pub(crate) enum Workers {
    InProcess(WorkerHandle),
    Processes(Vec<Child>),
}

impl Workers {
    pub async fn stop(self) {
        match self {
            Workers::InProcess(worker) => worker.shutdown().await,
            Workers::Processes(children) => {
                for mut child in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
    }
}

/// `buzzer serve` on a free loopback port; answers its URL once it listens.
fn start_server(
    database: &DatabaseUrl,
    api_key: Option<&str>,
    dir: &Path,
) -> anyhow::Result<(String, Child)> {
    let database = match database {
        DatabaseUrl::Sqlite(path) => format!("sqlite:{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    let log_path = dir.join("serve.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
        .env_remove("BUZZER_API_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    if let Some(key) = api_key {
        cmd.args(["--api-key", key]);
    }
    let mut child = cmd.spawn().context("starting buzzer serve")?;
    let line = first_line(&mut child);
    let Some(addr) = line
        .as_deref()
        .and_then(|l| l.trim().strip_prefix("buzzer listening on "))
        .map(str::to_owned)
    else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        anyhow::bail!("buzzer serve did not start; its log:\n{log}");
    };
    Ok((addr, child))
}

/// A `buzzer bench-worker` process for `queue`; answers once it says it is ready.
fn start_worker(
    url: &str,
    api_key: Option<&str>,
    queue: &str,
    concurrency: usize,
    handler: Handler,
) -> anyhow::Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["--server", url, "bench-worker", "--queue", queue])
        .args(["--concurrency", &concurrency.to_string()]);
    if handler == Handler::Echo {
        cmd.arg("--echo");
    }
    cmd.env_remove("BUZZER_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(key) = api_key {
        cmd.args(["--api-key", key]);
    }
    let mut child = cmd.spawn().context("starting a bench worker process")?;
    if first_line(&mut child).as_deref().map(str::trim) != Some("ready") {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("the bench worker process did not start");
    }
    Ok(child)
}

fn first_line(child: &mut Child) -> Option<String> {
    let stdout = child.stdout.take()?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).ok()?;
    Some(line)
}
