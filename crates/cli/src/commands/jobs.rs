//! `buzzer jobs get|list|cancel|retry|delete`.

use buzzer_types::{Job, JobListResponse, JobState, RawValue, WaitingReason};
use clap::{Args, Subcommand};

use super::Context;
use crate::output;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Show one job: state, attempts, payload, result and errors.
    Get {
        /// The job's id, as enqueue answered it.
        id: String,
    },
    /// List jobs, newest first.
    List(ListArgs),
    /// Cancel a job. A running job is asked to stop: its worker learns it at its next heartbeat.
    Cancel {
        /// The job's id.
        id: String,
    },
    /// Retry a dead or cancelled job: it becomes available again, attempts and errors kept.
    Retry {
        /// The job's id.
        id: String,
    },
    /// Delete a job for good, history and all. A running job is refused: cancel it first.
    Delete {
        /// The job's id.
        id: String,
    },
}

/// The part of `GET /v1/jobs/{id}` that is not the job.
#[derive(Debug, serde::Deserialize)]
struct Why {
    waiting_reason: Option<WaitingReason>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs of this queue.
    #[arg(long, short)]
    pub queue: Option<String>,
    /// Only jobs in this state.
    #[arg(long, short, value_parser = parse_state)]
    pub state: Option<JobState>,
    /// Only jobs with this tag.
    #[arg(long, short)]
    pub tag: Option<String>,
    /// Jobs per page (1..1000; the server's default is 50).
    #[arg(long, short = 'n', value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Continue after this cursor: the `next_cursor` of the previous page.
    #[arg(long)]
    pub cursor: Option<String>,
}

pub fn parse_state(s: &str) -> Result<JobState, String> {
    s.parse()
        .map_err(|e: buzzer_types::ParseStateError| e.to_string())
}

pub async fn run(cmd: JobsCommand, ctx: &Context) -> anyhow::Result<()> {
    match cmd {
        JobsCommand::Get { id } => {
            // Read once, decoded twice: the job keeps its payload's bytes, and the answer's
            // `waiting_reason` (not part of a job) comes along.
            let raw: Box<RawValue> = ctx.client.get(&["v1", "jobs", &id], &[]).await?;
            if ctx.json {
                return output::print_json(&raw);
            }
            let job: Job = serde_json::from_str(raw.get())?;
            let why: Why = serde_json::from_str(raw.get())?;
            let mut view = output::job_view(&job);
            if let Some(reason) = why.waiting_reason {
                view.push_str(&format!("\nwhy not running: {}", reason.message));
            }
            output::print(&view)
        }
        JobsCommand::List(args) => list(ctx, args).await,
        JobsCommand::Cancel { id } => {
            let job: Job = ctx
                .client
                .post(&["v1", "jobs", &id, "cancel"], None::<&()>)
                .await?;
            if ctx.json {
                return output::print_json(&job);
            }
            if job.cancel_requested && job.state == JobState::Running {
                output::print(&format!(
                    "cancellation requested for job {}: it is running, and its worker stops at its next heartbeat",
                    job.id
                ))
            } else {
                output::print(&format!("cancelled job {}", job.id))
            }
        }
        JobsCommand::Retry { id } => {
            let job: Job = ctx
                .client
                .post(&["v1", "jobs", &id, "retry"], None::<&()>)
                .await?;
            if ctx.json {
                return output::print_json(&job);
            }
            output::print(&format!(
                "job {} is {} again (attempt {}/{}: the counter is kept)",
                job.id, job.state, job.attempt, job.max_attempts
            ))
        }
        JobsCommand::Delete { id } => {
            let job: Job = ctx.client.delete_json(&["v1", "jobs", &id]).await?;
            if ctx.json {
                return output::print_json(&job);
            }
            output::print(&format!("deleted job {} (it was {})", job.id, job.state))
        }
    }
}

async fn list(ctx: &Context, args: ListArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    push(&mut query, "queue", args.queue);
    push(&mut query, "state", args.state.map(|s| s.to_string()));
    push(&mut query, "tag", args.tag);
    push(&mut query, "limit", args.limit.map(|n| n.to_string()));
    push(&mut query, "cursor", args.cursor);
    let page: JobListResponse = ctx.client.get(&["v1", "jobs"], &query).await?;
    print_page(ctx, &page, false)
}

/// Prints a page of jobs, and how to ask for the next one.
pub fn print_page(ctx: &Context, page: &JobListResponse, last_error: bool) -> anyhow::Result<()> {
    if ctx.json {
        return output::print_json(page);
    }
    if page.jobs.is_empty() {
        return output::print("no jobs");
    }
    output::print(&output::jobs_table(&page.jobs, last_error))?;
    if let Some(cursor) = &page.next_cursor {
        output::print(&format!("more: add --cursor {cursor}"))?;
    }
    Ok(())
}

pub fn push(query: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value {
        query.push((key, v));
    }
}
