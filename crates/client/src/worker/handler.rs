use std::{any::type_name, future::Future, marker::PhantomData};

use buzzer_types::RawValue;

use crate::{Job, JobContext, JobError, enqueue::BoxFuture};

/// What runs a job of type `J`. Any `async fn(JobContext, J) -> Result<J::Output, JobError>`
/// or closure returning such a future is one; implement it yourself for a handler with a
/// nameable future type.
///
/// ```
/// use std::sync::Arc;
/// use buzzer::{Buzzer, JobContext, JobError, Worker};
///
/// # #[derive(serde::Serialize, serde::Deserialize)] struct Ping;
/// # impl buzzer::Job for Ping { const QUEUE: &'static str = "ping"; type Output = String; }
/// async fn ping(_ctx: JobContext, _job: Ping) -> Result<String, JobError> {
///     Ok("pong".into())
/// }
///
/// # fn demo(buzzer: Buzzer) -> Result<(), buzzer::Error> {
/// let greeting = Arc::new(String::from("hello"));
/// let worker = Worker::builder(&buzzer)
///     .register::<Ping, _>(ping) // an async fn
///     .register_in::<Ping, _>("ping.eu", move |_ctx: JobContext, _job: Ping| {
///         let greeting = greeting.clone(); // a closure with state
///         async move { Ok::<_, JobError>(greeting.to_string()) }
///     })
///     .build()?;
/// # Ok(()) }
/// ```
pub trait Handler<J: Job>: Send + Sync + 'static {
    /// The future one run of the handler returns.
    type Future: Future<Output = Result<J::Output, JobError>> + Send + 'static;

    /// Runs one attempt of `job`.
    fn call(&self, ctx: JobContext, job: J) -> Self::Future;
}

impl<J, F, Fut> Handler<J> for F
where
    J: Job,
    F: Fn(JobContext, J) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<J::Output, JobError>> + Send + 'static,
{
    type Future = Fut;

    fn call(&self, ctx: JobContext, job: J) -> Fut {
        self(ctx, job)
    }
}

/// A handler with its job type erased: JSON payload in, JSON output out.
pub(crate) trait Erased: Send + Sync + 'static {
    fn run(
        &self,
        ctx: JobContext,
        payload: &RawValue,
    ) -> BoxFuture<Result<Box<RawValue>, JobError>>;
}

pub(crate) struct Typed<J, H> {
    handler: H,
    _job: PhantomData<fn(J)>,
}

impl<J, H> Typed<J, H> {
    pub(crate) fn new(handler: H) -> Self {
        Typed {
            handler,
            _job: PhantomData,
        }
    }
}

impl<J: Job, H: Handler<J>> Erased for Typed<J, H> {
    fn run(
        &self,
        ctx: JobContext,
        payload: &RawValue,
    ) -> BoxFuture<Result<Box<RawValue>, JobError>> {
        let job = match serde_json::from_str::<J>(payload.get()) {
            Ok(job) => job,
            // The same payload will never decode: retrying cannot help.
            Err(e) => {
                let message = format!("the payload is not a {}: {e}", type_name::<J>());
                return Box::pin(std::future::ready(Err(JobError::fatal(message))));
            }
        };
        let run = self.handler.call(ctx, job);
        Box::pin(async move {
            let output = run.await?;
            serde_json::value::to_raw_value(&output)
                .map_err(|e| JobError::fatal(format!("the output does not serialize as JSON: {e}")))
        })
    }
}
