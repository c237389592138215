//! W1 drain: enqueue every job by the fastest path (batches), then drain the queue with no-op
//! workers.

use std::time::Instant;

use super::{Handler, enqueue_batches, progress, report::Run, target::Target, wait_completed};

pub(crate) async fn run(target: &Target, queue: &str, jobs: u64) -> anyhow::Result<Run> {
    let bar = progress(jobs, "enqueue");
    let started = Instant::now();
    enqueue_batches(
        target,
        queue,
        jobs,
        target.enqueue_in_flight(),
        &bar,
        |_| None,
    )
    .await?;
    let enqueue_s = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let bar = progress(jobs, "process");
    let workers = target.start_workers(queue, Handler::Noop).await?;
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
