//! A `buzzer serve` over HTTP: one pooled keep-alive client (rustls), the API key as a bearer
//! token, problem+json answers turned back into [`Error`] variants.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use buzzer_engine::{Outcome, RetryRequest};
use buzzer_types::{
    Ack, AckResult, AcksRequest, AcksResponse, BatchEnqueueRequest, EnqueueRequest, ErrorInput,
    FetchRequest, HeartbeatRequest, HeartbeatResponse, Job, JobId, Limits, PublishRequest,
    PublishResponse, ReleaseRequest, ScheduleInfo, ScheduleListResponse, ScheduleRequest,
    SubscriptionInfo, SubscriptionListResponse, SubscriptionRequest, TopicInfo, TopicListResponse,
    validate_name,
};
use reqwest::{
    RequestBuilder, StatusCode,
    header::{AUTHORIZATION, HeaderMap, HeaderValue},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::time::Instant;

use super::{Finish, Leased, Transport};
use crate::Error;

/// How long a plain request may take; long-polls get their wait on top.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pauses before sending results again after a failure.
const RESEND_PAUSES: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];
/// The longest wait the server accepts in one request.
const MAX_WAIT: Duration = Duration::from_millis(Limits::MAX_WAIT_MS);

pub(crate) struct Remote {
    http: reqwest::Client,
    /// `http://host:port`, without a trailing slash.
    base: String,
    closed: AtomicBool,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The client's default headers hold the API key: never print them.
        f.debug_struct("Remote").field("base", &self.base).finish()
    }
}

impl Remote {
    pub(crate) fn new(url: &str, api_key: Option<&str>) -> Result<Remote, Error> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| Error::invalid("url", format!("{url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::invalid("url", "must start with http:// or https://"));
        }
        let mut headers = HeaderMap::new();
        if let Some(key) = api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}"))
                .map_err(|_| Error::invalid("api_key", "must be printable ASCII"))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("buzzer-rust/", env!("CARGO_PKG_VERSION")))
            // Hybrid answers are small: they must not wait for Nagle's algorithm.
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(transport)?;
        Ok(Remote {
            http,
            base: url.trim_end_matches('/').to_owned(),
            closed: AtomicBool::new(false),
        })
    }

    fn url(&self, path: std::fmt::Arguments<'_>) -> String {
        format!("{}{path}", self.base)
    }

    fn post(&self, path: std::fmt::Arguments<'_>, body: &impl Serialize) -> RequestBuilder {
        self.http
            .post(self.url(path))
            .json(body)
            .timeout(REQUEST_TIMEOUT)
    }

    /// Sends, and decodes a 2xx answer as `T` or an error answer as an [`Error`].
    async fn send<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T, Error> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            Ok(serde_json::from_slice(&body)?)
        } else {
            Err(problem(status, &body))
        }
    }

    /// [`send`](Self::send) for a request that may safely arrive twice (results: a repeat is a
    /// harmless `409`), tried again after a broken connection or a `503`: a result that does
    /// not arrive costs the job a lease expiry and another run.
    async fn send_again<T: DeserializeOwned>(
        &self,
        req: impl Fn() -> RequestBuilder,
    ) -> Result<T, Error> {
        for pause in RESEND_PAUSES {
            match self.send(req()).await {
                Err(Error::Transport(_) | Error::Unavailable(_)) if !self.is_closed() => {
                    tokio::time::sleep(pause).await;
                }
                other => return other,
            }
        }
        self.send(req()).await
    }

    /// `Prefer: wait=N` in seconds with millisecond precision, and a request timeout that
    /// leaves the server room to answer after the wait.
    fn waiting(req: RequestBuilder, wait: Duration) -> RequestBuilder {
        let ms = wait.as_millis();
        req.header("prefer", format!("wait={}.{:03}", ms / 1000, ms % 1000))
            .timeout(wait + REQUEST_TIMEOUT)
    }

    /// The queue goes into the URL path: a name the engine would refuse must not reach
    /// another route instead.
    fn queue_path(queue: &str) -> Result<&str, Error> {
        validate_name(queue).map_err(|m| Error::invalid("queue", m))?;
        Ok(queue)
    }

    /// A topic, subscription or schedule name for the URL path, checked like a queue's.
    fn name_path<'a>(field: &str, name: &'a str) -> Result<&'a str, Error> {
        validate_name(name).map_err(|m| Error::invalid(field, m))?;
        Ok(name)
    }

    fn get_json(&self, path: std::fmt::Arguments<'_>) -> RequestBuilder {
        self.http.get(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    /// Sends a request whose success answer has no body (`204`).
    async fn send_empty(&self, req: RequestBuilder) -> Result<(), Error> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.bytes().await.map_err(transport)?;
        Err(problem(status, &body))
    }

    async fn release(&self, id: JobId, lease_token: String) -> Result<(), Error> {
        let body = ReleaseRequest { lease_token };
        let req = || self.post(format_args!("/v1/jobs/{id}/release"), &body);
        self.send_again::<Job>(req).await.map(drop)
    }
}

