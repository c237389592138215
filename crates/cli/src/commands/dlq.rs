//! `buzzer dlq list|retry`: the dead-letter queue.

use std::io::IsTerminal;

use buzzer_types::{DeadRetryRequest, JobListResponse, QueueInfo, RetriedResponse};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{
    Context,
    jobs::{print_page, push},
};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead jobs (of one queue, or of all), newest first, with their last error.
    List {
        /// Only this queue's dead jobs.
        queue: Option<String>,
        /// Jobs per page (1..1000; the server's default is 50).
        #[arg(long, short = 'n', value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
        /// Continue after this cursor: the `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Replay a queue's dead jobs (oldest first): they become available again.
    Retry {
        /// The queue whose dead jobs to replay.
        queue: String,
        /// Only dead jobs with this tag.
        #[arg(long, short)]
        tag: Option<String>,
        /// Replay at most this many.
        #[arg(long, short = 'n', value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
}

/// Jobs per replay request: small enough that each call is a short transaction on the server.
const BATCH: u64 = 1000;

pub async fn run(cmd: DlqCommand, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        DlqCommand::List {
            queue,
            limit,
            cursor,
        } => {
            let mut query = vec![("state", "dead".to_owned())];
            push(&mut query, "queue", queue);
            push(&mut query, "limit", limit.map(|n| n.to_string()));
            push(&mut query, "cursor", cursor);
            let page: JobListResponse = ctx.client.get(&["v1", "jobs"], &query).await?;
            print_page(ctx, &page, true)
        }
        DlqCommand::Retry { queue, tag, limit } => retry(ctx, &queue, tag, limit).await,
    }
}

#[derive(Debug, Serialize)]
struct Replayed<'a> {
    queue: &'a str,
    retried: u64,
}

async fn retry(
    ctx: &Context,
    queue: &str,
    tag: Option<String>,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    let info: QueueInfo = ctx.client.get(&["v1", "queues", queue], &[]).await?;
    // Never replay more than the DLQ held when we started: jobs that die again during the
    // replay (a still-broken downstream) must not keep the loop going forever.
    let target = limit.map_or(info.counts.dead, |l| l.min(info.counts.dead));
    let bar = progress_bar(ctx, target);
    let mut retried = 0;
    while retried < target {
        let batch = BATCH.min(target - retried);
        let body = DeadRetryRequest {
            tag: tag.clone(),
            ids: None,
            limit: Some(u32::try_from(batch)?),
        };
        let answer: RetriedResponse = ctx
            .client
            .post(&["v1", "queues", queue, "dead", "retry"], Some(&body))
            .await?;
        retried += answer.retried;
        bar.inc(answer.retried);
        if answer.retried < batch {
            break;
        }
    }
    bar.finish_and_clear();
    if ctx.json {
        output::print_json(&Replayed { queue, retried })
    } else {
        output::print(&format!(
            "retried {retried} dead job{} of queue {queue}",
            if retried == 1 { "" } else { "s" }
        ))
    }
}

/// A bar on stderr for people watching; nothing for scripts or when stderr is not a terminal.
fn progress_bar(ctx: &Context, len: u64) -> ProgressBar {
    if ctx.json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} dead jobs replayed, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}
