use buzzer_store::{JobFinish, StoreError};
use buzzer_types::ErrorInput;

use crate::{Engine, Outcome, RetryRequest, ServiceEvent, resolve};

/// Expired leases handled per store transaction.
const BATCH: u32 = 500;

pub(super) async fn run(engine: Engine) {
    loop {
        let due = if !engine.is_leader() {
            Ok(None)
        } else {
            match rescue_all(&engine).await {
                Ok(()) => engine.inner.store.job_next_lease_expiry().await,
                Err(e) => Err(e),
            }
        };
        let keep_going = match due {
            Ok(due) => {
                engine
                    .sleep_until_due(
                        due,
                        &engine.inner.rescuer_nudge,
                        Some(&engine.inner.rescuer_wake_at),
                    )
                    .await
            }
            Err(e) => engine.pause_after_error("rescuer", e).await,
        };
        if !keep_going {
            return;
        }
    }
}

/// An expired lease counts as a failed attempt and follows the job's retry policy. The
/// finish is guarded by the old token and the expiry, so a worker that heartbeats or
/// completes at the last moment wins.
async fn rescue_all(engine: &Engine) -> Result<(), StoreError> {
    loop {
        let expired = engine.inner.store.job_list_lease_expired(BATCH).await?;
        if expired.is_empty() {
            return Ok(());
        }
        let finishes = expired
            .iter()
            .filter_map(|job| {
                let lease_token = job.lease_token.clone()?;
                let outcome = Outcome::Retry(RetryRequest {
                    error: ErrorInput::new("lease expired"),
                    retry_in_ms: None,
                });
                Some(JobFinish {
                    id: job.id,
                    lease_token,
                    transition: resolve(job, outcome),
                    require_lease_expired: true,
                })
            })
            .collect();
        let results = engine.inner.store.job_finish_many(finishes).await?;
        let mut rescued = 0;
        for job in results.into_iter().flatten() {
            engine.after_change(&job);
            rescued += 1;
        }
        if rescued > 0 {
            tracing::info!(rescued, "expired leases rescued");
            engine.emit(ServiceEvent::Rescued(rescued));
        }
        if expired.len() < BATCH as usize {
            return Ok(());
        }
    }
}
