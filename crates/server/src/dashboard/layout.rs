//! The page shell every dashboard page shares: head, top bar with navigation, flash message,
//! footer. Also the small building blocks pages share: a one-button POST form that carries the
//! CSRF token, and the request context ([`PageCtx`]) a page needs to draw them.

use axum::{
    extract::FromRequestParts,
    http::{StatusCode, request::Parts},
    response::Html,
};
use maud::{DOCTYPE, Markup, html};

use crate::AppState;

use super::{
    assets,
    session::{Flash, Session},
};

/// Where a page sits in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Topics,
    Schedules,
}

/// The top bar's entries.
const NAV: [(Nav, &str, &str); 3] = [
    (Nav::Overview, "Overview", "/"),
    (Nav::Topics, "Topics", "/dashboard/topics"),
    (Nav::Schedules, "Schedules", "/dashboard/schedules"),
];

/// What a page's script keeps up to date without a reload.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Live<'a> {
    Off,
    Overview,
    Queue(&'a str),
}

/// The request's session, its flash message (taken: it shows once) and whether to offer a
/// sign-out.
#[derive(Debug)]
pub(crate) struct PageCtx {
    pub session: Session,
    pub flash: Option<Flash>,
    pub can_sign_out: bool,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let session = parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or((StatusCode::INTERNAL_SERVER_ERROR, "no dashboard session"))?;
        let flash = state.dashboard.sessions.take_flash(&session.token);
        Ok(PageCtx {
            can_sign_out: state.dashboard.keys.is_some() && session.signed_in,
            session,
            flash,
        })
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · Buzzer" }
            link rel="icon" href=(assets::url("icon.svg")) type="image/svg+xml";
            link rel="stylesheet" href=(assets::url("dashboard.css"));
            script src=(assets::url("dashboard.js")) defer {}
        }
    }
}

/// A whole page.
pub(crate) fn page(
    ctx: &PageCtx,
    title: &str,
    nav: Nav,
    live: Live<'_>,
    content: Markup,
) -> Html<String> {
    let (live_kind, live_queue) = match live {
        Live::Off => (None, None),
        Live::Overview => (Some("overview"), None),
        Live::Queue(q) => (Some("queue"), Some(q)),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body data-live=[live_kind] data-queue=[live_queue] {
                header.topbar {
                    div.wrap.topbar-inner {
                        a.brand href="/" {
                            img src=(assets::url("icon.svg")) alt="" width="28" height="28";
                            span { "Buzzer" }
                        }
                        nav.nav aria-label="Main" {
                            @for (item, label, href) in NAV {
                                a href=(href) .active[item == nav] aria-current=[(item == nav).then_some("page")] { (label) }
                            }
                        }
                        form.jump action="/dashboard/jobs" method="get" role="search" {
                            input type="search" name="id" placeholder="Jump to job id" aria-label="Job id"
                                autocomplete="off" spellcheck="false" maxlength="13";
                        }
                        @if ctx.can_sign_out {
                            form.signout method="post" action="/dashboard/logout" {
                                (csrf_field(ctx))
                                button.ghost type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main.wrap {
                    @if let Some(flash) = &ctx.flash {
                        p.flash.ok[flash.ok].error[!flash.ok] role="status" { (flash.text) }
                    }
                    (content)
                }
                footer.wrap.foot {
                    "Buzzer " (env!("CARGO_PKG_VERSION")) " · times in UTC on hover"
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A page without navigation, its content in one centred card: the login form, errors.
pub(crate) fn plain(title: &str, content: Markup) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.plain {
                main.wrap.narrow {
                    div.plain-brand {
                        img src=(assets::url("icon.svg")) alt="" width="36" height="36";
                        span { "Buzzer" }
                    }
                    section.card { (content) }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A page for an error or a refusal, with no session needed.
pub(crate) fn bare(title: &str, message: &str) -> Html<String> {
    plain(
        title,
        html! {
            h1 { (title) }
            p { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

pub(crate) fn csrf_field(ctx: &PageCtx) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ctx.session.csrf); }
}

/// A button that POSTs to `url`; with `confirm`, the script asks first.
pub(crate) fn action(
    ctx: &PageCtx,
    url: &str,
    label: &str,
    class: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form.inline method="post" action=(url) data-confirm=[confirm] {
            (csrf_field(ctx))
            button type="submit" class=(class) { (label) }
        }
    }
}
