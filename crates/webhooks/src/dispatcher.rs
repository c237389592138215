//! The service loop: lease deliveries in batches, run a bounded number at once, and hand
//! leased ones back at shutdown.

use std::sync::Arc;

use buzzer_engine::{Engine, EngineError, Outcome};
use buzzer_types::{FetchRequest, Job};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::{JoinHandle, JoinSet},
};
use tokio_util::sync::CancellationToken;

use crate::{QUEUE, WebhookConfig, WebhookError, deliver::deliver, guard};

/// What every delivery task shares.
#[derive(Debug)]
pub(crate) struct Context {
    pub engine: Engine,
    pub client: reqwest::Client,
    pub config: WebhookConfig,
}

/// The webhook delivery service of one node. Every node may run one: deliveries are leased,
/// so nodes share the work and none is sent twice at once.
#[derive(Debug)]
pub struct WebhookDispatcher {
    ctx: Arc<Context>,
    worker_id: String,
}

/// A started dispatcher; [`Dispatcher::join`] waits for it after [`Engine::shutdown`].
#[derive(Debug)]
pub struct Dispatcher {
    handle: JoinHandle<()>,
}

impl Dispatcher {
    pub async fn join(self) {
        // A panic has already been logged by the runtime.
        let _ = self.handle.await;
    }
}

impl WebhookDispatcher {
    pub fn new(engine: Engine, config: WebhookConfig) -> Result<Self, WebhookError> {
        let client = guard::client(&config)?;
        let mut worker_id = format!("webhooks@{}", engine.config().node_id);
        // A long node id must not make every fetch invalid.
        while worker_id.len() > buzzer_types::Limits::WORKER_ID_MAX_LEN {
            worker_id.pop();
        }
        let mut config = config;
        config.concurrency = config.concurrency.max(1);
        Ok(WebhookDispatcher {
            ctx: Arc::new(Context {
                engine,
                client,
                config,
            }),
            worker_id,
        })
    }

    /// Runs on the current tokio runtime until [`Engine::shutdown`].
    pub fn start(self) -> Dispatcher {
        Dispatcher {
            handle: tokio::spawn(self.run()),
        }
    }

    /// Delivers until [`Engine::shutdown`]; then lets deliveries in flight finish for
    /// [`WebhookConfig::shutdown_grace`] and hands the rest back.
    pub async fn run(self) {
        let ctx = self.ctx;
        let engine = ctx.engine.clone();
        let permits = Arc::new(Semaphore::new(ctx.config.concurrency));
        let cut_off = CancellationToken::new();
        let mut tasks = JoinSet::new();
        tracing::info!(
            allow_private = ctx.config.allow_private,
            concurrency = ctx.config.concurrency,
            "webhook dispatcher started"
        );
        loop {
            while tasks.try_join_next().is_some() {}
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = engine.closed() => break,
            };
            let mut free = vec![first];
            while let Ok(p) = permits.clone().try_acquire_owned() {
                free.push(p);
            }
            let jobs = match fetch(&ctx, &self.worker_id, free.len()).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fetch webhook deliveries; trying again shortly");
                    tokio::select! {
                        () = tokio::time::sleep(std::time::Duration::from_secs(1)) => continue,
                        () = engine.closed() => break,
                    }
                }
            };
            if engine.is_shutting_down() {
                // Leased after the stop began: hand them straight back.
                for job in jobs {
                    hand_back(&engine, job).await;
                }
                break;
            }
            for (job, permit) in jobs.into_iter().zip(free) {
                tasks.spawn(run_one(ctx.clone(), job, permit, cut_off.clone()));
            }
        }
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                "webhook dispatcher stopping: letting deliveries finish"
            );
            let drained = tokio::time::timeout(ctx.config.shutdown_grace, async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                cut_off.cancel();
                while tasks.join_next().await.is_some() {}
            }
        }
        tracing::info!("webhook dispatcher stopped");
    }
}

async fn fetch(ctx: &Context, worker_id: &str, max: usize) -> Result<Vec<Job>, EngineError> {
    let wait_ms = u64::try_from(ctx.config.poll_wait.as_millis()).unwrap_or(u64::MAX);
    ctx.engine
        .fetch(FetchRequest {
            queues: vec![QUEUE.to_owned()],
            worker_id: worker_id.to_owned(),
            max_jobs: Some(u32::try_from(max).unwrap_or(u32::MAX)),
            lease_ms: Some(ctx.config.lease_ms()),
            wait_ms: Some(wait_ms.min(buzzer_types::Limits::MAX_WAIT_MS)),
            brief: false,
        })
        .await
}

/// Delivers one job and reports the outcome; cut off at the end of the shutdown grace, it
/// hands the job back instead (the attempt does not count, the receiver may get it twice).
async fn run_one(
    ctx: Arc<Context>,
    job: Job,
    _permit: OwnedSemaphorePermit,
    cut_off: CancellationToken,
) {
    let outcome = tokio::select! {
        outcome = deliver(&ctx, &job) => outcome,
        () = cut_off.cancelled() => Outcome::Released,
    };
    finish(&ctx.engine, job, outcome).await;
}

async fn hand_back(engine: &Engine, job: Job) {
    finish(engine, job, Outcome::Released).await;
}

async fn finish(engine: &Engine, job: Job, outcome: Outcome) {
    let Some(token) = job.lease_token else {
        tracing::warn!(job = %job.id, "a fetched delivery has no lease token");
        return;
    };
    match engine.finish(job.id, token, outcome).await {
        Ok(done) => {
            tracing::debug!(job = %done.id, state = %done.state, "webhook delivery attempt finished")
        }
        // The lease ran out first (the rescuer counted the attempt) or an operator cancelled
        // the job: either way the job is already where it belongs.
        Err(EngineError::LeaseLost) => {
            tracing::warn!(job = %job.id, "webhook delivery finished after losing its lease");
        }
        Err(e) => {
            tracing::warn!(job = %job.id, error = %e, "cannot record a webhook delivery attempt")
        }
    }
}
