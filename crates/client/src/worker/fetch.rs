//! One loop per queue: wait for a free slot, then lease as many jobs as there are free slots
//! in one long-polling fetch, and start each in its own task.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use buzzer_engine::Outcome;
use buzzer_types::{FetchRequest, Job, Limits};
use tokio::sync::Semaphore;

use super::{QueueRun, acker, execute::execute};
use crate::{enqueue::ceil_ms, transport::Finish};

/// The pause after a failed fetch, doubling up to the maximum while failures last.
const ERROR_PAUSE: Duration = Duration::from_millis(100);
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

pub(super) async fn fetch_loop(run: Arc<QueueRun>) {
    let shared = &run.shared;
    let transport = shared.buzzer.transport();
    let mut pause = ERROR_PAUSE;
    // Whether the last fetch came back full (more jobs are likely waiting), and how long it took.
    let mut backlog = false;
    let mut last_round_trip = Duration::ZERO;
    loop {
        let first = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            permit = run.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        if backlog {
            gather_slots(&run.slots, run.concurrency, last_round_trip).await;
        }
        // Only this loop takes slots, so the free ones stay free until it takes them below.
        let free = 1 + run.slots.available_permits();
        let max_jobs = u32::try_from(free)
            .unwrap_or(u32::MAX)
            .min(Limits::MAX_JOBS_PER_FETCH);
        let request = FetchRequest {
            queues: vec![run.queue.clone()],
            worker_id: shared.config.worker_id.clone(),
            max_jobs: Some(max_jobs),
            lease_ms: Some(shared.config.lease_ms()),
            wait_ms: Some(ceil_ms(shared.config.poll_wait)),
        };
        // Never abandoned half-way, even on shutdown: jobs leased by a fetch that nobody
        // reads would sit out their lease and lose an attempt.
        let sent = Instant::now();
        let jobs = match transport.fetch(request).await {
            Ok(jobs) => {
                pause = ERROR_PAUSE;
                last_round_trip = sent.elapsed();
                backlog = jobs.len() == max_jobs as usize;
                jobs
            }
            Err(e) => {
                if transport.is_closed() {
                    return;
                }
                tracing::warn!(queue = %run.queue, error = %e, ?pause, "fetch failed; trying again");
                drop(first);
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shared.stop.cancelled() => return,
                }
                pause = (pause * 2).min(MAX_ERROR_PAUSE);
                continue;
            }
        };
        if shared.stop.is_cancelled() {
            release(&run, jobs).await;
            return;
        }
        if jobs.is_empty() && transport.is_closed() {
            return;
        }
        let mut first = Some(first);
        let mut unslotted = Vec::new();
        for job in jobs {
            match first
                .take()
                .or_else(|| run.slots.clone().try_acquire_owned().ok())
            {
                Some(permit) => {
                    shared.tracker.spawn(execute(run.clone(), job, permit));
                }
                None => unslotted.push(job),
            }
        }
        if !unslotted.is_empty() {
            tracing::error!(queue = %run.queue, jobs = unslotted.len(), "fetched more jobs than free slots; handing them back");
            release(&run, unslotted).await;
        }
    }
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
