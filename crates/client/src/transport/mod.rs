//! The one seam between the public API and where jobs live: an engine in this process, or a
//! `buzzer serve` over HTTP. Everything above it (typed jobs, the hybrid call, the breaker, the
//! worker runtime) is written once.

pub(crate) mod embedded;
mod leased;
#[cfg(feature = "remote")]
pub(crate) mod remote;

use std::time::Duration;

use async_trait::async_trait;
use buzzer_engine::Outcome;
use buzzer_types::{
    EnqueueRequest, FetchRequest, HeartbeatRequest, HeartbeatResponse, Job, JobId, PublishRequest,
    PublishResponse, ScheduleInfo, ScheduleRequest, SubscriptionInfo, SubscriptionRequest,
    TopicInfo,
};

pub(crate) use leased::Leased;

use crate::Error;

/// One finished attempt on its way to the store: the job, its lease token and the outcome.
#[derive(Debug)]
pub(crate) struct Finish {
    pub id: JobId,
    pub lease_token: String,
    pub outcome: Outcome,
}

#[async_trait]
pub(crate) trait Transport: Send + Sync + std::fmt::Debug + 'static {
    async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Result<Job, Error>;

    /// All or none, in order.
    async fn enqueue_many(&self, queue: &str, reqs: Vec<EnqueueRequest>)
    -> Result<Vec<Job>, Error>;

    /// Enqueues and waits up to `wait` for the job to be terminal; the job as it is then.
    async fn enqueue_wait(
        &self,
        queue: &str,
        req: EnqueueRequest,
        wait: Duration,
    ) -> Result<Job, Error>;

    async fn get(&self, id: JobId) -> Result<Job, Error>;

    /// Waits up to `wait` for the job to be terminal; the job as it is then.
    async fn wait_terminal(&self, id: JobId, wait: Duration) -> Result<Job, Error>;

    async fn cancel(&self, id: JobId) -> Result<Job, Error>;

    async fn fetch(&self, req: FetchRequest) -> Result<Vec<Leased>, Error>;

    async fn heartbeat(&self, id: JobId, req: HeartbeatRequest)
    -> Result<HeartbeatResponse, Error>;

    /// Applies many outcomes, batched where the backend can; one result per item, in order.
    async fn finish_many(&self, items: Vec<Finish>) -> Result<Vec<Result<(), Error>>, Error>;

    async fn publish(&self, topic: &str, req: PublishRequest) -> Result<PublishResponse, Error>;

    /// Creates or replaces a subscription; the answer shows a webhook secret this call set.
    async fn subscription_put(
        &self,
        topic: &str,
        name: &str,
        req: SubscriptionRequest,
    ) -> Result<SubscriptionInfo, Error>;

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<(), Error>;

    /// The subscriptions of one topic, or of every topic.
    async fn subscriptions(&self, topic: Option<&str>) -> Result<Vec<SubscriptionInfo>, Error>;

    async fn topics(&self) -> Result<Vec<TopicInfo>, Error>;

    async fn schedule_put(&self, name: &str, req: ScheduleRequest) -> Result<ScheduleInfo, Error>;

    async fn schedule(&self, name: &str) -> Result<ScheduleInfo, Error>;

    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error>;

    async fn schedule_delete(&self, name: &str) -> Result<(), Error>;

    /// True once the client has been shut down: calls would fail, long-polls answer at once.
    fn is_closed(&self) -> bool;

    async fn shutdown(&self) -> Result<(), Error>;
}
