//! One HTTP attempt of one delivery: sign, POST, read the start of the answer.

use std::time::{Duration, Instant};

use buzzer_types::{
    Job, WebhookTarget,
    webhook_signature::signature_header,
    webhook_url::{literal_host_problem, parse_webhook_url},
};
use jiff::Timestamp;
use reqwest::{StatusCode, header};
use serde_json::{Map, Value, json};

use crate::{WebhookConfig, guard, retry_after};

/// What one attempt got: an HTTP answer, or why there was none.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub webhook_id: String,
    pub status: Option<StatusCode>,
    /// From the start of the request to the answer's headers (or to the failure).
    pub latency: Duration,
    /// The start of the answer's body, lossily decoded.
    pub body: Option<String>,
    pub retry_after: Option<Duration>,
    /// Why there is no answer (timeout, refused address, connection error).
    pub failure: Option<String>,
}

impl Attempt {
    /// What the job keeps of this attempt: in the result of a success, in the error entry of
    /// a failure.
    pub fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        details.insert("webhook_id".into(), json!(self.webhook_id));
        details.insert("status".into(), json!(self.status.map(|s| s.as_u16())));
        details.insert(
            "latency_ms".into(),
            json!(u64::try_from(self.latency.as_millis()).unwrap_or(u64::MAX)),
        );
        if let Some(body) = &self.body {
            details.insert("body".into(), json!(body));
        }
        details
    }
}

/// The `webhook-id` of a delivery: the job's id, so every retry (and a replay from the
/// dead-letter queue) carries the same one and receivers can drop duplicates.
pub(crate) fn webhook_id(job: &Job) -> String {
    format!("msg_{}", job.id)
}

pub(crate) async fn post(
    client: &reqwest::Client,
    config: &WebhookConfig,
    target: &WebhookTarget,
    job: &Job,
) -> Attempt {
    let mut attempt = Attempt {
        webhook_id: webhook_id(job),
        status: None,
        latency: Duration::ZERO,
        body: None,
        retry_after: None,
        failure: None,
    };
    let url = match parse_webhook_url(&target.url) {
        Ok(url) => url,
        Err(m) => {
            attempt.failure = Some(format!("the webhook URL {m}"));
            return attempt;
        }
    };
    // A literal address is never resolved, so the resolver's guard cannot see it.
    if !config.allow_private
        && let Some(problem) = literal_host_problem(&url)
    {
        attempt.failure = Some(format!("refused: {problem}"));
        return attempt;
    }
    let now = Timestamp::now();
    let body = job.payload.get().as_bytes();
    let signature = match signature_header(
        &target.signing_secrets(now),
        &attempt.webhook_id,
        now.as_second(),
        body,
    ) {
        Ok(s) => s,
        Err(e) => {
            attempt.failure = Some(format!("the subscription's secret is unusable: {e}"));
            return attempt;
        }
    };
    let request = client
        .post(url)
        .timeout(config.attempt_timeout)
        .header(header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &attempt.webhook_id)
        .header("webhook-timestamp", now.as_second().to_string())
        .header("webhook-signature", signature)
        .body(body.to_vec());
    let started = Instant::now();
    let sent = request.send().await;
    attempt.latency = started.elapsed();
    match sent {
        Ok(response) => {
            attempt.status = Some(response.status());
            attempt.retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after::parse(v, Timestamp::now()));
            attempt.body = Some(excerpt(response, config.body_excerpt_bytes).await);
        }
        Err(e) => attempt.failure = Some(describe(&e.without_url(), config.attempt_timeout)),
    }
    attempt
}

/// The first `limit` bytes of the body, or what arrived before the time ran out.
async fn excerpt(mut response: reqwest::Response, limit: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(limit);
    // A cut can split a character: drop the broken tail rather than show a replacement mark.
    match std::str::from_utf8(&bytes) {
        Ok(s) => s.to_owned(),
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// One line that says why there was no answer.
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if let Some(refused) = guard::refusal(error) {
        return refused.to_string();
    }
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    // reqwest's own message is generic ("error sending request"); the root cause says what.
    let mut cause: &dyn std::error::Error = error;
    let mut chain = vec![error.to_string()];
    while let Some(next) = cause.source() {
        let text = next.to_string();
        if !chain.iter().any(|seen| seen.contains(&text)) {
            chain.push(text);
        }
        cause = next;
    }
    chain.join(": ")
}
