//! `GET /dashboard/jobs/{id}`: one job with everything it carries (payload, result, every
//! attempt's error, progress, tags, metadata), why it is not running, and a timeline of its
//! life; retry, cancel and delete.

use axum::{
    Extension,
    extract::{Path, Query, State},
    response::{IntoResponse, Redirect, Response},
};
use buzzer_engine::EngineError;
use buzzer_types::{Job, JobId, JobState, WaitingKind};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;

use super::{
    error::PageError,
    format,
    layout::{self, Live, Nav, PageCtx},
    session::{Flash, Session},
};

fn parse_id(raw: &str) -> Result<JobId, PageError> {
    raw.trim()
        .parse()
        .map_err(|_| PageError::not_found(format_args!("job {raw}")))
}

async fn load(state: &AppState, id: JobId) -> Result<Job, PageError> {
    match state.engine.get(id).await {
        Err(EngineError::NotFound(_)) => Err(PageError::not_found(format_args!("job {id}"))),
        other => Ok(other?),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Find {
    id: String,
}

/// `GET /dashboard/jobs?id=…`: the "jump to job" box.
pub(crate) async fn find(
    State(state): State<AppState>,
    Query(find): Query<Find>,
) -> Result<Response, PageError> {
    let id = parse_id(&find.id)?;
    load(&state, id).await?;
    Ok(Redirect::to(&format!("/dashboard/jobs/{id}")).into_response())
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    ctx: PageCtx,
) -> Result<Response, PageError> {
    let job = load(&state, parse_id(&raw)?).await?;
    let waiting = state.engine.waiting_reason(&job).await?;
    let now = Timestamp::now();
    let content = html! {
        nav.crumbs aria-label="Breadcrumb" {
            a href="/" { "Overview" } span { "/" }
            a href=(format::queue_url(&job.queue, None, None)) { (job.queue) } span { "/" }
            span.mono { (job.id) }
        }
        div.page-head {
            h1 { "Job " span.mono { (job.id) } }
            (format::state_badge(job.state))
            @if job.cancel_requested && !job.state.is_terminal() {
                span.badge.warn { "cancel requested" }
            }
            div.actions { (actions(&ctx, &job)) }
        }
        @if let Some(w) = &waiting {
            p.waiting data-waiting=(kind_name(w.kind)) role="status" {
                strong { "Why isn't it running? " } (w.message)
                @if let Some(ahead) = w.ahead_job_id {
                    " " a.mono href={ "/dashboard/jobs/" (ahead) } { "Open job " (ahead) }
                }
            }
        }
        div.job-grid {
            section.card { h2 { "Details" } (details(&job, now)) }
            section.card { h2 { "Timeline" } (timeline(&job, now)) }
        }
        section.card {
            h2 { "Payload" }
            pre.json { (format::pretty_json(&job.payload)) }
        }
        @if let Some(result) = &job.result {
            section.card { h2 { "Result" } pre.json { (format::pretty_json(result)) } }
        }
        @if let Some(progress) = &job.progress {
            section.card { h2 { "Progress" } (progress_view(progress)) }
        }
        section.card {
            h2 { "Errors " span.muted { "(" (job.errors.len()) ")" } }
            (errors(&job, now))
        }
        section.card {
            h2 { "Tags and metadata" }
            div.tags {
                @for tag in &job.tags {
                    a.tag href=(format::queue_url(&job.queue, None, Some(tag))) { (tag) }
                }
                @if job.tags.is_empty() { span.muted { "No tags." } }
            }
            @if !job.metadata.is_empty() {
                pre.json { (format::pretty_value(&serde_json::Value::Object(job.metadata.clone()))) }
            }
        }
    };
    let title = format!("Job {}", job.id);
    Ok(layout::page(&ctx, &title, Nav::Overview, Live::Off, content).into_response())
}

fn actions(ctx: &PageCtx, job: &Job) -> Markup {
    let base = format!("/dashboard/jobs/{}", job.id);
    html! {
        @if matches!(job.state, JobState::Dead | JobState::Cancelled) {
            (layout::action(ctx, &format!("{base}/retry"), "Retry", "primary", None))
        }
        @if !job.state.is_terminal() && !job.cancel_requested {
            (layout::action(ctx, &format!("{base}/cancel"), "Cancel", "danger",
                Some("Cancel this job? A running job is asked to stop and ends when its worker reports.")))
        }
        // A running job's worker holds it: it is cancelled first, deleted once it stopped.
        @if job.state != JobState::Running {
            (layout::action(ctx, &format!("{base}/delete"), "Delete", "danger",
                Some("Delete this job for good? Its history goes with it.")))
        }
    }
}

/// The kind as the API spells it, for the page's `data-waiting` marker.
fn kind_name(kind: WaitingKind) -> &'static str {
    match kind {
        WaitingKind::Scheduled => "scheduled",
        WaitingKind::OrderingKey => "ordering_key",
        WaitingKind::QueuePaused => "queue_paused",
        WaitingKind::Leased => "leased",
        WaitingKind::NoWorker => "no_worker",
    }
}

fn details(job: &Job, now: Timestamp) -> Markup {
    html! {
        dl.details {
            dt { "Queue" } dd { a href=(format::queue_url(&job.queue, None, None)) { (job.queue) } }
            dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "Priority" } dd { (job.priority) }
            dt { "Created" } dd { (format::time(job.created_at, now)) }
            @if let Some(worker) = &job.worker_id {
                dt { "Worker" } dd.mono { (worker) }
            }
            @if let (JobState::Running, Some(at)) = (job.state, job.lease_expires_at) {
                dt { "Lease expires" } dd { (format::time(at, now)) }
            }
            @if let Some(key) = &job.idempotency_key {
                dt { "Idempotency key" } dd.mono { (key) }
            }
            @if let Some(key) = &job.ordering_key {
                dt { "Ordering key" } dd.mono { (key) }
            }
            @if let Some(tp) = &job.traceparent {
                dt { "Trace" } dd.mono title="W3C traceparent" { (tp) }
            }
            @if let Some(ms) = job.timeout_ms {
                dt { "Timeout" } dd { (format::age_ms(ms)) }
            }
            dt { "Backoff" }
            dd {
                (format::age_ms(job.backoff.initial_ms)) " × " (job.backoff.factor)
                ", at most " (format::age_ms(job.backoff.max_ms))
            }
        }
    }
}

