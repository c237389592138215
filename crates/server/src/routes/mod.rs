//! The handlers, one file per part of the API.

pub(crate) mod events;
pub(crate) mod jobs;
pub(crate) mod queues;
pub(crate) mod schedules;
pub(crate) mod topics;
pub(crate) mod worker;

use axum::{http::StatusCode, response::Response};

use crate::response::json;

/// `GET /healthz`: liveness, never behind a key.
pub(crate) async fn healthz() -> Response {
    #[derive(serde::Serialize)]
    struct Health {
        status: &'static str,
    }
    json(StatusCode::OK, &Health { status: "ok" })
}
