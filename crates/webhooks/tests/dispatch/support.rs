//! A store, an engine with its services, a dispatcher, and a scripted HTTP receiver on
//! loopback.

use std::{
    collections::{HashMap, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use buzzer_engine::{Engine, EngineConfig, Services};
use buzzer_store::SubscriptionPut;
use buzzer_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use buzzer_types::{
    BackoffSpec, EnqueueRequest, Job, RawValue, SubscriptionTarget, WebhookTarget,
    webhook_signature::encode_secret,
};
use buzzer_webhooks::{Dispatcher, QUEUE, WebhookConfig, WebhookDispatcher};
use tokio::{net::TcpListener, sync::Notify, time::Instant};

/// Generous: the machine running the tests may be busy.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub struct Harness {
    pub engine: Engine,
    services: Option<Services>,
    dispatcher: Option<Dispatcher>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(config: WebhookConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteOptions {
            synchronous: Synchronous::Normal,
            quick_check: false,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(dir.path().join("buzzer.db"), opts).unwrap();
        let engine = Engine::new(Arc::new(store), EngineConfig::default());
        let services = engine.start_services();
        let dispatcher = WebhookDispatcher::new(engine.clone(), config)
            .unwrap()
            .start();
        Harness {
            engine,
            services: Some(services),
            dispatcher: Some(dispatcher),
            _dir: dir,
        }
    }

    /// With private addresses allowed (the receiver is on loopback) and short attempts.
    pub async fn private() -> Harness {
        Harness::start(WebhookConfig {
            allow_private: true,
            attempt_timeout: Duration::from_secs(5),
            ..WebhookConfig::default()
        })
        .await
    }

    pub async fn subscribe(&self, topic: &str, name: &str, target: WebhookTarget) {
        self.engine
            .store()
            .subscription_put(SubscriptionPut {
                topic: topic.into(),
                name: name.into(),
                target: SubscriptionTarget::Webhook(target),
                filter: None,
            })
            .await
            .unwrap();
    }

    /// A delivery job as a publish makes it; retries come fast (backoff 50 ms).
    pub async fn deliver(&self, topic: &str, name: &str, payload: &str, max_attempts: i32) -> Job {
        let mut req = EnqueueRequest::new(RawValue::from_string(payload.into()).unwrap());
        req.max_attempts = Some(max_attempts);
        req.backoff = Some(BackoffSpec {
            initial_ms: Some(50),
            max_ms: Some(50),
            factor: Some(1.0),
        });
        let metadata = serde_json::json!({
            "topic": topic, "event_id": "evt_1", "subscription": name,
        });
        req.metadata = Some(metadata.as_object().unwrap().clone());
        self.engine.enqueue(QUEUE, req).await.unwrap().job
    }

    pub async fn finished(&self, job: &Job) -> Job {
        let done = self.engine.wait_terminal(job.id, PATIENCE).await.unwrap();
        assert!(done.state.is_terminal(), "still {}: {done:?}", done.state);
        done
    }

    pub async fn stop(mut self) {
        self.engine.shutdown();
        if let Some(d) = self.dispatcher.take() {
            d.join().await;
        }
        if let Some(s) = self.services.take() {
            s.join().await;
        }
    }
}

pub fn secret(byte: u8) -> String {
    encode_secret(&[byte; 32])
}

pub fn target(url: String, secret: String) -> WebhookTarget {
    WebhookTarget {
        url,
        secret,
        previous_secret: None,
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct Script {
    replies: VecDeque<Reply>,
    received: Vec<Received>,
    in_flight: usize,
    max_in_flight: usize,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    /// Answers `replies` in order, then 200 forever.
    pub async fn start(replies: Vec<Reply>) -> Receiver {
        Receiver::bind("127.0.0.1:0", replies).await.unwrap()
    }

    pub async fn bind(addr: &str, replies: Vec<Reply>) -> std::io::Result<Receiver> {
        let listener = TcpListener::bind(addr).await?;
        let receiver = Receiver {
            addr: listener.local_addr()?,
            script: Arc::new(Mutex::new(Script {
                replies: replies.into(),
                ..Script::default()
            })),
            arrived: Arc::new(Notify::new()),
        };
        let app = Router::new().fallback(answer).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(receiver)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// The most requests that were being answered at once.
    pub fn max_in_flight(&self) -> usize {
        self.script.lock().unwrap().max_in_flight
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let notified = self.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "only {} of {n} requests arrived",
                got.len()
            );
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }
}

async fn answer(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut script = receiver.script.lock().unwrap();
        script.received.push(Received {
            path: uri.path().to_owned(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            body: body.to_vec(),
            at: Instant::now(),
        });
        script.in_flight += 1;
        script.max_in_flight = script.max_in_flight.max(script.in_flight);
        script
            .replies
            .pop_front()
            .unwrap_or_else(|| Reply::status(200, "thanks"))
    };
    receiver.arrived.notify_waiters();
    tokio::time::sleep(reply.delay).await;
    receiver.script.lock().unwrap().in_flight -= 1;
    let mut response = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}
