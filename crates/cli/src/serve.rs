//! `buzzer serve`: open the store, start the engine's services, bind, serve until a signal.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::Context as _;
use buzzer_engine::{Engine, EngineConfig};
use buzzer_server::ServerConfig;
use buzzer_store::{Store, StoreError};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use buzzer_webhooks::{WebhookConfig, WebhookDispatcher};
use clap::{Args, ValueEnum};
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
};
use tokio_util::sync::CancellationToken;

use crate::{database_url::DatabaseUrl, listen, logging::LogFormat};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (HOST:PORT; port 0 picks a free one). Anything but loopback needs
    /// an API key.
    #[arg(
        long,
        env = "BUZZER_LISTEN",
        default_value = "127.0.0.1:2899",
        value_name = "ADDR"
    )]
    pub listen: String,
    /// Database: sqlite:PATH (also sqlite://PATH, sqlite:///ABS/PATH or a bare path), or
    /// postgres://…[?schema=NAME] to share one PostgreSQL database with other nodes.
    #[arg(
        long,
        env = "BUZZER_DATABASE_URL",
        default_value = "sqlite:buzzer.db",
        value_name = "URL"
    )]
    pub database: DatabaseUrl,
    /// Allow webhook subscriptions whose URL resolves to loopback, private or link-local
    /// addresses (refused by default, so a subscription cannot reach internal services).
    #[arg(long, env = "BUZZER_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// How long one webhook delivery attempt may take, from connecting to reading the start
    /// of the answer, in milliseconds; a slower endpoint counts as a failed attempt.
    #[arg(long, env = "BUZZER_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub webhook_timeout_ms: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body: u64,
    /// SQLite durability: `full` loses nothing acknowledged; `normal` is faster but a power
    /// loss or OS crash (not a process crash) can lose the last acknowledged transactions.
    #[arg(long, value_enum, default_value_t = SyncMode::Full, value_name = "MODE")]
    pub sqlite_synchronous: SyncMode,
    /// This server's name among the nodes sharing a PostgreSQL database (shown in
    /// `buzzer_leader.node_id` while it runs the background services). Must be unique per
    /// running server; random by default.
    #[arg(long, env = "BUZZER_NODE_ID", value_name = "NAME")]
    pub node_id: Option<String>,
    /// Log lines on stderr: `text` for people, `json` (one object per line, with its spans) for
    /// log pipelines. `RUST_LOG` filters either.
    #[arg(long, value_enum, env = "BUZZER_LOG_FORMAT", default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// Fsync every commit: an acknowledged write survives a power loss.
    Full,
    /// Fsync at checkpoints only: a process crash loses nothing, but a power loss or OS crash
    /// can lose the last transactions that were already acknowledged.
    Normal,
}

impl From<SyncMode> for Synchronous {
    fn from(mode: SyncMode) -> Self {
        match mode {
            SyncMode::Full => Synchronous::Full,
            SyncMode::Normal => Synchronous::Normal,
        }
    }
}

