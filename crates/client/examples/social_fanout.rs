//! A social post fanned out to its author's followers, through a topic. Posting answers at
//! once: the post is published to the `posts` topic, which makes one job per subscriber in one
//! transaction. One subscriber fans the post out to every follower's timeline as `Deliver`
//! jobs, enqueued in batches (each batch one transaction, all or none); another indexes it for
//! search. A follower whose timeline store hiccups is retried on its own, without redoing the
//! others.
//!
//! ```sh
//! cargo run -p buzzer --example social_fanout
//! ```

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

/// The event published to `posts` when someone posts.
#[derive(Debug, Serialize, Deserialize)]
struct PostCreated {
    author: String,
    post: u64,
    followers: u32,
    text: String,
}

/// The timelines' subscription to `posts`: fan the post out to the author's followers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct FanOut(PostCreated);

impl Job for FanOut {
    const QUEUE: &'static str = "fanout";
    /// How many deliveries were enqueued.
    type Output = u32;
}

/// The search index's subscription to `posts`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
struct IndexPost(PostCreated);

impl Job for IndexPost {
    const QUEUE: &'static str = "search";
    type Output = ();
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

async fn fan_out(ctx: JobContext, FanOut(job): FanOut) -> Result<u32, JobError> {
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
    indexed: AtomicU32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let buzzer = Buzzer::open(dir.path().join("social.db")).await?;

    let timelines = Arc::new(Timelines::default());
    let store = timelines.clone();
    let search = timelines.clone();
    // `subscribe` creates each queue's subscription to `posts` and runs its jobs.
    let worker = Worker::builder(&buzzer)
        .subscribe::<FanOut, _>("posts", fan_out)
        .await?
        .subscribe::<IndexPost, _>("posts", move |_ctx: JobContext, IndexPost(post)| {
            let search = search.clone();
            async move {
                println!("indexed post {} ({:?})", post.post, post.text);
                search.indexed.fetch_add(1, Ordering::Relaxed);
                Ok::<_, JobError>(())
            }
        })
        .await?
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
    let published = buzzer
        .publish(
            "posts",
            &PostCreated {
                author: "alice".into(),
                post: 1,
                followers: 1_000,
                text: "hello, followers".into(),
            },
        )
        // A retried request (the user tapped twice) publishes once.
        .idempotency_key("alice-post-1")
        .await?;
    println!(
        "alice posted; the request answered after {:.1} ms (event {}, {} subscribers)",
        started.elapsed().as_secs_f64() * 1000.0,
        published.event_id,
        published.deliveries
    );

    let enqueued = 1_000;
    // Wait for the timelines to fill (with a limit, so a bug cannot hang the example).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = timelines
            .delivered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        if delivered == enqueued && timelines.indexed.load(Ordering::Relaxed) == 1 {
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
