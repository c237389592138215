//! Hand-off at enqueue: a fetcher that found its queues empty parks here while it waits, and
//! the next enqueue of a job that is due now leases for it in the insert's own transaction
//! ([`Store::job_insert_and_fetch`](buzzer_store::Store::job_insert_and_fetch)).
//!
//! Without it a job waiting for an idle worker costs two commits before it runs (the insert,
//! then the fetch the insert's wake-up causes); with it, one. The lease is taken by the store's
//! own fetch, so priorities, FIFO order, paused queues and ordering keys hold exactly as for a
//! plain fetch.
//!
//! A parked fetcher is taken by at most one enqueue: whoever takes its sender first hands it
//! the jobs. A fetcher that wakes for another reason (a plain wake-up, its deadline) leaves the
//! park, unless an enqueue has already taken it, in which case it waits for what that enqueue
//! sends: the jobs are already leased to it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use buzzer_store::JobFetch;
use buzzer_types::Job;
use tokio::sync::oneshot;

#[derive(Debug, Default)]
pub(crate) struct Handoff {
    /// Parked fetchers per queue, oldest first. A fetcher of several queues is parked in each;
    /// entries already taken or left are dropped lazily.
    queues: Mutex<HashMap<String, Vec<Arc<Parked>>>>,
}

#[derive(Debug)]
struct Parked {
    fetch: JobFetch,
    sender: Mutex<Option<oneshot::Sender<Vec<Job>>>>,
}

impl Parked {
    fn take(&self) -> Option<oneshot::Sender<Vec<Job>>> {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn is_parked(&self) -> bool {
        self.sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// A fetcher taken from the park by an enqueue: lease for `fetch`, then [`Taken::hand`].
#[derive(Debug)]
pub(crate) struct Taken {
    pub fetch: JobFetch,
    sender: oneshot::Sender<Vec<Job>>,
}

impl Taken {
    /// Gives the fetcher its jobs; `Err` with the jobs when it has stopped waiting (its request
    /// went away), so the caller can hand them back.
    pub(crate) fn hand(self, jobs: Vec<Job>) -> Result<(), Vec<Job>> {
        self.sender.send(jobs)
    }
}

impl Handoff {
    /// Parks a fetcher on each of its queues until the returned guard leaves or is dropped.
    /// `orphaned` gets the jobs handed to a guard dropped before it read them.
    pub(crate) fn park(
        &self,
        fetch: &JobFetch,
        orphaned: impl FnOnce(Vec<Job>) + Send + 'static,
    ) -> ParkGuard {
        let (sender, receiver) = oneshot::channel();
        let parked = Arc::new(Parked {
            fetch: fetch.clone(),
            sender: Mutex::new(Some(sender)),
        });
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for queue in &fetch.queues {
            let list = queues.entry(queue.clone()).or_default();
            list.retain(|p| p.is_parked());
            list.push(parked.clone());
        }
        ParkGuard {
            parked,
            receiver,
            orphaned: Some(Box::new(orphaned)),
        }
    }

    /// How many fetchers wait on `queue` now.
    pub(crate) fn parked(&self, queue: &str) -> usize {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        queues
            .get(queue)
            .map_or(0, |list| list.iter().filter(|p| p.is_parked()).count())
    }

    /// Takes the longest-waiting fetcher parked on `queue`, if any.
    pub(crate) fn take(&self, queue: &str) -> Option<Taken> {
        let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        let list = queues.get_mut(queue)?;
        let mut taken = None;
        let mut used = 0;
        for parked in list.iter() {
            used += 1;
            if let Some(sender) = parked.take() {
                taken = Some(Taken {
                    fetch: parked.fetch.clone(),
                    sender,
                });
                break;
            }
        }
        list.drain(..used);
        if list.is_empty() {
            queues.remove(queue);
        }
        taken
    }
}

/// A parked fetcher's end.
pub(crate) struct ParkGuard {
    parked: Arc<Parked>,
    receiver: oneshot::Receiver<Vec<Job>>,
    orphaned: Option<Box<dyn FnOnce(Vec<Job>) + Send>>,
}

impl std::fmt::Debug for ParkGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkGuard")
            .field("parked", &self.parked)
            .finish_non_exhaustive()
    }
}

impl ParkGuard {
    /// The jobs an enqueue leased for this fetcher; `None` if the enqueue that took it failed
    /// (nothing was leased for it then).
    pub(crate) async fn handed(&mut self) -> Option<Vec<Job>> {
        (&mut self.receiver).await.ok()
    }

