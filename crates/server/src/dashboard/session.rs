//! Dashboard sessions: a random token in an `HttpOnly; SameSite=Strict` cookie, and on the
//! server what it stands for (signed in or not, its CSRF token, a one-shot flash message).
//!
//! The cookie never carries the API key, and a token means nothing after the server restarts
//! or the session ends. Every browser gets a session on its first page, signed in or not,
//! because the CSRF token of a form (the login form too) needs one. Sessions live in memory:
//! a bounded map, so a flood of cookie-less requests costs a little memory and no more.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};

use crate::AppState;

pub(crate) const COOKIE: &str = "buzzer_session";
/// A signed-in session ends after this long without a request.
const SIGNED_IN_IDLE: Duration = Duration::from_secs(12 * 3600);
/// A session that never signed in (a login form left open, a scanner) goes sooner.
const ANONYMOUS_IDLE: Duration = Duration::from_secs(3600);
const MAX_SESSIONS: usize = 10_000;

/// The session of the request at hand, as the middleware found or made it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub token: Arc<str>,
    /// Sent back with every POST (a hidden `_csrf` field).
    pub csrf: Arc<str>,
    pub signed_in: bool,
}

/// A message for the next page this session sees ("Queue paused").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Flash {
    pub ok: bool,
    pub text: String,
}

#[derive(Debug)]
struct Entry {
    csrf: Arc<str>,
    signed_in: bool,
    last_seen: Instant,
    flash: Option<Flash>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        let idle = if self.signed_in {
            SIGNED_IN_IDLE
        } else {
            ANONYMOUS_IDLE
        };
        now.duration_since(self.last_seen) > idle
    }
}

#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<Arc<str>, Entry>>,
}

/// 256 random bits from the thread's CSPRNG, as hex.
fn random_token() -> Arc<str> {
    let bytes: [u8; 32] = rand::random();
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into()
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Entry>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The live session with this token, marked as seen now.
    pub(crate) fn find(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.lock();
        let token = map.get_key_value(token)?.0.clone();
        let entry = map.get_mut(&token)?;
        if entry.expired(now) {
            map.remove(&token);
            return None;
        }
        entry.last_seen = now;
        Some(Session {
            token,
            csrf: entry.csrf.clone(),
            signed_in: entry.signed_in,
        })
    }

    /// A new session. When the map is full, expired sessions go first, then the least recently
    /// seen ones that never signed in, then the least recently seen of all.
    pub(crate) fn create(&self, signed_in: bool) -> Session {
        let now = Instant::now();
        let token = random_token();
        let csrf = random_token();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| !e.expired(now));
        }
        while map.len() >= MAX_SESSIONS {
            let victim = map
                .iter()
                .min_by_key(|(_, e)| (e.signed_in, e.last_seen))
                .map(|(t, _)| t.clone());
            match victim {
                Some(t) => map.remove(&t),
                None => break,
            };
        }
        map.insert(
            token.clone(),
            Entry {
                csrf: csrf.clone(),
                signed_in,
                last_seen: now,
                flash: None,
            },
        );
        Session {
            token,
            csrf,
            signed_in,
        }
    }

    pub(crate) fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    pub(crate) fn set_flash(&self, token: &str, flash: Flash) {
        if let Some(entry) = self.lock().get_mut(token) {
            entry.flash = Some(flash);
        }
    }

    pub(crate) fn take_flash(&self, token: &str) -> Option<Flash> {
        self.lock().get_mut(token).and_then(|e| e.flash.take())
    }
}

/// The session token from the `Cookie` header(s), if any.
fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then_some(value)
        })
}

/// `Set-Cookie` for a session. No `Max-Age`: it lasts as long as the browser does, and the
/// server ends it after it has been idle.
pub(crate) fn set_cookie(response: &mut Response, session: &Session) {
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
        session.token
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Middleware: finds the request's session or starts one, and hands it to the handlers as an
/// extension. Without API keys every session is signed in: the dashboard is open.
pub(crate) async fn attach(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let dashboard = &state.dashboard;
    let found = cookie_token(req.headers()).and_then(|t| dashboard.sessions.find(t));
    let (session, fresh) = match found {
        Some(session) => (session, false),
        None => (dashboard.sessions.create(dashboard.keys.is_none()), true),
    };
    req.extensions_mut().insert(session.clone());
    let mut response = next.run(req).await;
    // A handler that started a session of its own (a login) has set its cookie already.
    if fresh && !response.headers().contains_key(header::SET_COOKIE) {
        set_cookie(&mut response, &session);
    }
    response
}

/// Middleware: pages send a visitor who is not signed in to the login form; the JSON API and
/// actions answer 401.
pub(crate) async fn require_sign_in(req: Request, next: Next) -> Response {
    let signed_in = req
        .extensions()
        .get::<Session>()
        .is_some_and(|s| s.signed_in);
    if signed_in {
        return next.run(req).await;
    }
    let is_page = req.method() == Method::GET && !req.uri().path().starts_with("/dashboard/api/");
    if is_page {
        Redirect::to("/dashboard/login").into_response()
    } else {
        (StatusCode::UNAUTHORIZED, "sign in to the dashboard first").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_token_and_ended() {
        let sessions = Sessions::default();
        let s = sessions.create(false);
        assert_eq!(s.token.len(), 64);
        assert_ne!(s.token, s.csrf);
        let found = sessions.find(&s.token).unwrap();
        assert_eq!(found.csrf, s.csrf);
        assert!(!found.signed_in);
        assert!(sessions.find("nope").is_none());
        sessions.set_flash(
            &s.token,
            Flash {
                ok: true,
                text: "hi".into(),
            },
        );
        assert_eq!(sessions.take_flash(&s.token).unwrap().text, "hi");
        assert!(sessions.take_flash(&s.token).is_none());
        sessions.end(&s.token);
        assert!(sessions.find(&s.token).is_none());
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; buzzer_session=abc; b=2"),
        );
        assert_eq!(cookie_token(&headers), Some("abc"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn a_full_map_drops_anonymous_sessions_first() {
        let sessions = Sessions::default();
        let keep = sessions.create(true);
        for _ in 0..MAX_SESSIONS {
            sessions.create(false);
        }
        assert!(sessions.find(&keep.token).is_some());
        assert!(sessions.lock().len() <= MAX_SESSIONS);
    }
}
