//! `buzzer bench-worker` (hidden): the separate worker process of `buzzer bench --mode http`.
//! It runs the bench's handlers for one queue against the server until it is stopped.

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use super::{
    BenchJob, CallJob,
    target::{echo, noop},
};

#[derive(Debug, Args)]
pub struct BenchWorkerArgs {
    #[arg(long)]
    pub queue: String,
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// Hand each job's `n` back (W3's calls check it) instead of returning nothing.
    #[arg(long)]
    pub echo: bool,
}

pub async fn run(args: BenchWorkerArgs, server: &str, api_key: Option<&str>) -> anyhow::Result<()> {
    let client = match api_key {
        Some(key) => buzzer::Buzzer::connect_with(server, key).await?,
        None => buzzer::Buzzer::connect(server).await?,
    };
    let builder = buzzer::Worker::builder(&client);
    let builder = if args.echo {
        builder.register_in::<CallJob, _>(args.queue.clone(), echo)
    } else {
        builder.register_in::<BenchJob, _>(args.queue.clone(), noop)
    };
    let worker = builder
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
