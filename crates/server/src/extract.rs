//! Request extractors that answer in problem+json: JSON bodies with field paths, path ids and
//! names, the query string, and the hybrid-call wait (`Prefer: wait=N` or `?wait_ms=N`).

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{HeaderMap, HeaderValue, Uri, header, request::Parts},
};
use buzzer_types::{JobId, Limits};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::{ApiError, AppState};

/// A JSON body, read whatever its `Content-Type` (so `curl -d` works) and held to the body
/// limit. A syntax error is a 400 naming line and column; a type error, a missing or an unknown
/// field is a 422 naming the field path (`jobs[2].priority`).
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub T);

/// Like [`JsonBody`], for routes whose body is optional: an empty body is `None`.
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.max_body).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state.max_body).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(None));
        }
        parse_json(&bytes).map(|v| OptionalJsonBody(Some(v)))
    }
}

/// Reads the whole body, refusing it as soon as it is known to be over `limit`: first by its
/// declared length, then while reading, since a chunked body declares none.
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    let mut chunks = req.into_body().into_data_stream();
    // Most bodies arrive in one chunk: keep it as it is and copy only when a second one comes.
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::invalid_body(format!("the request body could not be read: {e}"))
        })?;
        total += chunk.len();
        if total > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        if let Some(head) = first.take() {
            joined.reserve(declared.map_or(total, |d| d as usize));
            joined.extend_from_slice(&head);
        }
        if joined.is_empty() {
            first = Some(chunk);
        } else {
            joined.extend_from_slice(&chunk);
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// Parses a JSON document, naming the field at fault on error.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde would read a struct from an array of its fields in order; no client means that.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::invalid_body("the body must be a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
    de.end().map_err(|e| not_json(&e))?;
    Ok(value)
}

fn not_json(e: &serde_json::Error) -> ApiError {
    ApiError::invalid_body(format!("the body is not valid JSON: {e}"))
}

fn path_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = field_path(e.path());
    let inner = e.into_inner();
    if inner.classify() != Category::Data {
        return not_json(&inner);
    }
    let message = inner.to_string();
    // The position helps with syntax, not with a field that is named anyway.
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    // A missing field is reported at its parent's path, naming the field in the message only.
    if let Some(name) = backticked(message, "missing field `") {
        return ApiError::invalid_field(join(&path, name), "is required");
    }
    if message.starts_with("unknown field `") {
        let expected = message
            .split_once(", ")
            .map_or(String::new(), |(_, rest)| format!(" ({rest})"));
        return ApiError::invalid_field(path, format!("is not a known field{expected}"));
    }
    if path.is_empty() {
        return ApiError::invalid_body(format!("the body must be a JSON object: {message}"));
    }
    ApiError::invalid_field(path, message)
}

fn backticked<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message
        .strip_prefix(prefix)?
        .split_once('`')
        .map(|(name, _)| name)
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    }
}

/// `jobs[2].priority`; the root is the empty string.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } => {}
            Segment::Unknown => out.push_str(if out.is_empty() { "?" } else { ".?" }),
        }
    }
    out
}

/// A `{id}` path segment. One that is not a job id names no job, so it is a 404 like any
/// unknown id rather than a 422.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JobIdPath(pub JobId);

impl<S: Send + Sync> FromRequestParts<S> for JobIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("job"))?;
        raw.parse()
            .map(JobIdPath)
            .map_err(|_| ApiError::not_found(format_args!("job {raw}")))
    }
}

/// A `{queue}` path segment; the engine checks the name (422, field `queue`).
#[derive(Debug, Clone)]
pub(crate) struct QueuePath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for QueuePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(name)| QueuePath(name))
            .map_err(|e| ApiError::invalid_field("queue", e.body_text()))
    }
}

/// The query string as decoded pairs, in order.
#[derive(Debug, Default)]
pub(crate) struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub(crate) fn from_uri(uri: &Uri) -> Result<Self, ApiError> {
        if uri.query().is_none() {
            return Ok(QueryPairs::default());
        }
        Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map(|Query(pairs)| QueryPairs(pairs))
            .map_err(|e| ApiError::invalid_field("query", e.body_text()))
    }

    /// The first value of `name`; an empty value counts as absent, as HTML forms send them.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// How long a hybrid enqueue or a long-poll get waits: `?wait_ms=N`, else `Prefer: wait=N`
/// (seconds, decimals allowed). `None` when the request asks for no wait.
#[derive(Debug, Clone)]
pub(crate) struct WaitPref(pub Option<Wait>);

#[derive(Debug, Clone)]
pub(crate) struct Wait {
    pub timeout: Duration,
    /// The `Preference-Applied` value to answer with, when the wait came from `Prefer`.
    pub applied: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for WaitPref {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = QueryPairs::from_uri(&parts.uri)?;
        if let Some(ms) = query.get("wait_ms") {
            return wait_ms(ms).map(|timeout| {
                WaitPref(Some(Wait {
                    timeout,
                    applied: None,
                }))
            });
        }
        prefer_wait(&parts.headers).map(WaitPref)
    }
}

/// The W3C `traceparent` request header, validated: a producer's trace context for the jobs
/// it enqueues. A job's own `traceparent` field wins over it.
#[derive(Debug, Clone)]
pub(crate) struct TraceHeader(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for TraceHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("traceparent") else {
            return Ok(TraceHeader(None));
        };
        let bad = |why: &str| ApiError::invalid_field("traceparent", format!("(header) {why}"));
        let text = value
            .to_str()
            .map_err(|_| bad("must be ASCII text"))?
            .trim();
        text.parse::<buzzer_types::TraceParent>()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(TraceHeader(Some(text.to_owned())))
    }
}