/// One moment in a job's life.
struct Event {
    at: Timestamp,
    kind: &'static str,
    label: String,
    detail: Option<String>,
}

/// The moments the job records: created, due, each failed attempt, the current attempt's
/// start, the end. Earlier attempts' starts are not kept, so only their failures show.
fn events(job: &Job) -> Vec<Event> {
    let mut events = vec![Event {
        at: job.created_at,
        kind: "created",
        label: "Created".into(),
        detail: None,
    }];
    for e in &job.errors {
        events.push(Event {
            at: e.at,
            kind: "failed",
            label: format!("Attempt {} failed", e.attempt),
            detail: Some(e.message.clone()),
        });
    }
    // While the job waits, when it is (or was) due matters; after that the other moments
    // tell the story.
    let due = match job.state {
        JobState::Scheduled => Some("Scheduled to run"),
        JobState::Retryable => Some("Next attempt due"),
        JobState::Available if job.scheduled_at > job.created_at => Some("Due"),
        _ => None,
    };
    if let Some(label) = due {
        events.push(Event {
            at: job.scheduled_at,
            kind: "due",
            label: label.into(),
            detail: None,
        });
    }
    if let Some(at) = job.started_at {
        events.push(Event {
            at,
            kind: "started",
            label: format!("Attempt {} started", job.attempt),
            detail: job.worker_id.as_ref().map(|w| format!("by {w}")),
        });
    }
    if let Some(at) = job.finished_at {
        events.push(Event {
            at,
            kind: job.state.as_str(),
            label: format!("Finished: {}", job.state),
            detail: None,
        });
    }
    events.sort_by_key(|e| e.at);
    events
}

