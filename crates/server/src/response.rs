//! JSON answers, serialized straight into the body.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use buzzer_types::JobId;
use serde::Serialize;

use crate::ApiError;

/// `value` as an `application/json` answer with `status`.
pub(crate) fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    // Most answers are one job: start big enough that it rarely needs to grow.
    json_sized(status, value, 1024)
}

/// [`json`] for an answer expected to take about `capacity` bytes.
pub(crate) fn json_sized<T: Serialize + ?Sized>(
    status: StatusCode,
    value: &T,
    capacity: usize,
) -> Response {
    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

/// Adds `Location: /v1/jobs/{id}`, where the client follows a job up.
pub(crate) fn with_location(mut response: Response, id: JobId) -> Response {
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
