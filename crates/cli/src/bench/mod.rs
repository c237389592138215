//! `buzzer bench w1|w2|w3`: the workloads Buzzer's peers are measured on, run against this build.
//!
//! - **W1 drain**: enqueue N jobs by the fastest path (batches), then process them with no-op
//!   workers; enqueue/s and processed/s.
//! - **W2 stream**: one producer enqueues N jobs one at a time while workers run; throughput and
//!   enqueue→completion latency (from the store's own timestamps).
//! - **W3 hybrid**: sequential hybrid calls of a 0 ms job; the round trip over a direct call.
//! - **scale**: enqueue and fetch latency on an empty queue and with N jobs waiting (half of
//!   them scheduled), and the resident memory of the process holding the store.
//!
//! Completions are counted in the store (the queue's `completed` count), not in the handlers.
//! `--mode http` starts `buzzer serve` and a separate worker process (or targets `--server`).

mod report;
mod scale;
mod target;
mod w1;
mod w2;
mod w3;
pub mod worker;

use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::database_url::DatabaseUrl;
use report::Report;
use target::{PollEvery, Target, TargetSpec};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload: w1 (drain), w2 (stream), w3 (hybrid-call overhead) or scale (latency
    /// with N jobs waiting, and memory).
    #[arg(value_enum, ignore_case = true)]
    pub workload: Workload,
    /// Where the jobs live: `sqlite:PATH` or `postgres://…`. Default: a fresh SQLite file in a
    /// temporary directory, removed afterwards.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
    /// `inprocess` runs the library's embedded engine and workers in this process; `http` runs
    /// `buzzer serve` and a separate worker process and talks to them over HTTP (or targets
    /// the server given with `--server`).
    #[arg(long, value_enum, default_value_t = Mode::Inprocess)]
    pub mode: Mode,
    /// Jobs per run (W3: calls; scale: jobs waiting). Default: 100000 for W1, 20000 for W2,
    /// 2000 for W3, 1000000 for scale.
    #[arg(long, value_name = "N")]
    pub jobs: Option<u64>,
    /// Jobs each worker runs at once (under a backlog of quick jobs it leases up to seven times
    /// as many again ahead, waiting for a free slot).
    #[arg(long, value_name = "C", default_value_t = 256)]
    pub concurrency: usize,
    /// Worker processes in `--mode http` (each runs `--concurrency` jobs at once).
    #[arg(long, value_name = "P", default_value_t = 1)]
    pub workers: usize,
    /// Runs; the report shows the median, minimum and maximum of each figure.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub reps: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
pub enum Workload {
    #[value(alias = "W1")]
    W1,
    #[value(alias = "W2")]
    W2,
    #[value(alias = "W3")]
    W3,
    #[serde(rename = "scale")]
    Scale,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Inprocess,
    Http,
}

/// The job W1 and W2 run: W1's payload `{"n": i, "pad": "<64 x>"}`, and a no-op handler that
/// returns nothing, as the peers' do.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BenchJob {
    pub n: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pad: String,
}

impl buzzer::Job for BenchJob {
    const QUEUE: &'static str = "bench";
    type Output = ();
}

/// The job W3 calls: the same payload, and a handler that hands `n` back, so each call can
/// check it got its own job's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct CallJob(pub BenchJob);

impl buzzer::Job for CallJob {
    const QUEUE: &'static str = "bench";
    type Output = u64;
}

/// What the workers' handler returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handler {
    /// Nothing (W1, W2).
    Noop,
    /// The job's `n` (W3).
    Echo,
}

pub(crate) fn pad() -> String {
    "x".repeat(64)
}

/// What the command line gives beyond `BenchArgs`: the server to target, if one was named,
/// and the API key.
pub struct BenchContext {
    pub server: Option<String>,
    pub api_key: Option<String>,
    pub json: bool,
}

