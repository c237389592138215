//! The one error type of the HTTP API, rendered as `application/problem+json` (RFC 9457).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use buzzer_engine::EngineError;
use buzzer_types::Invalid;
use serde::Serialize;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: a status, a problem slug and a detail for the client.
///
/// Every handler returns `Result<_, ApiError>`; engine errors convert with `?`. Internal causes
/// are logged here and never shown to the client.
///
/// ```
/// use axum::response::IntoResponse;
/// use buzzer_server::ApiError;
///
/// let response = ApiError::not_found("job 0000000000001").into_response();
/// assert_eq!(response.status(), 404);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    slug: &'static str,
    detail: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            slug,
            detail: detail.into(),
            field: None,
        }
    }

    /// 400: the body is not JSON.
    pub fn invalid_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-body", detail)
    }

    /// 422: one field breaks a rule; the detail is `field: message`.
    pub fn invalid_field(field: impl Into<String>, message: impl AsRef<str>) -> Self {
        let field = field.into();
        ApiError {
            detail: format!("{field}: {}", message.as_ref()),
            field: Some(field),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "")
        }
    }

    /// 404: `what` names the missing thing, e.g. "job 0000000000001".
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("{what} not found"),
        )
    }

    /// 401, with `WWW-Authenticate: Bearer`.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required: send `Authorization: Bearer KEY`",
        )
    }

    /// 413: the body is over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the request body is over the limit of {limit} bytes"),
        )
    }

    /// 405: the route exists with another method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "this route does not answer that method",
        )
    }

    /// 500 with a generic detail; `cause` goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error answering a request");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server hit an internal error; it has been logged",
        )
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What went wrong, as the client sees it.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The request field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }
}

impl From<Invalid> for ApiError {
    fn from(e: Invalid) -> Self {
        ApiError::invalid_field(e.field, e.message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Invalid(invalid) => invalid.into(),
            EngineError::NotFound(what) => ApiError::not_found(what),
            EngineError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            e @ EngineError::LeaseLost => {
                ApiError::new(StatusCode::CONFLICT, "lease-lost", e.to_string())
            }
            EngineError::Unavailable(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            EngineError::Internal(cause) => ApiError::internal(&cause),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    r#type: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            r#type: format!("urn:buzzer:problem:{}", self.slug),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            field: self.field.as_deref(),
        };
        // A struct of strings and a number always serializes.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))],
            body,
        )
            .into_response();
        let headers = response.headers_mut();
        match self.status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_statuses() {
        let cases = [
            (EngineError::Invalid(Invalid::new("priority", "bad")), 422),
            (EngineError::NotFound("job x".into()), 404),
            (EngineError::Conflict("no".into()), 409),
            (EngineError::LeaseLost, 409),
            (EngineError::Unavailable("busy".into()), 503),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e).status().as_u16(), status);
        }
        let e = ApiError::from(EngineError::Invalid(Invalid::new(
            "jobs[2].priority",
            "bad",
        )));
        assert_eq!(e.field(), Some("jobs[2].priority"));
        assert_eq!(e.detail(), "jobs[2].priority: bad");
    }
}
