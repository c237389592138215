use buzzer_store::{JobPrune, StoreError};

use crate::{Engine, ServiceEvent};

pub(super) async fn run(engine: Engine) {
    let config = &engine.inner.config;
    loop {
        // A node that does not lead looks again soon, so a new leader prunes without waiting
        // a whole interval.
        let pause = if engine.is_leader() {
            if let Err(e) = prune_all(&engine).await
                && !engine.pause_after_error("pruner", e).await
            {
                return;
            }
            config.prune_interval
        } else {
            config.max_idle.min(config.prune_interval)
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = engine.inner.closing.cancelled() => return,
        }
    }
}

/// Deletes in small batches so the writer is never held for long; yields between batches.
pub(crate) async fn prune_all(engine: &Engine) -> Result<u64, StoreError> {
    let config = &engine.inner.config;
    let params = JobPrune {
        finished_retention_ms: config.finished_retention.as_millis() as u64,
        dead_retention_ms: config.dead_retention.as_millis() as u64,
        limit: config.prune_batch,
    };
    let mut total = 0;
    loop {
        let n = engine.inner.store.job_prune(params).await?;
        total += n;
        if n < u64::from(params.limit) {
            break;
        }
        tokio::task::yield_now().await;
    }
    if total > 0 {
        engine.emit(ServiceEvent::Pruned(total));
    }
    // Publish idempotency keys live as long as finished jobs; they are not counted as jobs.
    engine.prune_topic_events().await?;
    Ok(total)
}

impl Engine {
    /// Runs one pruning pass now (the pruner service does this every `prune_interval`).
    pub async fn prune_now(&self) -> Result<u64, crate::EngineError> {
        Ok(prune_all(self).await?)
    }
}
