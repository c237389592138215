use std::{
    future::IntoFuture,
    time::{Duration, Instant},
};

use crate::{
    Buzzer, Error, Job, JobHandle,
    breaker::{Admit, Breakers, Ticket},
    enqueue::{BoxFuture, Options, enqueue_options},
    job::{settle, to_raw},
};

/// The answer of a hybrid [`call`](Buzzer::call): the output now, or a handle to get it later.
pub enum Answer<J: Job> {
    /// The job finished within the deadline: here is its output.
    Now(J::Output),
    /// The job is still pending or running (or the queue's breaker is open): follow it.
    Later(JobHandle<J>),
}

impl<J: Job> std::fmt::Debug for Answer<J>
where
    J::Output: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Now(output) => f.debug_tuple("Now").field(output).finish(),
            Answer::Later(handle) => f.debug_tuple("Later").field(handle).finish(),
        }
    }
}

impl<J: Job> Answer<J> {
    /// The output, if the answer came now.
    pub fn now(self) -> Option<J::Output> {
        match self {
            Answer::Now(output) => Some(output),
            Answer::Later(_) => None,
        }
    }

    /// The handle, if the answer is later.
    pub fn later(self) -> Option<JobHandle<J>> {
        match self {
            Answer::Now(_) => None,
            Answer::Later(handle) => Some(handle),
        }
    }
}

/// A [`Call`] that has no deadline yet: set one with [`Call::within`] before awaiting.
#[derive(Debug, Clone, Copy)]
pub struct NoDeadline;

/// A [`Call`] ready to await: it waits at most this long.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Duration);

/// A hybrid call being built by [`Buzzer::call`]: the same options as an
/// [`Enqueue`](crate::Enqueue), plus the deadline [`within`](Call::within), which must be set
/// before the call can be awaited.
///
/// ```no_run
/// # async fn demo(buzzer: buzzer::Buzzer) -> Result<(), buzzer::Error> {
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Quote { sku: String }
/// # impl buzzer::Job for Quote { const QUEUE: &'static str = "quotes"; type Output = u64; }
/// use std::time::Duration;
///
/// let answer = buzzer
///     .call(Quote { sku: "A-1".into() })
///     .priority(90)
///     .idempotency_key("quote-A-1")
///     .within(Duration::from_millis(300))
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<J: Job, D = NoDeadline> {
    buzzer: Buzzer,
    job: J,
    opts: Options,
    deadline: D,
}

impl<J: Job, D: std::fmt::Debug> std::fmt::Debug for Call<J, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("job", &std::any::type_name::<J>())
            .field("opts", &self.opts)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl<J: Job> Call<J> {
    pub(crate) fn new(buzzer: Buzzer, job: J) -> Self {
        Call {
            buzzer,
            job,
            opts: Options::default(),
            deadline: NoDeadline,
        }
    }
}

impl<J: Job, D> Call<J, D> {
    /// Waits at most `deadline` for the job's output before answering `Later`. Over HTTP the
    /// server does the waiting, in the same request as the enqueue.
    pub fn within(self, deadline: Duration) -> Call<J, Deadline> {
        Call {
            buzzer: self.buzzer,
            job: self.job,
            opts: self.opts,
            deadline: Deadline(deadline),
        }
    }

    enqueue_options!();

    /// See [`Enqueue::idempotency_key`](crate::Enqueue::idempotency_key). A repeated call with
    /// the key of a job that already finished answers `Now` with its output at once.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.opts.idempotency_key = Some(key.into());
        self
    }
}

impl<J: Job> IntoFuture for Call<J, Deadline> {
    type Output = Result<Answer<J>, Error>;
    type IntoFuture = BoxFuture<Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

impl<J: Job> Call<J, Deadline> {
    async fn run(self) -> Result<Answer<J>, Error> {
        let Call {
            buzzer,
            job,
            opts,
            deadline: Deadline(within),
        } = self;
        let (queue, request) = opts.request(to_raw(&job)?);
        let queue = queue.as_deref().unwrap_or(J::QUEUE);
        let transport = buzzer.transport();
        let job = match buzzer.breakers().admit(queue, Instant::now()) {
            Admit::Skip => transport.enqueue(queue, request).await?,
            Admit::Wait(ticket) => {
                let report = Report::new(buzzer.breakers(), queue, ticket);
                let job = transport.enqueue_wait(queue, request, within).await?;
                report.done(!job.state.is_terminal());
                job
            }
        };
        if job.state.is_terminal() {
            settle::<J>(job).map(Answer::Now)
        } else {
            Ok(Answer::Later(JobHandle::new(buzzer.clone(), job.id)))
        }
    }
}

/// Reports a waited call to the breaker; dropped without a result (an error, or the caller
/// gave up on the future) it frees a half-open breaker for the next probe.
struct Report<'a> {
    breakers: &'a Breakers,
    queue: &'a str,
    ticket: Option<Ticket>,
}

impl<'a> Report<'a> {
    fn new(breakers: &'a Breakers, queue: &'a str, ticket: Ticket) -> Self {
        Report {
            breakers,
            queue,
            ticket: Some(ticket),
        }
    }

    fn done(mut self, missed: bool) {
        if let Some(ticket) = self.ticket.take() {
            self.breakers
                .record(self.queue, ticket, Instant::now(), missed);
        }
    }
}

impl Drop for Report<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breakers.abandon(self.queue, ticket);
        }
    }
}
