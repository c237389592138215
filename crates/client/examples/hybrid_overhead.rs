//! The round-trip overhead of the hybrid call on a 0 ms job (workload W3 of DESIGN.md):
//! `buzzer.call(job).within(5 s)` with a worker running, embedded (in-process SQLite) and over
//! HTTP, beside a direct function call. A measurement, not a test: it prints p50/p99/mean and
//! one JSON line.
//!
//! ```sh
//! cargo run --release -p buzzer --features remote --example hybrid_overhead
//! cargo run --release -p buzzer --features remote --example hybrid_overhead -- \
//!   --calls 5000 --synchronous normal
//! # over HTTP to a separate `buzzer serve` process instead of one inside this process:
//! cargo run --release -- serve --database sqlite:/tmp/w3.db &
//! cargo run --release -p buzzer --features remote --example hybrid_overhead -- \
//!   --url http://127.0.0.1:2899
//! ```
//!
//! Each call enqueues, the worker fetches, runs and acknowledges, and the waiting caller is
//! woken: three durable commits per call. Without `--url` the HTTP figures come from the
//! server's router serving on loopback inside this process; the worker always runs in this
//! process, as a client of the same Buzzer.

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use buzzer::{
    Answer, Buzzer, EngineConfig, Job, JobContext, JobError, SqliteOptions, Synchronous, Worker,
    WorkerHandle,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Noop {
    n: u64,
}

impl Job for Noop {
    const QUEUE: &'static str = "w3";
    type Output = u64;
}

async fn noop(_ctx: JobContext, job: Noop) -> Result<u64, JobError> {
    Ok(job.n)
}

/// The direct call the hybrid call is measured against.
#[inline(never)]
fn direct(job: Noop) -> u64 {
    job.n
}

struct Args {
    calls: usize,
    url: Option<String>,
    synchronous: Synchronous,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        calls: 2_000,
        url: None,
        synchronous: Synchronous::Full,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--calls" => args.calls = value()?.parse().map_err(|e| format!("--calls: {e}"))?,
            "--url" => args.url = Some(value()?),
            "--synchronous" => {
                args.synchronous = match value()?.as_str() {
                    "full" => Synchronous::Full,
                    "normal" => Synchronous::Normal,
                    other => return Err(format!("--synchronous {other}: full or normal")),
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: [--calls N] [--url URL] [--synchronous full|normal]"
                ));
            }
        }
    }
    Ok(args)
}

/// Latencies in microseconds, sorted.
struct Stats(Vec<f64>);

impl Stats {
    fn new(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        Stats(samples.iter().map(|d| d.as_secs_f64() * 1e6).collect())
    }

    fn pct(&self, p: f64) -> f64 {
        let i = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0[i]
    }

    fn mean(&self) -> f64 {
        self.0.iter().sum::<f64>() / self.0.len() as f64
    }

    fn line(&self, name: &str) {
        println!(
            "{name:<12} p50 {:>9.2} µs   p99 {:>9.2} µs   mean {:>9.2} µs",
            self.pct(0.5),
            self.pct(0.99),
            self.mean()
        );
    }

    fn json(&self) -> String {
        format!(
            r#"{{"p50_us":{:.2},"p99_us":{:.2},"mean_us":{:.2}}}"#,
            self.pct(0.5),
            self.pct(0.99),
            self.mean()
        )
    }
}

fn worker(buzzer: &Buzzer) -> Result<WorkerHandle, buzzer::Error> {
    Ok(Worker::builder(buzzer)
        .register::<Noop, _>(noop)
        .build()?
        .spawn())
}

