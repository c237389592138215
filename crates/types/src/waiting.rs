//! "Why isn't it running?": the one reason a job that has not finished is not running now, as
//! `GET /v1/jobs/{id}` and the dashboard's job page show it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{Job, JobId};

/// What a job is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitingKind {
    /// Due later: a `run_at`/delay, or the backoff after a failed attempt (`until`).
    Scheduled,
    /// Behind an unfinished job of the same ordering key (`ahead_job_id`).
    OrderingKey,
    /// Its queue is paused.
    QueuePaused,
    /// Running: a worker holds its lease (`worker_id`, `lease_expires_at`).
    Leased,
    /// Available and first in line for the next worker that fetches from its queue.
    NoWorker,
}

/// The reason, a sentence for people, and the details it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaitingReason {
    pub kind: WaitingKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ahead_job_id: Option<JobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<Timestamp>,
}

impl WaitingReason {
    pub fn new(kind: WaitingKind, message: impl Into<String>) -> Self {
        WaitingReason {
            kind,
            message: message.into(),
            until: None,
            ahead_job_id: None,
            worker_id: None,
            lease_expires_at: None,
        }
    }
}

/// `GET /v1/jobs/{id}`: the job and, unless it has finished, why it is not running.
#[derive(Debug, Clone, Serialize)]
pub struct JobDetail {
    #[serde(flatten)]
    pub job: Job,
    pub waiting_reason: Option<WaitingReason>,
}
