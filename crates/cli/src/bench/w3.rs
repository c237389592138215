//! W3 hybrid: sequential hybrid calls (`call(job).within(5 s)`) of a job whose handler takes
//! 0 ms, against a direct function call; the overhead is what the call adds.

use std::{
    hint::black_box,
    time::{Duration, Instant},
};

use buzzer::{Answer, Buzzer};

use super::{BenchJob, CallJob, Handler, progress, report::Run, target::Target, w2::percentile};

/// Calls before the measured ones: connections, statement caches and the worker warm up.
const WARM_UP: u64 = 100;

#[inline(never)]
fn direct(job: BenchJob) -> u64 {
    job.n
}

pub(crate) async fn run(target: &Target, queue: &str, calls: u64) -> anyhow::Result<Run> {
    let workers = target.start_workers(queue, Handler::Echo).await?;
    // Called from a task of the runtime, as a service's request handler calls: the runtime's
    // own threads then run the call's steps, where calls from the thread that started the
    // runtime crossed to them and back (0.287 against 0.273 ms in-process, 0.651 against
    // 0.598 ms over HTTP, medians of alternating pairs; W2's producer gained 7-9% the same
    // way).
    let (client, owned_queue) = (target.client.clone(), queue.to_owned());
    let outcome = tokio::spawn(async move { measure(&client, &owned_queue, calls).await })
        .await
        .map_err(|e| anyhow::anyhow!("the calls stopped: {e}"))
        .and_then(|measured| measured);
    workers.stop().await;
    let (mut samples, mut direct_samples) = outcome?;
    samples.sort_unstable_by(f64::total_cmp);
    direct_samples.sort_unstable_by(f64::total_cmp);
    let direct_p50 = percentile(&direct_samples, 0.5);
    let mut run = Run::default();
    let p50 = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    run.push("overhead_p50_ms", "overhead p50 (ms)", p50 - direct_p50);
    run.push("overhead_p99_ms", "overhead p99 (ms)", p99 - direct_p50);
    run.push("call_p50_ms", "call p50 (ms)", p50);
    run.push("call_p99_ms", "call p99 (ms)", p99);
    run.push("direct_p50_ms", "direct call p50 (ms)", direct_p50);
    run.push("calls_per_s", "calls/s", 1_000.0 / mean(&samples));
    Ok(run)
}

async fn measure(client: &Buzzer, queue: &str, calls: u64) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let bar = progress(calls, "call");
    let mut samples = Vec::with_capacity(calls as usize);
    for n in 0..calls + WARM_UP {
        let start = Instant::now();
        let answer = client
            .call(CallJob(BenchJob {
                n,
                pad: String::new(),
            }))
            .queue(queue)
            .within(Duration::from_secs(5))
            .await?;
        let took = start.elapsed();
        match answer {
            Answer::Now(out) if out == n => {}
            Answer::Now(out) => anyhow::bail!("call {n} answered {out}"),
            Answer::Later(_) => anyhow::bail!("call {n} did not finish within 5 s"),
        }
        if n >= WARM_UP {
            samples.push(took.as_secs_f64() * 1e3);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let direct_samples = (0..calls)
        .map(|n| {
            let start = Instant::now();
            black_box(direct(black_box(BenchJob {
                n,
                pad: String::new(),
            })));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    Ok((samples, direct_samples))
}

fn mean(samples: &[f64]) -> f64 {
    samples.iter().sum::<f64>() / samples.len().max(1) as f64
}
