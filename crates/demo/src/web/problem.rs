//! Errors of the demo's routes, as `application/problem+json` like the rest of Buzzer's API.

use axum::{
    extract::rejection::JsonRejection,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: String,
    field: Option<&'static str>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Problem {
        Problem {
            status,
            slug,
            title,
            detail: String::new(),
            field: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Problem {
        self.detail = detail.into();
        self
    }

    pub fn invalid(field: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            field: Some(field),
            ..Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A field is invalid",
            )
            .detail(detail)
        }
    }
}

/// A body that is not JSON (or not sent as JSON) is refused. Requiring `application/json`
/// also keeps other sites from driving the demo with plain form posts, which browsers send
/// cross-site without asking.
impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Problem {
        let status = rejection.status();
        let slug = if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            "unsupported-media-type"
        } else {
            "invalid-body"
        };
        Problem::new(status, slug, "The request body is not the expected JSON")
            .detail(rejection.body_text())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:buzzer:problem:{}", self.slug),
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        (
            self.status,
            [(header::CONTENT_TYPE, buzzer_server::PROBLEM_JSON)],
            body.to_string(),
        )
            .into_response()
    }
}
