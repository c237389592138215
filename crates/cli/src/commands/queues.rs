//! `buzzer queues [list|pause Q|resume Q]`.

use buzzer_types::{QueueInfo, QueueListResponse};
use clap::{Args, Subcommand};

use super::Context;
use crate::output;

#[derive(Debug, Args)]
pub struct QueuesArgs {
    #[command(subcommand)]
    pub command: Option<QueuesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Every queue with its counts per state (the default).
    List,
    /// Pause a queue: it still accepts jobs but hands none out.
    Pause {
        /// The queue's name.
        queue: String,
    },
    /// Resume a paused queue.
    Resume {
        /// The queue's name.
        queue: String,
    },
}

pub async fn run(args: QueuesArgs, ctx: &Context) -> anyhow::Result<()> {
    match args.command.unwrap_or(QueuesCommand::List) {
        QueuesCommand::List => {
            let list: QueueListResponse = ctx.client.get(&["v1", "queues"], &[]).await?;
            if ctx.json {
                output::print_json(&list)
            } else if list.queues.is_empty() {
                output::print("no queues yet (a queue exists once a job names it)")
            } else {
                output::print(&output::queues_table(&list.queues))
            }
        }
        QueuesCommand::Pause { queue } => set_paused(ctx, &queue, true).await,
        QueuesCommand::Resume { queue } => set_paused(ctx, &queue, false).await,
    }
}

async fn set_paused(ctx: &Context, queue: &str, paused: bool) -> anyhow::Result<()> {
    let action = if paused { "pause" } else { "resume" };
    let info: QueueInfo = ctx
        .client
        .post(&["v1", "queues", queue, action], None::<&()>)
        .await?;
    if ctx.json {
        return output::print_json(&info);
    }
    let waiting = info.counts.available + info.counts.scheduled + info.counts.retryable;
    if paused {
        output::print(&format!(
            "paused queue {}: it accepts jobs but hands none out ({waiting} waiting)",
            info.name
        ))
    } else {
        output::print(&format!("resumed queue {} ({waiting} waiting)", info.name))
    }
}
