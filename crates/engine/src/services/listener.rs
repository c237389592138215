use buzzer_store::Change;
use buzzer_types::JobState;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::{Engine, EngineError};

/// Turns changes committed by other nodes into the same wake-ups a local change gives:
/// fetchers of a queue with new work, watchers of a job, the scheduler for a new due time.
pub(super) async fn run(engine: Engine, mut feed: broadcast::Receiver<Change>) {
    loop {
        let change = tokio::select! {
            change = feed.recv() => change,
            _ = engine.inner.closing.cancelled() => return,
        };
        match change {
            Ok(Change::Job { id, queue, state }) => {
                match state {
                    JobState::Scheduled | JobState::Retryable => {
                        engine.inner.scheduler_nudge.notify_one()
                    }
                    JobState::Running => {}
                    // Available, or finished (which may free the next job of an ordering key).
                    _ => engine.inner.notifier.wake_queue(&queue),
                }
                if !engine.inner.notifier.watched_ids([id]).is_empty() {
                    republish(&engine, id).await;
                }
            }
            Ok(Change::QueueReady { queue }) => engine.inner.notifier.wake_queue(&queue),
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => resync(&engine).await,
            Err(RecvError::Closed) => return,
        }
    }
}

/// Reads the job as it is now: a notification may be older than the row.
async fn republish(engine: &Engine, id: buzzer_types::JobId) {
    match engine.get(id).await {
        Ok(job) => engine.inner.notifier.publish(&job),
        Err(EngineError::NotFound(_)) => {}
        Err(e) => tracing::warn!(error = %e, "could not read a changed job"),
    }
}

/// Changes may have been missed: wake every waiter so each looks again.
async fn resync(engine: &Engine) {
    engine.inner.notifier.wake_all_queues();
    engine.inner.scheduler_nudge.notify_one();
    engine.inner.rescuer_nudge.notify_one();
    for id in engine.inner.notifier.all_watched() {
        republish(engine, id).await;
    }
}
