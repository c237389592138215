//! W1 drain: enqueue every job by the fastest path (batches), then drain the queue with no-op
//! workers.

use std::time::Instant;

use futures::{StreamExt, TryStreamExt};

use super::{BenchJob, pad, progress, report::Run, target::Target, wait_completed};

/// Jobs per batch enqueue, and batches in flight at once (so group commit has company).
const BATCH: u64 = 1_000;
const IN_FLIGHT: usize = 4;

pub(crate) async fn run(target: &Target, queue: &str, jobs: u64) -> anyhow::Result<Run> {
    let bar = progress(jobs, "enqueue");
    let started = Instant::now();
    let batches = (0..jobs).step_by(BATCH as usize).map(|first| {
        let last = (first + BATCH).min(jobs);
        let bar = bar.clone();
        async move {
            let batch: Vec<BenchJob> = (first..last).map(|n| BenchJob { n, pad: pad() }).collect();
            target.client.enqueue_batch(batch).queue(queue).await?;
            bar.inc(last - first);
            Ok::<_, anyhow::Error>(())
        }
    });
    futures::stream::iter(batches)
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let enqueue_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let bar = progress(jobs, "process");
    let workers = target.start_workers(queue).await?;
    let started = Instant::now();
    let drained = wait_completed(target, queue, jobs, &bar).await;
    let process_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    workers.stop().await;
    drained?;

    let mut run = Run::default();
    run.push("enqueue_per_s", "enqueued/s", jobs as f64 / enqueue_s);
    run.push("processed_per_s", "processed/s", jobs as f64 / process_s);
    run.push("enqueue_s", "enqueue time (s)", enqueue_s);
    run.push("process_s", "process time (s)", process_s);
    Ok(run)
}
