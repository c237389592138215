//! `buzzer schedules [list|create|delete]`.

use buzzer_types::{ScheduleInfo, ScheduleListResponse, ScheduleRequest};
use clap::{Args, Subcommand};
use serde_json::value::RawValue;

use super::Context;
use crate::output;

#[derive(Debug, Args)]
pub struct SchedulesArgs {
    #[command(subcommand)]
    pub command: Option<SchedulesCommand>,
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// Every schedule with its last and next fire time (the default).
    List,
    /// Create or replace a schedule: a job in QUEUE on every tick of the cron expression.
    Create {
        /// The schedule's name.
        name: String,
        /// 5 fields (`*/15 * * * *`) or 6 with seconds first (`*/10 * * * * *`).
        #[arg(long)]
        cron: String,
        /// The queue each tick's job goes to.
        #[arg(long)]
        queue: String,
        /// The IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Each job's payload, as JSON.
        #[arg(long, default_value = "{}")]
        payload: String,
        /// Each job's priority (−100..=100).
        #[arg(long)]
        priority: Option<i32>,
        /// Attempts each job gets.
        #[arg(long)]
        max_attempts: Option<i32>,
    },
    /// Delete a schedule (jobs it already enqueued stay).
    Delete { name: String },
}

pub async fn run(args: SchedulesArgs, ctx: &Context) -> anyhow::Result<()> {
    match args.command.unwrap_or(SchedulesCommand::List) {
        SchedulesCommand::List => {
            let list: ScheduleListResponse = ctx.client.get(&["v1", "schedules"], &[]).await?;
            if ctx.json {
                output::print_json(&list)
            } else if list.schedules.is_empty() {
                output::print("no schedules")
            } else {
                output::print(&schedules_table(&list.schedules))
            }
        }
        SchedulesCommand::Create {
            name,
            cron,
            queue,
            timezone,
            payload,
            priority,
            max_attempts,
        } => {
            let payload = RawValue::from_string(payload)
                .map_err(|e| anyhow::anyhow!("--payload is not JSON: {e}"))?;
            let req = ScheduleRequest {
                timezone: Some(timezone),
                priority,
                max_attempts,
                ..ScheduleRequest::new(cron, queue, payload)
            };
            let info: ScheduleInfo = ctx.client.put(&["v1", "schedules", &name], &req).await?;
            if ctx.json {
                return output::print_json(&info);
            }
            let next = info
                .next_fire_times
                .first()
                .map_or("never".to_owned(), ToString::to_string);
            output::print(&format!(
                "schedule {} ({} {}) → queue {}; next at {next}",
                info.name, info.cron, info.timezone, info.queue
            ))
        }
        SchedulesCommand::Delete { name } => {
            ctx.client.delete(&["v1", "schedules", &name]).await?;
            if ctx.json {
                output::print_json(&serde_json::json!({"deleted": name}))
            } else {
                output::print(&format!("deleted schedule {name}"))
            }
        }
    }
}

fn schedules_table(schedules: &[ScheduleInfo]) -> String {
    let mut t = output::table(&["NAME", "CRON", "TIMEZONE", "QUEUE", "LAST TICK", "NEXT"]);
    for s in schedules {
        t.add_row(vec![
            s.name.clone(),
            s.cron.clone(),
            s.timezone.clone(),
            s.queue.clone(),
            s.last_tick_at.map_or("-".to_owned(), |t| t.to_string()),
            s.next_fire_times
                .first()
                .map_or("-".to_owned(), ToString::to_string),
        ]);
    }
    t.to_string()
}