/// What the three commits of a call cost without the client: enqueue, fetch and complete
/// straight on the engine, one after the other, with nothing waiting or woken.
async fn store_floor(
    engine: &buzzer::Engine,
    calls: usize,
) -> Result<Stats, Box<dyn std::error::Error>> {
    use buzzer_types::{CompleteRequest, EnqueueRequest, FetchRequest, RawValue};
    let mut samples = Vec::with_capacity(calls);
    for n in 0..calls + 200 {
        let start = Instant::now();
        let payload = RawValue::from_string(format!(r#"{{"n":{n}}}"#))?;
        engine
            .enqueue("w3.floor", EnqueueRequest::new(payload))
            .await?;
        let fetch = FetchRequest {
            queues: vec!["w3.floor".into()],
            worker_id: "floor".into(),
            max_jobs: None,
            lease_ms: None,
            wait_ms: None,
            brief: false,
        };
        for job in engine.fetch(fetch).await? {
            let complete = CompleteRequest {
                lease_token: job.lease_token.unwrap_or_default(),
                result: Some(RawValue::from_string(n.to_string())?),
            };
            engine.complete(job.id, complete).await?;
        }
        if n >= 200 {
            samples.push(start.elapsed());
        }
    }
    Ok(Stats::new(samples))
}

/// `calls` sequential hybrid calls after a warm-up; each must answer `Now`.
async fn hybrid(buzzer: &Buzzer, calls: usize) -> Result<Stats, Box<dyn std::error::Error>> {
    let mut samples = Vec::with_capacity(calls);
    for n in 0..(calls + 200) as u64 {
        let start = Instant::now();
        let answer = buzzer
            .call(Noop { n })
            .within(Duration::from_secs(5))
            .await?;
        let took = start.elapsed();
        match answer {
            Answer::Now(out) if out == n => {}
            _ => return Err(format!("call {n} did not answer now with its output").into()),
        }
        if n >= 200 {
            samples.push(took);
        }
    }
    Ok(Stats::new(samples))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let store = SqliteOptions {
        synchronous: args.synchronous,
        ..SqliteOptions::default()
    };
    println!(
        "{} sequential calls of a 0 ms job, SQLite synchronous={:?}",
        args.calls, args.synchronous
    );

    let direct_stats = Stats::new(
        (0..args.calls as u64)
            .map(|n| {
                let start = Instant::now();
                black_box(direct(black_box(Noop { n })));
                start.elapsed()
            })
            .collect(),
    );
    direct_stats.line("direct");

    let dir = tempfile::tempdir()?;
    let embedded = Buzzer::open_with(
        dir.path().join("embedded.db"),
        store.clone(),
        EngineConfig::default(),
    )
    .await?;
    if let Some(engine) = embedded.engine() {
        store_floor(engine, args.calls).await?.line("store floor");
    }
    let running = worker(&embedded)?;
    let embedded_stats = hybrid(&embedded, args.calls).await?;
    embedded_stats.line("embedded");
    running.shutdown().await;
    embedded.shutdown().await?;

    // Over HTTP: a server you started, or the same router inside this process.
    let (url, server) = match &args.url {
        Some(url) => (url.clone(), None),
        None => {
            let sqlite = buzzer_store_sqlite::SqliteStore::open(dir.path().join("http.db"), store)?;
            let engine = buzzer::Engine::new(Arc::new(sqlite), EngineConfig::default());
            let services = engine.start_services();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}", listener.local_addr()?);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(buzzer_server::serve(
                listener,
                engine.clone(),
                buzzer_server::ServerConfig::default(),
                async move {
                    let _ = stopped.await;
                },
            ));
            (url, Some((stop, serving, services, engine)))
        }
    };
    let remote = Buzzer::connect(&url).await?;
    let running = worker(&remote)?;
    let http_stats = hybrid(&remote, args.calls).await?;
    http_stats.line(if server.is_some() {
        "http"
    } else {
        "http(ext)"
    });
    running.shutdown().await;
    if let Some((stop, serving, services, engine)) = server {
        let _ = stop.send(());
        serving.await??;
        services.join().await;
        engine.store().close().await?;
    }

    println!(
        r#"{{"workload":"W3","calls":{},"synchronous":"{:?}","direct":{},"embedded":{},"http":{},"http_server":"{}"}}"#,
        args.calls,
        args.synchronous,
        direct_stats.json(),
        embedded_stats.json(),
        http_stats.json(),
        if args.url.is_some() {
            "external"
        } else {
            "in-process"
        }
    );
    Ok(())
}
