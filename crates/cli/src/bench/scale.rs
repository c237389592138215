//! Scale: enqueue and fetch latency on an empty queue, then again with N jobs waiting (half of
//! them scheduled a day ahead), and the resident memory of the process holding the store.

use std::time::{Duration, Instant};

use super::{
    BenchJob, enqueue_batches, pad, progress, report::Run, target::Target, w2::percentile,
};

/// Timed calls per phase (after as many untimed ones).
const SAMPLES: usize = 200;

pub(crate) async fn run(target: &Target, queue: &str, jobs: u64) -> anyhow::Result<Run> {
    let (enqueue_empty, fetch_empty) = latencies(target, queue).await?;
    fill(target, queue, jobs).await?;
    let (enqueue_full, fetch_full) = latencies(target, queue).await?;

    let mut run = Run::default();
    for (name, label, samples) in [
        ("enqueue_empty", "enqueue, empty", &enqueue_empty),
        ("enqueue_full", "enqueue, full", &enqueue_full),
        ("fetch_empty", "fetch, empty", &fetch_empty),
        ("fetch_full", "fetch, full", &fetch_full),
    ] {
        for (tag, p) in [("p50", 0.5), ("p99", 0.99)] {
            run.push(
                format!("{name}_{tag}_ms"),
                format!("{label} {tag} (ms)"),
                percentile(samples, p) * 1e3,
            );
        }
    }
    run.push(
        "enqueue_p50_ratio",
        "enqueue p50 full/empty",
        percentile(&enqueue_full, 0.5) / percentile(&enqueue_empty, 0.5),
    );
    run.push(
        "fetch_p50_ratio",
        "fetch p50 full/empty",
        percentile(&fetch_full, 0.5) / percentile(&fetch_empty, 0.5),
    );
    if let Some((rss, peak)) = target.store_memory() {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        run.push("store_rss_mib", "store process RSS (MiB)", mib(rss));
        run.push(
            "store_peak_rss_mib",
            "store process peak RSS (MiB)",
            mib(peak),
        );
    }
    Ok(run)
}

/// Sequential single enqueues, then as many sequential single fetches (each completed
/// afterwards, untimed), after a warm-up of each; seconds, sorted.
async fn latencies(target: &Target, queue: &str) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let mut enqueue = Vec::with_capacity(SAMPLES);
    let mut fetch = Vec::with_capacity(SAMPLES);
    for i in 0..2 * SAMPLES {
        let started = Instant::now();
        target
            .client
            .enqueue(BenchJob {
                n: i as u64,
                pad: pad(),
            })
            .queue(queue)
            .await?;
        if i >= SAMPLES {
            enqueue.push(started.elapsed().as_secs_f64());
        }
    }
    for i in 0..2 * SAMPLES {
        let took = target.time_fetch(queue).await?;
        if i >= SAMPLES {
            fetch.push(took.as_secs_f64());
        }
    }
    enqueue.sort_unstable_by(f64::total_cmp);
    fetch.sort_unstable_by(f64::total_cmp);
    Ok((enqueue, fetch))
}

/// Batches in flight while filling. The fill is not what is measured, and the store's resident
/// memory afterwards is: with sixteen in flight (W1's on SQLite) it held 32.2 MiB against 23.3.
const FILL_IN_FLIGHT: usize = 4;

/// `jobs` jobs in batches: the even batches due now, the odd ones a day ahead.
async fn fill(target: &Target, queue: &str, jobs: u64) -> anyhow::Result<()> {
    let bar = progress(jobs, "fill");
    let delay = |batch: u64| (batch % 2 == 1).then_some(Duration::from_secs(86_400));
    enqueue_batches(target, queue, jobs, FILL_IN_FLIGHT, &bar, delay).await?;
    bar.finish_and_clear();
    Ok(())
}