fn timeline(job: &Job, now: Timestamp) -> Markup {
    html! {
        ol.timeline {
            @for e in events(job) {
                @let future = if e.at > now { " future" } else { "" };
                li class={ "event event-" (e.kind) (future) } {
                    span.event-dot {}
                    div {
                        strong { (e.label) }
                        " " (format::time(e.at, now))
                        @if let Some(d) = &e.detail { div.event-detail { (d) } }
                    }
                }
            }
        }
    }
}

fn errors(job: &Job, now: Timestamp) -> Markup {
    if job.errors.is_empty() {
        return html! { p.muted { "No attempt has failed." } };
    }
    html! {
        ol.errors reversed {
            @for e in job.errors.iter().rev() {
                li {
                    div.error-head { strong { "Attempt " (e.attempt) } " " (format::time(e.at, now)) }
                    pre.error-message { (e.message) }
                    @if !e.details.is_empty() {
                        pre.json { (format::pretty_value(&serde_json::Value::Object(e.details.clone()))) }
                    }
                }
            }
        }
    }
}

/// A bar when the progress is a fraction (0–1), a percentage (0–100), or
/// `{"done": n, "total": m}`; the JSON as sent in any case.
fn progress_view(raw: &buzzer_types::RawValue) -> Markup {
    let value: Option<serde_json::Value> = serde_json::from_str(raw.get()).ok();
    let percent = value.as_ref().and_then(|v| match v {
        serde_json::Value::Number(n) => n.as_f64().map(|f| if f <= 1.0 { f * 100.0 } else { f }),
        serde_json::Value::Object(o) => {
            let done = o.get("done")?.as_f64()?;
            let total = o.get("total")?.as_f64()?;
            (total > 0.0).then(|| done / total * 100.0)
        }
        _ => None,
    });
    html! {
        @if let Some(p) = percent.filter(|p| p.is_finite()) {
            @let p = p.clamp(0.0, 100.0);
            div.progress-row {
                progress max="100" value=(format!("{p:.1}")) {}
                span { (format!("{p:.0}")) "%" }
            }
        }
        pre.json { (format::pretty_json(raw)) }
    }
}

fn after(
    state: &AppState,
    session: &Session,
    id: JobId,
    outcome: Result<Job, EngineError>,
    done: &str,
) -> Response {
    let flash = match outcome {
        Ok(job) => Flash {
            ok: true,
            text: format!("{done}: the job is {} now.", job.state),
        },
        Err(e) => Flash {
            ok: false,
            text: crate::ApiError::from(e).detail().to_owned(),
        },
    };
    state.dashboard.sessions.set_flash(&session.token, flash);
    Redirect::to(&format!("/dashboard/jobs/{id}")).into_response()
}

/// `POST /dashboard/jobs/{id}/retry`: a dead or cancelled job back to available.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let id = parse_id(&raw)?;
    let outcome = state.engine.retry(id).await;
    Ok(after(&state, &session, id, outcome, "Retried"))
}

/// `POST /dashboard/jobs/{id}/cancel`.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let id = parse_id(&raw)?;
    let outcome = state.engine.cancel(id).await;
    Ok(after(&state, &session, id, outcome, "Cancelled"))
}

/// `POST /dashboard/jobs/{id}/delete`: on success back to the job's queue, the job being gone.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let id = parse_id(&raw)?;
    match state.engine.delete(id).await {
        Ok(job) => {
            let text = format!("Deleted job {id}.");
            state
                .dashboard
                .sessions
                .set_flash(&session.token, Flash { ok: true, text });
            Ok(Redirect::to(&format::queue_url(&job.queue, None, None)).into_response())
        }
        Err(e) => Ok(after(&state, &session, id, Err(e), "Deleted")),
    }
}
