//! The worker runtime: handlers per job type, a fetch loop per queue, one task per running
//! job, batched acknowledgements, automatic heartbeats, timeouts and graceful shutdown.

mod acker;
mod context;
mod error;
mod execute;
mod fetch;
mod handler;
mod pace;

use std::{
    any::type_name,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use buzzer_types::{Limits, SubscriptionRequest, validate_name};
use tokio::{
    sync::{Semaphore, mpsc},
    task::{JoinHandle, JoinSet},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use context::JobContext;
pub use error::JobError;
pub use handler::Handler;

use crate::{Buzzer, Error, Job, enqueue::ceil_ms, transport::Finish};
use handler::{Erased, Typed};
use pace::Pace;

/// Runs jobs: register a handler per job type, then [`run`](Worker::run) it until a shutdown
/// signal, or [`spawn`](Worker::spawn) it.
///
/// Per queue, one loop leases as many jobs as there are free slots in one long-polling fetch
/// (so an idle worker costs one open request per queue, and a busy one fetches in batches);
/// each job runs in its own task with heartbeats every third of the lease; results go back in
/// batches. While a queue has a backlog of quick jobs, a fetch also leases the jobs that its
/// running ones will have made room for by the time it is back (up to seven per slot, never
/// planned to wait more than 50 ms); those wait for a free slot, heartbeating meanwhile, so
/// no more than the queue's concurrency ever run at once. A handler's panic becomes a failed
/// attempt carrying the panic message; a job over its timeout is stopped and fails with
/// "timed out after N ms".
///
/// On shutdown the worker stops fetching at once and hands back the jobs still waiting for a
/// slot, gives running jobs the grace period to finish, then stops the rest and hands their
/// jobs back (available again at once, the attempt not counted), and sends the last results.
///
/// ```no_run
/// use std::time::Duration;
/// use buzzer::{Buzzer, JobContext, JobError, Worker};
///
/// # #[derive(serde::Serialize, serde::Deserialize)] struct SendEmail { to: String }
/// # impl buzzer::Job for SendEmail { const QUEUE: &'static str = "emails"; type Output = (); }
/// async fn send_email(_ctx: JobContext, job: SendEmail) -> Result<(), JobError> {
///     println!("to {}", job.to);
///     Ok(())
/// }
///
/// # async fn demo() -> Result<(), buzzer::Error> {
/// let buzzer = Buzzer::open("jobs.db").await?;
/// Worker::builder(&buzzer)
///     .register::<SendEmail, _>(send_email)
///     .concurrency::<SendEmail>(50)
///     .lease(Duration::from_secs(60))
///     .grace(Duration::from_secs(20))
///     .build()?
///     .run(async {
///         let _ = tokio::signal::ctrl_c().await;
///     })
///     .await;
/// buzzer.shutdown().await
/// # }
/// ```
pub struct Worker {
    buzzer: Buzzer,
    queues: Vec<Queue>,
    config: Config,
}

struct Queue {
    name: String,
    handler: Arc<dyn Erased>,
    concurrency: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let queues: Vec<(&str, usize)> = self
            .queues
            .iter()
            .map(|q| (q.name.as_str(), q.concurrency))
            .collect();
        f.debug_struct("Worker")
            .field("queues", &queues)
            .field("config", &self.config)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct Config {
    worker_id: String,
    lease: Duration,
    grace: Duration,
    poll_wait: Duration,
    job_timeout: Option<Duration>,
    default_concurrency: usize,
}

impl Config {
    fn lease_ms(&self) -> u64 {
        ceil_ms(self.lease)
    }

    /// A third of the lease: two heartbeats can fail before the lease runs out.
    fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(1))
    }
}

/// Sets up a [`Worker`]; made by [`Worker::builder`].
///
/// Defaults: 10 jobs at a time per queue, a 30 s lease (heartbeats every 10 s), a 10 s grace
/// period on shutdown, fetches that long-poll for 2 s, no timeout beyond each job's own, and
/// a worker id of `host:pid:n`.
#[must_use = "a builder does nothing until built"]
pub struct WorkerBuilder {
    buzzer: Buzzer,
    handlers: Vec<(String, &'static str, Arc<dyn Erased>)>,
    concurrency: Vec<(String, usize)>,
    config: Config,
}

impl std::fmt::Debug for WorkerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let handlers: Vec<(&str, &str)> = self
            .handlers
            .iter()
            .map(|(q, t, _)| (q.as_str(), *t))
            .collect();
        f.debug_struct("WorkerBuilder")
            .field("handlers", &handlers)
            .field("concurrency", &self.concurrency)
            .field("config", &self.config)
            .finish()
    }
}

