//! Buzzer for Rust: durable jobs with typed payloads, a worker runtime, and the hybrid call
//! that answers **now, or later**.
//!
//! - **One client, two places.** [`Buzzer::open`] runs the store and the engine's services
//!   in this process (SQLite; no server). `Buzzer::connect` talks to a `buzzer serve` over
//!   HTTP (feature `remote`). Both have the same API: moving code from one to the other
//!   changes one line.
//! - **Typed jobs.** A [`Job`] is a serde type with a queue and an `Output`.
//!   [`Buzzer::enqueue`] takes every option (priority, delay, attempts, backoff, timeout,
//!   idempotency and ordering keys, tags, metadata) and gives a [`JobHandle`] to
//!   [`wait`](JobHandle::wait) on, [`cancel`](JobHandle::cancel) or ask the
//!   [`status`](JobHandle::status) of.
//! - **Workers.** [`Worker`] runs `async fn(JobContext, J) -> Result<J::Output, JobError>`
//!   handlers with per-queue concurrency, batched fetches and acks, heartbeats, timeouts,
//!   cancellation, progress reports and graceful shutdown. A panic is a failed attempt.
//! - **Events and schedules.** [`Buzzer::publish`] fans an event out to every subscription
//!   of a topic (queues and webhooks) in one transaction; [`WorkerBuilder::subscribe`] makes a
//!   handler a topic's subscriber; [`Buzzer::schedule`] enqueues a typed job on a cron
//!   schedule, once per tick across every node.
//! - **Now or later.** `buzzer.call(job).within(duration).await?` is [`Answer::Now`] with the
//!   output when the job finishes in time, else [`Answer::Later`] with its handle. A
//!   per-queue circuit breaker answers `Later` at once while a queue keeps missing its
//!   deadlines, so a slow dependency cannot pile up waiting requests.
//!
//! # Quick start
//!
//! ```
//! use std::time::Duration;
//!
//! use buzzer::{Answer, Buzzer, Job, JobContext, JobError, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize {
//!     image: String,
//!     width: u32,
//! }
//!
//! impl Job for Resize {
//!     const QUEUE: &'static str = "thumbnails";
//!     type Output = String;
//! }
//!
//! async fn resize(_ctx: JobContext, job: Resize) -> Result<String, JobError> {
//!     Ok(format!("{}@{}w.png", job.image, job.width))
//! }
//!
//! # fn main() -> Result<(), buzzer::Error> {
//! # let dir = tempfile::tempdir().map_err(|e| buzzer::Error::Unavailable(e.to_string()))?;
//! # let path = dir.path().join("jobs.db");
//! # tokio::runtime::Runtime::new().map_err(|e| buzzer::Error::Unavailable(e.to_string()))?.block_on(async {
//! // An embedded Buzzer over one SQLite file (`path`, e.g. "jobs.db").
//! // Over HTTP instead: Buzzer::connect("http://127.0.0.1:2899").await?
//! let buzzer = Buzzer::open(&path).await?;
//! let worker = Worker::builder(&buzzer)
//!     .register::<Resize, _>(resize)
//!     .build()?
//!     .spawn();
//!
//! // Later: a durable job, retried until it succeeds.
//! let job = buzzer.enqueue(Resize { image: "cat.png".into(), width: 128 }).await?;
//! assert_eq!(job.wait().await?, "cat.png@128w.png");
//!
//! // Now or later: wait up to a second for the answer, else get a handle to follow.
//! let dog = Resize { image: "dog.png".into(), width: 64 };
//! match buzzer.call(dog).within(Duration::from_secs(1)).await? {
//!     Answer::Now(thumbnail) => println!("ready: {thumbnail}"),
//!     Answer::Later(job) => println!("follow job {}", job.id()),
//! }
//!
//! worker.shutdown().await;
//! buzzer.shutdown().await
//! # })
//! # }
//! ```
//!
//! # Features
//!
//! - `sqlite` (default): [`Buzzer::open`], the embedded SQLite store.
//! - `remote`: `Buzzer::connect`, the HTTP client (reqwest, rustls, keep-alive).
//! - `postgres`: `Buzzer::open_postgres`, this process as one node of a Buzzer on a shared
//!   PostgreSQL database.
//!
//! An engine over any other store works through [`Buzzer::embedded`].
//!
//! The examples in `crates/client/examples/` run as their first comment says: an embedded quick
//! start, a remote worker, and an axum handler that answers 200 now or 202 later.

mod breaker;
mod call;
mod client;
mod enqueue;
mod error;
mod handle;
mod job;
mod schedules;
mod topics;
mod trace;
mod transport;
pub mod webhooks;
mod worker;

pub use breaker::{BreakerConfig, BreakerState};
pub use call::{Answer, Call, Deadline, NoDeadline};
pub use client::Buzzer;
pub use enqueue::{Enqueue, EnqueueBatch};
pub use error::Error;
pub use handle::JobHandle;
pub use job::Job;
pub use schedules::ScheduleBuilder;
pub use topics::Publish;
pub use worker::{Handler, JobContext, JobError, Worker, WorkerBuilder, WorkerHandle};

pub use buzzer_engine::{Engine, EngineConfig};
#[cfg(feature = "postgres")]
pub use buzzer_store_postgres::PgOptions;
#[cfg(feature = "sqlite")]
pub use buzzer_store_sqlite::{SqliteOptions, Synchronous};
/// A job as Buzzer stores it: state, attempts, errors, progress and the JSON of its payload
/// and result. [`JobHandle::status`] returns it.
pub use buzzer_types::Job as JobRecord;
pub use buzzer_types::{
    DeliveryHealth, ErrorEntry, JobId, JobState, PublishResponse, ScheduleInfo, ScheduleRequest,
    SubscriptionInfo, SubscriptionRequest, TopicInfo, WebhookInfo,
};
pub use jiff::Timestamp;