#[async_trait]
impl Transport for Remote {
    async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Result<Job, Error> {
        let queue = Self::queue_path(queue)?;
        let req = self.post(format_args!("/v1/queues/{queue}/jobs"), &req);
        self.send(req).await
    }

    async fn enqueue_many(
        &self,
        queue: &str,
        reqs: Vec<EnqueueRequest>,
    ) -> Result<Vec<Job>, Error> {
        #[derive(Deserialize)]
        struct Batch {
            jobs: Vec<Job>,
        }
        let queue = Self::queue_path(queue)?;
        let body = BatchEnqueueRequest { jobs: reqs };
        let req = self.post(format_args!("/v1/queues/{queue}/jobs/batch"), &body);
        let batch: Batch = self.send(req).await?;
        Ok(batch.jobs)
    }

    async fn enqueue_wait(
        &self,
        queue: &str,
        req: EnqueueRequest,
        wait: Duration,
    ) -> Result<Job, Error> {
        let deadline = Instant::now() + wait;
        let queue = Self::queue_path(queue)?;
        let post = self.post(format_args!("/v1/queues/{queue}/jobs"), &req);
        // One request: the server enqueues and waits, answering 200 (finished) or 202.
        let job: Job = self.send(Self::waiting(post, wait.min(MAX_WAIT))).await?;
        if job.state.is_terminal() || wait <= MAX_WAIT {
            return Ok(job);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        self.wait_terminal(job.id, left).await
    }

    async fn get(&self, id: JobId) -> Result<Job, Error> {
        let req = self.http.get(self.url(format_args!("/v1/jobs/{id}")));
        self.send(req.timeout(REQUEST_TIMEOUT)).await
    }

    async fn wait_terminal(&self, id: JobId, wait: Duration) -> Result<Job, Error> {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let req = self.http.get(self.url(format_args!("/v1/jobs/{id}")));
            let job: Job = self.send(Self::waiting(req, left.min(MAX_WAIT))).await?;
            if job.state.is_terminal() || left <= MAX_WAIT {
                return Ok(job);
            }
        }
    }

    async fn cancel(&self, id: JobId) -> Result<Job, Error> {
        let req = self
            .http
            .post(self.url(format_args!("/v1/jobs/{id}/cancel")));
        self.send(req.timeout(REQUEST_TIMEOUT)).await
    }

    async fn fetch(&self, req: FetchRequest) -> Result<Vec<Leased>, Error> {
        /// `FetchResponse`, each job read only as far as a worker needs it.
        #[derive(Deserialize)]
        struct Fetched {
            jobs: Vec<Leased>,
        }
        let wait = Duration::from_millis(req.wait_ms.unwrap_or(0));
        let post = self.post(format_args!("/v1/fetch"), &req);
        let resp: Fetched = self.send(post.timeout(wait + REQUEST_TIMEOUT)).await?;
        Ok(resp.jobs)
    }

