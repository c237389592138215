//! `GET /v1/jobs/{id}/events`: a job's state changes as Server-Sent Events.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use buzzer_engine::{Engine, JobWatch};
use buzzer_types::{Job, JobId, JobState};
use futures::{FutureExt, Stream, stream};

use crate::{ApiError, AppState, extract::JobIdPath};

/// The first event is the job as it is; then one per state change (`event:` the state,
/// `data:` the job JSON); the stream ends after a terminal state. An unknown job is a 404
/// before any streaming starts.
pub(crate) async fn stream(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Watch before reading, so no change between the read and the first wait is missed.
    let mut watch = state.engine.watch(id);
    let mut job = Arc::new(state.engine.get(id).await?);
    // Start from the newest snapshot already queued rather than the read, so the states sent
    // never go backwards: the read may be older than that snapshot, and a change the read saw
    // whose snapshot is not queued yet still comes next, in order.
    while let Some(changed) = watch.changed().now_or_never() {
        job = match changed {
            Some(snapshot) => snapshot,
            None => Arc::new(state.engine.get(id).await?),
        };
    }
    let follow = Follow {
        engine: state.engine,
        id,
        watch,
        last: None,
        next: Some(job),
    };
    Ok(Sse::new(stream::unfold(Some(follow), Follow::step)).keep_alive(KeepAlive::default()))
}

struct Follow {
    engine: Engine,
    id: JobId,
    watch: JobWatch,
    /// The state of the last event sent.
    last: Option<JobState>,
    /// A snapshot not yet looked at.
    next: Option<Arc<Job>>,
}

impl Follow {
    /// The next event and what follows it; `None` ends the stream.
    async fn step(this: Option<Self>) -> Option<(Result<Event, Infallible>, Option<Self>)> {
        let mut this = this?;
        loop {
            if let Some(job) = this.next.take()
                && this.last != Some(job.state)
            {
                this.last = Some(job.state);
                let event = match Event::default().event(job.state.as_str()).json_data(&*job) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::error!(error = %e, id = %this.id, "cannot serialize a job event");
                        return None;
                    }
                };
                let rest = (!job.state.is_terminal()).then_some(this);
                return Some((Ok(event), rest));
            }
            tokio::select! {
                changed = this.watch.changed() => {
                    this.next = match changed {
                        Some(snapshot) => Some(snapshot),
                        // Lagged: snapshots were lost, so read the job as it is now.
                        None => Some(Arc::new(this.engine.get(this.id).await.ok()?)),
                    };
                }
                _ = this.engine.closed() => return None,
            }
        }
    }
}
