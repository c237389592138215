//! The engine's metrics: job counters per queue, wait and run time histograms, and store call
//! durations. The metered store wrapper (`metered.rs`) is their only writer, so the engine and
//! the stores never instrument themselves; the server encodes them for `GET /metrics` and the
//! dashboard samples the counters for its charts.
//!
//! The metrics belong to one [`Engine`](crate::Engine), not to a process-wide recorder, so two
//! engines in one process (as in tests) never mix their numbers. With a store shared by several
//! nodes each node counts what went through it; sum over nodes in Prometheus.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::{Registry, Unit},
};

/// The label of every per-queue metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    pub queue: String,
}

/// `op` is the store method (`job_fetch`); `outcome` is `ok` or the error kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreCallLabels {
    pub op: &'static str,
    pub outcome: &'static str,
}

pub(crate) type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Job waits and runs: from a few milliseconds to an hour.
const JOB_SECONDS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Store calls: from a tenth of a millisecond (a read from the page cache) to seconds (a
/// stalled disk).
const STORE_SECONDS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

fn job_histogram() -> Histogram {
    Histogram::new(JOB_SECONDS)
}

fn store_histogram() -> Histogram {
    Histogram::new(STORE_SECONDS)
}

/// Counts of one queue since this engine started, as the dashboard samples them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTotals {
    pub enqueued: u64,
    pub completed: u64,
    /// Attempts that ended with an error (whatever came next: a retry, the DLQ, a cancel).
    pub failed: u64,
    pub retried: u64,
    pub dead: u64,
    pub cancelled: u64,
}

/// The job time histograms' running sums of one queue, as the dashboard samples them: the
/// difference between two samples gives the mean wait and run time of the jobs in between.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JobTimes {
    /// Seconds from due to leased, summed over `waits` leases.
    pub wait_seconds: f64,
    pub waits: u64,
    /// Seconds from an attempt's start to its end, summed over `runs` attempts.
    pub run_seconds: f64,
    pub runs: u64,
}

/// A per-queue histogram of job times, with its running sum and count kept beside it for the
/// dashboard: prometheus-client's histogram does not hand its own out. Only the histogram is
/// registered, so `/metrics` shows each figure once. Sum and count share one lock, so a
/// reader never sees a count without its seconds.
#[derive(Debug, Clone)]
pub(crate) struct TimeFamily {
    histogram: HistogramFamily<QueueLabel>,
    totals: Arc<Mutex<HashMap<String, (f64, u64)>>>,
}

impl Default for TimeFamily {
    fn default() -> Self {
        TimeFamily {
            histogram: HistogramFamily::<QueueLabel>::new_with_constructor(job_histogram),
            totals: Arc::default(),
        }
    }
}

impl TimeFamily {
    /// Records `seconds`, the times of one queue's jobs.
    pub(crate) fn observe(&self, queue: &str, seconds: impl Iterator<Item = f64>) {
        let label = QueueLabel {
            queue: queue.to_owned(),
        };
        let histogram = self.histogram.get_or_create(&label);
        let (mut sum, mut n) = (0.0, 0);
        for v in seconds {
            histogram.observe(v);
            sum += v;
            n += 1;
        }
        let mut totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        let total = totals.entry(label.queue).or_default();
        total.0 += sum;
        total.1 += n;
    }

    /// Seconds and count observed for `queue` so far.
    fn totals(&self, queue: &str) -> (f64, u64) {
        let totals = self.totals.lock().unwrap_or_else(PoisonError::into_inner);
        totals.get(queue).copied().unwrap_or_default()
    }
}

/// Every metric the engine keeps, and the registry that encodes them (names prefixed
/// `buzzer_`). Cheap to read from many threads: counters are atomics behind a read lock.
pub struct EngineMetrics {
    registry: Registry,
    pub(crate) enqueued: Family<QueueLabel, Counter>,
    pub(crate) completed: Family<QueueLabel, Counter>,
    pub(crate) failed: Family<QueueLabel, Counter>,
    pub(crate) retried: Family<QueueLabel, Counter>,
    pub(crate) dead: Family<QueueLabel, Counter>,
    pub(crate) cancelled: Family<QueueLabel, Counter>,
    pub(crate) requeued: Family<QueueLabel, Counter>,
    pub(crate) wait: TimeFamily,
    pub(crate) run: TimeFamily,
    pub(crate) store_calls: HistogramFamily<StoreCallLabels>,
}

