//! Queues: list, one queue, pause/resume, and replaying the dead-letter queue.

use axum::{extract::State, http::StatusCode, response::Response};
use buzzer_types::{DeadRetryRequest, QueueListResponse, RetriedResponse};

use crate::{
    ApiError, AppState,
    extract::{OptionalJsonBody, QueuePath},
    response::json,
};

/// `GET /v1/queues`.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let queues = state.engine.queues().await?;
    Ok(json(StatusCode::OK, &QueueListResponse { queues }))
}

/// `GET /v1/queues/{queue}`: 404 until a job has named the queue.
pub(crate) async fn get(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.queue(&queue).await?))
}

/// `POST /v1/queues/{queue}/pause`: the queue keeps accepting jobs but hands none out.
pub(crate) async fn pause(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &state.engine.set_paused(&queue, true).await?,
    ))
}

/// `POST /v1/queues/{queue}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &state.engine.set_paused(&queue, false).await?,
    ))
}

/// `POST /v1/queues/{queue}/dead/retry`: replays the dead jobs the optional body selects
/// (all when there is none).
pub(crate) async fn retry_dead(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    OptionalJsonBody(req): OptionalJsonBody<DeadRetryRequest>,
) -> Result<Response, ApiError> {
    let retried = state
        .engine
        .retry_dead(&queue, req.unwrap_or_default(), |_| {})
        .await?;
    Ok(json(StatusCode::OK, &RetriedResponse { retried }))
}
