//! The dashboard over plain HTTP: security headers, the sign-in with API keys, CSRF refusals
//! and escaping. (The pages in a real browser: `tests/browser`.)

use std::time::Duration;

use buzzer_server::ServerConfig;
use reqwest::{StatusCode, header, redirect::Policy};
use serde_json::json;

use crate::{Reply, TestServer};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   frame-ancestors 'none'; form-action 'self'";

/// A client that keeps the session cookie by hand and never follows redirects.
struct Visitor<'a> {
    server: &'a TestServer,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Visitor<'a> {
    fn new(server: &'a TestServer) -> Self {
        Visitor {
            server,
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Reply {
        let req = match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let reply = Reply::from(req).await;
        if let Some(set) = reply.header("set-cookie") {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        reply
    }

    async fn get(&mut self, path: &str) -> Reply {
        let req = self.http.get(self.server.url(path));
        self.send(req).await
    }

    /// A form POST the way our own page sends it: same origin, urlencoded.
    async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .post(self.server.url(path))
            .header("origin", &self.server.base)
            .form(form);
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }
}

/// The CSRF token of the first form on a page.
fn csrf(html: &str) -> String {
    let start = html
        .find("name=\"_csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 20;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn without_keys_the_dashboard_is_open_and_sends_its_security_headers() {
    let s = TestServer::start().await;
    let mut v = Visitor::new(&s);
    let r = v.get("/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("referrer-policy"), Some("same-origin"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let cookie = r.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/"),
        "{cookie}"
    );
    // No inline script or style anywhere: the CSP would block them.
    assert!(
        !r.text.contains("<script>") && !r.text.contains("style="),
        "{}",
        r.text
    );
    let r = v.get("/dashboard/login").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "no sign-in without keys");
    for asset in ["dashboard.css", "dashboard.js", "icon.svg"] {
        let r = v.get(&format!("/dashboard/assets/{asset}")).await;
        assert_eq!(r.status, StatusCode::OK, "{asset}");
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    }
}

#[tokio::test]
async fn with_keys_a_login_sets_a_session_cookie_that_is_not_the_key() {
    let key = "dash-key-1";
    let s = TestServer::start_with(ServerConfig {
        api_keys: vec![key.into()],
        ..ServerConfig::default()
    })
    .await;
    let mut v = Visitor::new(&s);
    let r = v.get("/").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), Some("/dashboard/login"));
    assert_eq!(
        v.get("/dashboard/api/stats").await.status,
        StatusCode::UNAUTHORIZED
    );
    let form = v.get("/dashboard/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = csrf(&form.text);
    let before = v.cookie.clone().unwrap();

    let r = v
        .post_form(
            "/dashboard/login",
            &[("_csrf", &token), ("key", "wrong")],
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.text.contains("not one of this server"), "{}", r.text);
    assert_eq!(v.get("/").await.status, StatusCode::SEE_OTHER);

    let r = v
        .post_form("/dashboard/login", &[("_csrf", &token), ("key", key)], &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let set = r.header("set-cookie").unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(
        !set.contains(key),
        "the cookie must not carry the key: {set}"
    );
    let after = v.cookie.clone().unwrap();
    assert_ne!(before, after, "a sign-in starts a new session");

    let r = v.get("/").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("Sign out"));
    assert_eq!(v.get("/dashboard/api/stats").await.status, StatusCode::OK);

    // The old (pre-login) token opens nothing.
    let mut stale = Visitor::new(&s);
    stale.cookie = Some(before);
    assert_eq!(stale.get("/").await.status, StatusCode::SEE_OTHER);

    let page_token = csrf(&r.text);
    let r = v
        .post_form("/dashboard/logout", &[("_csrf", &page_token)], &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let mut old = Visitor::new(&s);
    old.cookie = Some(after);
    assert_eq!(
        old.get("/").await.status,
        StatusCode::SEE_OTHER,
        "signed out"
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_or_from_another_site_is_refused() {
    let s = TestServer::start().await;
    s.enqueue("csrf", json!(1)).await;
    let mut v = Visitor::new(&s);
    let page = v.get("/dashboard/queues/csrf").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let token = csrf(&page.text);
    let pause = "/dashboard/queues/csrf/pause";

    let r = v.post_form(pause, &[], &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no token");
    let r = v.post_form(pause, &[("_csrf", "0000")], &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "wrong token");
    let r = v
        .post_form(
            pause,
            &[("_csrf", &token)],
            &[("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "cross-site fetch");
    // A cross-site form post: the other site's origin, and it cannot know the token.
    let r = Reply::from(
        v.http
            .post(s.url(pause))
            .header(header::COOKIE, v.cookie.clone().unwrap())
            .header("origin", "https://evil.example")
            .form(&[("_csrf", token.as_str())]),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "another origin");
    assert_eq!(r.header("content-security-policy"), Some(CSP));
    assert!(
        !s.engine.queue("csrf").await.unwrap().paused,
        "a refused POST changed nothing"
    );

    let r = v
        .post_form(
            pause,
            &[("_csrf", &token)],
            &[("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    assert!(s.engine.queue("csrf").await.unwrap().paused);
    let r = v.get("/dashboard/queues/csrf").await;
    assert!(
        r.text.contains("Paused csrf"),
        "the flash message shows once"
    );
    assert!(
        !v.get("/dashboard/queues/csrf")
            .await
            .text
            .contains("Paused csrf")
    );
}

#[tokio::test]
async fn everything_from_a_job_is_escaped() {
    let s = TestServer::start().await;
    let script = "<script>alert(1)</script>";
    let img = "\"><img src=x onerror=alert(1)>";
    let r = s
        .post(
            "/v1/queues/xss/jobs",
            json!({"payload": {"a": script, "b": img}, "tags": [script, img], "metadata": {"m": img}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let job = s.fetch("xss", 1).await.remove(0);
    let id = job["id"].as_str().unwrap();
    let r = s
        .post(
            &format!("/v1/jobs/{id}/fail"),
            json!({"lease_token": job["lease_token"], "error": {"message": format!("{script}{img}"), "x": img}, "retry": false}),
        )
        .await;
    assert_eq!(r.json()["state"], "dead");
    for path in [
        format!("/dashboard/jobs/{id}"),
        "/dashboard/queues/xss".into(),
        "/dashboard/queues/xss?state=dead".into(),
    ] {
        let r = s.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        assert!(
            !r.text.contains("<script>alert"),
            "{path}: unescaped script"
        );
        assert!(!r.text.contains("<img src=x"), "{path}: unescaped img");
        assert!(
            r.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            r.text
        );
    }
    // A tag in a link's query string is encoded, not pasted.
    let r = s.get(&format!("/dashboard/jobs/{id}")).await;
    assert!(
        r.text
            .contains("tag=%22%3E%3Cimg+src%3Dx+onerror%3Dalert%281%29%3E"),
        "{}",
        r.text
    );
}

/// The series the charts poll carries the mean wait (due to leased) and run time (start to
/// end) of the jobs leased and finished between two samples, and both pages draw them.
#[tokio::test]
async fn the_charts_series_carries_the_mean_wait_and_run_time() {
    let s = TestServer::start().await;
    let q = "timed";
    let stats = format!("/dashboard/api/stats?queue={q}");
    s.enqueue(q, json!(1)).await;
    // The first sample, before anything is leased or finished.
    assert_eq!(s.get(&stats).await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let leased = s.fetch(q, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let job = &leased[0];
    let r = s
        .post(
            &format!("/v1/jobs/{}/complete", job["id"].as_str().unwrap()),
            json!({"lease_token": job["lease_token"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Samples are taken at most once a second.
    tokio::time::sleep(Duration::from_millis(1_100)).await;

    let series = s.get(&stats).await.json()["series"].clone();
    let last = series.as_array().unwrap().last().unwrap().clone();
    let wait = last["wait"].as_f64().unwrap_or_else(|| panic!("{series}"));
    let run = last["run"].as_f64().unwrap_or_else(|| panic!("{series}"));
    // Milliseconds, from the store's own timestamps (whole milliseconds).
    assert!((190.0..10_000.0).contains(&wait), "{series}");
    assert!((90.0..10_000.0).contains(&run), "{series}");

    for page in ["/".to_owned(), format!("/dashboard/queues/{q}")] {
        let r = s.get(&page).await;
        for chart in ["wait", "run"] {
            let markup = format!(r#"data-chart="{chart}" data-scale="ms""#);
            assert!(r.text.contains(&markup), "{page}: no {chart} chart");
        }
    }
}
