//! Cron schedules: a typed job enqueued on every tick of a cron expression, once per tick
//! however many nodes run.

use std::{future::IntoFuture, marker::PhantomData};

use buzzer_types::{ScheduleInfo, ScheduleRequest};

use crate::{Buzzer, Error, Job, enqueue::BoxFuture, job::to_raw};

/// A schedule being built by [`Buzzer::schedule`]; `.await` creates or replaces it and answers
/// it with its next fire times.
#[must_use = "a schedule does nothing until awaited"]
#[derive(Debug)]
pub struct ScheduleBuilder<J> {
    buzzer: Buzzer,
    name: String,
    request: Result<ScheduleRequest, Error>,
    job: PhantomData<fn() -> J>,
}

impl<J: Job> ScheduleBuilder<J> {
    fn with(mut self, f: impl FnOnce(&mut ScheduleRequest)) -> Self {
        if let Ok(req) = &mut self.request {
            f(req);
        }
        self
    }

    /// The IANA time zone the cron expression is read in (default `UTC`).
    pub fn timezone(self, zone: impl Into<String>) -> Self {
        let zone = zone.into();
        self.with(|r| r.timezone = Some(zone))
    }

    /// Each tick's job goes to `queue` instead of `J::QUEUE`.
    pub fn queue(self, queue: impl Into<String>) -> Self {
        let queue = queue.into();
        self.with(|r| r.queue = queue)
    }

    /// The priority of each tick's job (−100..=100).
    pub fn priority(self, priority: i32) -> Self {
        self.with(|r| r.priority = Some(priority))
    }

    /// The attempts each tick's job gets.
    pub fn max_attempts(self, attempts: i32) -> Self {
        self.with(|r| r.max_attempts = Some(attempts))
    }

    /// A tag on each tick's job; repeat for more.
    pub fn tag(self, tag: impl Into<String>) -> Self {
        let tag = tag.into();
        self.with(|r| r.tags.get_or_insert_with(Vec::new).push(tag))
    }
}

impl<J: Job> IntoFuture for ScheduleBuilder<J> {
    type Output = Result<ScheduleInfo, Error>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let req = self.request?;
            self.buzzer.transport().schedule_put(&self.name, req).await
        })
    }
}

impl Buzzer {
    /// Creates or replaces the schedule `name`: `job` is enqueued (to `J::QUEUE`) on every tick
    /// of `cron` (5 fields, minute first, or 6 with seconds first). Each tick makes exactly
    /// one job across every node; after downtime the schedule fires once, not once per
    /// missed tick.
    ///
    /// ```no_run
    /// # #[derive(serde::Serialize, serde::Deserialize)] struct DailyReport { kind: String }
    /// # impl buzzer::Job for DailyReport { const QUEUE: &'static str = "reports"; type Output = (); }
    /// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
    /// let schedule = buzzer
    ///     .schedule("daily-report", "0 9 * * 1-5", DailyReport { kind: "sales".into() })
    ///     .timezone("Europe/Amsterdam")
    ///     .await?;
    /// println!("next at {:?}", schedule.next_fire_times.first());
    /// # Ok(()) }
    /// ```
    pub fn schedule<J: Job>(&self, name: &str, cron: &str, job: J) -> ScheduleBuilder<J> {
        ScheduleBuilder {
            buzzer: self.clone(),
            name: name.to_owned(),
            request: to_raw(&job).map(|payload| ScheduleRequest::new(cron, J::QUEUE, payload)),
            job: PhantomData,
        }
    }

    /// Creates or replaces a schedule from a request as the HTTP API takes it.
    pub async fn put_schedule(
        &self,
        name: &str,
        req: ScheduleRequest,
    ) -> Result<ScheduleInfo, Error> {
        self.transport().schedule_put(name, req).await
    }

    /// One schedule with its next fire times; [`Error::NotFound`] when there is none.
    pub async fn schedule_info(&self, name: &str) -> Result<ScheduleInfo, Error> {
        self.transport().schedule(name).await
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleInfo>, Error> {
        self.transport().schedules().await
    }

    /// Deletes a schedule; jobs it already enqueued stay.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), Error> {
        self.transport().schedule_delete(name).await
    }
}
