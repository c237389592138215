//! The retry policy: how a worker's outcome becomes one store transition.

use buzzer_store::Transition;
use buzzer_types::{ErrorInput, Job, RawValue};
use rand::Rng;

/// What a worker (or the rescuer) says happened to one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    Completed {
        result: Option<Box<RawValue>>,
    },
    /// Failed; retry after the backoff, or after `retry_in_ms` when the worker asks for it.
    Retry(RetryRequest),
    /// Failed and must not be retried.
    Dead {
        error: ErrorInput,
    },
    /// The worker gave up because cancellation was requested.
    Cancelled {
        error: Option<ErrorInput>,
    },
    /// The worker stopped before finishing (graceful shutdown): hand the job back at once,
    /// without counting the attempt.
    Released,
}

#[derive(Debug, Clone)]
pub struct RetryRequest {
    pub error: ErrorInput,
    pub retry_in_ms: Option<u64>,
}

impl Outcome {
    /// The transition, when it does not depend on the job; a retry needs the job's attempts
    /// and backoff, so it comes back as `Err` to be resolved with [`retry_transition`].
    pub fn settle(self) -> Result<Transition, RetryRequest> {
        match self {
            Outcome::Completed { result } => Ok(Transition::Complete { result }),
            Outcome::Dead { error } => Ok(Transition::Dead { error }),
            Outcome::Cancelled { error } => Ok(Transition::Cancel { error }),
            Outcome::Released => Ok(Transition::Release),
            Outcome::Retry(r) => Err(r),
        }
    }
}

/// Full jitter: `rand(0, min(max, initial · factor^(attempt-1)))`.
pub fn backoff_delay_ms(job: &Job) -> u64 {
    let ceiling = job.backoff.ceiling_ms(job.attempt);
    rand::rng().random_range(0..=ceiling)
}

/// Where a failed attempt that may be retried takes the job.
pub fn retry_transition(job: &Job, retry: RetryRequest) -> Transition {
    let RetryRequest { error, retry_in_ms } = retry;
    if job.cancel_requested {
        Transition::Cancel { error: Some(error) }
    } else if job.attempt >= job.max_attempts {
        Transition::Dead { error }
    } else {
        Transition::Retry {
            delay_ms: retry_in_ms.unwrap_or_else(|| backoff_delay_ms(job)),
            error,
        }
    }
}

/// The one place that decides where a finished attempt takes a job.
pub fn resolve(job: &Job, outcome: Outcome) -> Transition {
    outcome
        .settle()
        .unwrap_or_else(|retry| retry_transition(job, retry))
}
