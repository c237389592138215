//! What the server hears from an idle worker over HTTP that just started a quick job: its
//! result first, then its next fetch, each fetch asking for brief jobs.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use async_trait::async_trait;
use buzzer_types::{
    EnqueueRequest, FetchRequest, HeartbeatRequest, HeartbeatResponse, Job as Record, JobId,
    PublishRequest, PublishResponse, ScheduleInfo, ScheduleRequest, SubscriptionInfo,
    SubscriptionRequest, TopicInfo,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{
    Buzzer, Error, Job, JobContext, JobError, Worker,
    transport::{Finish, Leased, Transport},
};

#[derive(Serialize, Deserialize)]
struct Ping;

impl Job for Ping {
    const QUEUE: &'static str = "ping";
    type Output = ();
}

async fn ping(_ctx: JobContext, _job: Ping) -> Result<(), JobError> {
    Ok(())
}

/// A transport without an engine in this process, like HTTP's, that hands out one job, then
/// finds the queue empty, and writes down the order of the worker's fetches and results.
#[derive(Debug, Default, Clone)]
struct Recording {
    calls: Arc<Mutex<Vec<&'static str>>>,
    /// Whether each fetch asked for brief jobs.
    briefs: Arc<Mutex<Vec<bool>>>,
}

impl Recording {
    fn record(&self, call: &'static str) -> usize {
        let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        calls.push(call);
        calls.iter().filter(|c| **c == call).count()
    }

    fn calls(&self) -> Vec<&'static str> {
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn not_here<T>() -> Result<T, Error> {
    Err(Error::Unavailable("not part of this test".into()))
}

#[async_trait]
impl Transport for Recording {
    async fn fetch(&self, req: FetchRequest) -> Result<Vec<Leased>, Error> {
        self.briefs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(req.brief);
        if self.record("fetch") > 1 {
            // An empty long poll, cut short.
            tokio::time::sleep(Duration::from_millis(10)).await;
            return Ok(Vec::new());
        }
        let payload =
            RawValue::from_string("null".into()).map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(vec![Leased {
            id: JobId(1),
            queue: req.queues[0].clone(),
            attempt: 1,
            payload,
            timeout_ms: None,
            metadata: serde_json::Map::new(),
            traceparent: None,
            lease_token: Some("token".into()),
        }])
    }

    async fn finish_many(&self, items: Vec<Finish>) -> Result<Vec<Result<(), Error>>, Error> {
        self.record("finish");
        Ok(items.iter().map(|_| Ok(())).collect())
    }

    fn is_closed(&self) -> bool {
        false
    }

    async fn shutdown(&self) -> Result<(), Error> {
        Ok(())
    }

    async fn enqueue(&self, _: &str, _: EnqueueRequest) -> Result<Record, Error> {
        not_here()
    }
    async fn enqueue_many(&self, _: &str, _: Vec<EnqueueRequest>) -> Result<Vec<Record>, Error> {
        not_here()
    }
    async fn enqueue_wait(&self, _: &str, _: EnqueueRequest, _: Duration) -> Result<Record, Error> {
        not_here()
    }
    async fn get(&self, _: JobId) -> Result<Record, Error> {
        not_here()
    }
    async fn wait_terminal(&self, _: JobId, _: Duration) -> Result<Record, Error> {
        not_here()
    }
    async fn cancel(&self, _: JobId) -> Result<Record, Error> {
        not_here()
    }
    async fn heartbeat(&self, _: JobId, _: HeartbeatRequest) -> Result<HeartbeatResponse, Error> {
        not_here()
    }
    async fn publish(&self, _: &str, _: PublishRequest) -> Result<PublishResponse, Error> {
        not_here()
    }
    async fn subscription_put(
        &self,
        _: &str,
        _: &str,
        _: SubscriptionRequest,
    ) -> Result<SubscriptionInfo, Error> {
        not_here()
    }
    async fn subscription_delete(&self, _: &str, _: &str) -> Result<(), Error> {
        not_here()
    }
    async fn subscriptions(&self, _: Option<&str>) -> Result<Vec<SubscriptionInfo>, Error> {
        not_here()
    }
    async fn topics(&self) -> Result<Vec<TopicInfo>, Error> {
        not_here()
    }
    async fn schedule_put(&self, _: &str, _: ScheduleRequest) -> Result<ScheduleInfo, Error> {
        not_here()
    }
    async fn schedule(&self, _: &str) -> Result<ScheduleInfo, Error> {
        not_here()
    }
    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        not_here()
    }
    async fn schedule_delete(&self, _: &str) -> Result<(), Error> {
        not_here()
    }
}

/// Runs a worker over `transport` until it has made `calls` calls.
async fn run_until(transport: &Recording, calls: usize) {
    let buzzer = Buzzer::with_transport(transport.clone(), None);
    let worker = Worker::builder(&buzzer)
        .register::<Ping, _>(ping)
        .build()
        .unwrap()
        .spawn();
    tokio::time::timeout(Duration::from_secs(10), async {
        while transport.calls().len() < calls {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the worker fetched, finished the job and fetched again");
    worker.shutdown().await;
}

/// On one thread the order is the scheduler's, not a race between threads. Over HTTP the
/// server takes the two requests in this order, and a hybrid call's caller, waiting for the
/// result, no longer waits for the empty fetch ahead of it.
#[tokio::test]
async fn a_quick_jobs_result_goes_out_before_the_next_fetch() {
    let transport = Recording::default();
    run_until(&transport, 3).await;
    assert_eq!(
        transport.calls()[..3],
        ["fetch", "finish", "fetch"],
        "{:?}",
        transport.calls()
    );
}

/// A worker reads only a few fields of each job it leases, so over HTTP it asks for no more.
#[tokio::test]
async fn a_workers_fetches_ask_for_brief_jobs() {
    let transport = Recording::default();
    run_until(&transport, 3).await;
    let briefs = transport
        .briefs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    assert!(briefs.len() >= 2 && briefs.iter().all(|b| *b), "{briefs:?}");
}
