//! Cron schedules: a job enqueued on every tick of a cron expression, in a time zone.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};

use crate::{BackoffSpec, EnqueueRequest, Invalid, validate_name};

/// One schedule, as a store keeps it.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// 5 fields (minute first) or 6 (seconds first); see `docs/api.md`.
    pub cron: String,
    /// An IANA time zone name; ticks are computed in it, so `0 9 * * *` stays at 9:00 local
    /// time across daylight-saving changes.
    pub timezone: String,
    pub queue: String,
    pub payload: Box<RawValue>,
    pub options: ScheduleJobOptions,
    /// The latest tick a job was enqueued for.
    pub last_tick: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// The enqueue options every job of a schedule gets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScheduleJobOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl ScheduleJobOptions {
    /// The enqueue request of one tick's job.
    pub fn to_enqueue(&self, payload: Box<RawValue>) -> EnqueueRequest {
        EnqueueRequest {
            priority: self.priority,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout_ms: self.timeout_ms,
            tags: self.tags.clone(),
            metadata: self.metadata.clone(),
            ..EnqueueRequest::new(payload)
        }
    }
}

/// `PUT /v1/schedules/{name}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub cron: String,
    /// IANA name; `UTC` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub queue: String,
    pub payload: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl ScheduleRequest {
    /// A request for `cron` in UTC, with every job option at its default.
    pub fn new(cron: impl Into<String>, queue: impl Into<String>, payload: Box<RawValue>) -> Self {
        ScheduleRequest {
            cron: cron.into(),
            timezone: None,
            queue: queue.into(),
            payload,
            priority: None,
            max_attempts: None,
            backoff: None,
            timeout_ms: None,
            tags: None,
            metadata: None,
        }
    }

    pub fn options(&self) -> ScheduleJobOptions {
        ScheduleJobOptions {
            priority: self.priority,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout_ms: self.timeout_ms,
            tags: self.tags.clone(),
            metadata: self.metadata.clone(),
        }
    }

    /// The rules that need no cron parser or zone database: the queue name and the job
    /// options (the engine checks `cron` and `timezone`).
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_name(&self.queue).map_err(|m| Invalid::new("queue", m))?;
        self.options().to_enqueue(self.payload.clone()).validate()
    }
}

/// A schedule as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleInfo {
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub queue: String,
    pub payload: Box<RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<BackoffSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// The latest tick a job was enqueued for.
    #[serde(default)]
    pub last_tick_at: Option<Timestamp>,
    /// The next five ticks.
    #[serde(default)]
    pub next_fire_times: Vec<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl ScheduleInfo {
    pub fn of(s: &Schedule, next_fire_times: Vec<Timestamp>) -> ScheduleInfo {
        let o = &s.options;
        ScheduleInfo {
            name: s.name.clone(),
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            queue: s.queue.clone(),
            payload: s.payload.clone(),
            priority: o.priority,
            max_attempts: o.max_attempts,
            backoff: o.backoff,
            timeout_ms: o.timeout_ms,
            tags: o.tags.clone().unwrap_or_default(),
            metadata: o.metadata.clone().unwrap_or_default(),
            last_tick_at: s.last_tick,
            next_fire_times,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleListResponse {
    pub schedules: Vec<ScheduleInfo>,
}
