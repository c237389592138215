//! The server the browser talks to: the real router over a fresh SQLite file, in this process so
//! the tests can set up jobs through the engine and check what the clicks changed.

use std::{sync::Arc, time::Duration};

use buzzer_engine::{Engine, EngineConfig, Services};
use buzzer_server::{ServerConfig, serve};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use buzzer_types::{
    CompleteRequest, EnqueueRequest, ErrorInput, FailRequest, FetchRequest, Job, RawValue,
};
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Server {
    pub base: String,
    api_key: String,
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    _services: Services,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(api_key: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions {
            synchronous: Synchronous::Normal,
            quick_check: false,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(dir.path().join("buzzer.db"), opts).unwrap();
        let engine = Engine::new(Arc::new(store), EngineConfig::default());
        let services = engine.start_services();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = ServerConfig {
            api_keys: vec![api_key.to_owned()],
            ..ServerConfig::default()
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, engine.clone(), config, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            api_key: api_key.to_owned(),
            engine,
            stop: Some(stop),
            _services: services,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `PUT path` on the API with the key, which must succeed.
    pub async fn api_put(&self, path: &str, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .put(self.url(path))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "PUT {path}: {status} {}",
            r.text().await.unwrap()
        );
    }

    pub async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Job {
        self.engine.enqueue(queue, req).await.unwrap().job
    }

    pub async fn put(&self, queue: &str, payload: &str) -> Job {
        self.enqueue(queue, request(payload)).await
    }

    /// Leases `job`, the only available job of its queue.
    async fn lease(&self, job: &Job) -> Job {
        let leased = self
            .engine
            .fetch(FetchRequest {
                queues: vec![job.queue.clone()],
                worker_id: "browser-test".into(),
                max_jobs: Some(1),
                lease_ms: None,
                wait_ms: None,
                brief: false,
            })
            .await
            .unwrap();
        let leased = leased.into_iter().next().expect("the job to lease");
        assert_eq!(leased.id, job.id);
        leased
    }

    /// Leases `job` (the only available job of its queue), lets it run for `run` and
    /// completes it.
    pub async fn run(&self, job: &Job, run: Duration) -> Job {
        let leased = self.lease(job).await;
        tokio::time::sleep(run).await;
        self.engine
            .complete(
                job.id,
                CompleteRequest {
                    lease_token: leased.lease_token.unwrap(),
                    result: None,
                },
            )
            .await
            .unwrap()
    }

    /// Leases `job` (the only available job of its queue) and fails it for good.
    pub async fn kill(&self, job: &Job, message: &str) -> Job {
        let leased = self.lease(job).await;
        self.engine
            .fail(
                job.id,
                FailRequest {
                    lease_token: leased.lease_token.unwrap(),
                    error: ErrorInput::new(message),
                    retry: Some(false),
                    retry_in_ms: None,
                },
            )
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.engine.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn request(payload: &str) -> EnqueueRequest {
    EnqueueRequest::new(RawValue::from_string(payload.to_owned()).unwrap())
}
