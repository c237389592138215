//! One loop per queue: wait for a free slot, then lease as many jobs as there are free slots
//! in one long-polling fetch, and start each in its own task. Under a backlog the next fetch
//! goes out as soon as enough slots are free, while earlier ones may still be in flight.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use buzzer_engine::Outcome;
use buzzer_types::{FetchRequest, Job, Limits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{QueueRun, acker, execute::execute};
use crate::{enqueue::ceil_ms, transport::Finish};

/// The pause after a failed fetch, doubling up to the maximum while failures last.
const ERROR_PAUSE: Duration = Duration::from_millis(100);
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

pub(super) async fn fetch_loop(run: Arc<QueueRun>) {
    let shared = &run.shared;
    let pace = Arc::new(Pace::default());
    let mut pause = ERROR_PAUSE;
    loop {
        let mut slots = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            permit = run.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let backlog = pace.backlog();
        if backlog {
            gather_slots(&run.slots, run.concurrency, pace.round_trip()).await;
        }
        // Only this loop takes slots, so the free ones are there to take; the fetch holds
        // them until its jobs start, so whatever else is in flight, no more jobs run at once
        // than there are slots.
        if let Ok(more) = run
            .slots
            .clone()
            .try_acquire_many_owned(u32::try_from(run.slots.available_permits()).unwrap_or(0))
        {
            slots.merge(more);
        }
        // One fetch asks for at most the API's limit; the slots beyond it stay free.
        let max_jobs = slots.num_permits().min(Limits::MAX_JOBS_PER_FETCH as usize);
        drop(slots.split(slots.num_permits() - max_jobs));
        let fetch = fetch_and_start(Arc::clone(&run), Arc::clone(&pace), slots);
        if backlog {
            // Jobs are waiting: the next fetch may leave as soon as enough slots are free
            // again, not only once this one is back. Under a backlog of quick jobs a worker
            // with one fetch in flight idled for most of each round trip.
            shared.tracker.spawn(fetch);
            continue;
        }
        match fetch.await {
            Fetched::Started => pause = ERROR_PAUSE,
            Fetched::Stopped => return,
            Fetched::Failed => {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.stop.cancelled() => return,
                }
                pause = (pause * 2).min(MAX_ERROR_PAUSE);
            }
        }
    }
}

/// What the last fetches said about the queue: whether one came back full (more jobs are
/// likely waiting), and how long a fetch takes. Shared with the fetches in flight.
#[derive(Debug, Default)]
struct Pace {
    backlog: AtomicBool,
    round_trip_us: AtomicU64,
}

impl Pace {
    fn backlog(&self) -> bool {
        self.backlog.load(Ordering::Relaxed)
    }

    fn round_trip(&self) -> Duration {
        Duration::from_micros(self.round_trip_us.load(Ordering::Relaxed))
    }

    fn record(&self, full: bool, round_trip: Duration) {
        self.backlog.store(full, Ordering::Relaxed);
        let us = u64::try_from(round_trip.as_micros()).unwrap_or(u64::MAX);
        self.round_trip_us.store(us, Ordering::Relaxed);
    }
}

/// How a fetch ended, for the loop that awaited it.
enum Fetched {
    /// Its jobs (if any) are running.
    Started,
    /// The worker is stopping or its transport is closed.
    Stopped,
    /// The fetch failed; the loop pauses before the next.
    Failed,
}

