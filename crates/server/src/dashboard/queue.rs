//! `GET /dashboard/queues/{queue}`: one queue's jobs, newest first, by state (tabs with live
//! counts), filtered by tag, paged by cursor; pause/resume and replaying the dead-letter queue.

use axum::{
    Extension,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use buzzer_engine::{EngineError, JobList};
use buzzer_types::{DeadRetryRequest, Job, JobId, JobState, QueueInfo, validate_name};
use jiff::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

use crate::AppState;

use super::{
    error::PageError,
    format,
    layout::{self, Live, Nav, PageCtx},
    overview::{Scale, chart},
    session::{Flash, Session},
};

const PAGE_SIZE: u32 = 50;

#[derive(Debug, Deserialize)]
pub(crate) struct Filters {
    state: Option<String>,
    tag: Option<String>,
    cursor: Option<String>,
}

/// The filters as given, blank fields dropped and checked.
struct Parsed {
    state: Option<JobState>,
    tag: Option<String>,
    cursor: Option<JobId>,
}

fn checked(name: String) -> Result<String, PageError> {
    match validate_name(&name) {
        Ok(()) => Ok(name),
        Err(_) => Err(PageError::not_found(format_args!("queue {name}"))),
    }
}

fn parse(f: Filters) -> Result<Parsed, PageError> {
    let blank_to_none =
        |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let bad = |m: String| PageError::new(StatusCode::BAD_REQUEST, m);
    Ok(Parsed {
        state: blank_to_none(f.state)
            .map(|s| s.parse::<JobState>())
            .transpose()
            .map_err(|e| bad(e.to_string()))?,
        tag: blank_to_none(f.tag),
        cursor: blank_to_none(f.cursor)
            .map(|c| c.parse::<JobId>())
            .transpose()
            .map_err(|_| bad("That is not a page of this list.".into()))?,
    })
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(filters): Query<Filters>,
    ctx: PageCtx,
) -> Result<Response, PageError> {
    let name = checked(name)?;
    let filters = parse(filters)?;
    let queue = match state.engine.queue(&name).await {
        Err(EngineError::NotFound(_)) => {
            return Err(PageError::not_found(format_args!("queue {name}")));
        }
        other => other?,
    };
    let list = state
        .engine
        .list(JobList {
            queue: Some(name.clone()),
            state: filters.state,
            tag: filters.tag.clone(),
            before: filters.cursor,
            limit: PAGE_SIZE,
        })
        .await?;
    let now = Timestamp::now();
    let content = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/" { "Overview" } span { "/" } span { (name) } }
        div.page-head {
            h1 { (name) }
            span.badge.paused hidden[!queue.paused] data-paused { "paused" }
            span.live title="Counts update every two seconds" { span.dot {} "Live" }
            div.actions { (actions(&ctx, &queue)) }
        }
        (tabs(&queue, &filters))
        section.charts {
            (chart("Throughput", "completed and failed per second", "completed,failed", Scale::Rate))
            (chart("Wait", "mean, due to leased", "wait", Scale::Millis))
            (chart("Run time", "mean per attempt", "run", Scale::Millis))
        }
        section.card {
            form.filters method="get" action=(format::queue_url(&name, None, None)) {
                @if let Some(s) = filters.state {
                    input type="hidden" name="state" value=(s);
                }
                label for="tag" { "Tag" }
                input id="tag" type="search" name="tag" value=[filters.tag.as_deref()] placeholder="any tag";
                button type="submit" { "Filter" }
                @if filters.tag.is_some() {
                    a href=(format::queue_url(&name, filters.state, None)) { "Clear" }
                }
            }
            (jobs_table(&list.jobs, now))
            nav.pager aria-label="Pages" {
                @if filters.cursor.is_some() {
                    a href=(format::queue_url(&name, filters.state, filters.tag.as_deref())) { "← Newest" }
                }
                @if let Some(next) = &list.next_cursor {
                    a href={ (format::queue_url(&name, filters.state, filters.tag.as_deref()))
                        (if filters.state.is_some() || filters.tag.is_some() { "&" } else { "?" })
                        "cursor=" (next) } { "Older →" }
                }
            }
        }
    };
    Ok(layout::page(&ctx, &name, Nav::Overview, Live::Queue(&name), content).into_response())
}

