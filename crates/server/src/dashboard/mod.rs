//! The web dashboard: server-rendered pages over the engine, a little JavaScript of our own for
//! live counts and charts, and no build step (the assets are compiled into the binary).
//!
//! | route | what |
//! |---|---|
//! | `GET /` | overview: counts per queue and state, live throughput and failure charts |
//! | `GET /dashboard/queues/{queue}` | a queue's jobs by state, tag filter, cursor paging |
//! | `POST /dashboard/queues/{queue}/pause`, `/resume`, `/dead/retry` | queue actions |
//! | `GET /dashboard/jobs/{id}` (and `?id=` to jump to one) | one job, its attempts and timeline |
//! | `POST /dashboard/jobs/{id}/retry`, `/cancel`, `/delete` | job actions |
//! | `GET /dashboard/topics` | topics, their subscriptions and webhook delivery health |
//! | `GET /dashboard/schedules` | cron schedules with their next fire times |
//! | `GET /dashboard/api/stats` | the JSON the pages poll for live numbers |
//! | `GET`/`POST /dashboard/login`, `POST /dashboard/logout` | the login form (with API keys) |
//! | `GET /dashboard/assets/{file}` | CSS, JavaScript and the icon |
//!
//! Safety, in the order a request meets it: security headers on every answer (`headers.rs`),
//! a session cookie (`session.rs`), a CSRF check on every POST (`csrf.rs`), then the login
//! check. Everything a page shows from a job goes through maud's escaping.

mod assets;
mod csrf;
mod error;
mod format;
mod headers;
mod job;
mod layout;
mod login;
mod overview;
mod queue;
mod schedules;
mod session;
mod stats;
mod topics;

use axum::{
    Router, middleware,
    routing::{get, post},
};

use crate::{AppState, auth::ApiKeys};

pub(crate) use session::Sessions;
pub(crate) use stats::Sampler;

/// What the dashboard keeps between requests.
#[derive(Debug)]
pub(crate) struct Dashboard {
    /// `None` when the server runs without keys: the dashboard is open (loopback only).
    pub keys: Option<ApiKeys>,
    pub sessions: Sessions,
    pub sampler: Sampler,
}

impl Dashboard {
    pub(crate) fn new(keys: Option<ApiKeys>) -> Self {
        Dashboard {
            keys,
            sessions: Sessions::default(),
            sampler: Sampler::default(),
        }
    }
}

/// The dashboard's routes, each behind its safety layers.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    // Layers run outside in: `session::attach` (added last) first, then `csrf::guard`; the
    // login check wraps only the routes added before it, so the login form stays reachable.
    let signed_in = Router::new()
        .route("/", get(overview::page))
        .route("/dashboard/queues/{queue}", get(queue::page))
        .route("/dashboard/queues/{queue}/pause", post(queue::pause))
        .route("/dashboard/queues/{queue}/resume", post(queue::resume))
        .route(
            "/dashboard/queues/{queue}/dead/retry",
            post(queue::replay_dead),
        )
        .route("/dashboard/jobs", get(job::find))
        .route("/dashboard/jobs/{id}", get(job::page))
        .route("/dashboard/jobs/{id}/retry", post(job::retry))
        .route("/dashboard/jobs/{id}/cancel", post(job::cancel))
        .route("/dashboard/jobs/{id}/delete", post(job::delete))
        .route("/dashboard/topics", get(topics::page))
        .route("/dashboard/schedules", get(schedules::page))
        .route("/dashboard/api/stats", get(stats::stats))
        .route("/dashboard/logout", post(login::logout))
        .route_layer(middleware::from_fn(session::require_sign_in));
    signed_in
        .route("/dashboard/login", get(login::form).post(login::submit))
        .route_layer(middleware::from_fn(csrf::guard))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::attach,
        ))
        // Assets are the same for everyone: no session, no login.
        .route("/dashboard/assets/{file}", get(assets::serve))
        .layer(middleware::from_fn(headers::secure))
}
