//! Signing in to the dashboard with one of the server's API keys, and signing out.
//!
//! A correct key starts a new session (a new token, so a token planted before the sign-in is
//! worth nothing after it) and sets its cookie; the key itself is never stored in the cookie.

use std::time::Duration;

use axum::{
    Extension, Form,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use serde::Deserialize;

use crate::AppState;

use super::{
    layout::{self, PageCtx},
    session::{self, COOKIE, Session},
};

/// A wrong key waits this long before its answer, so keys cannot be tried quickly.
const WRONG_KEY_DELAY: Duration = Duration::from_millis(400);

#[derive(Debug, Deserialize)]
pub(crate) struct Credentials {
    key: String,
}

fn login_page(ctx: &PageCtx, error: Option<&str>, status: StatusCode) -> Response {
    let content = html! {
        h1 { "Sign in" }
        p.muted { "Enter one of this server's API keys." }
        @if let Some(e) = error {
            p.flash.error role="alert" { (e) }
        }
        form.login method="post" action="/dashboard/login" {
            (layout::csrf_field(ctx))
            label for="key" { "API key" }
            input id="key" type="password" name="key" required autofocus autocomplete="current-password";
            button.primary type="submit" { "Sign in" }
        }
    };
    (status, layout::plain("Sign in", content)).into_response()
}

/// `GET /dashboard/login`.
pub(crate) async fn form(State(state): State<AppState>, ctx: PageCtx) -> Response {
    if state.dashboard.keys.is_none() || ctx.session.signed_in {
        return Redirect::to("/").into_response();
    }
    login_page(&ctx, None, StatusCode::OK)
}

/// `POST /dashboard/login`: the CSRF guard has checked the form came from our login page.
pub(crate) async fn submit(
    State(state): State<AppState>,
    ctx: PageCtx,
    Form(credentials): Form<Credentials>,
) -> Response {
    let Some(keys) = &state.dashboard.keys else {
        return Redirect::to("/").into_response();
    };
    if !keys.accepts_key(credentials.key.trim().as_bytes()) {
        tracing::warn!("dashboard sign-in with a wrong key");
        tokio::time::sleep(WRONG_KEY_DELAY).await;
        return login_page(
            &ctx,
            Some("That key is not one of this server's API keys."),
            StatusCode::UNAUTHORIZED,
        );
    }
    let sessions = &state.dashboard.sessions;
    sessions.end(&ctx.session.token);
    let fresh = sessions.create(true);
    tracing::info!("dashboard sign-in");
    let mut response = Redirect::to("/").into_response();
    session::set_cookie(&mut response, &fresh);
    response
}

/// `POST /dashboard/logout`: ends the session and clears the cookie.
pub(crate) async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    state.dashboard.sessions.end(&session.token);
    let mut response = Redirect::to("/dashboard/login").into_response();
    let clear = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
