//! The engine in this process: every call is a direct engine call, no serialization.
//!
//! Any store the engine runs over works here: SQLite today (`Buzzer::open`), PostgreSQL once
//! its store lands (open it, build an `Engine`, and hand it over like `Buzzer::open` does).

use std::{sync::Mutex, time::Duration};

use async_trait::async_trait;
use buzzer_engine::{Engine, Services};
use buzzer_types::{
    EnqueueRequest, FetchRequest, HeartbeatRequest, HeartbeatResponse, Job, JobId, PublishRequest,
    PublishResponse, ScheduleInfo, ScheduleRequest, SubscriptionInfo, SubscriptionRequest,
    TopicInfo,
};

use super::{Finish, Leased, Transport};
use crate::Error;

#[derive(Debug)]
pub(crate) struct Embedded {
    engine: Engine,
    /// The services this client started and stops with the store; `None` for an engine the
    /// caller owns, and after shutdown.
    owned: Mutex<Option<Owned>>,
}

/// What an owning client started beside the engine.
#[derive(Debug)]
struct Owned {
    services: Services,
    /// Delivers webhook subscriptions, as `buzzer serve` does.
    #[cfg(feature = "webhooks")]
    webhooks: Option<buzzer_webhooks::Dispatcher>,
}

#[cfg(all(feature = "webhooks", any(feature = "sqlite", feature = "postgres")))]
fn start_webhooks(engine: &Engine) -> Option<buzzer_webhooks::Dispatcher> {
    let config = buzzer_webhooks::WebhookConfig::default();
    match buzzer_webhooks::WebhookDispatcher::new(engine.clone(), config) {
        Ok(dispatcher) => Some(dispatcher.start()),
        Err(e) => {
            // Jobs and topics work without it; webhook deliveries wait for a node that has one.
            tracing::warn!(error = %e, "webhook deliveries are not made from this process");
            None
        }
    }
}

impl Embedded {
    /// An engine whose services this client started and will stop, with its store (every
    /// store feature opens one this way).
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn owning(engine: Engine, services: Services) -> Self {
        let owned = Owned {
            services,
            #[cfg(feature = "webhooks")]
            webhooks: start_webhooks(&engine),
        };
        Embedded {
            engine,
            owned: Mutex::new(Some(owned)),
        }
    }

    /// An engine the caller runs and stops.
    pub(crate) fn borrowing(engine: Engine) -> Self {
        Embedded {
            engine,
            owned: Mutex::new(None),
        }
    }
}

#[async_trait]
impl Transport for Embedded {
    async fn enqueue(&self, queue: &str, req: EnqueueRequest) -> Result<Job, Error> {
        Ok(self.engine.enqueue(queue, req).await?.job)
    }

    async fn enqueue_many(
        &self,
        queue: &str,
        reqs: Vec<EnqueueRequest>,
    ) -> Result<Vec<Job>, Error> {
        let inserted = self.engine.enqueue_many(queue, reqs).await?;
        Ok(inserted.into_iter().map(|i| i.job).collect())
    }

    async fn enqueue_wait(
        &self,
        queue: &str,
        req: EnqueueRequest,
        wait: Duration,
    ) -> Result<Job, Error> {
        Ok(self.engine.enqueue_wait(queue, req, wait).await?.job)
    }

    async fn get(&self, id: JobId) -> Result<Job, Error> {
        Ok(self.engine.get(id).await?)
    }

    async fn wait_terminal(&self, id: JobId, wait: Duration) -> Result<Job, Error> {
        Ok(self.engine.wait_terminal(id, wait).await?)
    }

    async fn cancel(&self, id: JobId) -> Result<Job, Error> {
        Ok(self.engine.cancel(id).await?)
    }

    async fn fetch(&self, req: FetchRequest) -> Result<Vec<Leased>, Error> {
        let jobs = self.engine.fetch(req).await?;
        Ok(jobs.into_iter().map(Leased::from).collect())
    }

    async fn heartbeat(
        &self,
        id: JobId,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Error> {
        Ok(self.engine.heartbeat(id, req).await?)
    }

    async fn finish_many(&self, items: Vec<Finish>) -> Result<Vec<Result<(), Error>>, Error> {
        let items = items
            .into_iter()
            .map(|f| (f.id, f.lease_token, f.outcome))
            .collect();
        let results = self.engine.finish_many_brief(items).await?;
        Ok(results
            .into_iter()
            .map(|r| r.map(drop).map_err(Error::from))
            .collect())
    }

    async fn publish(&self, topic: &str, req: PublishRequest) -> Result<PublishResponse, Error> {
        Ok(self.engine.publish(topic, req).await?)
    }

    async fn subscription_put(
        &self,
        topic: &str,
        name: &str,
        req: SubscriptionRequest,
    ) -> Result<SubscriptionInfo, Error> {
        Ok(self.engine.subscription_put(topic, name, req).await?.value)
    }

    async fn subscription_delete(&self, topic: &str, name: &str) -> Result<(), Error> {
        Ok(self.engine.subscription_delete(topic, name).await?)
    }

    async fn subscriptions(&self, topic: Option<&str>) -> Result<Vec<SubscriptionInfo>, Error> {
        Ok(self.engine.subscriptions(topic).await?)
    }

    async fn topics(&self) -> Result<Vec<TopicInfo>, Error> {
        Ok(self.engine.topics().await?)
    }

    async fn schedule_put(&self, name: &str, req: ScheduleRequest) -> Result<ScheduleInfo, Error> {
        Ok(self.engine.schedule_put(name, req).await?.value)
    }

    async fn schedule(&self, name: &str) -> Result<ScheduleInfo, Error> {
        Ok(self.engine.schedule(name).await?)
    }

    async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        Ok(self.engine.schedules().await?)
    }

    async fn schedule_delete(&self, name: &str) -> Result<(), Error> {
        Ok(self.engine.schedule_delete(name).await?)
    }

    fn is_closed(&self) -> bool {
        self.engine.is_shutting_down()
    }

    async fn shutdown(&self) -> Result<(), Error> {
        let owned = self
            .owned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(owned) = owned else {
            return Ok(());
        };
        self.engine.shutdown();
        // The dispatcher hands its leased deliveries back while the store is still open.
        #[cfg(feature = "webhooks")]
        if let Some(webhooks) = owned.webhooks {
            webhooks.join().await;
        }
        owned.services.join().await;
        let closed = self.engine.store().close().await;
        closed.map_err(Error::from)
    }
}
