//! A webhook receiver: an axum endpoint that accepts only deliveries signed with its
//! subscription's secret, recent, and not seen before.
//!
//! Run it, then point a subscription at it (the server needs `--allow-private-webhooks` to
//! reach loopback):
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_… cargo run -p buzzer --example webhook_receiver
//! curl -X PUT localhost:2899/v1/topics/orders/subscriptions/receiver \
//!   -H 'content-type: application/json' \
//!   -d '{"webhook": {"url": "http://127.0.0.1:3000/webhooks", "secret": "whsec_…"}}'
//! ```

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use buzzer::webhooks::{DEFAULT_TOLERANCE, verify};

#[derive(Clone)]
struct Receiver {
    secret: String,
    /// Deliveries are at least once: a retry carries the same `webhook-id`. A real receiver
    /// keeps these ids in its database, beside what the event changed.
    seen: Arc<Mutex<HashSet<String>>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    // Verify the raw body before parsing it.
    if let Err(e) = verify(&r.secret, &headers, &body, DEFAULT_TOLERANCE) {
        eprintln!("refused a delivery: {e}");
        return StatusCode::UNAUTHORIZED;
    }
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let first_time = r
        .seen
        .lock()
        .map(|mut seen| seen.insert(id.clone()))
        .unwrap_or(true);
    if first_time {
        println!("{id}: {}", String::from_utf8_lossy(&body));
    }
    // 2xx also for a duplicate: it was handled, so the server must stop retrying it.
    StatusCode::NO_CONTENT
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let Ok(secret) = std::env::var("WEBHOOK_SECRET") else {
        eprintln!("set WEBHOOK_SECRET to the subscription's secret (whsec_…)");
        std::process::exit(2);
    };
    let state = Receiver {
        secret,
        seen: Arc::default(),
    };
    let app = Router::new()
        .route("/webhooks", post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("receiving webhooks on http://127.0.0.1:3000/webhooks");
    axum::serve(listener, app).await
}
