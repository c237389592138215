//! One running demo: the embedded Buzzer, its worker, the shop, and one HTTP server for the
//! demo's routes and Buzzer's own API and dashboard, all on the same engine.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use buzzer::{Buzzer, EngineConfig, SqliteOptions, WorkerHandle};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    jobs,
    orders::OrderBook,
    providers::{ProviderConfig, Providers},
    shop::{RetryPolicy, Shop},
    web::{self, DemoState},
};

/// Everything a demo is started with.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Where the SQLite database goes; a temporary directory when `None`.
    pub database: Option<PathBuf>,
    pub providers: ProviderConfig,
    pub retry: RetryPolicy,
    pub hybrid_budget: Duration,
    /// Jobs each queue runs at once.
    pub worker_concurrency: usize,
}

/// A running demo; [`Demo::stop`] it.
#[derive(Debug)]
pub struct Demo {
    pub shop: Arc<Shop>,
    pub addr: SocketAddr,
    worker: WorkerHandle,
    server: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
    /// Removed when the demo is dropped, with the database in it.
    _dir: Option<tempfile::TempDir>,
}

impl Demo {
    /// Opens the store, starts the worker and serves on `listener`.
    pub async fn start(config: DemoConfig, listener: TcpListener) -> anyhow::Result<Demo> {
        let (path, dir) = match &config.database {
            Some(path) => (path.clone(), None),
            None => {
                let dir = tempfile::Builder::new()
                    .prefix("buzzer-demo-")
                    .tempdir()
                    .context("cannot make a temporary directory for the demo's database")?;
                (dir.path().join("demo.db"), Some(dir))
            }
        };
        let buzzer = Buzzer::open_with(&path, SqliteOptions::default(), EngineConfig::default())
            .await
            .with_context(|| format!("cannot open the demo's database {}", path.display()))?;
        let engine = buzzer
            .engine()
            .cloned()
            .context("an embedded Buzzer has an engine")?;
        let providers = Providers::new(config.providers);
        let worker = jobs::spawn_worker(&buzzer, &providers, config.worker_concurrency)?;
        let shop = Arc::new(Shop {
            buzzer,
            providers,
            orders: OrderBook::default(),
            retry: config.retry,
            hybrid_budget: config.hybrid_budget,
        });

        let app = buzzer_server::router(engine.clone(), buzzer_server::ServerConfig::default())
            .merge(web::routes(DemoState {
                shop: shop.clone(),
                worker_concurrency: config.worker_concurrency,
            }));
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let server = tokio::spawn({
            let stop = stop.clone();
            async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        stop.cancelled().await;
                        // Ends the dashboard's live streams and hybrid waits at once.
                        engine.shutdown();
                    })
                    .await
            }
        });
        Ok(Demo {
            shop,
            addr,
            worker,
            server,
            stop,
            _dir: dir,
        })
    }

    /// The demo page.
    pub fn url(&self) -> String {
        format!("http://{}/demo", self.addr)
    }

    /// Stops serving, lets running jobs finish for a moment, closes the database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.worker.shutdown().await;
        let served = match tokio::time::timeout(Duration::from_secs(5), self.server).await {
            Ok(Ok(served)) => served.context("the demo's HTTP server failed"),
            Ok(Err(e)) => Err(anyhow::anyhow!("the demo's HTTP server panicked: {e}")),
            // A browser holding a connection open must not keep the demo from exiting.
            Err(_) => Ok(()),
        };
        self.shop.buzzer.shutdown().await?;
        served
    }
}