fn actions(ctx: &PageCtx, queue: &QueueInfo) -> Markup {
    let base = format!("/dashboard/queues/{}", queue.name);
    let dead = queue.counts.dead;
    html! {
        @if queue.paused {
            (layout::action(ctx, &format!("{base}/resume"), "Resume", "primary", None))
        } @else {
            (layout::action(ctx, &format!("{base}/pause"), "Pause", "", None))
        }
        @if dead > 0 {
            (layout::action(
                ctx,
                &format!("{base}/dead/retry"),
                &format!("Retry {} dead", format::count(dead)),
                "",
                Some(&format!("Send all {dead} dead jobs of {} back to available?", queue.name)),
            ))
        }
    }
}

/// One tab per state, with its live count; "All" first.
fn tabs(queue: &QueueInfo, filters: &Parsed) -> Markup {
    let tag = filters.tag.as_deref();
    let total: u64 = JobState::ALL.iter().map(|s| queue.counts.get(*s)).sum();
    html! {
        nav.tabs aria-label="States" data-queue=(queue.name) {
            a.tab.active[filters.state.is_none()] href=(format::queue_url(&queue.name, None, tag)) {
                "All" span.tab-count data-state="all" { (format::count(total)) }
            }
            @for state in JobState::ALL {
                @let active = if filters.state == Some(state) { " active" } else { "" };
                a class={ "tab tab-" (state) (active) }
                    href=(format::queue_url(&queue.name, Some(state), tag)) {
                    (state) span.tab-count data-state=(state) { (format::count(queue.counts.get(state))) }
                }
            }
        }
    }
}

fn jobs_table(jobs: &[Job], now: Timestamp) -> Markup {
    if jobs.is_empty() {
        return html! { p.empty { "No jobs here." } };
    }
    html! {
        div.table-scroll {
            table.jobs {
                thead {
                    tr {
                        th { "Job" } th { "State" } th.num { "Attempt" } th.num { "Priority" }
                        th { "Tags" } th { "Created" } th { "Due / finished" } th { "Last error" }
                    }
                }
                tbody {
                    @for job in jobs {
                        tr {
                            td { a.mono href={ "/dashboard/jobs/" (job.id) } { (job.id) } }
                            td { (format::state_badge(job.state)) }
                            td.num { (job.attempt) " / " (job.max_attempts) }
                            td.num { (job.priority) }
                            td { div.tags { @for tag in &job.tags { span.tag { (tag) } } } }
                            td.nowrap { (format::time(job.created_at, now)) }
                            td.nowrap {
                                @match job.finished_at {
                                    Some(at) => (format::time(at, now)),
                                    None => (format::time(job.scheduled_at, now)),
                                }
                            }
                            td.error-cell {
                                @if let Some(e) = job.errors.last() { span title=(e.message) { (e.message) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs an action, leaves its outcome as a flash message and goes back to the queue's page.
fn after(
    state: &AppState,
    session: &Session,
    queue: &str,
    outcome: Result<String, EngineError>,
) -> Response {
    let flash = match outcome {
        Ok(text) => Flash { ok: true, text },
        Err(e) => Flash {
            ok: false,
            text: crate::ApiError::from(e).detail().to_owned(),
        },
    };
    state.dashboard.sessions.set_flash(&session.token, flash);
    Redirect::to(&format::queue_url(queue, None, None)).into_response()
}

/// `POST /dashboard/queues/{queue}/pause`.
pub(crate) async fn pause(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let queue = checked(queue)?;
    let outcome = state.engine.set_paused(&queue, true).await;
    Ok(after(
        &state,
        &session,
        &queue,
        outcome.map(|_| format!("Paused {queue}: it keeps accepting jobs but hands none out.")),
    ))
}

/// `POST /dashboard/queues/{queue}/resume`.
pub(crate) async fn resume(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let queue = checked(queue)?;
    let outcome = state.engine.set_paused(&queue, false).await;
    Ok(after(
        &state,
        &session,
        &queue,
        outcome.map(|_| format!("Resumed {queue}.")),
    ))
}

/// `POST /dashboard/queues/{queue}/dead/retry`: replays the whole DLQ of the queue.
pub(crate) async fn replay_dead(
    State(state): State<AppState>,
    Path(queue): Path<String>,
    Extension(session): Extension<Session>,
) -> Result<Response, PageError> {
    let queue = checked(queue)?;
    let outcome = state
        .engine
        .retry_dead(&queue, DeadRetryRequest::default(), |_| {})
        .await;
    Ok(after(
        &state,
        &session,
        &queue,
        outcome.map(|n| format!("Sent {} dead jobs back to available.", format::count(n))),
    ))
}
