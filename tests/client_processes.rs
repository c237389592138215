//! The `buzzer` library's worker runtime with real processes: a `buzzer serve` child, and
//! worker children (this test binary run again as [`worker_process`]) that are killed with
//! SIGKILL or stopped with SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]
// `libc::kill` sends SIGTERM to a worker child: std can only send SIGKILL.
#![allow(unsafe_code)]

mod common;

use std::{
    fs::File,
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use buzzer::{
    Answer, BreakerConfig, BreakerState, Buzzer, Error, Job, JobContext, JobError, JobHandle,
    JobRecord, JobState, Worker,
};
use common::Server;
use serde::{Deserialize, Serialize};

/// Set only in worker children: the server URL they work for.
const WORKER_URL: &str = "BUZZER_TEST_WORKER_URL";
const WORKER_LEASE_MS: &str = "BUZZER_TEST_WORKER_LEASE_MS";
const WORKER_GRACE_MS: &str = "BUZZER_TEST_WORKER_GRACE_MS";
/// Tests wait on conditions; this only bounds how long a broken one hangs.
const PATIENCE: Duration = Duration::from_secs(30);

/// What a worker child does with a job.
#[derive(Debug, Serialize, Deserialize)]
enum Work {
    Ok,
    /// Reports progress, then sleeps this long.
    Sleep(u64),
    /// Reports progress, then hangs on the first attempt; later attempts succeed.
    HangFirst,
    PanicFirst(String),
    /// Reports progress, then waits for cancellation.
    WaitCancel,
}

impl Job for Work {
    const QUEUE: &'static str = "e2e";
    /// Which process finished it, and on which attempt.
    type Output = String;
}

async fn work(ctx: JobContext, work: Work) -> Result<String, JobError> {
    let done = |ctx: &JobContext| format!("pid {} attempt {}", std::process::id(), ctx.attempt());
    match work {
        Work::Ok => Ok(done(&ctx)),
        Work::Sleep(ms) => {
            ctx.progress("started").await?;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(done(&ctx))
        }
        Work::HangFirst if ctx.attempt() == 1 => {
            ctx.progress("started").await?;
            std::future::pending().await
        }
        Work::PanicFirst(message) if ctx.attempt() == 1 => panic!("{message}"),
        Work::HangFirst | Work::PanicFirst(_) => Ok(done(&ctx)),
        Work::WaitCancel => {
            ctx.progress("started").await?;
            ctx.cancelled().await;
            Err(JobError::cancelled())
        }
    }
}

/// The worker child: runs [`work`] for the server in `BUZZER_TEST_WORKER_URL` until SIGTERM.
/// The other tests start it; on its own (no URL) it does nothing.
#[test]
#[ignore = "the worker child of the other tests, started by them"]
fn worker_process() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        return;
    };
    let ms = |var: &str, default: u64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_millis(default), Duration::from_millis)
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let buzzer = Buzzer::connect(&url).await.unwrap();
        let worker = Worker::builder(&buzzer)
            .register::<Work, _>(work)
            .concurrency::<Work>(4)
            .lease(ms(WORKER_LEASE_MS, 30_000))
            .grace(ms(WORKER_GRACE_MS, 10_000))
            .poll_wait(Duration::from_millis(200))
            .build()
            .unwrap();
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        // Only now: a SIGTERM sent on reading this line must reach the handler above.
        println!("worker ready");
        worker
            .run(async move {
                term.recv().await;
            })
            .await;
        println!("worker stopped");
    });
}

