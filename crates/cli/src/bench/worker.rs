//! `buzzer bench-worker` (hidden): the separate worker process of `buzzer bench --mode http`.
//! It runs no-op handlers for one queue against the server until it is stopped.

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::BenchJob;

#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    #[arg(long)]
    pub queue: String,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
}

pub async fn run(args: BenchWorkerArgs, server: &str, api_key: Option<&str>) -> anyhow::Result<()> {
    let client = match api_key {
        Some(key) => buzzer::Buzzer::connect_with(server, key).await?,
        None => buzzer::Buzzer::connect(server).await?,
    };
    let worker = buzzer::Worker::builder(&client)
        .register_in::<BenchJob, _>(args.queue.clone(), |_ctx, job: BenchJob| async move {
            Ok::<_, buzzer::JobError>(job.n)
        })
        .queue_concurrency(args.queue, args.concurrency)
        .build()?;
    let mut term = signal(SignalKind::terminate())?;
    crate::output::print("ready")?;
    worker
        .run(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await;
    Ok(())
}
