//! A web handler that answers now or later. `POST /quotes` waits up to 300 ms for a price: if
//! the worker has it in time the answer is `200` with the price, otherwise `202 Accepted` with
//! a job URL to follow. While the pricing queue keeps missing its deadline, the circuit
//! breaker answers `202` at once, so slow pricing cannot tie up the web server.
//!
//! ```sh
//! cargo run -p buzzer --features remote --example web_hybrid
//! curl -si localhost:3000/quotes -H 'content-type: application/json' -d '{"sku": "A-1"}'
//! # HTTP/1.1 200 OK … {"sku":"A-1","cents":…}
//! curl -si localhost:3000/quotes -H 'content-type: application/json' -d '{"sku": "SLOW-1"}'
//! # HTTP/1.1 202 Accepted, location: /jobs/…
//! curl -s localhost:3000/jobs/<id from the location>
//! # {"id":"…","state":"completed","result":{"sku":"SLOW-1","cents":…}}
//! ```
//!
//! Jobs live in an embedded SQLite file (in a temporary directory). With
//! `BUZZER_URL=http://127.0.0.1:2899` the same code uses a running `buzzer serve` instead: the
//! one line that differs is marked. `PORT` changes the port. Ctrl-C stops it.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use buzzer::{Answer, Buzzer, Error, Job, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Serialize, Deserialize)]
struct Quote {
    sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Price {
    sku: String,
    cents: u64,
}

impl Job for Quote {
    const QUEUE: &'static str = "pricing";
    type Output = Price;
}

/// The slow dependency: most prices come at once, `SLOW-…` ones take 2 s.
async fn price(_ctx: JobContext, quote: Quote) -> Result<Price, JobError> {
    let wait = if quote.sku.starts_with("SLOW") {
        2_000
    } else {
        5
    };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let cents = quote.sku.bytes().map(u64::from).sum::<u64>() * 17;
    Ok(Price {
        sku: quote.sku,
        cents,
    })
}

/// `POST /quotes`: the hybrid call, in one line, and its two answers.
async fn quote(State(buzzer): State<Buzzer>, Json(quote): Json<Quote>) -> Response {
    match buzzer.call(quote).within(Duration::from_millis(300)).await {
        Ok(Answer::Now(price)) => Json(price).into_response(),
        Ok(Answer::Later(job)) => {
            let url = format!("/jobs/{}", job.id());
            let body = Json(json!({ "job": job.id(), "status_url": url }));
            (StatusCode::ACCEPTED, [(header::LOCATION, url)], body).into_response()
        }
        Err(e) => error(e),
    }
}

/// `GET /jobs/{id}`: where a `202` job is now.
async fn job(State(buzzer): State<Buzzer>, Path(id): Path<String>) -> Response {
    let id = match id.parse() {
        Ok(id) => id,
        Err(e) => return error(Error::from(e)),
    };
    match buzzer.handle::<Quote>(id).status().await {
        Ok(job) => {
            Json(json!({ "id": job.id, "state": job.state, "result": job.result })).into_response()
        }
        Err(e) => error(e),
    }
}

fn error(e: Error) -> Response {
    let status = match &e {
        Error::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::JobDead { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(json!({ "error": e.to_string() }))).into_response()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let buzzer = match std::env::var("BUZZER_URL") {
        // The one line that differs between a remote and an embedded Buzzer:
        Ok(url) => Buzzer::connect(&url).await?,
        Err(_) => Buzzer::open(dir.path().join("web_hybrid.db")).await?,
    };
    // In a real deployment the workers run elsewhere; here, beside the web server.
    let worker = Worker::builder(&buzzer)
        .register::<Quote, _>(price)
        .concurrency::<Quote>(16)
        .build()?
        .spawn();

    let app = Router::new()
        .route("/quotes", post(quote))
        .route("/jobs/{id}", get(job))
        .with_state(buzzer.clone());
    let port = std::env::var("PORT").unwrap_or_else(|_| "3000".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;

    worker.shutdown().await;
    buzzer.shutdown().await?;
    Ok(())
}
