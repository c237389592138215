//! `GET /`: the overview. Totals across queues, live charts of throughput, failures, wait and
//! run time, and a table of every queue's counts by state with its oldest waiting job. The
//! script keeps the numbers and charts current (`data-*` attributes mark what it updates) and
//! adds rows for queues that appear.

use axum::{extract::State, response::IntoResponse, response::Response};
use buzzer_types::{JobState, QueueInfo};
use maud::{Markup, html};

use crate::AppState;

use super::{
    error::PageError,
    format,
    layout::{self, Live, Nav, PageCtx},
};

/// The cards at the top: the states an operator watches, summed over queues.
const CARDS: [(JobState, &str); 4] = [
    (JobState::Available, "Waiting"),
    (JobState::Running, "Running"),
    (JobState::Retryable, "Retrying"),
    (JobState::Dead, "Dead"),
];

pub(crate) async fn page(
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response, PageError> {
    let queues = state.engine.queues().await?;
    let content = html! {
        div.page-head {
            h1 { "Overview" }
            span.live title="Updates every two seconds" { span.dot {} "Live" }
        }
        (cards(&queues))
        section.charts.two-by-two {
            (chart("Throughput", "jobs completed per second", "completed", Scale::Rate))
            (chart("Failures", "failed attempts per second", "failed", Scale::Rate))
            (chart("Wait", "mean, due to leased", "wait", Scale::Millis))
            (chart("Run time", "mean per attempt", "run", Scale::Millis))
        }
        section.card {
            h2 { "Queues" }
            (queue_table(&queues))
        }
    };
    Ok(layout::page(&ctx, "Overview", Nav::Overview, Live::Overview, content).into_response())
}

fn cards(queues: &[QueueInfo]) -> Markup {
    let total = |state: JobState| queues.iter().map(|q| q.counts.get(state)).sum::<u64>();
    let oldest = queues
        .iter()
        .map(|q| q.oldest_available_age_ms)
        .max()
        .unwrap_or(0);
    html! {
        section.cards {
            @for (state, label) in CARDS {
                div class={ "stat stat-" (state) } {
                    span.stat-label { (label) }
                    span.stat-value data-total=(state) { (format::count(total(state))) }
                }
            }
            div.stat {
                span.stat-label { "Oldest waiting" }
                span.stat-value data-total="oldest" { (format::waiting_age(oldest)) }
            }
        }
    }
}

/// What a chart's series measure, which says how the script writes their values.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scale {
    /// Events per second; no sample means none.
    Rate,
    /// A mean time in milliseconds; no sample means no job to average, and the figure beside
    /// the title shows the latest mean instead.
    Millis,
}

impl Scale {
    fn name(self) -> &'static str {
        match self {
            Scale::Rate => "rate",
            Scale::Millis => "ms",
        }
    }
}

/// An empty chart the script draws into; `series` names the fields of the stats series it
/// plots.
pub(crate) fn chart(title: &str, unit: &str, series: &str, scale: Scale) -> Markup {
    html! {
        figure.card.chart-card {
            figcaption {
                span.chart-title { (title) }
                span.chart-unit { (unit) ", last 5 minutes" }
                span.chart-now data-chart-now=(series) data-scale=(scale.name()) {}
            }
            div.chart data-chart=(series) data-scale=(scale.name()) role="img"
                aria-label={ (title) ": " (unit) } {
                noscript { "The charts need JavaScript." }
            }
        }
    }
}

fn queue_table(queues: &[QueueInfo]) -> Markup {
    html! {
        div.table-scroll {
            table.queues data-queue-table {
                thead {
                    tr {
                        th { "Queue" }
                        @for state in JobState::ALL {
                            th.num { (state) }
                        }
                        th.num { "Oldest waiting" }
                    }
                }
                tbody {
                    @for q in queues {
                        (queue_row(q))
                    }
                }
            }
            p.empty hidden[!queues.is_empty()] data-empty {
                "No queues yet. A queue appears when the first job names it: "
                code { "curl localhost:2899/v1/queues/emails/jobs -d '{\"payload\": {}}'" }
            }
            // The script clones this for a queue that appears while the page is open.
            template id="queue-row" {
                (row(None, "", false, |_| 0, "—"))
            }
        }
    }
}

fn queue_row(q: &QueueInfo) -> Markup {
    row(
        Some(&q.name),
        &q.name,
        q.paused,
        |s| q.counts.get(s),
        &format::waiting_age(q.oldest_available_age_ms),
    )
}

fn row(
    name: Option<&str>,
    shown: &str,
    paused: bool,
    count: impl Fn(JobState) -> u64,
    age: &str,
) -> Markup {
    let href = |state: Option<JobState>| name.map(|n| format::queue_url(n, state, None));
    html! {
        tr data-queue=[name] {
            th scope="row" {
                a.queue-name href=[href(None)] { (shown) }
                span.badge.paused hidden[!paused] data-paused { "paused" }
            }
            @for state in JobState::ALL {
                td.num {
                    a.count.zero[count(state) == 0] href=[href(Some(state))] data-state=(state) { (format::count(count(state))) }
                }
            }
            td.num data-age { (age) }
        }
    }
}
