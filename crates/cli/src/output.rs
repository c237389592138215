//! What operator commands print: tables and job views for people, one JSON document for scripts.

use std::io::Write;

use buzzer_types::{Job, QueueInfo};
use comfy_table::{Table, presets};
use jiff::Timestamp;
use serde::Serialize;

/// Writes to stdout. A closed pipe (`buzzer jobs list | head`) is not an error worth reporting.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Prints one pretty JSON document. Going through `Value` re-indents the raw payloads too.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let value = serde_json::to_value(value)?;
    print(&serde_json::to_string_pretty(&value)?)
}

/// kubectl-style: no borders, so the output greps and cuts cleanly.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING).set_header(header.to_vec());
    t
}

/// Jobs, one per row. `last_error` adds the message of the latest failed attempt (for the DLQ).
pub fn jobs_table(jobs: &[Job], last_error: bool) -> String {
    let mut header = vec!["ID", "QUEUE", "STATE", "ATTEMPT", "PRIORITY", "AGE"];
    if last_error {
        header.push("LAST ERROR");
    }
    let mut t = table(&header);
    let now = Timestamp::now();
    for job in jobs {
        let mut row = vec![
            job.id.to_string(),
            job.queue.clone(),
            job.state.to_string(),
            format!("{}/{}", job.attempt, job.max_attempts),
            job.priority.to_string(),
            age(now, job.created_at),
        ];
        if last_error {
            let message = job.errors.last().map_or("", |e| e.message.as_str());
            row.push(truncate(&first_line(message), 60));
        }
        t.add_row(row);
    }
    t.to_string()
}

pub fn queues_table(queues: &[QueueInfo]) -> String {
    let mut t = table(&[
        "QUEUE",
        "PAUSED",
        "SCHEDULED",
        "AVAILABLE",
        "RUNNING",
        "RETRYABLE",
        "COMPLETED",
        "DEAD",
        "CANCELLED",
        "OLDEST WAITING",
    ]);
    for q in queues {
        let c = &q.counts;
        t.add_row(vec![
            q.name.clone(),
            if q.paused { "yes" } else { "no" }.to_owned(),
            c.scheduled.to_string(),
            c.available.to_string(),
            c.running.to_string(),
            c.retryable.to_string(),
            c.completed.to_string(),
            c.dead.to_string(),
            c.cancelled.to_string(),
            if c.available == 0 {
                "-".to_owned()
            } else {
                duration_short(q.oldest_available_age_ms)
            },
        ]);
    }
    t.to_string()
}

/// One job as labelled lines; optional fields only when they say something.
pub fn job_view(job: &Job) -> String {
    let now = Timestamp::now();
    let when = |ts: Timestamp| format!("{ts} ({})", relative(now, ts));
    let mut lines: Vec<(&str, String)> = vec![
        ("id", job.id.to_string()),
        ("queue", job.queue.clone()),
        ("state", job.state.to_string()),
        ("attempt", format!("{}/{}", job.attempt, job.max_attempts)),
        ("priority", job.priority.to_string()),
        ("created", when(job.created_at)),
        ("scheduled", when(job.scheduled_at)),
    ];
    let mut opt = |label, value: Option<String>| {
        if let Some(v) = value {
            lines.push((label, v));
        }
    };
    opt("started", job.started_at.map(when));
    opt("finished", job.finished_at.map(when));
    opt("worker", job.worker_id.clone());
    opt("lease expires", job.lease_expires_at.map(when));
    opt(
        "cancel",
        job.cancel_requested
            .then(|| "requested (the worker stops at its next heartbeat)".to_owned()),
    );
    opt("tags", (!job.tags.is_empty()).then(|| job.tags.join(", ")));
    opt("idempotency key", job.idempotency_key.clone());
    opt("ordering key", job.ordering_key.clone());
    opt("timeout", job.timeout_ms.map(duration_short));
    opt(
        "metadata",
        (!job.metadata.is_empty())
            .then(|| serde_json::Value::Object(job.metadata.clone()).to_string()),
    );
    opt("payload", Some(job.payload.get().to_owned()));
    opt(
        "progress",
        job.progress.as_ref().map(|p| p.get().to_owned()),
    );
    opt("result", job.result.as_ref().map(|r| r.get().to_owned()));

    let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let mut out: Vec<String> = lines
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {value}"))
        .collect();
    if !job.errors.is_empty() {
        out.push("errors:".to_owned());
        for e in &job.errors {
            // Continuation lines of a multi-line message (a backtrace) stay indented.
            let message = e.message.replace('\n', "\n    ");
            out.push(format!("  attempt {} at {}: {message}", e.attempt, e.at));
        }
    }
    out.join("\n")
}

/// How long ago `then` was, e.g. `3m12s`.
fn age(now: Timestamp, then: Timestamp) -> String {
    let ms = now.as_millisecond().saturating_sub(then.as_millisecond());
    duration_short(u64::try_from(ms).unwrap_or(0))
}

fn relative(now: Timestamp, ts: Timestamp) -> String {
    let diff = ts.as_millisecond() - now.as_millisecond();
    if diff > 0 {
        format!("in {}", duration_short(diff.unsigned_abs()))
    } else {
        format!("{} ago", duration_short(diff.unsigned_abs()))
    }
}

/// The two largest units of a duration: `850ms`, `42s`, `3m12s`, `2h5m`, `3d4h`.
pub fn duration_short(ms: u64) -> String {
    let s = ms / 1000;
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    match () {
        _ if s == 0 => format!("{ms}ms"),
        _ if m == 0 => format!("{s}s"),
        _ if h == 0 => two(m, "m", s % 60, "s"),
        _ if d == 0 => two(h, "h", m % 60, "m"),
        _ => two(d, "d", h % 24, "h"),
    }
}

fn two(big: u64, big_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{small}{small_unit}")
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_owned()
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max_chars - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_durations() {
        assert_eq!(duration_short(0), "0ms");
        assert_eq!(duration_short(850), "850ms");
        assert_eq!(duration_short(42_000), "42s");
        assert_eq!(duration_short(180_000), "3m");
        assert_eq!(duration_short(192_500), "3m12s");
        assert_eq!(duration_short(7_500_000), "2h5m");
        assert_eq!(duration_short(3 * 86_400_000 + 4 * 3_600_000), "3d4h");
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo wörld", 5), "héll…");
        assert_eq!(first_line("a\nb"), "a");
    }

    #[test]
    fn renders_a_job() {
        let job: Job = serde_json::from_str(
            r#"{"id":"0000000000001","queue":"emails","state":"dead","payload":{"to":"ada"},
            "priority":5,"attempt":2,"max_attempts":2,
            "backoff":{"initial_ms":1000,"max_ms":3600000,"factor":2.0},
            "created_at":"2026-01-01T00:00:00Z","scheduled_at":"2026-01-01T00:00:00Z",
            "errors":[{"attempt":2,"at":"2026-01-01T00:00:01Z","message":"SMTP timeout"}],
            "tags":["welcome"]}"#,
        )
        .unwrap();
        let view = job_view(&job);
        assert!(view.contains("state      dead"), "{view}");
        assert!(view.contains("attempt    2/2"), "{view}");
        assert!(view.contains(r#"payload    {"to":"ada"}"#), "{view}");
        assert!(
            view.contains("attempt 2 at 2026-01-01T00:00:01Z: SMTP timeout"),
            "{view}"
        );
        let table = jobs_table(&[job], true);
        assert!(table.contains("LAST ERROR"), "{table}");
        assert!(table.contains("SMTP timeout"), "{table}");
    }
}