impl Worker {
    /// Starts setting up a worker on `buzzer`'s jobs.
    pub fn builder(buzzer: &Buzzer) -> WorkerBuilder {
        WorkerBuilder {
            buzzer: buzzer.clone(),
            handlers: Vec::new(),
            concurrency: Vec::new(),
            config: Config {
                worker_id: default_worker_id(),
                lease: Duration::from_secs(30),
                grace: Duration::from_secs(10),
                poll_wait: Duration::from_secs(2),
                job_timeout: None,
                default_concurrency: 10,
            },
        }
    }

    /// The id this worker leases jobs under (shown as the jobs' `worker_id`).
    pub fn id(&self) -> &str {
        &self.config.worker_id
    }

    /// Runs until `shutdown` resolves, then shuts down gracefully (see [`Worker`]) and returns.
    /// Also returns when the client is shut down under it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Worker {
            buzzer,
            queues,
            config,
        } = self;
        let held: usize = queues.iter().map(|q| held_capacity(q.concurrency)).sum();
        // Each job held sends one result: a channel of that size never makes one wait, so a
        // job's slot is free again as soon as it has ended, whatever the store is doing.
        let (acks, results) = mpsc::channel::<Finish>(held.max(1));
        let acker_done = CancellationToken::new();
        let acker = tokio::spawn(acker::run(buzzer.clone(), results, acker_done.clone()));
        let grace = config.grace;
        let shared = Arc::new(Shared {
            buzzer,
            config,
            stop: CancellationToken::new(),
            hard_stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            acks,
        });
        let mut loops = JoinSet::new();
        for q in queues {
            tracing::info!(queue = %q.name, concurrency = q.concurrency, worker = %shared.config.worker_id, "worker fetching");
            loops.spawn(fetch::fetch_loop(Arc::new(QueueRun {
                shared: shared.clone(),
                queue: q.name,
                handler: q.handler,
                slots: Arc::new(Semaphore::new(q.concurrency)),
                held: Arc::new(Semaphore::new(held_capacity(q.concurrency))),
                concurrency: q.concurrency,
                pace: Pace::default(),
            })));
        }
        tokio::select! {
            () = shutdown => {}
            () = join_all(&mut loops) => {}
        }

        shared.stop.cancel();
        let deadline = Instant::now() + grace;
        shared.tracker.close();
        if tokio::time::timeout_at(deadline, shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::info!(
                running = shared.tracker.len(),
                "grace period over: stopping the jobs still running and handing them back"
            );
            shared.hard_stop.cancel();
            shared.tracker.wait().await;
        }
        // A fetch in flight is left to finish (it hands back what it gets): wait for it while
        // the grace period lasts, then let it finish on its own.
        if tokio::time::timeout_at(deadline, join_all(&mut loops))
            .await
            .is_err()
        {
            loops.detach_all();
        }
        acker_done.cancel();
        if let Err(e) = acker.await {
            tracing::error!(error = %e, "the result sender failed");
        }
        tracing::info!(worker = %shared.config.worker_id, "worker stopped");
    }

    /// Runs the worker in a task of its own; [`WorkerHandle::shutdown`] stops it gracefully.
    ///
    /// ```no_run
    /// # async fn demo(worker: buzzer::Worker) {
    /// let running = worker.spawn();
    /// // … serve requests …
    /// running.shutdown().await;
    /// # }
    /// ```
    pub fn spawn(self) -> WorkerHandle {
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(self.run(async move { signal.cancelled().await }));
        WorkerHandle { stop, task }
    }
}

async fn join_all(set: &mut JoinSet<()>) {
    while set.join_next().await.is_some() {}
}

