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
pub(super) async fn run(buzzer: Buzzer, rx: mpsc::Receiver<Finish>, done: CancellationToken) {
    let buzzer = &buzzer;
    send_batches(rx, done, move |finishes| record(buzzer, finishes)).await;
}

/// [`run`] with the call that sends one batch given, so its batching can be tested alone.
async fn send_batches<F, Fut>(mut rx: mpsc::Receiver<Finish>, done: CancellationToken, send: F)
where
    F: Fn(Vec<Finish>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut batch = Vec::new();
    let mut done_seen = false;
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
            // Closed, the channel still hands out what queued before; then `recv_many` ends
            // the loop.
            () = done.cancelled(), if !done_seen => {
                done_seen = true;
                rx.close();
                continue;
            }
        }
        sending.push(send(std::mem::take(&mut batch)));
    }
    while sending.next().await.is_some() {}
}

/// Batches sent at once. One statement on one connection completes a batch on PostgreSQL;
/// with one batch in flight, completions kept one backend busy while the other core idled
/// (W1 on PostgreSQL ran ~24,000 jobs/s against ~32,000 with two). The store locks the rows of
/// two such batches in one order, so they never deadlock.
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

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use buzzer_engine::Outcome;
    use tokio::sync::Semaphore;

    use super::*;

    fn finish(id: i64) -> Finish {
        Finish {
            id: JobId(id),
            lease_token: "t".into(),
            outcome: Outcome::Released,
        }
    }

    /// Yields until `sent` holds `n` batches, or fails after a second.
    async fn batches(sent: &Mutex<Vec<Vec<JobId>>>, n: usize) -> Vec<Vec<JobId>> {
        for _ in 0..1_000 {
            let got = sent.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("{n} batches never went out: {:?}", sent.lock().unwrap());
    }

    /// Batches sent so far, as ids.
    type Sent = Arc<Mutex<Vec<Vec<JobId>>>>;

    /// An acker whose every send waits for a permit of the returned semaphore: its batches
    /// stay in flight until the test says.
    fn gated_acker(
        rx: mpsc::Receiver<Finish>,
        done: CancellationToken,
    ) -> (Sent, Arc<Semaphore>, tokio::task::JoinHandle<()>) {
        let sent: Sent = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::new(Semaphore::new(0));
        let (s, gate) = (sent.clone(), store.clone());
        let acker = tokio::spawn(send_batches(rx, done, move |batch| {
            s.lock().unwrap().push(batch.iter().map(|f| f.id).collect());
            let gate = gate.clone();
            async move { gate.acquire().await.unwrap().forget() }
        }));
        (sent, store, acker)
    }

    /// Puts two batches in flight (jobs 1 and 2, one each) and queues jobs 3 and 4 behind.
    async fn two_out_two_queued(tx: &mpsc::Sender<Finish>, sent: &Sent) {
        tx.send(finish(1)).await.unwrap();
        batches(sent, 1).await;
        tx.send(finish(2)).await.unwrap();
        batches(sent, 2).await;
        tx.send(finish(3)).await.unwrap();
        tx.send(finish(4)).await.unwrap();
    }

    #[tokio::test]
    async fn two_batches_go_out_at_once_and_the_third_takes_what_queued_meanwhile() {
        let (tx, rx) = mpsc::channel(16);
        let (sent, store, acker) = gated_acker(rx, CancellationToken::new());
        two_out_two_queued(&tx, &sent).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(
            sent.lock().unwrap().len(),
            2,
            "a third waits while two are out"
        );
        store.add_permits(1);
        let got = batches(&sent, 3).await;
        assert_eq!(
            got,
            vec![vec![JobId(1)], vec![JobId(2)], vec![JobId(3), JobId(4)]]
        );
        store.add_permits(2);
        drop(tx);
        acker.await.unwrap();
    }

    #[tokio::test]
    async fn when_done_what_queued_goes_out_within_the_limit_and_later_results_are_refused() {
        let (tx, rx) = mpsc::channel(16);
        let done = CancellationToken::new();
        let (sent, store, acker) = gated_acker(rx, done.clone());
        two_out_two_queued(&tx, &sent).await;
        done.cancel();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(tx.send(finish(5)).await.is_err(), "closed once done");
        assert_eq!(sent.lock().unwrap().len(), 2, "still two at most");
        store.add_permits(1);
        let got = batches(&sent, 3).await;
        assert_eq!(got[2], vec![JobId(3), JobId(4)]);
        store.add_permits(2);
        acker.await.unwrap();
        assert_eq!(sent.lock().unwrap().len(), 3);
    }
}
