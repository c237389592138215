//! Topics: publishing, and each topic's subscriptions.

use axum::{extract::State, http::StatusCode, response::Response};
use buzzer_types::{
    PublishRequest, SubscriptionListResponse, SubscriptionRequest, TopicListResponse,
    webhook_url::validate_webhook_url,
};

use crate::{
    ApiError, AppState,
    extract::{JsonBody, Names, TraceHeader},
    response::json,
};

/// `POST /v1/topics/{topic}/events`: 202 `{"event_id", "deliveries"}`, also for a repeat of
/// a keyed publish (which answers the first one's event).
pub(crate) async fn publish(
    State(state): State<AppState>,
    Names(topic): Names<String>,
    TraceHeader(traceparent): TraceHeader,
    JsonBody(req): JsonBody<PublishRequest>,
) -> Result<Response, ApiError> {
    let published = state
        .engine
        .publish_traced(&topic, req, traceparent)
        .await?;
    Ok(json(StatusCode::ACCEPTED, &published))
}

/// `GET /v1/topics`: every topic with a subscription.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let topics = state.engine.topics().await?;
    Ok(json(StatusCode::OK, &TopicListResponse { topics }))
}

/// `GET /v1/topics/{topic}/subscriptions`.
pub(crate) async fn subscriptions(
    State(state): State<AppState>,
    Names(topic): Names<String>,
) -> Result<Response, ApiError> {
    let subscriptions = state.engine.subscriptions(Some(&topic)).await?;
    Ok(json(
        StatusCode::OK,
        &SubscriptionListResponse { subscriptions },
    ))
}

/// `GET /v1/subscriptions`: the subscriptions of every topic.
pub(crate) async fn all_subscriptions(State(state): State<AppState>) -> Result<Response, ApiError> {
    let subscriptions = state.engine.subscriptions(None).await?;
    Ok(json(
        StatusCode::OK,
        &SubscriptionListResponse { subscriptions },
    ))
}

/// `PUT /v1/topics/{topic}/subscriptions/{name}`: 201 when created, 200 when replaced. The
/// answer shows a webhook's whole secret only when this call generated or rotated it. A URL
/// whose host is a literal non-public address (or `localhost`) is refused here unless the
/// server allows private webhooks; names that resolve to one are refused at delivery.
pub(crate) async fn put(
    State(state): State<AppState>,
    Names((topic, name)): Names<(String, String)>,
    JsonBody(req): JsonBody<SubscriptionRequest>,
) -> Result<Response, ApiError> {
    if let Some(webhook) = &req.webhook {
        validate_webhook_url(&webhook.url, state.allow_private_webhooks)?;
    }
    let put = state.engine.subscription_put(&topic, &name, req).await?;
    let status = if put.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json(status, &put.value))
}

/// `GET /v1/topics/{topic}/subscriptions/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Names((topic, name)): Names<(String, String)>,
) -> Result<Response, ApiError> {
    Ok(json(
        StatusCode::OK,
        &state.engine.subscription(&topic, &name).await?,
    ))
}

/// `DELETE /v1/topics/{topic}/subscriptions/{name}`: 204; deliveries already made stay.
pub(crate) async fn delete(
    State(state): State<AppState>,
    Names((topic, name)): Names<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.engine.subscription_delete(&topic, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
