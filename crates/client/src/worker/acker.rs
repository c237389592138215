//! Results on their way to the store, in batches: every finished attempt goes through one
//! channel to one task, which sends whatever has queued up in one call (`Engine::finish_many`
//! in-process, `POST /v1/acks` over HTTP), with up to [`IN_FLIGHT`] calls out at once. Under
//! load a batch fills while the previous ones are in flight; when idle a result goes out at
//! once.

use buzzer_types::JobId;
use futures::{StreamExt, stream::FuturesUnordered};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{Buzzer, Error, transport::Finish};

/// The most results in one call.
const MAX_BATCH: usize = 1_000;

/// Sends results until every sender is gone, or until `done`, after which it sends what has
/// already queued up and stops (later results are recorded by their own task).
pub(super) async fn run(buzzer: Buzzer, mut rx: mpsc::Receiver<Finish>, done: CancellationToken) {
    let mut batch = Vec::new();
    // Driven by this task itself, not spawned: an idle worker's one result goes out without
    // another task's wake-up on its way (the hybrid call's path).
    let mut sending = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(()) = sending.next() => continue,
            n = rx.recv_many(&mut batch, MAX_BATCH), if sending.len() < IN_FLIGHT => if n == 0 {
                break;
            },
            () = done.cancelled() => {
                rx.close();
                while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
                    sending.push(record(&buzzer, std::mem::take(&mut batch)));
                }
                break;
            }
        }
        sending.push(record(&buzzer, std::mem::take(&mut batch)));
    }
    while sending.next().await.is_some() {}
}

/// Batches sent at once. One statement on one connection completes a batch on PostgreSQL;
/// with one batch in flight, completions kept one backend busy while the other core idled
/// (W1 on PostgreSQL ran ~24,000 jobs/s against ~32,000 with two). The store locks a batch's
/// rows in id order, so two batches (as two workers' would) never deadlock.
const IN_FLIGHT: usize = 2;

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