pub async fn run(args: BenchArgs, ctx: BenchContext) -> anyhow::Result<()> {
    if args.reps == 0 || args.concurrency == 0 || args.workers == 0 {
        anyhow::bail!("--reps, --concurrency and --workers must be at least 1");
    }
    let database = match &args.database {
        None => None,
        Some(url) => Some(url.parse::<DatabaseUrl>()?),
    };
    if ctx.server.is_some() && args.database.is_some() {
        anyhow::bail!(
            "--database does not apply with --server: the server already has its database"
        );
    }
    let jobs = args.jobs.unwrap_or(match args.workload {
        Workload::W1 => 100_000,
        Workload::W2 => 20_000,
        Workload::W3 => 2_000,
        Workload::Scale => 1_000_000,
    });
    if jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let spec = TargetSpec {
        mode: args.mode,
        database,
        server: ctx.server.clone(),
        api_key: ctx.api_key.clone(),
        concurrency: args.concurrency,
        worker_processes: args.workers,
    };
    let target = Target::start(&spec).await?;
    let mut runs = Vec::with_capacity(args.reps);
    let mut outcome = Ok(());
    for rep in 0..args.reps {
        if let Some(DatabaseUrl::Postgres(url)) = &spec.database {
            settle_postgres(url).await;
        }
        let queue =
            format!("bench.{:?}.{}.{rep}", args.workload, std::process::id()).to_lowercase();
        let run = match args.workload {
            Workload::W1 => w1::run(&target, &queue, jobs).await,
            Workload::W2 => w2::run(&target, &queue, jobs).await,
            Workload::W3 => w3::run(&target, &queue, jobs).await,
            Workload::Scale => scale::run(&target, &queue, jobs).await,
        };
        match run {
            Ok(run) => runs.push(run),
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    let database_kind = target.database_kind();
    target.stop().await;
    outcome?;
    let report = Report {
        workload: args.workload,
        mode: args.mode,
        database: database_kind,
        jobs,
        concurrency: args.concurrency,
        worker_processes: (args.mode == Mode::Http).then_some(args.workers),
        runs,
    };
    if ctx.json {
        println!("{}", serde_json::to_string(&report.json())?);
    } else {
        report.print();
    }
    Ok(())
}

/// Starts each run on PostgreSQL from a checkpoint, so that it does not share the machine with
/// the deferred writes of whatever ran before it (an earlier run, a peer's benchmark): measured
/// right after apalis's W1, Buzzer's W1 fell by a sixth. Without the rights for it the run
/// goes ahead, and says so.
async fn settle_postgres(url: &str) {
    if let Err(e) = buzzer_store_postgres::checkpoint(url).await {
        eprintln!(
            "note: could not CHECKPOINT before the run ({e}); the figures may include writes \
             deferred from earlier work"
        );
    }
}

/// Jobs per batch enqueue.
const BATCH: u64 = 1_000;

/// Enqueues jobs `0..jobs` (W1's payload) in batches, `in_flight` at once, moving `bar` along;
/// `delay(i)` may schedule batch `i` for later.
pub(crate) async fn enqueue_batches(
    target: &Target,
    queue: &str,
    jobs: u64,
    in_flight: usize,
    bar: &ProgressBar,
    delay: impl Fn(u64) -> Option<Duration>,
) -> anyhow::Result<()> {
    let batches = (0..jobs).step_by(BATCH as usize).map(|first| {
        let last = (first + BATCH).min(jobs);
        let delay = delay(first / BATCH);
        async move {
            let batch: Vec<BenchJob> = (first..last).map(|n| BenchJob { n, pad: pad() }).collect();
            let enqueue = target.client.enqueue_batch(batch).queue(queue);
            match delay {
                Some(delay) => enqueue.delay(delay).await?,
                None => enqueue.await?,
            };
            bar.inc(last - first);
            Ok::<_, anyhow::Error>(())
        }
    });
    futures::stream::iter(batches)
        .buffer_unordered(in_flight)
        .try_collect::<()>()
        .await
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "{prefix:>10} [{bar:30}] {pos}/{len} {per_sec:>12} {elapsed_precise}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Waits until `queue` has `jobs` completed jobs, moving `bar` along, then checks the store's
/// own count. Fails if progress stalls for a minute (a worker died, or jobs went dead).
pub(crate) async fn wait_completed(
    target: &Target,
    queue: &str,
    jobs: u64,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let stall = Duration::from_secs(60);
    let mut last = (0, Instant::now());
    let mut asked = last;
    loop {
        let completed = target.completed(queue).await?;
        let now = Instant::now();
        bar.set_position(completed);
        if completed >= jobs {
            break;
        }
        if completed > last.0 {
            last = (completed, now);
        } else if last.1.elapsed() > stall {
            let counts = target.counts(queue).await?;
            anyhow::bail!(
                "no job completed in {} s: {} of {jobs} completed, {} dead, {} retryable",
                stall.as_secs(),
                counts.completed,
                counts.dead,
                counts.retryable
            );
        }
        let pause = next_poll(
            target.poll_every(),
            now - asked.1,
            completed.saturating_sub(asked.0),
            jobs - completed,
        );
        asked = (completed, now);
        tokio::time::sleep(pause).await;
    }
    let counts = target.counts(queue).await?;
    if counts.completed != jobs {
        anyhow::bail!(
            "the store counts {} completed jobs in {queue}, expected {jobs}",
            counts.completed
        );
    }
    Ok(())
}

/// How long to wait before asking for the completed count again: half the time the
/// `remaining` jobs should take at the pace of the last wait (`done` jobs in `waited`), between
/// the floor (which bounds how late the end is seen) and the ceiling (so the bar moves and a
/// change of pace is noticed).
///
/// Over HTTP every ask counts the queue's jobs in the store, work that grows with the queue:
/// asked every 50 ms through a 100,000-job drain, that took a visible share of the two cores
/// being measured (on PostgreSQL ~83 ms of database time per ask near the end). Halving the
/// wait as the end nears asks about twenty times in a 4 s drain, and still sees the end
/// within the floor.
///
/// The pace is the last wait's, not the run's so far: the run's includes the workers' start,
/// and judged by it, a drain that ended within half a second was seen only at the ceiling
/// (in-process, 5,000 and 50,000 jobs both reported 0.51 s).
fn next_poll(every: PollEvery, waited: Duration, done: u64, remaining: u64) -> Duration {
    if done == 0 || remaining == 0 {
        return every.floor;
    }
    let rest = waited.as_secs_f64() * remaining as f64 / done as f64;
    Duration::from_secs_f64(rest / 2.0).clamp(every.floor, every.ceiling)
}

#[cfg(test)]
mod tests;
