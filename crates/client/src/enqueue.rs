use std::{
    future::{Future, IntoFuture},
    pin::Pin,
    time::Duration,
};

use buzzer_types::{BackoffSpec, EnqueueRequest, RawValue};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::{Buzzer, Error, Job, JobHandle, job::to_raw};

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The options of one enqueue, before the payload is serialized.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub queue: Option<String>,
    pub priority: Option<i32>,
    pub run_at: Option<Timestamp>,
    pub delay_ms: Option<u64>,
    pub max_attempts: Option<i32>,
    pub backoff: Option<BackoffSpec>,
    pub timeout_ms: Option<u64>,
    pub idempotency_key: Option<String>,
    pub ordering_key: Option<String>,
    pub tags: Option<Vec<String>>,
    pub metadata: Option<Map<String, Value>>,
    pub traceparent: Option<String>,
}

impl Options {
    /// The queue override (if any) and the request for `payload`.
    pub(crate) fn request(self, payload: Box<RawValue>) -> (Option<String>, EnqueueRequest) {
        let request = EnqueueRequest {
            priority: self.priority,
            run_at: self.run_at,
            delay_ms: self.delay_ms,
            max_attempts: self.max_attempts,
            backoff: self.backoff,
            timeout_ms: self.timeout_ms,
            idempotency_key: self.idempotency_key,
            ordering_key: self.ordering_key,
            tags: self.tags,
            metadata: self.metadata,
            // Inside a handler, the running job's trace goes on to the jobs it enqueues.
            traceparent: self.traceparent.or_else(crate::trace::current),
            ..EnqueueRequest::new(payload)
        };
        (self.queue, request)
    }
}

/// Whole milliseconds, rounded up so that a non-zero duration never becomes 0.
pub(crate) fn ceil_ms(d: Duration) -> u64 {
    let ms = d.as_millis() + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The options every enqueue shares, on each builder that has an `opts: Options` field.
/// Checked when the request is made: a bad value is an [`Error::Invalid`] naming the field.
macro_rules! enqueue_options {
    () => {
        /// Higher runs first: −100..=100, default 0; equal priorities run in enqueue order.
        pub fn priority(mut self, priority: i32) -> Self {
            self.opts.priority = Some(priority);
            self
        }

        /// Makes the job due `delay` from now, by the store's clock (so a skewed client clock
        /// does not matter). Replaces an earlier [`run_at`](Self::run_at).
        pub fn delay(mut self, delay: std::time::Duration) -> Self {
            self.opts.delay_ms = Some($crate::enqueue::ceil_ms(delay));
            self.opts.run_at = None;
            self
        }

        /// Makes the job due at `at`. Replaces an earlier [`delay`](Self::delay).
        pub fn run_at(mut self, at: jiff::Timestamp) -> Self {
            self.opts.run_at = Some(at);
            self.opts.delay_ms = None;
            self
        }

        /// Attempts before the job is dead: 1..=1000, default 20.
        pub fn max_attempts(mut self, attempts: u32) -> Self {
            self.opts.max_attempts = Some(i32::try_from(attempts).unwrap_or(i32::MAX));
            self
        }

        /// The retry backoff: after failed attempt `n` the job waits a random time up to
        /// `min(max, initial · factor^(n-1))` (full jitter). Default 1 s, 1 h, ×2.
        pub fn backoff(
            mut self,
            initial: std::time::Duration,
            max: std::time::Duration,
            factor: f64,
        ) -> Self {
            self.opts.backoff = Some(buzzer_types::BackoffSpec {
                initial_ms: Some($crate::enqueue::ceil_ms(initial)),
                max_ms: Some($crate::enqueue::ceil_ms(max)),
                factor: Some(factor),
            });
            self
        }

        /// How long a worker lets the handler run before it stops it and fails the attempt
        /// with "timed out after N ms" (a worker's own default applies otherwise).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.opts.timeout_ms = Some($crate::enqueue::ceil_ms(timeout));
            self
        }

        /// Jobs of the queue with the same ordering key run one at a time, in enqueue order.
        pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
            self.opts.ordering_key = Some(key.into());
            self
        }

        /// Adds a tag (at most 32, each 1–128 bytes), to filter lists and DLQ replays by.
        pub fn tag(mut self, tag: impl Into<String>) -> Self {
            self.opts.tags.get_or_insert_with(Vec::new).push(tag.into());
            self
        }

        /// Adds several tags.
        pub fn tags<T: Into<String>>(mut self, tags: impl IntoIterator<Item = T>) -> Self {
            self.opts
                .tags
                .get_or_insert_with(Vec::new)
                .extend(tags.into_iter().map(Into::into));
            self
        }

        /// Sets a metadata entry: free-form JSON that travels with the job and is shown with
        /// it (the handler reads it with [`JobContext::metadata`](crate::JobContext::metadata)).
        pub fn metadata(
            mut self,
            key: impl Into<String>,
            value: impl Into<serde_json::Value>,
        ) -> Self {
            self.opts
                .metadata
                .get_or_insert_with(serde_json::Map::new)
                .insert(key.into(), value.into());
            self
        }

        /// The W3C trace context (`traceparent`) the job continues: its worker's span joins
        /// this trace. Inside a handler the running job's trace is used when none is given.
        pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
            self.opts.traceparent = Some(traceparent.into());
            self
        }

        /// Sends the job to `queue` instead of its type's [`Job::QUEUE`](crate::Job::QUEUE);
        /// a worker must then register the type for that queue
        /// ([`WorkerBuilder::register_in`](crate::WorkerBuilder::register_in)).
        pub fn queue(mut self, queue: impl Into<String>) -> Self {
            self.opts.queue = Some(queue.into());
            self
        }
    };
}
pub(crate) use enqueue_options;

