//! The steps of the browser suite, in the order they run: each starts from wherever the one
//! before left the browser, signed in after the first.

use std::time::Duration;

use axum::{Router, response::Html, routing::get};
use buzzer_store::SubscriptionDelivery;
use buzzer_types::{EnqueueRequest, JobState};
use serde_json::json;

use crate::{API_KEY, Ctx, server::request};

/// Job data that would run script if a page wrote it as HTML. The CSP would stop most of it
/// anyway, so the steps check the DOM: no element it names may exist, the text must show as is.
const SCRIPT: &str = "<script>window.__xss = 1</script>";
const IMG: &str = "<img src=x id=xss-img onerror=\"window.__xss = 2\">";
const BOLD: &str = "<b id=xss-b>bold</b>";

/// An unknown browser is sent to the login form; a wrong key is refused; the right one opens
/// the overview.
pub async fn sign_in(ctx: &Ctx) {
    ctx.goto("/").await;
    assert_eq!(ctx.path().await, "/dashboard/login");
    ctx.snap("login").await;

    ctx.find("#key")
        .await
        .send_keys("not-the-key")
        .await
        .unwrap();
    ctx.submit("/dashboard/login").await;
    let refused = ctx.text("p.flash.error").await;
    assert!(
        refused.contains("not one of this server's API keys"),
        "{refused}"
    );

    ctx.find("#key").await.send_keys(API_KEY).await.unwrap();
    ctx.submit("/dashboard/login").await;
    ctx.find("[data-queue-table]").await;
    assert_eq!(ctx.path().await, "/");
    ctx.snap("overview-empty").await;
}

