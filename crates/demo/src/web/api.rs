//! The JSON routes the page (and the report) call.

use std::time::Duration;

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use buzzer_types::DeadRetryRequest;
use serde::Deserialize;
use serde_json::json;

use super::{DemoState, Problem};
use crate::{jobs::SendConfirmation, orders::Mode, shop::CheckoutError, snapshot::Snapshot};

/// `POST /demo/checkout/{mode}`: 200 with the order when it is confirmed; 402 when the card
/// is declined; 502 when a provider called inline failed; 503 when Buzzer did not take the
/// jobs. The body is ignored: every order is the same basket.
pub async fn checkout(State(state): State<DemoState>, Path(mode): Path<String>) -> Response {
    let Some(mode) = Mode::parse(&mode) else {
        return Problem::invalid("mode", format!("{mode:?} is not sync, async or hybrid"))
            .into_response();
    };
    let (order, result) = state.shop.checkout(mode).await;
    match result {
        Ok(receipt) => {
            let email = match receipt.email_inline {
                Some(false) => "on its way",
                Some(true) => "sent",
                None if mode == Mode::Sync => "sent",
                None => "queued",
            };
            Json(json!({ "order": receipt.order, "email_now": email })).into_response()
        }
        Err(CheckoutError::Declined) => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "The card was declined",
        )
        .detail(format!("order {} was not placed", order.id))
        .into_response(),
        Err(CheckoutError::Provider(e)) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "provider-failed",
            "A provider failed during checkout",
        )
        .detail(format!("order {}: {e}", order.id))
        .into_response(),
        Err(CheckoutError::Queue(e)) => unavailable(&e).into_response(),
    }
}

/// `GET /demo/state`.
pub async fn state(State(state): State<DemoState>) -> Result<Json<Snapshot>, Problem> {
    state
        .shop
        .snapshot(state.worker_concurrency)
        .await
        .map(Json)
        .map_err(|e| unavailable(&e))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageRequest {
    on: bool,
}

/// `POST /demo/outage {"on": true}`: the email provider goes down (or comes back).
pub async fn outage(
    State(state): State<DemoState>,
    body: Result<Json<OutageRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    let Json(req) = body?;
    state.shop.providers.set_email_outage(req.on);
    tracing::info!(outage = req.on, "email provider outage switched");
    Ok(Json(json!({ "outage": req.on })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    latency_ms: Option<u64>,
    failure_rate: Option<f64>,
}

/// `POST /demo/email {"latency_ms": 200, "failure_rate": 0.1}`: changes the email
/// provider while the demo runs (e.g. fast enough for the hybrid budget).
pub async fn email(
    State(state): State<DemoState>,
    body: Result<Json<EmailRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    let Json(req) = body?;
    let provider = state.shop.providers.email();
    let mut behaviour = provider.behaviour();
    if let Some(ms) = req.latency_ms {
        if ms > 60_000 {
            return Err(Problem::invalid("latency_ms", "must be at most 60000"));
        }
        behaviour.latency = Duration::from_millis(ms);
    }
    if let Some(rate) = req.failure_rate {
        if !(0.0..=1.0).contains(&rate) {
            return Err(Problem::invalid("failure_rate", "must be between 0 and 1"));
        }
        behaviour.failure_rate = rate;
    }
    provider.set(behaviour);
    Ok(Json(json!({
        "latency_ms": behaviour.latency.as_millis(),
        "failure_rate": behaviour.failure_rate,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {}

/// `POST /demo/dlq/replay {}`: every dead email back to `available`.
pub async fn replay(
    State(state): State<DemoState>,
    body: Result<Json<ReplayRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, Problem> {
    let Json(ReplayRequest {}) = body?;
    let queue = <SendConfirmation as buzzer::Job>::QUEUE;
    let Some(engine) = state.shop.buzzer.engine() else {
        return Ok(Json(json!({ "retried": 0 })));
    };
    let retried = match engine
        .retry_dead(queue, DeadRetryRequest::default(), |_| {})
        .await
    {
        Ok(n) => n,
        // No email was ever queued: nothing to replay.
        Err(buzzer_engine::EngineError::NotFound(_)) => 0,
        Err(e) => return Err(unavailable(&e)),
    };
    Ok(Json(json!({ "retried": retried })))
}

fn unavailable(e: &dyn std::fmt::Display) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "Buzzer is not available",
    )
    .detail(e.to_string())
}
