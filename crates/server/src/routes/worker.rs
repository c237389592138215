//! Workers: fetch (long-poll), complete, fail, heartbeat and batched acks. This is the
//! throughput path: each handler is one engine call and one serialization.

use axum::{extract::State, http::StatusCode, response::Response};
use buzzer_types::{
    AckResult, AcksRequest, AcksResponse, CompleteRequest, FailRequest, FetchRequest,
    FetchResponse, HeartbeatRequest, Job, JobId, ReleaseRequest,
};
use serde::Serialize;
use serde_json::{Map, Value, value::RawValue};

use crate::{
    ApiError, AppState,
    extract::{JobIdPath, JsonBody},
    response::{json, json_sized},
};

/// `POST /v1/fetch`: leases jobs; with `wait_ms`, an empty answer waits for an enqueue.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<FetchRequest>,
) -> Result<Response, ApiError> {
    let brief = req.brief;
    let jobs = state.engine.fetch(req).await?;
    // A leased job with a small payload is ~700 bytes of JSON (~250 brief). Grown from 1 KiB
    // by doubling, the answer to a fetch of a thousand was reallocated, and copied, ten times
    // over (W1 over HTTP 161,800 against 155,800 jobs/s with the size given, 12 alternating
    // pairs).
    if brief {
        let capacity = 64 + jobs.len() * 320;
        let jobs = jobs.iter().map(Brief::of).collect();
        return Ok(json_sized(
            StatusCode::OK,
            &BriefResponse { jobs },
            capacity,
        ));
    }
    let capacity = 64 + jobs.len() * 768;
    Ok(json_sized(
        StatusCode::OK,
        &FetchResponse { jobs },
        capacity,
    ))
}

/// A leased job as a worker runs it, for a fetch with `"brief": true`: the fields the
/// client's `Leased` reads, and nothing it would parse only to skip (five timestamps, the
/// retry options, the error history, tags…).
#[derive(Serialize)]
struct Brief<'a> {
    id: JobId,
    queue: &'a str,
    payload: &'a RawValue,
    attempt: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    lease_token: Option<&'a str>,
}

impl<'a> Brief<'a> {
    fn of(job: &'a Job) -> Brief<'a> {
        Brief {
            id: job.id,
            queue: &job.queue,
            payload: &job.payload,
            attempt: job.attempt,
            timeout_ms: job.timeout_ms,
            metadata: &job.metadata,
            traceparent: job.traceparent.as_deref(),
            lease_token: job.lease_token.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct BriefResponse<'a> {
    jobs: Vec<Brief<'a>>,
}

/// `POST /v1/jobs/{id}/complete`: 409 `lease-lost` for a stale token.
pub(crate) async fn complete(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<CompleteRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.complete(id, req).await?))
}

/// `POST /v1/jobs/{id}/fail`: the job becomes `retryable`, `dead` or `cancelled`.
pub(crate) async fn fail(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<FailRequest>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &state.engine.fail(id, req).await?))
}

/// `POST /v1/jobs/{id}/release`: back to `available` at once without counting the attempt,
/// for a worker that shuts down before finishing; 409 `lease-lost` for a stale token.
pub(crate) async fn release(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<ReleaseRequest>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &state.engine.release(id, req.lease_token).await?,
    ))
}

/// `POST /v1/jobs/{id}/heartbeat`: `{"lease_expires_at", "cancel_requested"}`.
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    JobIdPath(id): JobIdPath,
    JsonBody(req): JsonBody<HeartbeatRequest>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &state.engine.heartbeat(id, req).await?,
    ))
}

/// `POST /v1/acks`: many completes and fails in one transaction; each result carries the
/// status the single call would have answered.
pub(crate) async fn acks(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<AcksRequest>,
) -> Result<Response, ApiError> {
    let ids: Vec<JobId> = req.acks.iter().map(|a| a.id).collect();
    let outcomes = state.engine.ack_many(req.acks).await?;
    // A hybrid call waiting for one of these jobs was woken by the commit: its answer goes out
    // before this one, which only frees the worker's next batch.
    tokio::task::yield_now().await;
    let results = ids
        .into_iter()
        .zip(outcomes)
        .map(|(id, outcome)| match outcome {
            Ok(done) => AckResult {
                id,
                status: StatusCode::OK.as_u16(),
                state: Some(done.state),
                error: None,
            },
            Err(e) => {
                let e = ApiError::from(e);
                AckResult {
                    id,
                    status: e.status().as_u16(),
                    state: None,
                    error: Some(e.detail().to_owned()),
                }
            }
        })
        .collect();
    Ok(json(StatusCode::OK, &AcksResponse { results }))
}