/// A worker running in its own task, from [`Worker::spawn`]. Dropping the handle leaves the
/// worker running.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Shuts the worker down gracefully and waits until it has: fetching stops at once,
    /// running jobs get the grace period, the rest are handed back.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the worker task failed");
        }
    }

    /// True once the worker has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// What every loop and job task of one running worker shares.
struct Shared {
    buzzer: Buzzer,
    config: Config,
    /// No new fetches.
    stop: CancellationToken,
    /// The grace period is over: stop the handlers still running and hand their jobs back.
    hard_stop: CancellationToken,
    /// The running job tasks.
    tracker: TaskTracker,
    acks: mpsc::Sender<Finish>,
}

/// One queue of a running worker.
struct QueueRun {
    shared: Arc<Shared>,
    queue: String,
    handler: Arc<dyn Erased>,
    /// One permit per job that may run at once.
    slots: Arc<Semaphore>,
    /// One permit per job this queue may hold (leased and not yet ended): one per slot, and
    /// [`pace::AHEAD_PER_SLOT`] more per slot for the jobs it may lease ahead.
    held: Arc<Semaphore>,
    /// How many permits `slots` started with.
    concurrency: usize,
    pace: Pace,
}

/// The most jobs one queue of one worker runs at once: far beyond what one process can use,
/// and low enough that the semaphores and the results channel sized from it cannot overflow.
const MAX_CONCURRENCY: usize = 100_000;

fn held_capacity(concurrency: usize) -> usize {
    concurrency.saturating_mul(1 + pace::AHEAD_PER_SLOT)
}

impl WorkerBuilder {
    /// Runs jobs of type `J` from `J::QUEUE` with `handler`.
    ///
    /// ```no_run
    /// # use buzzer::{JobContext, JobError, Worker};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct Resize { w: u32 }
    /// # impl buzzer::Job for Resize { const QUEUE: &'static str = "resize"; type Output = u32; }
    /// # fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// let worker = Worker::builder(&buzzer)
    ///     .register::<Resize, _>(|_ctx: JobContext, job: Resize| async move {
    ///         Ok::<_, JobError>(job.w / 2)
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn register<J: Job, H: Handler<J>>(self, handler: H) -> Self {
        self.register_in::<J, H>(J::QUEUE, handler)
    }

    /// Runs jobs of type `J` from `queue` (enqueued with
    /// [`Enqueue::queue`](crate::Enqueue::queue)) with `handler`. A queue carries one job type.
    pub fn register_in<J: Job, H: Handler<J>>(
        mut self,
        queue: impl Into<String>,
        handler: H,
    ) -> Self {
        let erased: Arc<dyn Erased> = Arc::new(Typed::<J, H>::new(handler));
        self.handlers.push((queue.into(), type_name::<J>(), erased));
        self
    }

    /// Makes `handler` a subscriber of `topic`: creates (or replaces) the queue subscription
    /// named `J::QUEUE` that delivers every event of `topic` into `J::QUEUE`, and runs its
    /// jobs with `handler` (as [`register`](Self::register) does). Each event's payload must
    /// deserialize as `J`.
    ///
    /// ```no_run
    /// # use buzzer::{JobContext, JobError, Worker};
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct OrderPlaced { order: u64 }
    /// # impl buzzer::Job for OrderPlaced { const QUEUE: &'static str = "emails"; type Output = (); }
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// let worker = Worker::builder(&buzzer)
    ///     .subscribe::<OrderPlaced, _>("orders", |_ctx: JobContext, e: OrderPlaced| async move {
    ///         println!("send the confirmation of order {}", e.order);
    ///         Ok::<_, JobError>(())
    ///     })
    ///     .await?
    ///     .build()?
    ///     .spawn();
    /// # Ok(()) }
    /// ```
    pub async fn subscribe<J: Job, H: Handler<J>>(
        self,
        topic: &str,
        handler: H,
    ) -> Result<Self, Error> {
        self.buzzer
            .subscribe(topic, J::QUEUE, SubscriptionRequest::queue(J::QUEUE))
            .await?;
        Ok(self.register::<J, H>(handler))
    }

    /// How many jobs of type `J` (from `J::QUEUE`) run at once (default 10).
    pub fn concurrency<J: Job>(self, jobs: usize) -> Self {
        self.queue_concurrency(J::QUEUE, jobs)
    }

