//! Cross-site request forgery: every state-changing dashboard request is a POST that must come
//! from our own pages. Three checks, any of which refuses with 403:
//!
//! 1. `Sec-Fetch-Site`, when the browser sends it, must be `same-origin`;
//! 2. `Origin`, when present, must name this host;
//! 3. the session's CSRF token must come back, as the `_csrf` form field or the
//!    `X-CSRF-Token` header, compared in constant time.
//!
//! The `SameSite=Strict` cookie already keeps other sites' requests from being signed in;
//! these checks also cover the dashboard without API keys, where no sign-in is needed.

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use super::{error::PageError, session::Session};

/// Dashboard forms carry a token and a few fields; anything bigger is not one of ours.
const FORM_LIMIT: usize = 64 * 1024;
const TOKEN_FIELD: &str = "_csrf";
const TOKEN_HEADER: &str = "x-csrf-token";

/// Middleware: lets safe methods through; checks every other one.
pub(crate) async fn guard(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return refuse("no session");
    };
    if let Err(why) = same_origin(req.headers()) {
        return refuse(why);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
        return PageError::new(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.")
            .into_response();
    };
    let sent = parts
        .headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| form_token(&bytes));
    let matches = sent.is_some_and(|t| bool::from(t.as_bytes().ct_eq(session.csrf.as_bytes())));
    if !matches {
        return refuse("missing or wrong CSRF token");
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn form_token(body: &Bytes) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == TOKEN_FIELD)
        .map(|(_, v)| v.into_owned())
}

/// Whether the browser says the request comes from our own origin (or says nothing).
fn same_origin(headers: &HeaderMap) -> Result<(), &'static str> {
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() != b"same-origin"
    {
        return Err("Sec-Fetch-Site is not same-origin");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(|h| h.as_bytes());
        let authority = origin.to_str().ok().and_then(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
        });
        let same = match (authority, host) {
            (Some(a), Some(h)) => a.as_bytes().eq_ignore_ascii_case(h),
            _ => false,
        };
        if !same {
            return Err("Origin is another site");
        }
    }
    Ok(())
}

fn refuse(why: &str) -> Response {
    tracing::warn!(reason = why, "refused a dashboard POST");
    PageError::new(
        StatusCode::FORBIDDEN,
        "This action was refused: it did not come from a dashboard page of this server, or the \
         page was too old. Go back, reload the page and try again.",
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origin_checks() {
        assert!(same_origin(&headers(&[])).is_ok());
        assert!(
            same_origin(&headers(&[
                ("host", "127.0.0.1:2899"),
                ("origin", "http://127.0.0.1:2899")
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&headers(&[
                ("host", "127.0.0.1:2899"),
                ("origin", "http://evil.example")
            ]))
            .is_err()
        );
        assert!(same_origin(&headers(&[("host", "127.0.0.1:2899"), ("origin", "null")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])).is_ok());
        assert!(same_origin(&headers(&[("sec-fetch-site", "cross-site")])).is_err());
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-site")])).is_err());
    }

    #[test]
    fn the_token_is_read_from_the_form() {
        let body = Bytes::from_static(b"a=1&_csrf=abc%2Bd&b=2");
        assert_eq!(form_token(&body).as_deref(), Some("abc+d"));
        assert_eq!(form_token(&Bytes::from_static(b"a=1")), None);
    }
}