/// A worker child process. Dropping it kills it.
struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    fn start(url: &str, lease_ms: u64, grace_ms: u64, log: &Path) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "worker_process", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(WORKER_URL, url)
            .env(WORKER_LEASE_MS, lease_ms.to_string())
            .env(WORKER_GRACE_MS, grace_ms.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints "test worker_process ... " before the test's own output.
                if !ready && line.ends_with("worker ready") {
                    ready = true;
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(PATIENCE).is_err() {
            let _ = child.kill();
            panic!(
                "the worker never got ready; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        WorkerProcess { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to hand anything back.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: plain kill(2) on our own child's pid, which has not been waited on yet.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0);
    }

    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A server over a fresh database, a client of it, and where logs go.
struct Setup {
    server: Server,
    buzzer: Buzzer,
    dir: tempfile::TempDir,
}

impl Setup {
    async fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::start(&dir.path().join("b.db"));
        let buzzer = Buzzer::connect(&server.url).await.unwrap();
        Setup {
            server,
            buzzer,
            dir,
        }
    }

    fn worker(&self, name: &str, lease_ms: u64, grace_ms: u64) -> WorkerProcess {
        let log = self.dir.path().join(format!("{name}.log"));
        WorkerProcess::start(&self.server.url, lease_ms, grace_ms, &log)
    }
}

/// Polls the job (every 20 ms) until `done` holds.
async fn until(
    handle: &JobHandle<Work>,
    what: &str,
    done: impl Fn(&JobRecord) -> bool,
) -> JobRecord {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let job = handle.status().await.unwrap();
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "job never got {what}: {job:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn started(job: &JobRecord) -> bool {
    job.state == JobState::Running && job.progress.is_some()
}

fn tiny_backoff(e: buzzer::Enqueue<Work>) -> buzzer::Enqueue<Work> {
    e.backoff(Duration::from_millis(10), Duration::from_millis(10), 1.0)
}

#[tokio::test]
async fn a_killed_worker_job_is_redelivered_and_finished_by_another_worker() {
    let s = Setup::new().await;
    let mut first = s.worker("first", 1_000, 10_000);
    let handle = tiny_backoff(s.buzzer.enqueue(Work::HangFirst))
        .await
        .unwrap();
    let running = until(&handle, "started", started).await;
    assert!(running.worker_id.is_some());

    first.kill();
    let second = s.worker("second", 1_000, 10_000);
    // The 1 s lease runs out, the server's rescuer counts the attempt, the other worker gets it.
    let output = handle.wait_for(PATIENCE).await.unwrap().expect("finished");
    assert_eq!(output, format!("pid {} attempt 2", second.pid()));
    let job = handle.status().await.unwrap();
    assert_eq!(job.errors.len(), 1);
    assert_eq!(job.errors[0].message, "lease expired");
}

#[tokio::test]
async fn a_panic_is_a_failed_attempt_retried_with_its_message() {
    let s = Setup::new().await;
    let worker = s.worker("w", 30_000, 10_000);
    let handle = tiny_backoff(s.buzzer.enqueue(Work::PanicFirst("kaboom 7".into())))
        .await
        .unwrap();
    let output = handle.wait_for(PATIENCE).await.unwrap().expect("finished");
    assert_eq!(
        output,
        format!("pid {} attempt 2", worker.pid()),
        "the worker lived on"
    );
    let job = handle.status().await.unwrap();
    assert_eq!(job.errors[0].message, "the handler panicked: kaboom 7");
}

#[tokio::test]
async fn a_job_over_its_timeout_fails_and_is_retried() {
    let s = Setup::new().await;
    let _worker = s.worker("w", 30_000, 10_000);
    let handle = tiny_backoff(s.buzzer.enqueue(Work::HangFirst))
        .timeout(Duration::from_millis(300))
        .await
        .unwrap();
    let output = handle.wait_for(PATIENCE).await.unwrap().expect("finished");
    assert!(output.ends_with("attempt 2"), "{output}");
    let job = handle.status().await.unwrap();
    assert_eq!(job.errors[0].message, "timed out after 300 ms");
}

#[tokio::test]
async fn cancellation_reaches_the_running_handler_on_its_next_heartbeat() {
    let s = Setup::new().await;
    // Heartbeats every 200 ms.
    let _worker = s.worker("w", 600, 10_000);
    let handle = s.buzzer.enqueue(Work::WaitCancel).await.unwrap();
    until(&handle, "started", started).await;
    let asked = Instant::now();
    handle.cancel().await.unwrap();
    let outcome = handle.wait_for(PATIENCE).await;
    assert!(
        matches!(outcome, Err(Error::JobCancelled { .. })),
        "{outcome:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "seen after {:?}",
        asked.elapsed()
    );
    assert_eq!(handle.status().await.unwrap().state, JobState::Cancelled);
}

#[tokio::test]
async fn sigterm_hands_unfinished_jobs_back_within_the_grace_period() {
    let s = Setup::new().await;
    let grace = Duration::from_millis(500);
    let mut worker = s.worker("w", 30_000, grace.as_millis() as u64);
    let quick = s.buzzer.enqueue(Work::Sleep(200)).await.unwrap();
    let stuck = s.buzzer.enqueue(Work::HangFirst).await.unwrap();
    until(&quick, "started", started).await;
    until(&stuck, "started", started).await;

    let asked = Instant::now();
    worker.terminate();
    let status = worker.wait_exit(PATIENCE).expect("the worker exits");
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took >= grace && took < grace + Duration::from_secs(2),
        "stopped after {took:?}"
    );
    // Back at once (the lease is 30 s), the attempt not counted; the quick one finished.
    let back = stuck.status().await.unwrap();
    assert_eq!(back.state, JobState::Available);
    assert_eq!(back.attempt, 0);
    assert!(back.errors.is_empty());
    assert_eq!(quick.status().await.unwrap().state, JobState::Completed);
}

#[tokio::test]
async fn hybrid_call_over_http_answers_now_or_later() {
    let s = Setup::new().await;
    let worker = s.worker("w", 30_000, 10_000);
    let now = s
        .buzzer
        .call(Work::Ok)
        .within(Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        now.now().as_deref(),
        Some(format!("pid {} attempt 1", worker.pid()).as_str())
    );
    let later = s
        .buzzer
        .call(Work::Sleep(500))
        .within(Duration::from_millis(50))
        .await
        .unwrap();
    let Answer::Later(handle) = later else {
        panic!("a 500 ms job made a 50 ms deadline");
    };
    let output = handle.wait_for(PATIENCE).await.unwrap().expect("finished");
    assert!(output.ends_with("attempt 1"), "{output}");
}

#[tokio::test]
async fn hybrid_call_embedded_answers_now_or_later() {
    let dir = tempfile::tempdir().unwrap();
    let buzzer = Buzzer::open(dir.path().join("b.db")).await.unwrap();
    let worker = Worker::builder(&buzzer)
        .register::<Work, _>(work)
        .poll_wait(Duration::from_millis(100))
        .build()
        .unwrap()
        .spawn();
    let now = buzzer
        .call(Work::Ok)
        .within(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(now.now().is_some());
    let later = buzzer
        .call(Work::Sleep(500))
        .within(Duration::from_millis(50))
        .await
        .unwrap();
    let handle = later.later().expect("a 500 ms job made a 50 ms deadline");
    assert!(handle.wait().await.unwrap().ends_with("attempt 1"));
    worker.shutdown().await;
    buzzer.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_breaker_opens_on_missed_deadlines_and_closes_on_a_made_one() {
    let s = Setup::new().await;
    let _worker = s.worker("w", 30_000, 10_000);
    let cooldown = Duration::from_millis(400);
    let buzzer = s.buzzer.clone().breaker(BreakerConfig {
        window: 10,
        min_calls: 3,
        threshold: 0.5,
        cooldown,
        enabled: true,
    });
    let quick = Duration::from_millis(30);
    for _ in 0..3 {
        let answer = buzzer.call(Work::Sleep(300)).within(quick).await.unwrap();
        assert!(answer.later().is_some());
    }
    assert_eq!(buzzer.breaker_state("e2e"), BreakerState::Open);

    let asked = Instant::now();
    let answer = buzzer
        .call(Work::Ok)
        .within(Duration::from_secs(10))
        .await
        .unwrap();
    let handle = answer.later().expect("an open breaker answers Later");
    assert!(asked.elapsed() < Duration::from_secs(1), "it did not wait");
    assert!(
        handle.wait_for(PATIENCE).await.unwrap().is_some(),
        "still enqueued"
    );

    tokio::time::sleep(cooldown).await;
    assert_eq!(buzzer.breaker_state("e2e"), BreakerState::HalfOpen);
    let answer = buzzer
        .call(Work::Ok)
        .within(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(answer.now().is_some());
    assert_eq!(buzzer.breaker_state("e2e"), BreakerState::Closed);
}
