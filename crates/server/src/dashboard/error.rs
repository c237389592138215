//! A dashboard page that could not be shown: an HTML answer with the status and a sentence,
//! instead of the API's problem+json.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use buzzer_engine::EngineError;

use crate::ApiError;

use super::layout;

#[derive(Debug)]
pub(crate) struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, format!("There is no {what}."))
    }
}

impl From<EngineError> for PageError {
    fn from(e: EngineError) -> Self {
        // The API error hides internals and logs them; show what it would tell a client.
        let api = ApiError::from(e);
        let mut message = api.detail().to_owned();
        if let Some(first) = message.get(..1) {
            message.replace_range(..1, &first.to_uppercase());
        }
        PageError::new(api.status(), message)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        (self.status, layout::bare(title, &self.message)).into_response()
    }
}
