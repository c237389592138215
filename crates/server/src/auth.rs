//! Bearer API keys for `/v1` and `/metrics`. The dashboard's cookie sign-in (`dashboard/`)
//! checks the typed key with the same comparison.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::{Choice, ConstantTimeEq};

use crate::ApiError;

/// The accepted keys, shared by every request.
#[derive(Clone)]
pub(crate) struct ApiKeys(Arc<[Box<[u8]>]>);

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys([{} redacted])", self.0.len())
    }
}

impl ApiKeys {
    /// An empty key is dropped: it would let in anyone who sends `Bearer ` with nothing after.
    pub(crate) fn new(keys: &[String]) -> Self {
        ApiKeys(
            keys.iter()
                .filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().into())
                .collect(),
        )
    }

    /// Whether the request carries `Authorization: Bearer KEY` with one of the keys. Each key
    /// is compared in constant time and all are tried, so timing tells nothing about which
    /// bytes or which key matched.
    pub(crate) fn accepts(&self, headers: &HeaderMap) -> bool {
        bearer_token(headers).is_some_and(|token| self.accepts_key(token))
    }

    /// Whether `token` is one of the keys, in constant time (as above); the dashboard's login
    /// form checks the key typed in with it.
    pub(crate) fn accepts_key(&self, token: &[u8]) -> bool {
        let mut matched = Choice::from(0);
        for key in self.0.iter() {
            matched |= key.as_ref().ct_eq(token);
        }
        matched.into()
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    // The scheme is case-insensitive (RFC 9110 §11.1).
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

/// Middleware: answers 401 (with `WWW-Authenticate: Bearer`) unless the key is right.
pub(crate) async fn require_key(State(keys): State<ApiKeys>, req: Request, next: Next) -> Response {
    if keys.accepts(req.headers()) {
        next.run(req).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn accepts_only_a_listed_bearer_key() {
        let keys = ApiKeys::new(&["k1".into(), "key-two".into()]);
        assert!(keys.accepts(&with_auth("Bearer k1")));
        assert!(keys.accepts(&with_auth("bearer key-two")));
        assert!(!keys.accepts(&with_auth("Bearer k2")));
        assert!(!keys.accepts(&with_auth("Bearer k")));
        assert!(!keys.accepts(&with_auth("Basic k1")));
        assert!(!keys.accepts(&with_auth("Bearer ")));
        assert!(!keys.accepts(&HeaderMap::new()));
    }
}
