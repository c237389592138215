//! The one layer around every HTTP handler: an `http` span (method, route, status, and the job
//! id or queue when the path names one) that every log line and store span of the request
//! nests in, and the request's duration in `buzzer_http_request_duration_seconds`.
//!
//! The route is the matched path template (`/v1/jobs/{id}`), never the raw path, so the
//! metric's labels stay few whatever ids clients send; a request no route matched is
//! `unmatched`. A streaming answer (SSE) is timed until its headers are ready, not until the
//! stream ends.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, RawPathParams, Request, State},
    middleware::Next,
    response::Response,
};
use tracing::{Instrument, field::Empty};

use crate::metrics::HttpMetrics;

pub(crate) async fn observe(
    State(metrics): State<Arc<HttpMetrics>>,
    params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "http",
        method = %method,
        route = %route,
        status = Empty,
        job.id = Empty,
        queue = Empty,
    );
    if let Ok(params) = &params {
        for (key, value) in params {
            match key {
                "id" => span.record("job.id", value),
                "queue" => span.record("queue", value),
                _ => &span,
            };
        }
    }
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let took = start.elapsed();
    span.record("status", status);
    tracing::debug!(parent: &span, status, took_ms = took.as_secs_f64() * 1e3, "answered");
    metrics.observe(method.as_str(), route, status, took);
    response
}
