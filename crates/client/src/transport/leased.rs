//! A fetched job as the worker runs it.

use buzzer_types::{Job, JobId};
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};

/// What a worker needs of a job it leased: what to run it with, and what acknowledges it.
///
/// Over HTTP the worker's fetch asks for brief jobs (`"brief": true`), which carry these fields
/// and no others. A whole job (the default answer, as in the first test below) parses too:
/// the rest (five timestamps, the retry options, the error history, tags…) is
/// skipped unread. Parsing whole jobs, with every timestamp, and moving them about (a `Job` is
/// large) took about a third of the worker process's time in W1 over HTTP.
#[derive(Debug, Deserialize)]
pub(crate) struct Leased {
    pub id: JobId,
    pub queue: String,
    pub attempt: i32,
    pub payload: Box<RawValue>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub traceparent: Option<String>,
    #[serde(default)]
    pub lease_token: Option<String>,
}

impl From<Job> for Leased {
    fn from(job: Job) -> Leased {
        Leased {
            id: job.id,
            queue: job.queue,
            attempt: job.attempt,
            payload: job.payload,
            timeout_ms: job.timeout_ms,
            metadata: job.metadata,
            traceparent: job.traceparent,
            lease_token: job.lease_token,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetch answer's job, as `buzzer serve` writes it: the worker's fields come out
    /// exactly, the payload byte for byte, and everything else is skipped, whatever it holds.
    #[test]
    fn a_served_job_reads_as_a_lease() {
        let served = r#"{"id":"0000000000042","queue":"mail","state":"running",
            "payload":{"to" : "a@b.c", "n":[1, 2]},"priority":5,"attempt":2,"max_attempts":20,
            "backoff":{"initial_ms":1000,"max_ms":3600000,"factor":2.0},"timeout_ms":1500,
            "created_at":"2026-12-06T21:00:00Z","scheduled_at":"2026-12-06T21:00:00.5Z",
            "started_at":"2026-12-06T21:00:01Z","finished_at":null,"result":null,
            "errors":[{"attempt":1,"message":"SMTP timeout","at":"2026-12-06T21:00:00.9Z"}],
            "idempotency_key":"k","ordering_key":null,"tags":["t"],
            "metadata":{"tenant":"acme"},"progress":{"done":3},"cancel_requested":false,
            "worker_id":"w1","lease_expires_at":"2026-12-06T21:00:31Z",
            "traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "lease_token":"5f0e-42","a_field_from_a_newer_server":{"x":1}}"#;
        let leased: Leased = serde_json::from_str(served).unwrap();
        assert_eq!(leased.id, "0000000000042".parse::<JobId>().unwrap());
        assert_eq!(leased.queue, "mail");
        assert_eq!(leased.attempt, 2);
        assert_eq!(leased.payload.get(), r#"{"to" : "a@b.c", "n":[1, 2]}"#);
        assert_eq!(leased.timeout_ms, Some(1500));
        assert_eq!(leased.metadata["tenant"], "acme");
        assert_eq!(
            leased.traceparent.as_deref(),
            Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        );
        assert_eq!(leased.lease_token.as_deref(), Some("5f0e-42"));
    }

    /// The optional fields may be missing altogether.
    #[test]
    fn a_minimal_job_reads_as_a_lease() {
        let leased: Leased = serde_json::from_str(
            r#"{"id":"0000000000001","queue":"q","attempt":1,"payload":null}"#,
        )
        .unwrap();
        assert_eq!(leased.payload.get(), "null");
        assert!(leased.lease_token.is_none() && leased.timeout_ms.is_none());
        assert!(leased.metadata.is_empty() && leased.traceparent.is_none());
    }
}