/// An enqueue being built: [`Buzzer::enqueue`] starts it, the methods set options, and
/// `.await` sends it, answering a [`JobHandle`].
///
/// ```no_run
/// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
/// use std::time::Duration;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Charge { order: u64, cents: u64 }
/// impl buzzer::Job for Charge {
///     const QUEUE: &'static str = "payments";
///     type Output = String;
/// }
///
/// let handle = buzzer
///     .enqueue(Charge { order: 42, cents: 1999 })
///     .priority(50)
///     .max_attempts(5)
///     .backoff(Duration::from_millis(200), Duration::from_secs(60), 3.0)
///     .timeout(Duration::from_secs(30))
///     .idempotency_key("charge-42")
///     .ordering_key("customer-7")
///     .tag("checkout")
///     .metadata("trace_id", "4bf92f3577b34da6")
///     .await?;
/// let receipt: String = handle.wait().await?;
/// # Ok(()) }
/// ```
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct Enqueue<J: Job> {
    buzzer: Buzzer,
    job: J,
    opts: Options,
}

impl<J: Job> std::fmt::Debug for Enqueue<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("job", &std::any::type_name::<J>())
            .field("opts", &self.opts)
            .finish()
    }
}

impl<J: Job> Enqueue<J> {
    pub(crate) fn new(buzzer: Buzzer, job: J) -> Self {
        Enqueue {
            buzzer,
            job,
            opts: Options::default(),
        }
    }

    enqueue_options!();

    /// While a job with this key exists in the queue (until it is pruned), enqueueing again
    /// with the key returns that job instead of making a new one.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.opts.idempotency_key = Some(key.into());
        self
    }
}

impl<J: Job> IntoFuture for Enqueue<J> {
    type Output = Result<JobHandle<J>, Error>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Enqueue { buzzer, job, opts } = self;
            let (queue, request) = opts.request(to_raw(&job)?);
            let queue = queue.as_deref().unwrap_or(J::QUEUE);
            let job = buzzer.transport().enqueue(queue, request).await?;
            Ok(JobHandle::new(buzzer, job.id))
        })
    }
}

/// A batch enqueue being built by [`Buzzer::enqueue_batch`]: every job goes to one queue in one
/// transaction, all or none, with the options set here. `.await` answers one handle per job,
/// in order.
#[must_use = "an enqueue does nothing until it is awaited"]
pub struct EnqueueBatch<J: Job> {
    buzzer: Buzzer,
    jobs: Vec<J>,
    opts: Options,
}

impl<J: Job> std::fmt::Debug for EnqueueBatch<J> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnqueueBatch")
            .field("job", &std::any::type_name::<J>())
            .field("len", &self.jobs.len())
            .field("opts", &self.opts)
            .finish()
    }
}

impl<J: Job> EnqueueBatch<J> {
    pub(crate) fn new(buzzer: Buzzer, jobs: Vec<J>) -> Self {
        EnqueueBatch {
            buzzer,
            jobs,
            opts: Options::default(),
        }
    }

    enqueue_options!();
}

impl<J: Job> IntoFuture for EnqueueBatch<J> {
    type Output = Result<Vec<JobHandle<J>>, Error>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let EnqueueBatch { buzzer, jobs, opts } = self;
            if jobs.is_empty() {
                return Ok(Vec::new());
            }
            let queue = opts.queue.clone();
            let queue = queue.as_deref().unwrap_or(J::QUEUE);
            let requests = jobs
                .iter()
                .map(|job| Ok(opts.clone().request(to_raw(job)?).1))
                .collect::<Result<Vec<_>, Error>>()?;
            let stored = buzzer.transport().enqueue_many(queue, requests).await?;
            Ok(stored
                .into_iter()
                .map(|job| JobHandle::new(buzzer.clone(), job.id))
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_milliseconds() {
        assert_eq!(ceil_ms(Duration::ZERO), 0);
        assert_eq!(ceil_ms(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(ceil_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ceil_ms(Duration::MAX), u64::MAX);
    }
}
