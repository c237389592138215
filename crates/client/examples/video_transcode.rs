//! A video upload whose transcoding runs as jobs: the upload answers at once with one job per
//! rendition, each worker reports its progress as it goes, and the uploader follows the
//! progress through the job handles (as a web page would poll `GET /v1/jobs/{id}`).
//!
//! ```sh
//! cargo run -p buzzer --example video_transcode
//! ```

use std::time::{Duration, Instant};

use buzzer::{Buzzer, Job, JobContext, JobError, JobState, Worker};
use serde::{Deserialize, Serialize};

/// Transcode one uploaded video into one rendition.
#[derive(Debug, Serialize, Deserialize)]
struct Transcode {
    video: String,
    height: u32,
}

impl Job for Transcode {
    const QUEUE: &'static str = "transcode";
    /// Where the rendition was written.
    type Output = String;
}

#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    percent: u32,
}

/// Pretends to transcode: bigger renditions take longer. Reports progress every 10 % and
/// stops early if the upload is cancelled.
async fn transcode(ctx: JobContext, job: Transcode) -> Result<String, JobError> {
    let step = Duration::from_millis(u64::from(job.height) / 24);
    for tenth in 1..=10 {
        if ctx.is_cancelled() {
            return Err(JobError::cancelled());
        }
        tokio::time::sleep(step).await;
        ctx.progress(Progress {
            percent: tenth * 10,
        })
        .await?;
    }
    Ok(format!(
        "{}-{}p.mp4",
        job.video.trim_end_matches(".mov"),
        job.height
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let buzzer = Buzzer::open(dir.path().join("video.db")).await?;
    let worker = Worker::builder(&buzzer)
        .register::<Transcode, _>(transcode)
        .concurrency::<Transcode>(3)
        .build()?
        .spawn();

    // The upload handler: store the file (not shown), enqueue the renditions, answer.
    let started = Instant::now();
    let renditions = [360, 720, 1080];
    let jobs = buzzer
        .enqueue_batch(renditions.map(|height| Transcode {
            video: "holiday.mov".into(),
            height,
        }))
        .timeout(Duration::from_secs(60))
        .await?;
    println!(
        "upload accepted in {:.1} ms; {} renditions queued",
        started.elapsed().as_secs_f64() * 1000.0,
        jobs.len()
    );

    // The uploader's page: poll each job's progress until all are done.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut line = Vec::new();
        let mut done = 0;
        for (height, job) in renditions.iter().zip(&jobs) {
            let status = job.status().await?;
            let percent = match (&status.state, &status.progress) {
                (JobState::Completed, _) => 100,
                (_, Some(raw)) => serde_json::from_str::<Progress>(raw.get())?.percent,
                (_, None) => 0,
            };
            if status.state.is_terminal() {
                done += 1;
            }
            line.push(format!("{height}p {percent:>3}%"));
        }
        println!("  {}", line.join("  "));
        if done == jobs.len() {
            break;
        }
        if Instant::now() > deadline {
            return Err("transcoding did not finish in time".into());
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for job in &jobs {
        println!("ready: {}", job.wait().await?);
    }
    println!("all renditions in {:.2} s", started.elapsed().as_secs_f64());

    worker.shutdown().await;
    buzzer.shutdown().await?;
    Ok(())
}
