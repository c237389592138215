//! The embedded quick start: one SQLite file, a worker, typed jobs and the hybrid call, all in
//! this process, with no server.
//!
//! Run it with:
//!
//! ```sh
//! cargo run -p buzzer --example quickstart
//! ```
//!
//! It keeps its database in a temporary directory and prints what happens.

use std::time::Duration;

use buzzer::{Answer, Buzzer, Job, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};

/// A job: its payload is the type itself, stored as JSON.
#[derive(Debug, Serialize, Deserialize)]
struct Thumbnail {
    image: String,
    width: u32,
}

impl Job for Thumbnail {
    const QUEUE: &'static str = "thumbnails";
    /// What a finished job hands back.
    type Output = String;
}

/// The handler: big images take a while, and say how far along they are.
async fn make_thumbnail(ctx: JobContext, job: Thumbnail) -> Result<String, JobError> {
    if job.width == 0 {
        return Err(JobError::fatal("width must be above 0")); // no retry can fix this
    }
    let steps = job.width / 256;
    for step in 0..steps {
        ctx.progress(serde_json::json!({ "step": step, "of": steps }))
            .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(format!(
        "{}@{}w.png",
        job.image.trim_end_matches(".png"),
        job.width
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    // The one line that picks where jobs live. Over HTTP instead:
    // let buzzer = Buzzer::connect("http://127.0.0.1:2899").await?;
    let buzzer = Buzzer::open(dir.path().join("quickstart.db")).await?;

    let worker = Worker::builder(&buzzer)
        .register::<Thumbnail, _>(make_thumbnail)
        .concurrency::<Thumbnail>(4)
        .build()?
        .spawn();

    // Later: a durable job with options, followed through its handle.
    let job = buzzer
        .enqueue(Thumbnail {
            image: "cat.png".into(),
            width: 128,
        })
        .priority(10)
        .max_attempts(5)
        .tag("quickstart")
        .await?;
    println!("enqueued job {}", job.id());
    println!("job {} made {}", job.id(), job.wait().await?);

    // Now or later: a small image is ready within 200 ms; a big one is not, so the caller
    // gets a handle instead of waiting.
    for width in [64, 2048] {
        let image = Thumbnail {
            image: "dog.png".into(),
            width,
        };
        match buzzer
            .call(image)
            .within(Duration::from_millis(200))
            .await?
        {
            Answer::Now(thumbnail) => println!("width {width}: now, {thumbnail}"),
            Answer::Later(job) => {
                println!("width {width}: later, job {} is still running", job.id());
                println!("width {width}: then, {}", job.wait().await?);
            }
        }
    }

    // A job that fails for good ends in the dead-letter queue; waiting on it says why.
    let broken = buzzer
        .enqueue(Thumbnail {
            image: "void.png".into(),
            width: 0,
        })
        .await?;
    if let Err(e) = broken.wait().await {
        println!("{e}");
    }

    worker.shutdown().await;
    buzzer.shutdown().await?;
    Ok(())
}
