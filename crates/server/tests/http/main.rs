//! The HTTP API end to end: the real router over a real SQLite store, over real TCP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod dashboard;
mod errors;
mod events;
mod jobs;
mod metrics;
mod operator;
mod queues;
mod schedules;
mod shutdown;
mod topics;
mod worker;

use std::{sync::Arc, time::Duration};

use buzzer_engine::{Engine, EngineConfig, Services};
use buzzer_server::{ServerConfig, serve};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use reqwest::{
    StatusCode,
    header::{HeaderMap, LOCATION},
};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};

/// A server on `127.0.0.1:0` over a fresh SQLite file.
#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    _services: Services,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
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
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, engine.clone(), config, async move {
            let _ = stopped.await;
        }));
        TestServer {
            base,
            http: reqwest::Client::new(),
            engine,
            stop: Some(stop),
            server: Some(server),
            _services: services,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::from(self.http.get(self.url(path))).await
    }

    /// POSTs `body` as it is (no JSON re-encoding), without a JSON content type, the way
    /// `curl -d` does.
    pub async fn post_raw(&self, path: &str, body: impl Into<String>) -> Reply {
        Reply::from(
            self.http
                .post(self.url(path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.into()),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::from(self.http.post(self.url(path)).json(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        Reply::from(self.http.put(self.url(path)).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::from(self.http.delete(self.url(path))).await
    }

    /// Enqueues `{"payload": payload}` into `queue` and returns the job.
    pub async fn enqueue(&self, queue: &str, payload: Value) -> Value {
        let r = self
            .post(
                &format!("/v1/queues/{queue}/jobs"),
                json!({ "payload": payload }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json()
    }

    /// Leases up to `max` jobs of `queue` without waiting.
    pub async fn fetch(&self, queue: &str, max: u32) -> Vec<Value> {
        let r = self
            .post(
                "/v1/fetch",
                json!({"queues": [queue], "worker_id": "w1", "max_jobs": max}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json()["jobs"].as_array().unwrap().clone()
    }

    /// Stops the server the way `buzzer serve` does on a signal, and waits for `serve` to end.
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.server.take().unwrap())
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.engine.shutdown();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An answer read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub async fn from(req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.unwrap();
        Reply {
            status: res.status(),
            headers: res.headers().clone(),
            text: res.text().await.unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap())
    }

    /// Asserts a problem+json answer with this status and slug; returns the problem.
    #[track_caller]
    pub fn problem(&self, status: u16, slug: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        let p = self.json();
        assert_eq!(p["type"], format!("urn:buzzer:problem:{slug}"), "{p}");
        assert_eq!(p["status"], status, "{p}");
        assert!(p["title"].is_string(), "{p}");
        assert!(p["detail"].is_string(), "{p}");
        p
    }

    /// Asserts a 422 that names `field`.
    #[track_caller]
    pub fn invalid_field(&self, field: &str) -> Value {
        let p = self.problem(422, "invalid-field");
        assert_eq!(p["field"], field, "{p}");
        p
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let s = TestServer::start().await;
    let r = s.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}
