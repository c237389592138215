use buzzer_types::{Backoff, ErrorInput, Job, JobId, JobState, RawValue};
use jiff::Timestamp;
use serde_json::{Map, Value};

/// One job to insert. The engine has already validated it and filled in defaults.
#[derive(Debug, Clone)]
pub struct JobInsert {
    pub queue: String,
    pub payload: Box<RawValue>,
    pub priority: i32,
    pub run_at: RunAt,
    pub max_attempts: i32,
    pub backoff: Backoff,
    pub timeout_ms: Option<u64>,
    pub idempotency_key: Option<String>,
    pub ordering_key: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    /// A validated W3C `traceparent`, kept as given.
    pub traceparent: Option<String>,
}

/// When an inserted job becomes due. `Delay` is added to the store's clock, so a skewed
/// caller clock cannot move it. A due time at or before now makes the job `available` at once;
/// a later one makes it `scheduled`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunAt {
    Now,
    Delay { ms: u64 },
    At(jiff::Timestamp),
}

#[derive(Debug, Clone)]
pub struct Inserted {
    pub job: Job,
    /// `false` when an existing job with the same idempotency key was returned instead.
    pub created: bool,
}

/// What [`Store::job_insert_and_fetch`](crate::Store::job_insert_and_fetch) did: the insert
/// as [`Store::job_insert_many`](crate::Store::job_insert_many) answers it (the job as
/// inserted, still `available` even if the fetch then leased it), and what the fetch leased.
#[derive(Debug, Clone)]
pub struct InsertedAndFetched {
    pub inserted: Inserted,
    pub fetched: Vec<Job>,
}

/// Which jobs a fetch leases, in this order of rules:
/// - only `available` jobs in the named queues that are not paused;
/// - of each `ordering_key` (per queue), only the oldest unfinished job, and only while no
///   other job of that key is unfinished ahead of it;
/// - higher `priority` first, then enqueue order (lower id).
#[derive(Debug, Clone)]
pub struct JobFetch {
    pub queues: Vec<String>,
    pub worker_id: String,
    pub max_jobs: u32,
    pub lease_ms: u64,
}

/// A guarded transition out of `running`.
#[derive(Debug, Clone)]
pub struct JobFinish {
    pub id: JobId,
    pub lease_token: String,
    pub transition: Transition,
    /// The rescuer's guard: only apply if the lease has expired by the store's clock, so a
    /// heartbeat that just extended it wins.
    pub require_lease_expired: bool,
}

/// Where a finished attempt left its job, without the rest of the job: what
/// [`Store::job_finish_many_brief`](crate::Store::job_finish_many_brief) answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: JobId,
    pub queue: String,
    pub state: JobState,
    pub ordering_key: Option<String>,
    /// When the attempt started and ended (`finished_at`, or for a retry the time its error
    /// was recorded), for the run-time histogram.
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

impl Finished {
    pub fn of(job: &Job) -> Finished {
        Finished {
            id: job.id,
            queue: job.queue.clone(),
            state: job.state,
            ordering_key: job.ordering_key.clone(),
            started_at: job.started_at,
            ended_at: job.finished_at.or_else(|| job.errors.last().map(|e| e.at)),
        }
    }
}

/// Where a finished attempt takes the job. The engine decides (retry policy, attempts left);
/// the store only applies it.
#[derive(Debug, Clone)]
pub enum Transition {
    Complete {
        result: Option<Box<RawValue>>,
    },
    /// To `retryable`, due `delay_ms` from now.
    Retry {
        delay_ms: u64,
        error: ErrorInput,
    },
    /// To `dead`: attempts exhausted or the error was marked non-retryable.
    Dead {
        error: ErrorInput,
    },
    /// To `cancelled`, e.g. the worker gave up after seeing `cancel_requested`.
    Cancel {
        error: Option<ErrorInput>,
    },
    /// Back to `available` at once, without counting the attempt (`attempt` goes back down by
    /// one, no error is recorded): the worker stopped before finishing, e.g. in a graceful
    /// shutdown, and the job should not sit out its lease. A release of a job whose
    /// cancellation was requested cancels it instead.
    Release,
}

impl Transition {
    pub fn target(&self) -> JobState {
        match self {
            Transition::Complete { .. } => JobState::Completed,
            Transition::Retry { .. } => JobState::Retryable,
            Transition::Dead { .. } => JobState::Dead,
            Transition::Cancel { .. } => JobState::Cancelled,
            Transition::Release => JobState::Available,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobHeartbeat {
    pub id: JobId,
    pub lease_token: String,
    pub lease_ms: u64,
    /// Replaces the job's progress when given.
    pub progress: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heartbeat {
    pub lease_expires_at: jiff::Timestamp,
    pub cancel_requested: bool,
}

#[derive(Debug, Clone)]
pub struct JobRetryDead {
    pub queue: String,
    pub tag: Option<String>,
    pub ids: Option<Vec<JobId>>,
    pub limit: u32,
}

#[derive(Debug, Clone, Default)]
pub struct JobList {
    pub queue: Option<String>,
    pub state: Option<JobState>,
    pub tag: Option<String>,
    pub before: Option<JobId>,
    pub limit: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    pub id: JobId,
    pub queue: String,
}

/// Retention: `completed` and `cancelled` jobs older (by `finished_at`) than
/// `finished_retention_ms`, `dead` jobs older than `dead_retention_ms`.
#[derive(Debug, Clone, Copy)]
pub struct JobPrune {
    pub finished_retention_ms: u64,
    pub dead_retention_ms: u64,
    pub limit: u32,
}

/// One attempt to become, or stay, the node that runs the background services.
#[derive(Debug, Clone)]
pub struct LeaderElect {
    /// This node's id, unique per process.
    pub node_id: String,
    /// How long the leadership holds without renewal; a dead leader is replaced after it.
    pub ttl_ms: u64,
}

/// A change committed by a process that shares this database, so waiters here wake for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A job changed state (inserted, fetched, finished, promoted, released, …).
    Job {
        id: JobId,
        queue: String,
        state: JobState,
    },
    /// Jobs of a queue may have become fetchable without a state change of their own (a
    /// resumed queue, an ordering key released).
    QueueReady { queue: String },
    /// The feed was interrupted and changes may have been missed: every waiter should look
    /// again.
    Resync,
}
