//! A worker in a process of its own, working for a `buzzer serve` over HTTP.
//!
//! Start a server, then this worker, then send it work from anywhere:
//!
//! ```sh
//! cargo run -- serve                                                 # terminal 1
//! cargo run -p buzzer --features remote --example remote_worker     # terminal 2
//! curl -s localhost:2899/v1/queues/greetings/jobs -H 'Prefer: wait=5' \
//!   -d '{"payload": {"name": "Ada"}}'                               # terminal 3
//! ```
//!
//! The server's URL comes from the first argument or `BUZZER_URL` (default
//! `http://127.0.0.1:2899`); an API key, if the server wants one, from `BUZZER_API_KEY`. At
//! start the worker also sends itself one greeting through the hybrid call and prints the
//! answer. Ctrl-C stops it gracefully: running jobs get 10 s, then go back to the queue.

use std::time::Duration;

use buzzer::{Answer, Buzzer, Job, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Greet {
    name: String,
}

impl Job for Greet {
    const QUEUE: &'static str = "greetings";
    type Output = String;
}

async fn greet(ctx: JobContext, job: Greet) -> Result<String, JobError> {
    println!(
        "job {} (attempt {}): greeting {}",
        ctx.id(),
        ctx.attempt(),
        job.name
    );
    Ok(format!("Hello, {}!", job.name))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BUZZER_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:2899".to_owned());
    let buzzer = match std::env::var("BUZZER_API_KEY") {
        Ok(key) => Buzzer::connect_with(&url, &key).await?,
        Err(_) => Buzzer::connect(&url).await?,
    };

    let worker = Worker::builder(&buzzer)
        .register::<Greet, _>(greet)
        .concurrency::<Greet>(20)
        .build()?;
    println!("worker {} works for {url}; Ctrl-C stops it", worker.id());
    let worker = worker.spawn();

    let hello = Greet {
        name: "remote worker".into(),
    };
    match buzzer.call(hello).within(Duration::from_secs(5)).await {
        Ok(Answer::Now(text)) => println!("self-test: {text}"),
        Ok(Answer::Later(job)) => println!("self-test: job {} is still waiting", job.id()),
        Err(e) => println!("self-test failed ({e}); is `buzzer serve` running at {url}?"),
    }

    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    worker.shutdown().await;
    Ok(())
}