/// Counts on the overview and on the queue page follow enqueues without a reload.
pub async fn live_counts(ctx: &Ctx) {
    ctx.server
        .put("emails", r#"{"to":"ada@example.com"}"#)
        .await;
    ctx.goto("/").await;
    let available = "tr[data-queue='emails'] [data-state='available']";
    ctx.wait_text(available, "1").await;

    // The page is not reloaded from here on: its script polls and updates.
    for i in 0..4 {
        ctx.server.put("emails", &format!(r#"{{"n":{i}}}"#)).await;
    }
    ctx.wait_text(available, "5").await;
    ctx.wait_text("[data-total='available']", "5").await;
    ctx.snap("overview-live").await;

    ctx.goto("/dashboard/queues/emails").await;
    let tab = ".tabs [data-state='available']";
    ctx.wait_text(tab, "5").await;
    for i in 0..3 {
        ctx.server.put("emails", &format!(r#"{{"m":{i}}}"#)).await;
    }
    ctx.wait_text(tab, "8").await;
    ctx.wait_text(".tabs [data-state='all']", "8").await;
    ctx.snap("queue-live").await;
}

/// The wait and run time charts mark a lone job that went through since the page's last
/// sample.
pub async fn time_charts(ctx: &Ctx) {
    ctx.goto("/").await;
    // The page has polled once (it draws the charts then), so the job below waits and runs
    // after a sample the next ones are measured from.
    ctx.find(".chart[data-chart='completed'] svg").await;
    let job = ctx.server.put("timed", r#"{"t":1}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctx.server.run(&job, Duration::from_millis(100)).await;
    for chart in ["wait", "run"] {
        ctx.find(&format!(
            ".chart[data-chart='{chart}'] circle.point.series-{chart}"
        ))
        .await;
        // The figure beside the title is the job's: it waited ~300 ms and ran ~100 ms.
        let now = ctx.text(&format!("[data-chart-now='{chart}']")).await;
        let ms = match (now.strip_suffix(" ms"), now.strip_suffix(" s")) {
            (Some(ms), _) => ms.parse::<f64>().ok(),
            (_, Some(s)) => s.parse::<f64>().ok().map(|s| s * 1_000.0),
            _ => None,
        };
        let ms = ms.unwrap_or_else(|| panic!("{chart}: {now:?} is not a time"));
        assert!((90.0..10_000.0).contains(&ms), "{chart}: {now}");
    }
    ctx.snap("time-charts").await;
}

/// From the queue's table to a job's page, which shows its payload and details.
pub async fn open_job(ctx: &Ctx) {
    ctx.goto("/dashboard/queues/emails").await;
    // Newest first: the last enqueued job heads the table.
    let link = ctx.find("table.jobs tbody tr:first-child a.mono").await;
    let id = link.text().await.unwrap();
    link.click().await.unwrap();
    ctx.find(".page-head h1").await;
    assert_eq!(ctx.path().await, format!("/dashboard/jobs/{id}"));
    assert_eq!(ctx.text(".page-head h1").await, format!("Job {id}"));
    assert_eq!(ctx.text(".page-head .badge").await, "available");
    let payload = ctx.text("pre.json").await;
    assert!(payload.contains("\"m\": 2"), "{payload}");
    ctx.snap("job").await;
}

/// A dead job's Retry button sends it back to available.
pub async fn retry_dead_job(ctx: &Ctx) {
    let job = ctx.server.put("payments", r#"{"amount":42}"#).await;
    let dead = ctx.server.kill(&job, "card declined").await;
    assert_eq!(dead.state, JobState::Dead);

    ctx.goto(&format!("/dashboard/jobs/{}", job.id)).await;
    assert_eq!(ctx.text(".page-head .badge").await, "dead");
    assert!(ctx.text("ol.errors").await.contains("card declined"));
    ctx.snap("job-dead").await;

    ctx.submit(&format!("/dashboard/jobs/{}/retry", job.id))
        .await;
    let flash = ctx.text("p.flash.ok").await;
    assert!(flash.contains("the job is available now"), "{flash}");
    assert_eq!(ctx.text(".page-head .badge").await, "available");
    let now = ctx.server.engine.get(job.id).await.unwrap();
    assert_eq!(now.state, JobState::Available);
    assert_eq!(now.errors.len(), 1, "the history is kept");
    ctx.snap("job-retried").await;
}

/// Pause shows the badge and really pauses; Resume undoes it.
pub async fn pause_queue(ctx: &Ctx) {
    ctx.goto("/dashboard/queues/emails").await;
    assert!(
        !ctx.find(".page-head [data-paused]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    ctx.submit("/dashboard/queues/emails/pause").await;
    let flash = ctx.text("p.flash.ok").await;
    assert!(flash.contains("Paused emails"), "{flash}");
    assert!(
        ctx.find(".page-head [data-paused]")
            .await
            .is_displayed()
            .await
            .unwrap()
    );
    assert!(ctx.server.engine.queue("emails").await.unwrap().paused);
    ctx.snap("queue-paused").await;

    // The overview marks it too.
    ctx.goto("/").await;
    let badge = ctx.find("tr[data-queue='emails'] [data-paused]").await;
    assert!(badge.is_displayed().await.unwrap());

    ctx.goto("/dashboard/queues/emails").await;
    ctx.submit("/dashboard/queues/emails/resume").await;
    assert!(ctx.text("p.flash.ok").await.contains("Resumed emails"));
    assert!(!ctx.server.engine.queue("emails").await.unwrap().paused);
}

/// The job page says why a job is not running, and its Delete button (after the browser's
/// confirmation) removes it.
pub async fn why_not_running_and_delete(ctx: &Ctx) {
    let head = ctx
        .server
        .enqueue(
            "ledger",
            EnqueueRequest {
                ordering_key: Some("acct-7".into()),
                ..request(r#"{"entry":1}"#)
            },
        )
        .await;
    let behind = ctx
        .server
        .enqueue(
            "ledger",
            EnqueueRequest {
                ordering_key: Some("acct-7".into()),
                ..request(r#"{"entry":2}"#)
            },
        )
        .await;
    ctx.goto(&format!("/dashboard/jobs/{}", head.id)).await;
    assert_eq!(
        ctx.find("p.waiting")
            .await
            .attr("data-waiting")
            .await
            .unwrap()
            .as_deref(),
        Some("no_worker")
    );
    ctx.goto(&format!("/dashboard/jobs/{}", behind.id)).await;
    let waiting = ctx.find("p.waiting").await;
    assert_eq!(
        waiting.attr("data-waiting").await.unwrap().as_deref(),
        Some("ordering_key")
    );
    assert!(waiting.text().await.unwrap().contains(&head.id.to_string()));
    ctx.snap("job-waiting").await;

    // The job ahead is deleted: the one behind it holds the key now.
    ctx.find("p.waiting a").await.click().await.unwrap();
    ctx.find(".page-head h1").await;
    assert_eq!(ctx.path().await, format!("/dashboard/jobs/{}", head.id));
    ctx.submit(&format!("/dashboard/jobs/{}/delete", head.id))
        .await;
    ctx.browser.accept_alert().await.unwrap();
    let flash = ctx.text("p.flash.ok").await;
    assert_eq!(flash, format!("Deleted job {}.", head.id));
    assert_eq!(ctx.path().await, "/dashboard/queues/ledger");
    assert!(
        ctx.server.engine.get(head.id).await.is_err(),
        "the job is gone"
    );

    ctx.goto(&format!("/dashboard/jobs/{}", behind.id)).await;
    let waiting = ctx.find("p.waiting").await;
    assert_eq!(
        waiting.attr("data-waiting").await.unwrap().as_deref(),
        Some("no_worker")
    );
}

/// The topics page shows each subscription and how its webhook deliveries go; the schedules
/// page shows each schedule's next fire times. Both reached from the top bar.
pub async fn topics_and_schedules(ctx: &Ctx) {
    let s = &ctx.server;
    s.api_put(
        "/v1/topics/orders/subscriptions/to-billing",
        json!({"queue": "billing"}),
    )
    .await;
    let filter = json!({"kind": IMG});
    s.api_put(
        "/v1/topics/orders/subscriptions/crm-hook",
        json!({"webhook": {"url": "https://crm.example.com/hooks/orders"}, "filter": filter}),
    )
    .await;
    for status in [200, 500, 500, 500] {
        s.engine
            .store()
            .subscription_record_delivery(SubscriptionDelivery {
                topic: "orders".into(),
                name: "crm-hook".into(),
                status: Some(status),
                success: status == 200,
            })
            .await
            .unwrap();
    }
    s.api_put(
        "/v1/schedules/nightly-report",
        json!({"cron": "0 3 * * *", "timezone": "Europe/Paris", "queue": "reports",
               "payload": {"html": BOLD}}),
    )
    .await;

    ctx.goto("/").await;
    ctx.find("nav.nav a[href='/dashboard/topics']")
        .await
        .click()
        .await
        .unwrap();
    ctx.find("section[data-topic='orders']").await;
    assert_eq!(ctx.path().await, "/dashboard/topics");
    let hook = "tr[data-subscription='crm-hook']";
    assert_eq!(ctx.text(&format!("{hook} [data-health]")).await, "failing");
    let row = ctx.text(hook).await;
    assert!(
        row.contains("https://crm.example.com/hooks/orders"),
        "{row}"
    );
    assert!(row.contains("HTTP 500"), "{row}");
    assert!(
        row.contains("<img src=x id=xss-img"),
        "the filter shows as text: {row}"
    );
    assert_eq!(ctx.count("#xss-img").await, 0);
    let billing = ctx.text("tr[data-subscription='to-billing']").await;
    assert!(billing.contains("queue billing"), "{billing}");
    ctx.snap("topics").await;

    ctx.find("nav.nav a[href='/dashboard/schedules']")
        .await
        .click()
        .await
        .unwrap();
    let row = "tr[data-schedule='nightly-report']";
    ctx.find(row).await;
    assert_eq!(ctx.count(&format!("{row} li[data-next-fire]")).await, 5);
    let next = ctx.text(&format!("{row} li[data-next-fire]")).await;
    assert!(next.starts_with("in "), "the next fire is ahead: {next}");
    let text = ctx.text(row).await;
    assert!(
        text.contains("0 3 * * *") && text.contains("Europe/Paris"),
        "{text}"
    );
    assert!(text.contains(BOLD), "the payload shows as text: {text}");
    assert_eq!(ctx.count("#xss-b").await, 0);
    ctx.snap("schedules").await;
}

/// Markup in a payload, an error message and tags is shown as text on the job and queue pages.
pub async fn hostile_job_data(ctx: &Ctx) {
    let payload = json!({ "html": format!("{SCRIPT}{IMG}") }).to_string();
    let job = ctx
        .server
        .enqueue(
            "hostile",
            EnqueueRequest {
                tags: Some(vec![BOLD.into(), IMG.into()]),
                metadata: Some(json!({ "note": SCRIPT }).as_object().unwrap().clone()),
                ..request(&payload)
            },
        )
        .await;
    ctx.server
        .kill(&job, &format!("failed: {SCRIPT}{IMG}"))
        .await;

    for page in [
        format!("/dashboard/jobs/{}", job.id),
        "/dashboard/queues/hostile".to_owned(),
    ] {
        ctx.goto(&page).await;
        ctx.find("footer").await;
        assert_eq!(
            ctx.count("#xss-img").await,
            0,
            "{page}: an <img> was injected"
        );
        assert_eq!(ctx.count("#xss-b").await, 0, "{page}: a <b> was injected");
        let ours = ctx.count("script").await;
        assert_eq!(
            ours, 1,
            "{page}: only the dashboard's own script is on the page"
        );
        let ran = ctx
            .browser
            .execute("return window.__xss === undefined;", vec![])
            .await
            .unwrap();
        assert_eq!(ran, json!(true), "{page}: injected script ran");
        let text = ctx.text("main").await;
        assert!(text.contains(BOLD), "{page}: the tag is not shown as text");
        assert!(
            text.contains(IMG),
            "{page}: the markup is not shown as text"
        );
    }
    // The job page also shows the payload and the whole error message as text.
    ctx.goto(&format!("/dashboard/jobs/{}", job.id)).await;
    let error = ctx.text("pre.error-message").await;
    assert_eq!(error, format!("failed: {SCRIPT}{IMG}"));
    assert!(
        ctx.text("pre.json")
            .await
            .contains("<script>window.__xss = 1</script>")
    );
    ctx.snap("hostile-job").await;
}

/// A page on another site that POSTs to the dashboard (no CSRF token, and the SameSite cookie
/// stays home) is refused, and the queue is not paused.
pub async fn cross_site_post(ctx: &Ctx) {
    ctx.server.put("transfers", "{}").await;
    let target = ctx.server.url("/dashboard/queues/transfers/pause");
    let page = format!(
        "<!doctype html><title>Win a prize</title>\
         <form method=post action='{target}'><button type=submit>Claim</button></form>"
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let evil = Router::new().route("/", get(move || async move { Html(page) }));
    let site = tokio::spawn(async move { axum::serve(listener, evil).await });

    // `localhost` is another site than the dashboard's `127.0.0.1`.
    ctx.browser
        .goto(&format!("http://localhost:{port}/"))
        .await
        .unwrap();
    ctx.find("button[type=submit]").await.click().await.unwrap();
    let refused = ctx.text("main").await;
    assert!(refused.contains("This action was refused"), "{refused}");
    assert_eq!(ctx.path().await, "/dashboard/queues/transfers/pause");
    assert!(!ctx.server.engine.queue("transfers").await.unwrap().paused);
    ctx.snap("cross-site-refused").await;
    site.abort();
}
