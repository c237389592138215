//! In-process wake-ups: waiting fetchers per queue, and watchers of single jobs (hybrid
//! waits, long-poll gets, SSE streams). Waiters are woken by the change itself, never by
//! polling the store.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

use buzzer_types::{Job, JobId};
use tokio::sync::{Notify, broadcast};

#[derive(Debug, Default)]
pub(crate) struct Notifier {
    queues: Mutex<HashMap<String, Arc<Notify>>>,
    watchers: Mutex<HashMap<JobId, broadcast::Sender<Arc<Job>>>>,
    /// Lets the hot path skip the watcher map entirely while nobody watches.
    watcher_count: AtomicUsize,
}

impl Notifier {
    pub(crate) fn queue(&self, name: &str) -> Arc<Notify> {
        let mut map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get(name) {
            return n.clone();
        }
        let n = Arc::new(Notify::new());
        map.insert(name.to_owned(), n.clone());
        n
    }

    /// Wakes every fetcher waiting on this queue.
    pub(crate) fn wake_queue(&self, name: &str) {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get(name) {
            n.notify_waiters();
        }
    }

    pub(crate) fn wake_all_queues(&self) {
        let map = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        for n in map.values() {
            n.notify_waiters();
        }
    }

    pub(crate) fn all_watched(&self) -> Vec<JobId> {
        let map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        map.keys().copied().collect()
    }

    pub(crate) fn is_watched(&self) -> bool {
        self.watcher_count.load(Ordering::Acquire) > 0
    }

    pub(crate) fn watch(self: &Arc<Self>, id: JobId) -> JobWatch {
        let mut map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        let rx = match map.get(&id) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(64);
                map.insert(id, tx);
                rx
            }
        };
        self.watcher_count.fetch_add(1, Ordering::AcqRel);
        JobWatch {
            id,
            rx,
            notifier: self.clone(),
        }
    }

    /// Hands a job's new snapshot to its watchers. The lease token never leaves the worker
    /// that holds it.
    pub(crate) fn publish(&self, job: &Job) {
        if !self.is_watched() {
            return;
        }
        let map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = map.get(&job.id) {
            let mut snapshot = job.clone();
            snapshot.lease_token = None;
            // No receiver left is fine: the last watcher is about to remove the entry.
            let _ = tx.send(Arc::new(snapshot));
        }
    }

    pub(crate) fn watched_ids(&self, ids: impl IntoIterator<Item = JobId>) -> Vec<JobId> {
        if !self.is_watched() {
            return Vec::new();
        }
        let map = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        ids.into_iter().filter(|id| map.contains_key(id)).collect()
    }
}

/// A subscription to one job's changes; dropping it unsubscribes.
#[derive(Debug)]
pub struct JobWatch {
    id: JobId,
    rx: broadcast::Receiver<Arc<Job>>,
    notifier: Arc<Notifier>,
}

impl JobWatch {
    /// The next snapshot of the job. `None` means snapshots were missed (the watcher lagged):
    /// read the job again.
    pub async fn changed(&mut self) -> Option<Arc<Job>> {
        // The sender lives while any watch of this job does, so the only error is `Lagged`.
        self.rx.recv().await.ok()
    }
}

impl Drop for JobWatch {
    fn drop(&mut self) {
        let mut map = self
            .notifier
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.notifier.watcher_count.fetch_sub(1, Ordering::AcqRel);
        // Our own receiver still counts until this drop finishes.
        if map.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            map.remove(&self.id);
        }
    }
}