/// How long in-flight requests get to finish after a signal before the server stops anyway
/// (a stuck client must not keep the writer from being flushed and closed).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(args: ServeArgs, api_keys: Vec<String>) -> anyhow::Result<()> {
    // Checked before the store is opened, so a refused start leaves no database file behind.
    let addrs = listen::resolve(&args.listen)?;
    listen::check_exposure(&args.listen, &addrs, !api_keys.is_empty())?;
    let max_body = usize::try_from(args.max_body).context("--max-body is too large")?;

    let (store, database): (Arc<dyn Store>, String) = match &args.database {
        DatabaseUrl::Sqlite(path) => (
            Arc::new(open_store(path, args.sqlite_synchronous)?),
            shown(path),
        ),
        DatabaseUrl::Postgres(url) => crate::postgres::connect(url).await?,
    };
    let mut config = EngineConfig::default();
    if let Some(node_id) = &args.node_id {
        config.node_id.clone_from(node_id);
    }
    tracing::info!(node = %config.node_id, "starting the services");
    let engine = Engine::new(store, config);
    let services = engine.start_services();
    let webhooks = WebhookConfig {
        allow_private: args.allow_private_webhooks,
        attempt_timeout: Duration::from_millis(args.webhook_timeout_ms),
        ..WebhookConfig::default()
    };
    let dispatcher = match WebhookDispatcher::new(engine.clone(), webhooks) {
        Ok(d) => d.start(),
        Err(e) => {
            engine.shutdown();
            services.join().await;
            let _ = engine.store().close().await;
            return Err(e.into());
        }
    };

    // Signals are hooked before the "listening" line: a supervisor (or a test) that sends
    // SIGTERM as soon as it reads the line must get a graceful stop, not the default kill.
    let stop = CancellationToken::new();
    let served = match (Signals::hook(), TcpListener::bind(&addrs[..]).await) {
        (Ok(signals), Ok(listener)) => {
            tokio::spawn(signals.forward(stop.clone()));
            let config = ServerConfig {
                api_keys,
                max_body,
                allow_private_webhooks: args.allow_private_webhooks,
            };
            serve(listener, engine.clone(), config, stop).await
        }
        (Err(e), _) => Err(e),
        (_, Err(e)) => Err(anyhow::anyhow!("cannot listen on {}: {e}", args.listen)),
    };

    // Whatever happened, stop the services and flush the writer before exiting; the
    // dispatcher hands its leased deliveries back first.
    engine.shutdown();
    dispatcher.join().await;
    services.join().await;
    let closed = engine.store().close().await;
    served?;
    closed
        .map_err(|e| anyhow::anyhow!("closing the database {database}: {}", store_message(&e)))?;
    tracing::info!("stopped");
    Ok(())
}

async fn serve(
    listener: TcpListener,
    engine: Engine,
    config: ServerConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    crate::output::print(&format!("buzzer listening on http://{addr}"))?;
    tracing::info!(%addr, api_keys = config.api_keys.len(), "serving");
    let server = buzzer_server::serve(listener, engine, config, stop.clone().cancelled_owned());
    tokio::select! {
        served = server => served.context("the HTTP server failed"),
        () = async { stop.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
            tracing::warn!(timeout = ?DRAIN_TIMEOUT, "requests still in flight after the drain timeout; stopping anyway");
            Ok(())
        }
    }
}

fn open_store(path: &Path, mode: SyncMode) -> anyhow::Result<SqliteStore> {
    check_directory(path)?;
    let options = SqliteOptions {
        synchronous: mode.into(),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(path, options).map_err(|e| open_error(path, &e))?;
    tracing::info!(path = %shown(path), synchronous = ?mode, "database open");
    Ok(store)
}

/// SQLite would create the file but not its directory: say which one is missing.
pub(crate) fn check_directory(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        anyhow::bail!(
            "cannot open the database {}: the directory {} does not exist",
            shown(path),
            dir.display()
        );
    }
    Ok(())
}

/// A SQLite store's open (or migration) error as one line that names the file once: the
/// store's own messages already name it.
pub(crate) fn open_error(path: &Path, e: &StoreError) -> anyhow::Error {
    let message = store_message(e);
    if message.contains(&path.display().to_string()) {
        anyhow::anyhow!(message)
    } else {
        anyhow::anyhow!("cannot open the database {}: {message}", shown(path))
    }
}

/// The absolute path, so the message names the file even when the working directory is unclear.
pub(crate) fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// One line, without the "store backend error" prefix the operator cannot act on.
pub(crate) fn store_message(e: &StoreError) -> String {
    let text = match e {
        StoreError::Backend(inner) => inner.to_string(),
        StoreError::Unavailable(m) | StoreError::Conflict(m) => m.clone(),
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SIGTERM and SIGINT, hooked once at startup.
struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn hook() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    /// The first signal starts a graceful stop; a second one (an impatient Ctrl-C) exits at
    /// once. Nothing acknowledged is lost either way: every 2xx was committed before it was sent.
    async fn forward(mut self, stop: CancellationToken) {
        let name = self.next().await;
        tracing::info!(signal = name, "shutting down: finishing in-flight requests");
        stop.cancel();
        let name = self.next().await;
        tracing::warn!(signal = name, "second signal: exiting now");
        std::process::exit(130);
    }
}
