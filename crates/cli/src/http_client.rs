//! A small HTTP client for the operator commands: one base URL, an optional bearer key, and
//! problem+json answers turned into errors an operator can read.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::{Serialize, de::DeserializeOwned};

/// Why a call to the server failed. `Display` is what the operator sees after `error: `.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot reach the Buzzer server at {server} (is 'buzzer serve' running?)")]
    Unreachable { server: String },
    /// The server explained the problem (RFC 9457 `detail`); it is shown as is.
    #[error("{detail}")]
    Problem { status: StatusCode, detail: String },
    #[error("the server at {server} answered {status} with no problem description")]
    Status { server: String, status: StatusCode },
    #[error("the Buzzer server at {server} did not answer in time")]
    Timeout { server: String },
    #[error("request to the Buzzer server at {server} failed: {message}")]
    Transport { server: String, message: String },
    #[error("unexpected answer from the Buzzer server: {0}")]
    Decode(String),
}

/// The fields of a problem+json body the client uses.
#[derive(Debug, serde::Deserialize)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
}

/// Operator commands are short; a request that takes longer than this is stuck.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    /// The server as the operator wrote it, for messages.
    server: String,
    api_key: Option<String>,
}

impl ApiClient {
    /// `server` is a base URL; `127.0.0.1:2899` without a scheme means `http://127.0.0.1:2899`.
    pub fn new(server: &str, api_key: Option<String>) -> anyhow::Result<ApiClient> {
        let server = server.trim();
        let with_scheme = if server.contains("://") {
            server.to_owned()
        } else {
            format!("http://{server}")
        };
        let server = server.trim_end_matches('/').to_owned();
        let base = Url::parse(&with_scheme)
            .map_err(|e| anyhow::anyhow!("--server {server:?} is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            anyhow::bail!("--server {server:?} must be an http:// or https:// URL");
        }
        // One client for the whole command: its pool keeps the connection alive between the
        // calls of a DLQ replay.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("buzzer-cli/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(ApiClient {
            http,
            base,
            server,
            api_key,
        })
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        self.call(Method::GET, path, query, None::<&()>).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        self.call(Method::POST, path, &[], body).await
    }

    /// A `DELETE` whose success answer is JSON (a deleted job).
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T, ApiError> {
        self.call(Method::DELETE, path, &[], None::<&()>).await
    }

    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: &impl Serialize,
    ) -> Result<T, ApiError> {
        self.call(Method::PUT, path, &[], Some(body)).await
    }

    /// A `DELETE` whose success answer is `204 No Content`.
    pub async fn delete(&self, path: &[&str]) -> Result<(), ApiError> {
        self.call(Method::DELETE, path, &[], None::<&()>).await
    }

    /// `path` is a list of segments, each percent-encoded, so an id typed by an operator can
    /// never change which route is called.
    fn url(&self, path: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<T, ApiError> {
        let mut req = self.http.request(method, self.url(path, query));
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            // A `204` has no body: it decodes as `()`.
            let text = if text.trim().is_empty() {
                "null"
            } else {
                &text
            };
            serde_json::from_str(text).map_err(|e| ApiError::Decode(e.to_string()))
        } else {
            Err(self.problem(status, &text))
        }
    }

    fn problem(&self, status: StatusCode, body: &str) -> ApiError {
        match serde_json::from_str::<Problem>(body) {
            Ok(Problem {
                detail: Some(detail),
                ..
            })
            | Ok(Problem {
                detail: None,
                title: Some(detail),
            }) => ApiError::Problem { status, detail },
            _ => ApiError::Status {
                server: self.server.clone(),
                status,
            },
        }
    }

    fn transport(&self, e: reqwest::Error) -> ApiError {
        let server = self.server.clone();
        if e.is_connect() {
            ApiError::Unreachable { server }
        } else if e.is_timeout() {
            ApiError::Timeout { server }
        } else {
            ApiError::Transport {
                server,
                message: error_chain(&e),
            }
        }
    }
}

/// reqwest's own message is terse ("error sending request"); the cause says what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(server: &str) -> ApiClient {
        ApiClient::new(server, None).unwrap()
    }

    #[test]
    fn builds_urls_from_segments() {
        let c = client("http://127.0.0.1:2899/");
        assert_eq!(
            c.url(&["v1", "jobs", "a/b?c"], &[]).as_str(),
            "http://127.0.0.1:2899/v1/jobs/a%2Fb%3Fc"
        );
        assert_eq!(
            c.url(&["v1", "jobs"], &[("queue", "e mails".into())])
                .as_str(),
            "http://127.0.0.1:2899/v1/jobs?queue=e+mails"
        );
        // A base path (a server behind a proxy) is kept.
        let c = client("https://ops.example/buzzer");
        assert_eq!(
            c.url(&["v1", "queues"], &[]).as_str(),
            "https://ops.example/buzzer/v1/queues"
        );
        let c = client("localhost:2899");
        assert_eq!(
            c.url(&["healthz"], &[]).as_str(),
            "http://localhost:2899/healthz"
        );
    }

    #[test]
    fn refuses_non_http_servers() {
        assert!(ApiClient::new("ftp://x", None).is_err());
        assert!(ApiClient::new("http://", None).is_err());
    }

    #[test]
    fn problem_detail_is_the_message() {
        let c = client("http://127.0.0.1:2899");
        let e = c.problem(
            StatusCode::NOT_FOUND,
            r#"{"type":"urn:buzzer:problem:not-found","title":"Not Found","status":404,"detail":"job 0000000000001 not found"}"#,
        );
        assert_eq!(e.to_string(), "job 0000000000001 not found");
        let e = c.problem(StatusCode::UNAUTHORIZED, r#"{"title":"Unauthorized"}"#);
        assert_eq!(e.to_string(), "Unauthorized");
        let e = c.problem(StatusCode::BAD_GATEWAY, "<html>bad gateway</html>");
        assert_eq!(
            e.to_string(),
            "the server at http://127.0.0.1:2899 answered 502 Bad Gateway with no problem description"
        );
    }
}
