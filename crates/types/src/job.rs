use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};

use crate::{JobId, JobState};

/// A job as every API returns it.
///
/// `payload`, `result` and `progress` are kept as the raw JSON text the client sent, so they
/// round-trip byte for byte and the hot path never parses them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub queue: String,
    pub state: JobState,
    pub payload: Box<RawValue>,
    pub priority: i32,
    /// Attempts started so far; the first fetch makes it 1.
    pub attempt: i32,
    pub max_attempts: i32,
    pub backoff: Backoff,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    pub created_at: Timestamp,
    /// When the job is (or was) due to run: its `run_at`, or after a failure the end of its backoff.
    pub scheduled_at: Timestamp,
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub errors: Vec<ErrorEntry>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
    #[serde(default)]
    pub ordering_key: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub progress: Option<Box<RawValue>>,
    #[serde(default)]
    pub cancel_requested: bool,
    #[serde(default)]
    pub worker_id: Option<String>,
    #[serde(default)]
    pub lease_expires_at: Option<Timestamp>,
    /// The W3C trace context the producer gave: the worker continues this trace.
    #[serde(default)]
    pub traceparent: Option<String>,
    /// Only present on jobs handed out by a fetch: the fencing token for this attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_token: Option<String>,
}

/// The retry schedule of one job: `delay = rand(0, min(max_ms, initial_ms · factor^(attempt-1)))`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 1_000,
            max_ms: 3_600_000,
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The upper bound of the full-jitter delay after failed attempt number `attempt` (1-based).
    pub fn ceiling_ms(&self, attempt: i32) -> u64 {
        let exp = attempt.saturating_sub(1).clamp(0, 1_000);
        let raw = self.initial_ms as f64 * self.factor.powi(exp);
        if !raw.is_finite() || raw >= self.max_ms as f64 {
            self.max_ms
        } else {
            raw as u64
        }
    }
}

/// One failed attempt, as recorded in `errors[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEntry {
    pub attempt: i32,
    pub at: Timestamp,
    pub message: String,
    /// Any other fields the worker sent with the error (a type, a backtrace, …).
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_grows_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling_ms(1), 1_000);
        assert_eq!(b.ceiling_ms(2), 2_000);
        assert_eq!(b.ceiling_ms(5), 16_000);
        assert_eq!(b.ceiling_ms(40), 3_600_000);
        assert_eq!(b.ceiling_ms(i32::MAX), 3_600_000);
        assert_eq!(b.ceiling_ms(0), 1_000);
    }
}
