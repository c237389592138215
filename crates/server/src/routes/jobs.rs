//! Producers and operators: enqueue (plain, hybrid and batch), get, list, cancel, retry,
//! delete.

use axum::{
    extract::State,
    http::{HeaderName, StatusCode, Uri},
    response::Response,
};
use buzzer_engine::Inserted;
use buzzer_store::JobList;
use buzzer_types::{BatchEnqueueRequest, EnqueueRequest, Job, JobDetail, JobId, JobState};
use serde::Serialize;

use crate::{
    ApiError, AppState,
    extract::{JobIdPath, JsonBody, QueryPairs, QueuePath, TraceHeader, Wait, WaitPref},
    response::{json, with_location},
};

static PREFERENCE_APPLIED: HeaderName = HeaderName::from_static("preference-applied");

/// `POST /v1/queues/{queue}/jobs`: 201 + `Location`, or 200 for an idempotent repeat. With a
/// wait it is the hybrid call: 200 once the job is terminal, else 202 + `Location` at the
/// deadline.
pub(crate) async fn enqueue(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    WaitPref(wait): WaitPref,
    trace: TraceHeader,
    JsonBody(mut req): JsonBody<EnqueueRequest>,
) -> Result<Response, ApiError> {
    trace.apply(&mut req);
    let Some(wait) = wait else {
        let Inserted { job, created } = state.engine.enqueue(&queue, req).await?;
        return Ok(if created {
            with_location(json(StatusCode::CREATED, &job), job.id)
        } else {
            json(StatusCode::OK, &job)
        });
    };
    let Inserted { job, .. } = state.engine.enqueue_wait(&queue, req, wait.timeout).await?;
    Ok(waited_answer(job, wait))
}

/// 200 with a job that finished within the wait, else 202 + `Location`.
fn waited_answer(job: Job, wait: Wait) -> Response {
    let response = if job.state.is_terminal() {
        json(StatusCode::OK, &job)
    } else {
        with_location(json(StatusCode::ACCEPTED, &job), job.id)
    };
    preference_applied(response, wait)
}

/// Says `Preference-Applied: wait=N` when the wait came from a `Prefer` header (RFC 7240).
fn preference_applied(mut response: Response, wait: Wait) -> Response {
    if let Some(applied) = wait.applied {
        response
            .headers_mut()
            .insert(PREFERENCE_APPLIED.clone(), applied);
    }
    response
}

/// `POST /v1/queues/{queue}/jobs/batch`: all or nothing, 201 `{"jobs":[…]}` in request order.
pub(crate) async fn enqueue_batch(
    State(state): State<AppState>,
    QueuePath(queue): QueuePath,
    trace: TraceHeader,
    JsonBody(mut req): JsonBody<BatchEnqueueRequest>,
) -> Result<Response, ApiError> {
    for job in &mut req.jobs {
        trace.apply(job);
    }
    if req.jobs.is_empty() {
        return Err(ApiError::invalid_field(
            "jobs",
            "must hold at least one job",
        ));
    }
    let inserted = state.engine.enqueue_many(&queue, req.jobs).await?;
    #[derive(Serialize)]
    struct Batch {
        jobs: Vec<Job>,
    }
    let jobs = inserted.into_iter().map(|i| i.job).collect();
    Ok(json(StatusCode::CREATED, &Batch { jobs }))
}

/// `GET /v1/jobs/{id}`: the job and its `waiting_reason`; with a wait, long-polls until the
/// job is terminal or the time is up and answers 200 with the job as it is then.
pub(crate) async fn get(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
    WaitPref(wait): WaitPref,
) -> Result<Response, ApiError> {
    let Some(wait) = wait else {
        let job = state.engine.get(id).await?;
        return Ok(json(StatusCode::OK, &detail(&state, job).await?));
    };
    let job = state.engine.wait_terminal(id, wait.timeout).await?;
    let body = detail(&state, job).await?;
    Ok(preference_applied(json(StatusCode::OK, &body), wait))
}

async fn detail(state: &AppState, job: Job) -> Result<JobDetail, ApiError> {
    let waiting_reason = state.engine.waiting_reason(&job).await?;
    Ok(JobDetail {
        job,
        waiting_reason,
    })
}

/// `DELETE /v1/jobs/{id}`: the job as it was; 409 for a running job (cancel it first).
pub(crate) async fn delete(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.delete(id).await?))
}

/// `GET /v1/jobs?queue=&state=&tag=&limit=&cursor=`: newest first; `next_cursor` is the id to
/// pass as `cursor` for the next page.
pub(crate) async fn list(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let params = list_params(&QueryPairs::from_uri(&uri)?)?;
    Ok(json(StatusCode::OK, &state.engine.list(params).await?))
}

fn list_params(query: &QueryPairs) -> Result<JobList, ApiError> {
    let state = query
        .get("state")
        .map(str::parse::<JobState>)
        .transpose()
        .map_err(|e| ApiError::invalid_field("state", e.to_string()))?;
    let before = query
        .get("cursor")
        .map(str::parse::<JobId>)
        .transpose()
        .map_err(|_| {
            ApiError::invalid_field("cursor", "is not a cursor; pass a `next_cursor` as it came")
        })?;
    let limit = match query.get("limit") {
        None => 0,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                return Err(ApiError::invalid_field(
                    "limit",
                    "must be between 1 and 1000",
                ));
            }
        },
    };
    Ok(JobList {
        queue: query.get("queue").map(str::to_owned),
        state,
        tag: query.get("tag").map(str::to_owned),
        before,
        limit,
    })
}

/// `POST /v1/jobs/{id}/cancel`: 409 for a job already finished.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.cancel(id).await?))
}

/// `POST /v1/jobs/{id}/retry`: a dead or cancelled job back to `available`; 409 otherwise.
pub(crate) async fn retry(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.retry(id).await?))
}
