use crate::{Engine, EngineError, ServiceEvent};

/// Jobs promoted per store transaction.
const BATCH: u32 = 1_000;

pub(super) async fn run(engine: Engine) {
    loop {
        let due = if !engine.is_leader() {
            Ok(None)
        } else {
            match promote_all(&engine).await {
                Ok(()) => engine.inner.store.job_next_due_at().await,
                Err(e) => Err(e),
            }
        };
        let keep_going = match due {
            Ok(due) => {
                engine
                    .sleep_until_due(due, &engine.inner.scheduler_nudge, None)
                    .await
            }
            Err(e) => engine.pause_after_error("scheduler", e).await,
        };
        if !keep_going {
            return;
        }
    }
}

async fn promote_all(engine: &Engine) -> Result<(), buzzer_store::StoreError> {
    loop {
        let promoted = engine.inner.store.job_promote_due(BATCH).await?;
        if promoted.is_empty() {
            return Ok(());
        }
        let watched = engine
            .inner
            .notifier
            .watched_ids(promoted.iter().map(|p| p.id));
        for id in watched {
            match engine.get(id).await {
                Ok(job) => engine.inner.notifier.publish(&job),
                Err(EngineError::NotFound(_)) => {}
                Err(e) => tracing::warn!(error = %e, "could not read a promoted job"),
            }
        }
        // Watchers hear `available` before fetchers are woken, so they never miss it.
        let mut queues: Vec<&str> = promoted.iter().map(|p| p.queue.as_str()).collect();
        queues.sort_unstable();
        queues.dedup();
        for q in queues {
            engine.inner.notifier.wake_queue(q);
        }
        engine.emit(ServiceEvent::Promoted(promoted.len()));
        if promoted.len() < BATCH as usize {
            return Ok(());
        }
    }
}
