//! `GET /dashboard/topics`: every topic with its subscriptions (a queue or a webhook, the
//! filter, enabled or disabled) and each webhook's delivery health. Secrets never show: only
//! their first characters, to tell which one is in use.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use buzzer_types::{DeliveryHealth, SubscriptionInfo};
use jiff::Timestamp;
use maud::{Markup, html};

use crate::AppState;

use super::{
    error::PageError,
    format,
    layout::{self, Live, Nav, PageCtx},
};

/// A webhook is failing once this many deliveries in a row went wrong.
const FAILING_AFTER: u32 = 3;

pub(crate) async fn page(
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response, PageError> {
    let subs = state.engine.subscriptions(None).await?;
    let now = Timestamp::now();
    // Sorted by topic then name by the store: one section per run of a topic.
    let mut topics: Vec<(&str, Vec<&SubscriptionInfo>)> = Vec::new();
    for sub in &subs {
        match topics.last_mut() {
            Some((topic, list)) if *topic == sub.topic => list.push(sub),
            _ => topics.push((&sub.topic, vec![sub])),
        }
    }
    let content = html! {
        div.page-head { h1 { "Topics" } }
        @if topics.is_empty() {
            section.card {
                p.empty {
                    "No topics yet. A topic exists once it has a subscription: "
                    code { "PUT /v1/topics/{topic}/subscriptions/{name}" } "."
                }
            }
        }
        @for (topic, list) in &topics {
            section.card.topic data-topic=(topic) {
                h2 { (topic) " " span.muted { "(" (list.len()) " subscriptions)" } }
                (table(list, now))
            }
        }
    };
    Ok(layout::page(&ctx, "Topics", Nav::Topics, Live::Off, content).into_response())
}

fn table(subs: &[&SubscriptionInfo], now: Timestamp) -> Markup {
    html! {
        div.table-scroll {
            table.subscriptions {
                thead {
                    tr {
                        th { "Subscription" } th { "Delivers to" } th { "Filter" } th { "Health" }
                        th { "Last attempt" } th { "Last success" }
                        th.num title="Failed deliveries since the last success" { "Failures" }
                    }
                }
                tbody {
                    @for sub in subs {
                        tr data-subscription=(sub.name) {
                            th.mono { (sub.name) }
                            td { (target(sub)) }
                            td {
                                @match &sub.filter {
                                    Some(f) => code { (serde_json::Value::Object(f.clone())) },
                                    None => span.muted { "every event" },
                                }
                            }
                            td { (health(sub)) }
                            @match &sub.delivery {
                                Some(d) => {
                                    td.nowrap { (attempt(d, now)) }
                                    td.nowrap { @match d.last_success_at { Some(at) => (format::time(at, now)), None => span.muted { "never" } } }
                                    td.num { (d.failures_in_row) }
                                }
                                None => {
                                    td.muted { "—" } td.muted { "—" } td.num.muted { "—" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn target(sub: &SubscriptionInfo) -> Markup {
    html! {
        @if let Some(queue) = &sub.queue {
            "queue " a href=(format::queue_url(queue, None, None)) { (queue) }
        }
        @if let Some(hook) = &sub.webhook {
            span.mono.url title=(hook.url) { (hook.url) }
            div.muted {
                "secret " span.mono { (hook.secret_prefix) }
                @if hook.previous_secret_until.is_some() { " (rotating)" }
            }
        }
    }
}

fn attempt(d: &DeliveryHealth, now: Timestamp) -> Markup {
    html! {
        @match d.last_attempt_at {
            Some(at) => {
                (format::time(at, now))
                @match d.last_status {
                    Some(status) => { " · HTTP " (status) }
                    None => { " · no answer" }
                }
            }
            None => span.muted { "none yet" },
        }
    }
}

/// One word for how the subscription is doing, in the colour of its state.
fn health(sub: &SubscriptionInfo) -> Markup {
    if sub.disabled {
        return html! {
            span.badge.state-dead data-health="disabled" { "disabled" }
            @if let Some(why) = &sub.disabled_reason { div.muted { (why) } }
        };
    }
    let Some(d) = &sub.delivery else {
        return html! { span.badge.state-completed data-health="active" { "active" } };
    };
    let (class, word) = match (d.failures_in_row, d.last_attempt_at) {
        (_, None) => ("state-available", "no deliveries yet"),
        (0, Some(_)) => ("state-completed", "healthy"),
        (n, Some(_)) if n < FAILING_AFTER => ("state-retryable", "retrying"),
        _ => ("state-dead", "failing"),
    };
    html! { span class={ "badge " (class) } data-health=(word) { (word) } }
}