impl std::fmt::Debug for EngineMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineMetrics").finish_non_exhaustive()
    }
}

impl Default for EngineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("buzzer");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let family = Family::<QueueLabel, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let enqueued = counter(
            &mut registry,
            "jobs_enqueued",
            "Jobs enqueued (idempotent repeats not counted)",
        );
        let completed = counter(
            &mut registry,
            "jobs_completed",
            "Jobs completed by a worker",
        );
        let failed = counter(
            &mut registry,
            "jobs_failed",
            "Attempts that ended with an error (reported by a worker, or an expired lease)",
        );
        let retried = counter(
            &mut registry,
            "jobs_retried",
            "Failed attempts scheduled for another try (the job went to retryable)",
        );
        let dead = counter(
            &mut registry,
            "jobs_dead",
            "Jobs that went to the dead-letter queue",
        );
        let cancelled = counter(&mut registry, "jobs_cancelled", "Jobs that were cancelled");
        let requeued = counter(
            &mut registry,
            "jobs_requeued",
            "Dead or cancelled jobs an operator sent back to available",
        );
        let wait = TimeFamily::default();
        registry.register_with_unit(
            "job_wait",
            "Time from when a job was due (available) to when a worker leased it",
            Unit::Seconds,
            wait.histogram.clone(),
        );
        let run = TimeFamily::default();
        registry.register_with_unit(
            "job_run",
            "Time from an attempt's start to its end (completed, failed or cancelled)",
            Unit::Seconds,
            run.histogram.clone(),
        );
        let store_calls = HistogramFamily::<StoreCallLabels>::new_with_constructor(store_histogram);
        registry.register_with_unit(
            "store_call_duration",
            "Duration of each call into the store, by method and outcome",
            Unit::Seconds,
            store_calls.clone(),
        );
        EngineMetrics {
            registry,
            enqueued,
            completed,
            failed,
            retried,
            dead,
            cancelled,
            requeued,
            wait,
            run,
            store_calls,
        }
    }

    /// The registry to encode, e.g. with `prometheus_client::encoding::text::encode_registry`.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The counters of one queue (zeros for a queue this engine has not seen).
    pub fn queue_totals(&self, queue: &str) -> JobTotals {
        let label = QueueLabel {
            queue: queue.to_owned(),
        };
        let get = |family: &Family<QueueLabel, Counter>| family.get(&label).map_or(0, |c| c.get());
        JobTotals {
            enqueued: get(&self.enqueued),
            completed: get(&self.completed),
            failed: get(&self.failed),
            retried: get(&self.retried),
            dead: get(&self.dead),
            cancelled: get(&self.cancelled),
        }
    }

    /// The wait and run time sums of one queue (zeros for a queue this engine has not seen).
    pub fn queue_times(&self, queue: &str) -> JobTimes {
        let (wait_seconds, waits) = self.wait.totals(queue);
        let (run_seconds, runs) = self.run.totals(queue);
        JobTimes {
            wait_seconds,
            waits,
            run_seconds,
            runs,
        }
    }

    pub(crate) fn inc(family: &Family<QueueLabel, Counter>, queue: &str, by: u64) {
        if by > 0 {
            let label = QueueLabel {
                queue: queue.to_owned(),
            };
            family.get_or_create(&label).inc_by(by);
        }
    }

    pub(crate) fn observe_store_call(
        &self,
        op: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        self.store_calls
            .get_or_create(&StoreCallLabels { op, outcome })
            .observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_times_sum_each_queues_observed_seconds() {
        let metrics = EngineMetrics::new();
        metrics.wait.observe("a", [0.1, 0.3].into_iter());
        metrics.wait.observe("a", [0.2].into_iter());
        metrics.wait.observe("b", [1.0].into_iter());
        metrics.run.observe("b", [0.5, 0.25].into_iter());

        let a = metrics.queue_times("a");
        assert!((a.wait_seconds - 0.6).abs() < 1e-9, "{a:?}");
        assert_eq!((a.waits, a.runs, a.run_seconds), (3, 0, 0.0));
        let b = metrics.queue_times("b");
        assert_eq!((b.wait_seconds, b.waits), (1.0, 1));
        assert_eq!((b.run_seconds, b.runs), (0.75, 2));
        assert_eq!(metrics.queue_times("unseen"), JobTimes::default());
    }
}
