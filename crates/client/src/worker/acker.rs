//! Results on their way to the store, in batches: every finished attempt goes through one
//! channel to one task, which sends whatever has queued up in one call (`Engine::finish_many`
//! in-process, `POST /v1/acks` over HTTP). Under load a batch fills while the previous one is
//! in flight; when idle a result goes out at once.

use buzzer_types::JobId;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Buzzer, Error, transport::Finish};

/// The most results in one call.
const MAX_BATCH: usize = 1_000;

/// Sends results until every sender is gone, or until `done`, after which it sends what has
/// already queued up and stops (later results are recorded by their own task).
pub(super) async fn run(buzzer: Buzzer, mut rx: mpsc::Receiver<Finish>, done: CancellationToken) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 {
                return;
            },
            () = done.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    record(&buzzer, std::mem::take(&mut batch)).await;
                }
                return;
            }
        }
        record(&buzzer, std::mem::take(&mut batch)).await;
    }
}

/// Applies results and logs those that did not take. A result that is not recorded is not
/// lost work: its lease runs out and the job runs again (at-least-once).
pub(super) async fn record(buzzer: &Buzzer, finishes: Vec<Finish>) {
    let ids: Vec<JobId> = finishes.iter().map(|f| f.id).collect();
    match buzzer.transport().finish_many(finishes).await {
        Ok(results) => {
            for (id, result) in ids.into_iter().zip(results) {
                match result {
                    Ok(()) => {}
                    Err(Error::LeaseLost) => tracing::warn!(
                        job = %id,
                        "result not recorded: the lease was lost (it expired and the job went \
                         to another worker, or the job was cancelled)"
                    ),
                    Err(e) => tracing::warn!(job = %id, error = %e, "result not recorded"),
                }
            }
        }
        Err(e) => tracing::error!(
            jobs = ids.len(),
            error = %e,
            "results not recorded; those jobs run again once their leases expire"
        ),
    }
}
