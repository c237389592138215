//! `GET /metrics`: the engine's job counters and histograms, the HTTP request durations, and
//! queue gauges read from the store at scrape time, in the OpenMetrics text format (the
//! Prometheus exposition format that Prometheus negotiates first).
//!
//! With API keys set the route sits with `/v1` behind `Authorization: Bearer KEY`: queue names
//! and volumes are the operator's business, and Prometheus sends a bearer token with one line
//! of scrape config (`authorization: {credentials_file: …}`). See `docs/dashboard.md`.

use std::{sync::atomic::AtomicU64, time::Duration};

use axum::{
    extract::State,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use buzzer_types::{JobState, QueueInfo};
use prometheus_client::{
    encoding::{
        EncodeLabelSet,
        text::{encode_eof, encode_registry},
    },
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use crate::{ApiError, AppState};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

/// From a millisecond (a health check) to five minutes (the longest long-poll).
const HTTP_SECONDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_SECONDS)
}

/// The server's own metrics: request durations by method, route template and status.
pub(crate) struct HttpMetrics {
    registry: Registry,
    durations: Family<HttpLabels, Histogram, fn() -> Histogram>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("buzzer");
        let durations = Family::<HttpLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            http_histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request durations by method, matched route template and status",
            Unit::Seconds,
            durations.clone(),
        );
        HttpMetrics {
            registry,
            durations,
        }
    }

    pub(crate) fn observe(&self, method: &str, route: String, status: u16, took: Duration) {
        let labels = HttpLabels {
            method: method.to_owned(),
            route,
            status,
        };
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueStateLabels {
    queue: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: String,
}

/// Gauges of the queues as the store sees them now. Read at scrape time rather than kept up
/// to date, so they are right for jobs changed by other nodes too.
fn queue_gauges(queues: &[QueueInfo]) -> Registry {
    let mut registry = Registry::with_prefix("buzzer_queue");
    let jobs = Family::<QueueStateLabels, Gauge>::default();
    let oldest = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
    let paused = Family::<QueueLabels, Gauge>::default();
    for q in queues {
        for state in JobState::ALL {
            let labels = QueueStateLabels {
                queue: q.name.clone(),
                state: state.as_str(),
            };
            jobs.get_or_create(&labels)
                .set(i64::try_from(q.counts.get(state)).unwrap_or(i64::MAX));
        }
        let labels = QueueLabels {
            queue: q.name.clone(),
        };
        oldest
            .get_or_create(&labels)
            .set(q.oldest_available_age_ms as f64 / 1e3);
        paused.get_or_create(&labels).set(i64::from(q.paused));
    }
    registry.register("jobs", "Jobs per queue and state", jobs);
    registry.register_with_unit(
        "oldest_available_age",
        "Age of the oldest job waiting to be fetched; 0 when none is",
        Unit::Seconds,
        oldest,
    );
    registry.register("paused", "1 while the queue is paused", paused);
    registry
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let queues = state.engine.queues().await?;
    let mut body = String::with_capacity(16 * 1024);
    let encoded = encode_registry(&mut body, state.engine.metrics().registry())
        .and_then(|()| encode_registry(&mut body, &state.http_metrics.registry))
        .and_then(|()| encode_registry(&mut body, &queue_gauges(&queues)))
        .and_then(|()| encode_eof(&mut body));
    if let Err(e) = encoded {
        return Err(ApiError::internal(&e));
    }
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        body,
    )
        .into_response())
}
