//! W2 stream: one producer enqueues jobs one at a time, each awaited, while the workers run;
//! throughput, and enqueue→completion latency from the store's own timestamps (`created_at` to
//! `finished_at`, milliseconds).

use std::time::Instant;

use buzzer::Buzzer;

use super::{BenchJob, Handler, progress, report::Run, target::Target, wait_completed};

pub(crate) async fn run(target: &Target, queue: &str, jobs: u64) -> anyhow::Result<Run> {
    let workers = target.start_workers(queue, Handler::Noop).await?;
    let bar = progress(jobs, "stream");
    let started = Instant::now();
    // The producer is a task of the runtime, as a service's request handler is (see W3).
    let (client, owned_queue) = (target.client.clone(), queue.to_owned());
    let produced = async move {
        tokio::spawn(async move { produce(&client, &owned_queue, jobs).await })
            .await
            .map_err(|e| anyhow::anyhow!("the producer stopped: {e}"))?
    };
    let finished = wait_completed(target, queue, jobs, &bar);
    let (produced, finished) = tokio::join!(produced, finished);
    let took = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    workers.stop().await;
    produced?;
    finished?;

    let mut latencies = latencies(target, queue).await?;
    if latencies.len() as u64 != jobs {
        anyhow::bail!(
            "the store lists {} completed jobs, expected {jobs}",
            latencies.len()
        );
    }
    latencies.sort_unstable();
    let latencies: Vec<f64> = latencies.into_iter().map(|ms| ms as f64).collect();
    let mut run = Run::default();
    run.push("jobs_per_s", "jobs/s", jobs as f64 / took);
    run.push(
        "latency_p50_ms",
        "latency p50 (ms)",
        percentile(&latencies, 0.50),
    );
    run.push(
        "latency_p99_ms",
        "latency p99 (ms)",
        percentile(&latencies, 0.99),
    );
    run.push(
        "latency_max_ms",
        "latency max (ms)",
        percentile(&latencies, 1.0),
    );
    Ok(run)
}

async fn produce(client: &Buzzer, queue: &str, jobs: u64) -> anyhow::Result<()> {
    for n in 0..jobs {
        client
            .enqueue(BenchJob {
                n,
                pad: String::new(),
            })
            .queue(queue)
            .await?;
    }
    Ok(())
}

/// `finished_at - created_at` of every completed job in the queue, in milliseconds.
async fn latencies(target: &Target, queue: &str) -> anyhow::Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = target.completed_page(queue, cursor).await?;
        for job in &page.jobs {
            if let Some(finished) = job.finished_at {
                out.push(finished.as_millisecond() - job.created_at.as_millisecond());
            }
        }
        match page.next_cursor {
            Some(next) if !page.jobs.is_empty() => cursor = Some(next),
            _ => return Ok(out),
        }
    }
}

/// The nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