    async fn heartbeat(
        &self,
        id: JobId,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Error> {
        let req = self.post(format_args!("/v1/jobs/{id}/heartbeat"), &req);
        self.send(req).await
    }

    /// Completes and fails go in one `POST /v1/acks`; releases (graceful shutdown only) go
    /// one by one, concurrently. A handler's own cancellation has no ack of its own: asking
    /// to cancel the running job first makes its failure a cancellation.
    async fn finish_many(&self, items: Vec<Finish>) -> Result<Vec<Result<(), Error>>, Error> {
        let mut results: Vec<Option<Result<(), Error>>> = items.iter().map(|_| None).collect();
        let mut acks = Vec::with_capacity(items.len());
        let mut acked = Vec::with_capacity(items.len());
        let mut releases = Vec::new();
        for (
            i,
            Finish {
                id,
                lease_token,
                outcome,
            },
        ) in items.into_iter().enumerate()
        {
            let (result, error, retry, retry_in_ms) = match outcome {
                Outcome::Completed { result } => (result, None, None, None),
                Outcome::Retry(RetryRequest { error, retry_in_ms }) => {
                    (None, Some(error), None, retry_in_ms)
                }
                Outcome::Dead { error } => (None, Some(error), Some(false), None),
                Outcome::Cancelled { error } => {
                    if let Err(e) = self.cancel(id).await {
                        results[i] = Some(Err(e));
                        continue;
                    }
                    let error = error.unwrap_or_else(|| ErrorInput::new("cancelled"));
                    (None, Some(error), None, None)
                }
                Outcome::Released => {
                    releases.push((i, self.release(id, lease_token)));
                    continue;
                }
            };
            let ack = Ack {
                id,
                lease_token,
                result,
                error,
                retry,
                retry_in_ms,
            };
            acks.push(ack);
            acked.push(i);
        }
        let released = futures::future::join_all(
            releases
                .into_iter()
                .map(|(i, f)| async move { (i, f.await) }),
        );
        let applied = async {
            if acks.is_empty() {
                return Ok(Vec::new());
            }
            let body = AcksRequest { acks };
            let req = || self.post(format_args!("/v1/acks"), &body);
            let resp: AcksResponse = self.send_again(req).await?;
            Ok::<_, Error>(resp.results)
        };
        let (released, applied) = tokio::join!(released, applied);
        for (i, r) in released {
            results[i] = Some(r);
        }
        let applied = applied?;
        if applied.len() != acked.len() {
            return Err(Error::Server {
                status: 200,
                detail: format!(
                    "POST /v1/acks answered {} results for {} acks",
                    applied.len(),
                    acked.len()
                ),
            });
        }
        for (i, r) in acked.into_iter().zip(applied) {
            results[i] = Some(ack_result(r));
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::Unavailable("no answer".into()))))
            .collect())
    }

    async fn publish(&self, topic: &str, req: PublishRequest) -> Result<PublishResponse, Error> {
        let topic = Self::name_path("topic", topic)?;
        let post = self.post(format_args!("/v1/topics/{topic}/events"), &req);
        self.send(post).await
    }

    async fn subscription_put(
        &self,
        topic: &str,
        name: &str,
        req: SubscriptionRequest,
    ) -> Result<SubscriptionInfo, Error> {
        let topic = Self::name_path("topic", topic)?;
        let name = Self::name_path("name", name)?;
        let url = self.url(format_args!("/v1/topics/{topic}/subscriptions/{name}"));
        self.send(self.http.put(url).json(&req).timeout(REQUEST_TIMEOUT))
            .await
    }

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<(), Error> {
        let topic = Self::name_path("topic", topic)?;
        let name = Self::name_path("name", name)?;
        let url = self.url(format_args!("/v1/topics/{topic}/subscriptions/{name}"));
        self.send_empty(self.http.delete(url).timeout(REQUEST_TIMEOUT))
            .await
    }

    async fn subscriptions(&self, topic: Option<&str>) -> Result<Vec<SubscriptionInfo>, Error> {
        let req = match topic {
            Some(topic) => {
                let topic = Self::name_path("topic", topic)?;
                self.get_json(format_args!("/v1/topics/{topic}/subscriptions"))
            }
            None => self.get_json(format_args!("/v1/subscriptions")),
        };
        let list: SubscriptionListResponse = self.send(req).await?;
        Ok(list.subscriptions)
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, Error> {
        let req = self.get_json(format_args!("/v1/topics"));
        let list: TopicListResponse = self.send(req).await?;
        Ok(list.topics)
    }

    async fn schedule_put(&self, name: &str, req: ScheduleRequest) -> Result<ScheduleInfo, Error> {
        let name = Self::name_path("name", name)?;
        let url = self.url(format_args!("/v1/schedules/{name}"));
        self.send(self.http.put(url).json(&req).timeout(REQUEST_TIMEOUT))
            .await
    }

    async fn schedule(&self, name: &str) -> Result<ScheduleInfo, Error> {
        let name = Self::name_path("name", name)?;
        let req = self.get_json(format_args!("/v1/schedules/{name}"));
        self.send(req).await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        let req = self.get_json(format_args!("/v1/schedules"));
        let list: ScheduleListResponse = self.send(req).await?;
        Ok(list.schedules)
    }

    async fn schedule_delete(&self, name: &str) -> Result<(), Error> {
        let name = Self::name_path("name", name)?;
        let url = self.url(format_args!("/v1/schedules/{name}"));
        self.send_empty(self.http.delete(url).timeout(REQUEST_TIMEOUT))
            .await
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    async fn shutdown(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

fn ack_result(r: AckResult) -> Result<(), Error> {
    let detail = || r.error.clone().unwrap_or_default();
    match r.status {
        200..=299 => Ok(()),
        404 => Err(Error::NotFound(format!("job {}", r.id))),
        409 => Err(Error::LeaseLost),
        503 => Err(Error::Unavailable(detail())),
        status => Err(Error::Server {
            status,
            detail: detail(),
        }),
    }
}

fn transport(e: reqwest::Error) -> Error {
    Error::Transport(Box::new(e))
}

/// An `application/problem+json` answer (or anything else a proxy may have sent).
fn problem(status: StatusCode, body: &[u8]) -> Error {
    #[derive(Deserialize, Default)]
    struct Problem {
        #[serde(default, rename = "type")]
        kind: String,
        #[serde(default)]
        detail: String,
        #[serde(default)]
        field: Option<String>,
    }
    let p: Problem = serde_json::from_slice(body).unwrap_or_else(|_| Problem {
        detail: String::from_utf8_lossy(body).trim().to_owned(),
        ..Problem::default()
    });
    match status.as_u16() {
        401 => Error::Unauthorized,
        404 => Error::NotFound(
            p.detail
                .strip_suffix(" not found")
                .unwrap_or(&p.detail)
                .to_owned(),
        ),
        409 if p.kind.ends_with(":lease-lost") => Error::LeaseLost,
        409 => Error::Conflict(p.detail),
        400 | 413 | 422 => {
            let field = p.field.unwrap_or_else(|| "body".to_owned());
            let message = p
                .detail
                .strip_prefix(&format!("{field}: "))
                .map(str::to_owned)
                .unwrap_or(p.detail);
            Error::Invalid { field, message }
        }
        503 => Error::Unavailable(p.detail),
        status => Error::Server {
            status,
            detail: p.detail,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use buzzer_types::RawValue;

    #[test]
    fn problems_map_to_errors_a_caller_can_match() {
        let lost = br#"{"type":"urn:buzzer:problem:lease-lost","status":409,"detail":"x"}"#;
        assert!(matches!(
            problem(StatusCode::CONFLICT, lost),
            Error::LeaseLost
        ));
        let conflict = br#"{"type":"urn:buzzer:problem:conflict","detail":"job is dead"}"#;
        assert!(
            matches!(problem(StatusCode::CONFLICT, conflict), Error::Conflict(m) if m == "job is dead")
        );
        let invalid = br#"{"type":"urn:buzzer:problem:invalid-field","detail":"priority: must be between -100 and 100","field":"priority"}"#;
        match problem(StatusCode::UNPROCESSABLE_ENTITY, invalid) {
            Error::Invalid { field, message } => {
                assert_eq!(field, "priority");
                assert_eq!(message, "must be between -100 and 100");
            }
            other => panic!("{other:?}"),
        }
        let missing = br#"{"detail":"job 0000000000001 not found"}"#;
        assert!(
            matches!(problem(StatusCode::NOT_FOUND, missing), Error::NotFound(w) if w == "job 0000000000001")
        );
        assert!(matches!(
            problem(StatusCode::UNAUTHORIZED, b""),
            Error::Unauthorized
        ));
        assert!(matches!(
            problem(StatusCode::BAD_GATEWAY, b"upstream down"),
            Error::Server { status: 502, detail } if detail == "upstream down"
        ));
    }

    /// A stand-in server for `POST /v1/acks` that refuses the first request with a 503 and
    /// answers the next with 200, 200, 409, recording what it got.
    #[tokio::test]
    async fn results_go_in_one_acks_request_sent_again_after_a_503() {
        use std::sync::{Arc, Mutex};

        use axum::{Json, http::StatusCode, routing::post};
        use serde_json::{Value, json};

        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = got.clone();
        let app = axum::Router::new().route(
            "/v1/acks",
            post(move |Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    let mut seen = seen.lock().unwrap();
                    seen.push(body);
                    if seen.len() == 1 {
                        let busy =
                            json!({"type": "urn:buzzer:problem:unavailable", "detail": "busy"});
                        return (StatusCode::SERVICE_UNAVAILABLE, Json(busy));
                    }
                    let results = json!({"results": [
                        {"id": "0000000000001", "status": 200, "state": "completed"},
                        {"id": "0000000000002", "status": 200, "state": "retryable"},
                        {"id": "0000000000003", "status": 409, "error": "lease lost"},
                    ]});
                    (StatusCode::OK, Json(results))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });

        let remote = Remote::new(&url, None).unwrap();
        let finish = |id, outcome| Finish {
            id: JobId(id),
            lease_token: format!("t{id}"),
            outcome,
        };
        let results = remote
            .finish_many(vec![
                finish(
                    1,
                    Outcome::Completed {
                        result: Some(RawValue::from_string("42".into()).unwrap()),
                    },
                ),
                finish(
                    2,
                    Outcome::Retry(RetryRequest {
                        error: ErrorInput::new("later"),
                        retry_in_ms: Some(1500),
                    }),
                ),
                finish(
                    3,
                    Outcome::Dead {
                        error: ErrorInput::new("bad"),
                    },
                ),
            ])
            .await
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_ok());
        assert!(matches!(results[2], Err(Error::LeaseLost)));
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 2, "one refused request, then the same one again");
        assert_eq!(got[0], got[1]);
        assert_eq!(
            got[1],
            json!({"acks": [
                {"id": "0000000000001", "lease_token": "t1", "result": 42},
                {"id": "0000000000002", "lease_token": "t2", "error": {"message": "later"}, "retry_in_ms": 1500},
                {"id": "0000000000003", "lease_token": "t3", "error": {"message": "bad"}, "retry": false},
            ]})
        );
    }

    #[test]
    fn urls_are_checked_and_keys_never_printed() {
        assert!(Remote::new("localhost:2899", None).is_err());
        assert!(Remote::new("ftp://x", None).is_err());
        let r = Remote::new("http://127.0.0.1:2899/", Some("s3cret")).unwrap();
        assert_eq!(r.base, "http://127.0.0.1:2899");
        assert!(!format!("{r:?}").contains("s3cret"));
    }
}