    /// Leaves the park. `false` when an enqueue has already taken this fetcher: its jobs are
    /// on the way, and [`ParkGuard::handed`] must be awaited for them.
    pub(crate) fn leave(&self) -> bool {
        self.parked.take().is_some()
    }
}

impl Drop for ParkGuard {
    fn drop(&mut self) {
        // A fetch abandoned while parked (its request went away) must not be handed jobs. If an
        // enqueue has taken it, closing the receiver makes a later hand fail (the enqueue then
        // hands the jobs back), and jobs handed before the close are handed back from here.
        self.leave();
        self.receiver.close();
        if let Ok(jobs) = self.receiver.try_recv()
            && !jobs.is_empty()
            && let Some(orphaned) = self.orphaned.take()
        {
            orphaned(jobs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(queues: &[&str]) -> JobFetch {
        JobFetch {
            queues: queues.iter().map(|q| (*q).to_owned()).collect(),
            worker_id: "w".into(),
            max_jobs: 1,
            lease_ms: 1000,
        }
    }

    #[test]
    fn the_longest_waiting_fetcher_is_taken_once() {
        let handoff = Handoff::default();
        let first = handoff.park(&fetch(&["a", "b"]), drop);
        let _second = handoff.park(&fetch(&["a"]), drop);
        let taken = handoff.take("b").map(|t| t.fetch.queues);
        assert_eq!(taken, Some(vec!["a".to_owned(), "b".to_owned()]));
        // Taken through "b", so no longer parked on "a" either, nor able to leave.
        assert!(!first.leave());
        assert_eq!(
            handoff.take("a").map(|t| t.fetch.queues),
            Some(vec!["a".to_owned()])
        );
        assert!(handoff.take("a").is_none());
    }

    #[test]
    fn a_fetcher_that_left_is_not_taken() {
        let handoff = Handoff::default();
        let guard = handoff.park(&fetch(&["a"]), drop);
        assert!(guard.leave());
        assert!(handoff.take("a").is_none());
        drop(handoff.park(&fetch(&["a"]), drop));
        assert!(handoff.take("a").is_none());
    }

    #[tokio::test]
    async fn handed_jobs_reach_the_fetcher_and_a_gone_fetcher_gives_them_back() {
        let handoff = Handoff::default();
        let mut guard = handoff.park(&fetch(&["a"]), drop);
        let taken = handoff.take("a").expect("parked");
        assert!(taken.hand(Vec::new()).is_ok());
        assert_eq!(guard.handed().await.map(|j| j.len()), Some(0));

        let guard = handoff.park(&fetch(&["a"]), drop);
        let taken = handoff.take("a").expect("parked");
        drop(guard);
        assert!(taken.hand(Vec::new()).is_err());
    }

    #[test]
    fn jobs_handed_to_a_guard_dropped_unread_go_to_orphaned() {
        let handoff = Handoff::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let guard = handoff.park(&fetch(&["a"]), move |jobs| {
            let _ = tx.send(jobs.len());
        });
        let taken = handoff.take("a").expect("parked");
        let job: Job = serde_json::from_value(serde_json::json!({
            "id": buzzer_types::JobId(1).to_string(), "queue": "a", "state": "running", "payload": {}, "priority": 0,
            "attempt": 1, "max_attempts": 3,
            "backoff": {"initial_ms": 1000, "max_ms": 3600000, "factor": 2.0},
            "created_at": "2026-01-01T00:00:00Z", "scheduled_at": "2026-01-01T00:00:00Z"
        }))
        .expect("a job");
        assert!(taken.hand(vec![job]).is_ok());
        drop(guard);
        assert_eq!(rx.try_recv().ok(), Some(1));
    }
}
