use serde::{Serialize, de::DeserializeOwned};

use crate::Error;
use buzzer_types::{JobState, RawValue};

/// A kind of work: its payload type, the queue it goes to, and what it produces.
///
/// The payload is the type itself, stored as JSON; `Output` is what a handler returns and
/// what [`JobHandle::wait`](crate::JobHandle::wait) and the hybrid
/// [`call`](crate::Buzzer::call) give back. A worker finds the handler of a job by its queue,
/// so each queue carries one job type.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail {
///     to: String,
///     subject: String,
/// }
///
/// impl buzzer::Job for SendEmail {
///     const QUEUE: &'static str = "emails";
///     type Output = String; // the provider's message id
/// }
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The queue jobs of this type go to unless an enqueue names another.
    const QUEUE: &'static str;
    /// What a finished job produced.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}

pub(crate) fn to_raw<T: Serialize + ?Sized>(value: &T) -> Result<Box<RawValue>, Error> {
    Ok(serde_json::value::to_raw_value(value)?)
}

/// The output of a terminal job: its result when completed, the job's errors when dead.
pub(crate) fn settle<J: Job>(job: buzzer_types::Job) -> Result<J::Output, Error> {
    match job.state {
        JobState::Completed => {
            let raw = job.result.as_deref().map_or("null", RawValue::get);
            Ok(serde_json::from_str(raw)?)
        }
        JobState::Dead => Err(Error::JobDead {
            id: job.id,
            errors: job.errors,
        }),
        JobState::Cancelled => Err(Error::JobCancelled { id: job.id }),
        state => Err(Error::Conflict(format!(
            "job {} is {state}, not finished",
            job.id
        ))),
    }
}
