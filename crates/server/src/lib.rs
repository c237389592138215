//! Buzzer's HTTP API (v1): an axum router over the [`Engine`], and [`serve`].
//!
//! Every route is documented in `docs/api.md`. Errors are `application/problem+json`
//! ([`ApiError`]); bodies are read as JSON whatever their `Content-Type` and held to
//! [`ServerConfig::max_body`]; with API keys set every `/v1` route needs
//! `Authorization: Bearer KEY`, while `/healthz` stays open.
//!
//! ```no_run
//! # async fn demo(engine: buzzer_engine::Engine) -> std::io::Result<()> {
//! use buzzer_server::{ServerConfig, serve};
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:2899").await?;
//! let shutdown = async {
//!     let _ = tokio::signal::ctrl_c().await;
//! };
//! serve(listener, engine, ServerConfig::default(), shutdown).await
//! # }
//! ```

mod auth;
mod dashboard;
mod error;
mod extract;
mod metrics;
mod observe;
mod response;
mod routes;

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    extract::Request,
    http::Method,
    middleware,
    routing::{get, post, put},
    serve::ListenerExt,
};
use buzzer_engine::Engine;

pub use error::{ApiError, PROBLEM_JSON};

/// How the HTTP server behaves. Defaults: no API keys (open), 1 MiB bodies, private webhook
/// targets refused.
///
/// ```
/// let config = buzzer_server::ServerConfig {
///     api_keys: vec!["s3cret".into()],
///     ..Default::default()
/// };
/// assert_eq!(config.max_body, 1024 * 1024);
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    /// Bearer keys any of which opens `/v1`; empty means no authentication.
    pub api_keys: Vec<String>,
    /// The largest request body accepted, in bytes; larger ones get 413.
    pub max_body: usize,
    /// Allow webhook subscriptions to loopback, private and link-local addresses.
    pub allow_private_webhooks: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            api_keys: Vec::new(),
            max_body: 1024 * 1024,
            allow_private_webhooks: false,
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys are secrets: show how many there are, never what they are.
        f.debug_struct("ServerConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("max_body", &self.max_body)
            .field("allow_private_webhooks", &self.allow_private_webhooks)
            .finish()
    }
}

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub engine: Engine,
    pub max_body: usize,
    /// Whether subscriptions may name literal loopback/private webhook addresses.
    pub allow_private_webhooks: bool,
    pub http_metrics: Arc<metrics::HttpMetrics>,
    pub dashboard: Arc<dashboard::Dashboard>,
}

/// The API router over `engine`, ready for `axum::serve`.
///
/// SSE streams end when [`Engine::shutdown`] is called, so call it before a graceful
/// shutdown of your own.
///
/// ```
/// # fn demo(engine: buzzer_engine::Engine) {
/// let app: axum::Router = buzzer_server::router(engine, buzzer_server::ServerConfig::default());
/// # }
/// ```
pub fn router(engine: Engine, config: ServerConfig) -> Router {
    use routes::{events, jobs, queues, schedules, topics, worker};

    let keys = (!config.api_keys.is_empty()).then(|| auth::ApiKeys::new(&config.api_keys));
    let state = AppState {
        engine,
        max_body: config.max_body,
        allow_private_webhooks: config.allow_private_webhooks,
        http_metrics: Arc::new(metrics::HttpMetrics::new()),
        dashboard: Arc::new(dashboard::Dashboard::new(keys.clone())),
    };
    let mut v1 = Router::new()
        .route("/v1/queues/{queue}/jobs", post(jobs::enqueue))
        .route("/v1/queues/{queue}/jobs/batch", post(jobs::enqueue_batch))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::delete))
        .route("/v1/jobs/{id}/cancel", post(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/jobs/{id}/events", get(events::stream))
        .route("/v1/fetch", post(worker::fetch))
        .route("/v1/jobs/{id}/complete", post(worker::complete))
        .route("/v1/jobs/{id}/fail", post(worker::fail))
        .route("/v1/jobs/{id}/heartbeat", post(worker::heartbeat))
        .route("/v1/jobs/{id}/release", post(worker::release))
        .route("/v1/acks", post(worker::acks))
        .route("/v1/queues", get(queues::list))
        .route("/v1/queues/{queue}", get(queues::get))
        .route("/v1/queues/{queue}/pause", post(queues::pause))
        .route("/v1/queues/{queue}/resume", post(queues::resume))
        .route("/v1/queues/{queue}/dead/retry", post(queues::retry_dead))
        .route("/v1/topics", get(topics::list))
        .route("/v1/topics/{topic}/events", post(topics::publish))
        .route(
            "/v1/topics/{topic}/subscriptions",
            get(topics::subscriptions),
        )
        .route(
            "/v1/topics/{topic}/subscriptions/{name}",
            put(topics::put).get(topics::get).delete(topics::delete),
        )
        .route("/v1/subscriptions", get(topics::all_subscriptions))
        .route("/v1/schedules", get(schedules::list))
        .route(
            "/v1/schedules/{name}",
            put(schedules::put)
                .get(schedules::get)
                .delete(schedules::delete),
        )
        // Beside `/v1` behind the same key: see `metrics.rs` for why.
        .route("/metrics", get(metrics::scrape));
    if let Some(keys) = keys {
        // `route_layer`: only matched routes ask for a key, so an unknown path stays a 404.
        v1 = v1.route_layer(middleware::from_fn_with_state(keys, auth::require_key));
    }
    let observe = middleware::from_fn_with_state(state.http_metrics.clone(), observe::observe);
    Router::new()
        .route("/healthz", get(routes::healthz))
        // The dashboard (`GET /` and its login) is outside `v1`: it has its own cookie-based
        // sign-in and must answer its login form without a bearer key.
        .merge(dashboard::routes(&state))
        .merge(v1)
        .fallback(not_found)
        // After every route: it only applies to the routes that exist when it is called.
        .method_not_allowed_fallback(method_not_allowed)
        // The one layer that traces and times every request (`observe.rs`).
        .layer(observe)
        .with_state(state)
}

async fn not_found(method: Method, req: Request) -> ApiError {
    ApiError::not_found(format_args!("route {method} {}", req.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

/// Serves the API on `listener` until `shutdown` resolves, then stops accepting, calls
/// [`Engine::shutdown`] so long-polls, SSE streams and hybrid waits answer at once, and
/// finishes the requests in flight.
///
/// Bind `127.0.0.1:0` in tests and read the port from the listener.
///
/// ```no_run
/// # async fn demo(engine: buzzer_engine::Engine) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(buzzer_server::serve(
///     listener,
///     engine,
///     Default::default(),
///     async move {
///         let _ = stopped.await;
///     },
/// ));
/// let _ = stop.send(());
/// # let _ = server.await;
/// # Ok(()) }
/// ```
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Engine,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(engine.clone(), config);
    let signal = async move {
        shutdown.await;
        engine.shutdown();
    };
    // Small answers (a hybrid call's 200) must not wait for Nagle's algorithm.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(signal)
        .await
}
