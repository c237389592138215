//! `GET /dashboard/schedules`: every cron schedule with its zone, target queue, the job it
//! makes, the last tick it fired and its next fire times.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use buzzer_types::ScheduleInfo;
use jiff::Timestamp;
use maud::{Markup, html};

use crate::AppState;

use super::{
    error::PageError,
    format,
    layout::{self, Live, Nav, PageCtx},
};

pub(crate) async fn page(
    State(state): State<AppState>,
    ctx: PageCtx,
) -> Result<Response, PageError> {
    let schedules = state.engine.schedules().await?;
    let now = Timestamp::now();
    let content = html! {
        div.page-head { h1 { "Schedules" } }
        section.card {
            @if schedules.is_empty() {
                p.empty {
                    "No schedules yet: " code { "PUT /v1/schedules/{name}" }
                    " with a cron expression, a queue and a payload."
                }
            } @else {
                (table(&schedules, now))
            }
        }
    };
    Ok(layout::page(&ctx, "Schedules", Nav::Schedules, Live::Off, content).into_response())
}

fn table(schedules: &[ScheduleInfo], now: Timestamp) -> Markup {
    html! {
        div.table-scroll {
            table.schedules {
                thead {
                    tr {
                        th { "Schedule" } th { "Cron" } th { "Queue" } th { "Payload" }
                        th { "Last fired" } th { "Next fire times" }
                    }
                }
                tbody {
                    @for s in schedules {
                        tr data-schedule=(s.name) {
                            th.mono { (s.name) }
                            td { code { (s.cron) } div.muted { (s.timezone) } }
                            td { a href=(format::queue_url(&s.queue, None, None)) { (s.queue) } }
                            td { code.payload title=(s.payload.get()) { (s.payload.get()) } }
                            td.nowrap {
                                @match s.last_tick_at {
                                    Some(at) => (format::time(at, now)),
                                    None => span.muted { "not yet" },
                                }
                            }
                            td {
                                ol.fire-times {
                                    @for at in &s.next_fire_times {
                                        li data-next-fire=(at) { (format::time(*at, now)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
