//! A social post fanned out to its author's followers. Publishing answers at once: one
//! `FanOut` job is enqueued, and a worker turns it into one `Deliver` job per follower,
//! enqueued in batches (each batch is one transaction, all or none). A follower whose
//! timeline store hiccups is retried on its own, without redoing the others.
//!
//! ```sh
//! cargo run -p buzzer --example social_fanout
//! ```
//!
//! The fan-out here is an explicit batch enqueue; with topics (publish/subscribe), each
//! follower's delivery could instead be a subscription on a `posts` topic.

use std::{
    collections::HashSet,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use buzzer::{Buzzer, Job, JobContext, JobError, Worker};
use serde::{Deserialize, Serialize};

/// "Alice posted": fan it out to her followers.
#[derive(Debug, Serialize, Deserialize)]
struct FanOut {
    author: String,
    post: u64,
    followers: u32,
}

impl Job for FanOut {
    const QUEUE: &'static str = "fanout";
    /// How many deliveries were enqueued.
    type Output = u32;
}

/// Put one post on one follower's timeline.
#[derive(Debug, Serialize, Deserialize)]
struct Deliver {
    follower: u32,
    post: u64,
}

impl Job for Deliver {
    const QUEUE: &'static str = "timelines";
    type Output = ();
}

/// Followers are enqueued this many at a time: one transaction per batch. A fan-out that
/// fails halfway and retries enqueues its batches again; that is harmless because putting a
/// post on a timeline twice leaves one copy (timelines are sets).
const BATCH: u32 = 250;

async fn fan_out(ctx: JobContext, job: FanOut) -> Result<u32, JobError> {
    let mut enqueued = 0;
    for start in (0..job.followers).step_by(BATCH as usize) {
        let end = (start + BATCH).min(job.followers);
        ctx.buzzer()
            .enqueue_batch((start..end).map(|follower| Deliver {
                follower,
                post: job.post,
            }))
            .await?;
        enqueued += end - start;
        ctx.progress(serde_json::json!({ "enqueued": enqueued, "of": job.followers }))
            .await?;
    }
    Ok(enqueued)
}

#[derive(Debug, Default)]
struct Timelines {
    delivered: Mutex<HashSet<(u32, u64)>>,
    hiccups: AtomicU32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let buzzer = Buzzer::open(dir.path().join("social.db")).await?;

    let timelines = Arc::new(Timelines::default());
    let store = timelines.clone();
    let worker = Worker::builder(&buzzer)
        .register::<FanOut, _>(fan_out)
        .register::<Deliver, _>(move |ctx: JobContext, job: Deliver| {
            let store = store.clone();
            async move {
                // Every 50th follower's timeline store fails once: that delivery alone retries.
                if job.follower.is_multiple_of(50) && ctx.attempt() == 1 {
                    store.hiccups.fetch_add(1, Ordering::Relaxed);
                    return Err(JobError::retry_in(
                        "timeline store busy",
                        Duration::from_millis(20),
                    ));
                }
                store
                    .delivered
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((job.follower, job.post));
                Ok(())
            }
        })
        .concurrency::<Deliver>(64)
        .build()?
        .spawn();

    let started = Instant::now();
    let post = buzzer
        .enqueue(FanOut {
            author: "alice".into(),
            post: 1,
            followers: 1_000,
        })
        .await?;
    println!(
        "alice posted; the request answered after {:.1} ms (job {})",
        started.elapsed().as_secs_f64() * 1000.0,
        post.id()
    );

    let enqueued = post.wait().await?;
    println!("fan-out enqueued {enqueued} deliveries");
    // Wait for the timelines to fill (with a limit, so a bug cannot hang the example).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = timelines
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if delivered == enqueued as usize {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {delivered} of {enqueued} timelines updated").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "all {enqueued} followers have the post after {:.0} ms ({} deliveries retried once)",
        started.elapsed().as_secs_f64() * 1000.0,
        timelines.hiccups.load(Ordering::Relaxed)
    );

    worker.shutdown().await;
    buzzer.shutdown().await?;
    Ok(())
}
