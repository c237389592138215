//! `GET /demo`: the page, drawn on the server; `demo.js` fills in the live parts from
//! `/demo/state` and places orders.

use axum::{
    extract::{Path, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};

use super::DemoState;
use crate::{jobs::QUEUES, orders::Mode};

const SCRIPT: &str = include_str!("../../assets/demo.js");
const STYLE: &str = include_str!("../../assets/demo.css");

pub async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "demo.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "demo.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such file").into_response(),
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

pub async fn page(State(state): State<DemoState>) -> Html<String> {
    let shop = &state.shop;
    let budget = shop.hybrid_budget.as_millis();
    let email = shop.providers.email().behaviour();
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Checkout: now, or later? · Buzzer demo" }
                    link rel="stylesheet" href="/demo/assets/demo.css";
                    script src="/demo/assets/demo.js" defer {}
                }
                body {
                    header {
                        h1 { "Checkout: now, or later?" }
                        p {
                            "One shop, three checkouts. Payment and stock are checked inline in "
                            "every mode; the confirmation email (about "
                            (email.latency.as_millis()) " ms), the invoice PDF and analytics are "
                            "done inline (sync), handed to Buzzer (async), or given "
                            (budget) " ms to answer inline before being handed over (hybrid)."
                        }
                        nav { a href="/" { "Buzzer dashboard" } }
                    }
                    section #place {
                        h2 { "Place an order" }
                        div .buttons {
                            @for mode in Mode::ALL {
                                (mode_button(mode))
                            }
                        }
                    }
                    section #chart-section {
                        h2 { "Response time per mode" }
                        p .hint { "Each dot is one checkout (server-side time, log scale); the bar is the median." }
                        div #chart {}
                        table #summary {
                            thead { tr { th { "mode" } th { "orders" } th { "confirmed" } th { "declined" } th { "failed" } th { "p50" } th { "p99" } } }
                            tbody {}
                        }
                    }
                    section #email-provider {
                        h2 { "Email provider" }
                        label .switch {
                            input #outage type="checkbox";
                            " Email provider outage"
                        }
                        p #outage-note .hint {
                            "While it is down, sync checkouts fail; async ones still succeed and their emails retry until it is back (or land in the DLQ)."
                        }
                        form #email-form {
                            label { "latency (ms) " input #email-latency type="number" min="0" max="60000" step="50" value=(email.latency.as_millis()); }
                            label { " failure rate " input #email-failure type="number" min="0" max="1" step="0.05" value=(email.failure_rate); }
                            button type="submit" { "Apply" }
                        }
                        p .hint { "Set the latency under the hybrid budget (" (budget) " ms) to see hybrid checkouts say \u{201c}email sent\u{201d}. Breaker on the email queue: " span #breaker { "closed" } "." }
                    }
                    section #orders-section {
                        h2 { "Orders" }
                        table #orders {
                            thead { tr { th { "#" } th { "mode" } th { "result" } th { "response" } th { "email" } } }
                            tbody {}
                        }
                    }
                    section #queues-section {
                        h2 { "Queues and worker" }
                        table #queues {
                            thead { tr { th { "queue" } th { "waiting" } th { "running" } th { "retrying" } th { "completed" } th { "DLQ" } th { "retries" } } }
                            tbody {
                                @for queue in QUEUES { tr { td { (queue) } } }
                            }
                        }
                        p #worker {}
                        p {
                            button #replay type="button" { "Replay dead emails" }
                            " or open the "
                            a href="/dashboard/queues/emails" { "emails queue in the dashboard" }
                            "."
                        }
                        h3 { "Providers" }
                        table #providers {
                            thead { tr { th { "provider" } th { "latency" } th { "failure rate" } th { "calls" } th { "failures" } th { "in flight" } } }
                            tbody {}
                        }
                    }
                }
            }
        }
        .into_string(),
    )
}

fn mode_button(mode: Mode) -> Markup {
    let (title, what) = match mode {
        Mode::Sync => ("Sync", "everything inline"),
        Mode::Async => ("Async", "email, invoice, analytics queued"),
        Mode::Hybrid => ("Hybrid", "email inline if fast, else queued"),
    };
    html! {
        div .mode #{"mode-" (mode.as_str())} {
            button .order type="button" data-mode=(mode.as_str()) { "Order (" (title) ")" }
            span .what { (what) }
            output .last {}
        }
    }
}
