//! The demo's routes, served beside Buzzer's own API and dashboard on one port:
//!
//! - `GET /demo`: the page; `GET /demo/assets/{file}`: its script and style.
//! - `POST /demo/checkout/{mode}`: one checkout (`sync`, `async` or `hybrid`).
//! - `GET /demo/state`: everything the page shows, as JSON.
//! - `POST /demo/outage`, `POST /demo/email`: the email provider's switch and knobs.
//! - `POST /demo/dlq/replay`: dead emails back to the queue.

mod api;
mod page;
mod problem;

use std::sync::Arc;

use axum::{
    Router,
    extract::Request,
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};

use crate::shop::Shop;

pub use problem::Problem;

/// What the demo's handlers share.
#[derive(Debug, Clone)]
pub struct DemoState {
    pub shop: Arc<Shop>,
    pub worker_concurrency: usize,
}

/// The demo's routes; merge them with `buzzer_server::router` to serve both.
pub fn routes(state: DemoState) -> Router {
    Router::new()
        .route("/demo", get(page::page))
        .route("/demo/assets/{file}", get(page::asset))
        .route("/demo/checkout/{mode}", post(api::checkout))
        .route("/demo/state", get(api::state))
        .route("/demo/outage", post(api::outage))
        .route("/demo/email", post(api::email))
        .route("/demo/dlq/replay", post(api::replay))
        .layer(middleware::from_fn(secure))
        .with_state(state)
}

/// Only our own script and style may run on the page: no inline script, nothing from
/// elsewhere.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

async fn secure(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
