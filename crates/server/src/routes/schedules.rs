//! Cron schedules.

use axum::{extract::State, http::StatusCode, response::Response};
use buzzer_types::{ScheduleListResponse, ScheduleRequest};

use crate::{
    ApiError, AppState,
    extract::{JsonBody, Names},
    response::json,
};

/// `GET /v1/schedules`: every schedule with its next fire times.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let schedules = state.engine.schedules().await?;
    Ok(json(StatusCode::OK, &ScheduleListResponse { schedules }))
}

/// `PUT /v1/schedules/{name}`: 201 when created, 200 when replaced.
pub(crate) async fn put(
    State(state): State<AppState>,
    Names(name): Names<String>,
    JsonBody(req): JsonBody<ScheduleRequest>,
) -> Result<Response, ApiError> {
    let put = state.engine.schedule_put(&name, req).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &put.value))
}

/// `GET /v1/schedules/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Names(name): Names<String>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.schedule(&name).await?))
}

/// `DELETE /v1/schedules/{name}`: 204; jobs already enqueued stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Names(name): Names<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.schedule_delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