impl TraceHeader {
    /// Gives `req` the header's context unless it carries its own.
    pub(crate) fn apply(&self, req: &mut buzzer_types::EnqueueRequest) {
        if req.traceparent.is_none() {
            req.traceparent.clone_from(&self.0);
        }
    }
}

fn wait_ms(raw: &str) -> Result<Duration, ApiError> {
    let ms: u64 = raw.parse().map_err(|_| {
        ApiError::invalid_field("wait_ms", "must be a whole number of milliseconds")
    })?;
    if ms > Limits::MAX_WAIT_MS {
        return Err(ApiError::invalid_field(
            "wait_ms",
            format!("must be at most {}", Limits::MAX_WAIT_MS),
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// The first `wait` preference of the `Prefer` headers (RFC 7240: later repeats are ignored,
/// and so are preferences this server does not know, like `respond-async`).
fn prefer_wait(headers: &HeaderMap) -> Result<Option<Wait>, ApiError> {
    let preferences = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for preference in preferences {
        // Parameters after `;` qualify a preference; `wait` has none worth reading.
        let token = preference.split(';').next().unwrap_or_default();
        let Some((name, value)) = token.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("wait") {
            continue;
        }
        let value = value.trim().trim_matches('"');
        let seconds = parse_seconds(value).ok_or_else(|| {
            ApiError::invalid_field("Prefer", "wait must be a number of seconds, e.g. wait=5")
        })?;
        let max_s = Limits::MAX_WAIT_MS / 1000;
        if seconds > max_s as f64 {
            return Err(ApiError::invalid_field(
                "Prefer",
                format!("wait must be at most {max_s} seconds"),
            ));
        }
        let applied = HeaderValue::from_str(&format!("wait={value}")).ok();
        return Ok(Some(Wait {
            timeout: Duration::from_secs_f64(seconds),
            applied,
        }));
    }
    Ok(None)
}

/// Decimal seconds: digits with at most one `.`; no sign, exponent, `inf` or `NaN`.
fn parse_seconds(value: &str) -> Option<f64> {
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    let dots = value.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || dots > 1 || digits + dots != value.len() {
        return None;
    }
    value.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use buzzer_types::{BatchEnqueueRequest, EnqueueRequest};

    fn prefer(v: &str) -> Result<Option<Wait>, ApiError> {
        let mut h = HeaderMap::new();
        h.insert("prefer", HeaderValue::from_str(v).unwrap());
        prefer_wait(&h)
    }

    #[test]
    fn prefer_wait_reads_the_first_wait() {
        let w = prefer("respond-async, wait=2.5").unwrap().unwrap();
        assert_eq!(w.timeout, Duration::from_millis(2500));
        assert_eq!(w.applied.unwrap(), "wait=2.5");
        assert!(prefer("respond-async").unwrap().is_none());
        assert_eq!(
            prefer("WAIT=1, wait=9").unwrap().unwrap().timeout,
            Duration::from_secs(1)
        );
        assert_eq!(prefer("wait=301").unwrap_err().field(), Some("Prefer"));
        assert_eq!(prefer("wait=-1").unwrap_err().field(), Some("Prefer"));
        assert_eq!(prefer("wait=inf").unwrap_err().field(), Some("Prefer"));
        assert!(prefer("wait=300").is_ok());
    }

    #[test]
    fn json_errors_name_the_field() {
        let e = parse_json::<EnqueueRequest>(b"{}").unwrap_err();
        assert_eq!((e.status().as_u16(), e.field()), (422, Some("payload")));
        let e = parse_json::<EnqueueRequest>(br#"{"payload":1,"nope":2}"#).unwrap_err();
        assert_eq!((e.status().as_u16(), e.field()), (422, Some("nope")));
        let e = parse_json::<BatchEnqueueRequest>(
            br#"{"jobs":[{"payload":1},{"payload":1,"priority":"x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field(), Some("jobs[1].priority"));
        let e = parse_json::<BatchEnqueueRequest>(br#"{"jobs":[{"payload":1},{}]}"#).unwrap_err();
        assert_eq!(e.field(), Some("jobs[1].payload"));
        let e = parse_json::<EnqueueRequest>(b"{\"payload\":").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        assert!(e.detail().contains("line 1"), "{}", e.detail());
        let e = parse_json::<EnqueueRequest>(br#"{"payload":1} x"#).unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
        let e = parse_json::<EnqueueRequest>(b"[]").unwrap_err();
        assert_eq!(e.status().as_u16(), 400);
    }

    #[test]
    fn raw_payload_keeps_its_bytes() {
        let body = r#"{"payload": {"s":"héllo 🐝 \u00e9","n":1.50} }"#;
        let req: EnqueueRequest = parse_json(body.as_bytes()).unwrap();
        assert_eq!(req.payload.get(), r#"{"s":"héllo 🐝 \u00e9","n":1.50}"#);
    }
}

/// Names in the path (`{topic}`, `{name}`, …), checked by the engine, which names the field.
#[derive(Debug)]
pub(crate) struct Names<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Names<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(names)| Names(names))
            .map_err(|e| ApiError::invalid_field("path", e.body_text()))
    }
}