/// Leases up to one job per slot in `slots` and starts each job with its slot; the slots left
/// over are freed.
async fn fetch_and_start(
    run: Arc<QueueRun>,
    pace: Arc<Pace>,
    mut slots: OwnedSemaphorePermit,
) -> Fetched {
    let shared = &run.shared;
    let transport = shared.buzzer.transport();
    let max_jobs = slots.num_permits();
    let request = FetchRequest {
        queues: vec![run.queue.clone()],
        worker_id: shared.config.worker_id.clone(),
        max_jobs: Some(u32::try_from(max_jobs).unwrap_or(u32::MAX)),
        lease_ms: Some(shared.config.lease_ms()),
        wait_ms: Some(ceil_ms(shared.config.poll_wait)),
    };
    // Never abandoned half-way, even on shutdown: jobs leased by a fetch that nobody reads
    // would sit out their lease and lose an attempt.
    let sent = Instant::now();
    let jobs = match transport.fetch(request).await {
        Ok(jobs) => {
            pace.record(jobs.len() == max_jobs, sent.elapsed());
            jobs
        }
        Err(e) => {
            // A fetch in flight beside this one must not go on at full speed either.
            pace.record(false, sent.elapsed());
            if transport.is_closed() {
                return Fetched::Stopped;
            }
            tracing::warn!(queue = %run.queue, error = %e, "fetch failed; trying again");
            return Fetched::Failed;
        }
    };
    if shared.stop.is_cancelled() {
        release(&run, jobs).await;
        return Fetched::Stopped;
    }
    if jobs.is_empty() && transport.is_closed() {
        return Fetched::Stopped;
    }
    let mut unslotted = Vec::new();
    for job in jobs {
        match slots.split(1) {
            Some(slot) => {
                shared.tracker.spawn(execute(Arc::clone(&run), job, slot));
            }
            None => unslotted.push(job),
        }
    }
    if !unslotted.is_empty() {
        tracing::error!(queue = %run.queue, jobs = unslotted.len(), "fetched more jobs than asked for; handing them back");
        release(&run, unslotted).await;
    }
    Fetched::Started
}

/// With jobs waiting and most slots busy, waits (at most one fetch's round trip) for half the
/// slots to be free before the next fetch.
///
/// A fetch leases as many jobs as there are free slots when it is sent, and those jobs hold
/// their slots until they finish; so under a backlog, fetches sent as soon as one slot frees
/// alternate between *k* jobs and concurrency − *k*, and average half the concurrency. Each
/// fetch is a commit, so half-sized batches cost twice the commits per job. Slow jobs lose at
/// most one round trip (and they were waiting anyway); an idle worker never waits here.
async fn gather_slots(slots: &Semaphore, concurrency: usize, round_trip: Duration) {
    // Besides the one slot the caller already holds.
    let wanted = u32::try_from((concurrency / 2).saturating_sub(1)).unwrap_or(u32::MAX);
    if slots.available_permits() >= wanted as usize {
        return;
    }
    let gathered = async {
        // Taken and given straight back: this loop is the only one taking slots, so they stay
        // free for the fetch that follows.
        drop(slots.acquire_many(wanted).await);
    };
    let _ = tokio::time::timeout(round_trip.min(MAX_GATHER), gathered).await;
}

/// The longest a fetch waits for slots to gather, however slow the last fetch was.
const MAX_GATHER: Duration = Duration::from_millis(50);

/// Hands leased jobs back at once, without counting the attempt.
async fn release(run: &QueueRun, jobs: Vec<Job>) {
    if jobs.is_empty() {
        return;
    }
    let finishes = jobs
        .into_iter()
        .filter_map(|job| {
            Some(Finish {
                id: job.id,
                lease_token: job.lease_token?,
                outcome: Outcome::Released,
            })
        })
        .collect();
    acker::record(&run.shared.buzzer, finishes).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn half_the_slots_free_means_no_wait() {
        let slots = Semaphore::new(10);
        let _busy = slots.acquire_many(4).await.unwrap();
        let started = tokio::time::Instant::now();
        gather_slots(&slots, 10, LONG).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_slots_are_waited_for_until_half_are_free() {
        let slots = Arc::new(Semaphore::new(10));
        let busy = slots.clone().acquire_many_owned(9).await.unwrap();
        let started = tokio::time::Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            drop(busy);
        });
        gather_slots(&slots, 10, Duration::from_millis(40)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(3));
        assert_eq!(
            slots.available_permits(),
            10,
            "gathered slots are given back"
        );
        release.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_wait_is_at_most_one_round_trip_and_never_long() {
        let slots = Semaphore::new(10);
        let _busy = slots.acquire_many(9).await.unwrap();
        let started = tokio::time::Instant::now();
        gather_slots(&slots, 10, Duration::from_millis(7)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(7));
        let started = tokio::time::Instant::now();
        gather_slots(&slots, 10, LONG).await;
        assert_eq!(started.elapsed(), MAX_GATHER);
    }
}
