//! Buzzer's shared data types: what a job looks like on the wire and in every store.
//!
//! Nothing here does IO; the server, the engine, the stores and the client library all speak
//! these types, so the JSON a client sees is defined in exactly one place.

mod id;
mod job;
mod name;
mod queue;
mod requests;
mod state;
mod time;
mod validate;

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
pub use state::{JobState, ParseStateError};
pub use time::{ms_to_timestamp, timestamp_to_ms};
pub use validate::{Invalid, Limits};

/// Re-exported so users of the types need not name serde_json's raw type themselves.
pub use serde_json::value::RawValue;
