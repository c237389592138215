//! Buzzer's shared data types: what a job looks like on the wire and in every store.
//!
//! Nothing here does IO; the server, the engine, the stores and the client library all speak
//! these types, so the JSON a client sees is defined in exactly one place.

mod filter;
mod id;
mod job;
mod name;
mod queue;
mod requests;
mod schedule;
mod state;
mod subscription;
mod time;
mod trace;
mod validate;
mod waiting;
pub mod webhook_signature;
pub mod webhook_url;

pub use filter::{FILTER_MAX_ENTRIES, filter_matches, validate_filter};
pub use id::{JobId, ParseJobIdError};
pub use job::{Backoff, ErrorEntry, Job};
pub use name::{NAME_MAX_LEN, validate_name};
pub use queue::{QueueInfo, StateCounts};
pub use requests::{
    Ack, AckResult, AcksRequest, AcksResponse, BackoffSpec, BatchEnqueueRequest, CompleteRequest,
    DeadRetryRequest, EnqueueRequest, ErrorInput, FailRequest, FetchRequest, FetchResponse,
    HeartbeatRequest, HeartbeatResponse, JobListResponse, QueueListResponse, ReleaseRequest,
    RetriedResponse,
};
pub use schedule::{
    Schedule, ScheduleInfo, ScheduleJobOptions, ScheduleListResponse, ScheduleRequest,
};
pub use state::{JobState, ParseStateError};
pub use subscription::{
    DeliveryHealth, PreviousSecret, PublishRequest, PublishResponse, Subscription,
    SubscriptionInfo, SubscriptionListResponse, SubscriptionRequest, SubscriptionTarget, TopicInfo,
    TopicListResponse, WEBHOOK_QUEUE, WebhookInfo, WebhookRequest, WebhookTarget, secret_prefix,
};
pub use time::{ms_to_timestamp, timestamp_to_ms};
pub use trace::{BadTraceParent, TraceParent};
pub use validate::{Invalid, Limits};
pub use waiting::{JobDetail, WaitingKind, WaitingReason};

/// Re-exported so users of the types need not name serde_json's raw type themselves.
pub use serde_json::value::RawValue;
