//! One loop per queue: wait for a free slot, then lease as many jobs as there are free slots
//! in one long-polling fetch, and start each in its own task.

use std::{sync::Arc, time::Duration};

use buzzer_engine::Outcome;
use buzzer_types::{FetchRequest, Job, Limits};

use super::{QueueRun, acker, execute::execute};
use crate::{enqueue::ceil_ms, transport::Finish};

/// The pause after a failed fetch, doubling up to the maximum while failures last.
const ERROR_PAUSE: Duration = Duration::from_millis(100);
const MAX_ERROR_PAUSE: Duration = Duration::from_secs(5);

pub(super) async fn fetch_loop(run: Arc<QueueRun>) {
    let shared = &run.shared;
    let transport = shared.buzzer.transport();
    let mut pause = ERROR_PAUSE;
    loop {
        let first = tokio::select! {
            biased;
            () = shared.stop.cancelled() => return,
            permit = run.slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
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
        let jobs = match transport.fetch(request).await {
            Ok(jobs) => {
                pause = ERROR_PAUSE;
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