    /// How many jobs from `queue` run at once (default 10).
    pub fn queue_concurrency(mut self, queue: impl Into<String>, jobs: usize) -> Self {
        self.concurrency.push((queue.into(), jobs));
        self
    }

    /// How long a fetched job is this worker's without a heartbeat (30 s). Heartbeats go out
    /// every third of it while the handler runs; if the worker dies, the job runs again after
    /// the lease expires.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease;
        self
    }

    /// How long running jobs get to finish on shutdown before they are stopped and handed
    /// back (10 s).
    pub fn grace(mut self, grace: Duration) -> Self {
        self.config.grace = grace;
        self
    }

    /// The id jobs are leased under (default `host:pid:n`).
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.config.worker_id = id.into();
        self
    }

    /// How long an empty fetch waits for a job before asking again (2 s). Longer means fewer
    /// idle requests; shutdown may wait this long for a fetch in flight.
    pub fn poll_wait(mut self, wait: Duration) -> Self {
        self.config.poll_wait = wait;
        self
    }

    /// Stops a handler after `timeout` when its job sets no timeout of its own (default: no
    /// limit); the attempt fails with "timed out after N ms".
    pub fn job_timeout(mut self, timeout: Duration) -> Self {
        self.config.job_timeout = Some(timeout);
        self
    }

    /// Checks the set-up: at least one handler, one job type per queue, valid queue names and
    /// limits.
    pub fn build(self) -> Result<Worker, Error> {
        let WorkerBuilder {
            buzzer,
            handlers,
            concurrency,
            config,
        } = self;
        if handlers.is_empty() {
            return Err(Error::invalid(
                "handlers",
                "register at least one handler before building a worker",
            ));
        }
        let mut queues: Vec<Queue> = Vec::with_capacity(handlers.len());
        let mut types: Vec<&str> = Vec::with_capacity(handlers.len());
        for (name, job_type, handler) in handlers {
            validate_name(&name).map_err(|m| Error::invalid("queue", format!("{name:?} {m}")))?;
            if let Some(i) = queues.iter().position(|q| q.name == name) {
                return Err(Error::invalid(
                    "queue",
                    format!(
                        "{name:?} has two handlers ({} and {job_type}); a queue carries one job type",
                        types[i]
                    ),
                ));
            }
            queues.push(Queue {
                name,
                handler,
                concurrency: config.default_concurrency,
            });
            types.push(job_type);
        }
        for (name, jobs) in concurrency {
            let Some(q) = queues.iter_mut().find(|q| q.name == name) else {
                return Err(Error::invalid(
                    "concurrency",
                    format!("no handler is registered for queue {name:?}"),
                ));
            };
            if !(1..=MAX_CONCURRENCY).contains(&jobs) {
                return Err(Error::invalid(
                    "concurrency",
                    format!("queue {name:?}: must be between 1 and {MAX_CONCURRENCY}"),
                ));
            }
            q.concurrency = jobs;
        }
        if !Limits::LEASE_MS.contains(&ceil_ms(config.lease)) {
            return Err(Error::invalid(
                "lease",
                format!(
                    "must be between {} ms and {} ms",
                    Limits::LEASE_MS.start(),
                    Limits::LEASE_MS.end()
                ),
            ));
        }
        if ceil_ms(config.poll_wait) > Limits::MAX_WAIT_MS {
            return Err(Error::invalid(
                "poll_wait",
                format!("must be at most {} ms", Limits::MAX_WAIT_MS),
            ));
        }
        if config.worker_id.is_empty() || config.worker_id.len() > Limits::WORKER_ID_MAX_LEN {
            return Err(Error::invalid(
                "worker_id",
                format!("must be 1 to {} bytes long", Limits::WORKER_ID_MAX_LEN),
            ));
        }
        Ok(Worker {
            buzzer,
            queues,
            config,
        })
    }
}

/// `host:pid:n`, so the jobs' `worker_id` says where they ran.
fn default_worker_id() -> String {
    static WORKERS: AtomicUsize = AtomicUsize::new(0);
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let n = WORKERS.fetch_add(1, Ordering::Relaxed);
    format!("{host}:{}:{n}", std::process::id())
}
