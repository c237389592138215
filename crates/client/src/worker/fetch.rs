//! One loop per queue: wait for room, then lease as many jobs as there is room for in one
//! long-polling fetch, and start each in its own task. Room is the free slots, and under a
//! backlog of quick jobs also the slots that free up while the fetch is out (see [`pace`]);
//! jobs leased ahead wait for their slot in their task. Under a backlog the next fetch goes
//! out as soon as there is enough room, while earlier ones may still be in flight.
//!
//! [`pace`]: super::pace

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use buzzer_engine::Outcome;
use buzzer_types::{FetchRequest, Limits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    QueueRun, acker,
    execute::execute,
    pace::{AHEAD_PER_SLOT, MAX_HORIZON},
};
use crate::{
    enqueue::ceil_ms,
    transport::{Finish, Leased},
};

/// The pause after a failed fetch, doubling up to the maximum while failures last.
const ERROR_PAUSE: Duration = Duration::from_millis(100);
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

pub(super) async fn fetch_loop(run: Arc<QueueRun>) {
    let shared = &run.shared;
    let mut pause = ERROR_PAUSE;
    loop {
        // `held` has a permit for every job this queue may hold, leased ahead included; the
        // permits of the read-ahead not allowed now are kept back (`reserve`), so this waits
        // until the queue holds fewer than `concurrency + ahead` jobs.
        let ahead = run.pace.ahead(run.concurrency);
        let reserve = run.concurrency * AHEAD_PER_SLOT - ahead;
        let mut room = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            permits = run.held.clone().acquire_many_owned(permits(reserve + 1)) => match permits {
                Ok(permits) => permits,
                Err(_) => return,
            },
        };
        drop(room.split(reserve));
        let backlog = run.pace.backlog();
        if backlog {
            let half = (run.concurrency + ahead) / 2;
            // Besides the permit `room` already holds.
            let wanted = reserve + half.saturating_sub(1);
            gather(&run.held, wanted, run.pace.round_trip()).await;
        }
        // Only this loop takes permits, so the free ones are there to take; the fetch holds
        // them until its jobs end, so whatever else is in flight, the queue never holds more
        // jobs than `held` allows, nor runs more than it has slots.
        let free = run.held.available_permits().saturating_sub(reserve);
        if let Ok(more) = run.held.clone().try_acquire_many_owned(permits(free)) {
            room.merge(more);
        }
        // One fetch asks for at most the API's limit; the room beyond it stays free.
        let max_jobs = room.num_permits().min(Limits::MAX_JOBS_PER_FETCH as usize);
        drop(room.split(room.num_permits() - max_jobs));
        let fetch = fetch_and_start(Arc::clone(&run), room);
        if backlog {
            // Jobs are waiting: the next fetch may leave as soon as there is room again, not
            // only once this one is back. Under a backlog of quick jobs a worker with one
            // fetch in flight idled for most of each round trip.
            shared.tracker.spawn(fetch);
            continue;
        }
        match fetch.await {
            Fetched::Started { any } => {
                pause = ERROR_PAUSE;
                if any && shared.buzzer.engine().is_none() {
                    // Over HTTP the jobs just started run up to their first wait before the
                    // next fetch goes out, so a quick job's result reaches the server first.
                    // Without a backlog that fetch will most likely find nothing and park;
                    // sent first, the server ran it ahead of the result a hybrid call was
                    // waiting for (W3 over HTTP measured 3% faster at the median this way).
                    // In-process the fetch goes at once: it must be parked before the next
                    // enqueue to be handed its job, and a caller on the same runtime sends
                    // that quickly (W3 called from a task: 0.69 ms with the wait, 0.52 without).
                    tokio::task::yield_now().await;
                }
            }
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

fn permits(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// How a fetch ended, for the loop that awaited it.
enum Fetched {
    /// Its jobs, if `any`, are running.
    Started { any: bool },
    /// The worker is stopping or its transport is closed.
    Stopped,
    /// The fetch failed; the loop pauses before the next.
    Failed,
}

/// Leases up to one job per permit in `room` and starts each job with its permit; the permits
/// left over are freed.
async fn fetch_and_start(run: Arc<QueueRun>, mut room: OwnedSemaphorePermit) -> Fetched {
    let shared = &run.shared;
    let transport = shared.buzzer.transport();
    let max_jobs = room.num_permits();
    let request = FetchRequest {
        queues: vec![run.queue.clone()],
        worker_id: shared.config.worker_id.clone(),
        max_jobs: Some(u32::try_from(max_jobs).unwrap_or(u32::MAX)),
        lease_ms: Some(shared.config.lease_ms()),
        wait_ms: Some(ceil_ms(shared.config.poll_wait)),
        // Over HTTP only the fields `Leased` reads: serialising whole jobs on the server and
        // skipping most of each here took a sixth of W1 over HTTP.
        brief: true,
    };
    // Never abandoned half-way, even on shutdown: jobs leased by a fetch that nobody reads
    // would sit out their lease and lose an attempt.
    let sent = Instant::now();
    let jobs = match transport.fetch(request).await {
        Ok(jobs) => {
            run.pace
                .record_fetch(jobs.len() == max_jobs, sent.elapsed());
            jobs
        }
        Err(e) => {
            // A fetch in flight beside this one must not go on at full speed either.
            run.pace.record_fetch(false, sent.elapsed());
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
    // `room` holds a permit per job asked for, at least one: the first job always starts.
    let any = !jobs.is_empty();
    let mut unslotted = Vec::new();
    for job in jobs {
        match room.split(1) {
            Some(held) => {
                shared.tracker.spawn(execute(Arc::clone(&run), job, held));
            }
            None => unslotted.push(job),
        }
    }
    if !unslotted.is_empty() {
        tracing::error!(queue = %run.queue, jobs = unslotted.len(), "fetched more jobs than asked for; handing them back");
        release(&run, unslotted).await;
    }
    Fetched::Started { any }
}

/// With jobs waiting and little room, waits (at most one fetch's round trip) until `wanted`
/// permits of `held` are free before the next fetch.
///
/// A fetch leases as many jobs as there is room for when it is sent, and those jobs hold their
/// room until they finish; so under a backlog, fetches sent as soon as one permit frees
/// alternate between *k* jobs and the rest, and average half the room. Each fetch is a commit,
/// so half-sized batches cost twice the commits per job. Slow jobs lose at most one round trip
/// (and they were waiting anyway); an idle worker never waits here.
async fn gather(held: &Semaphore, wanted: usize, round_trip: Duration) {
    if held.available_permits() >= wanted {
        return;
    }
    let gathered = async {
        // Taken and given straight back: this loop is the only one taking permits, so they
        // stay free for the fetch that follows.
        drop(held.acquire_many(permits(wanted)).await);
    };
    let _ = tokio::time::timeout(round_trip.min(MAX_GATHER), gathered).await;
}

/// The longest a fetch waits for slots to gather, however slow the last fetch was.
const MAX_GATHER: Duration = MAX_HORIZON;

/// Hands leased jobs back at once, without counting the attempt.
async fn release(run: &QueueRun, jobs: Vec<Leased>) {
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
    async fn enough_free_permits_means_no_wait() {
        let slots = Semaphore::new(10);
        let _busy = slots.acquire_many(4).await.unwrap();
        let started = tokio::time::Instant::now();
        gather(&slots, 4, LONG).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn busy_permits_are_waited_for_until_enough_are_free() {
        let slots = Arc::new(Semaphore::new(10));
        let busy = slots.clone().acquire_many_owned(9).await.unwrap();
        let started = tokio::time::Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            drop(busy);
        });
        gather(&slots, 4, Duration::from_millis(40)).await;
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
        gather(&slots, 4, Duration::from_millis(7)).await;
        assert_eq!(started.elapsed(), Duration::from_millis(7));
        let started = tokio::time::Instant::now();
        gather(&slots, 4, LONG).await;
        assert_eq!(started.elapsed(), MAX_GATHER);
    }
}

#[cfg(test)]
mod order_tests;
