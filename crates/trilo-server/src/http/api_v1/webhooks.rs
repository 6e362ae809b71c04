//! The webhook handlers of `/api/v1` (DESIGN §3 "Webhooks"): an app's subscriptions and
//! the recent deliveries of its events. Only the app's developer reaches them: another
//! developer's app is "not found", as it is for the app itself.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{HeaderMap, HeaderValue, LOCATION};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use trilo_core::model::{App, Delivery, DeliveryStatus, WebhookSubscription};

use super::apps::timestamp;
use super::auth::Developer;
use super::error::{ApiV1Error, Code};
use super::json::{self, AppItemPath, AppPath};
use crate::state::AppState;

type Result<T> = std::result::Result<T, ApiV1Error>;

/// Deliveries listed when no `limit` is asked for.
pub const DEFAULT_DELIVERIES: u32 = 50;
/// The most deliveries one listing returns.
pub const MAX_DELIVERIES: u32 = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWebhookRequest {
    url: String,
    events: Vec<String>,
}

/// The caller's app with this id (or client id); anyone else's is `NotFound`.
async fn owned_app(state: &AppState, dev: &Developer, id: &str) -> Result<App> {
    Ok(state.core.console(&dev.account).app(id).await?)
}

pub async fn list_webhooks(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    let webhooks = state.core.webhooks_of_app(&app.app_id).await?;
    Ok(Json(json!({
        "webhooks": webhooks.iter().map(webhook).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// The body is read by hand, after the app is found: another developer's app is "not
/// found" whatever was sent (a `JsonBody` extractor would answer about the body first).
pub async fn create_webhook(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    let req: CreateWebhookRequest = json::body(&headers, body)?;
    let created = state
        .core
        .create_webhook(&app.app_id, &req.url, &req.events)
        .await?;
    let mut body = webhook(&created.subscription);
    body["secret"] = json!(created.secret);
    let mut res = (StatusCode::CREATED, Json(body)).into_response();
    let location = format!(
        "/api/v1/apps/{}/webhooks/{}",
        app.app_id, created.subscription.subscription_id
    );
    if let Ok(location) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(LOCATION, location);
    }
    Ok(res)
}

pub async fn get_webhook(
    State(state): State<AppState>,
    dev: Developer,
    AppItemPath(id, webhook_id): AppItemPath,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    let found = state
        .core
        .webhooks_of_app(&app.app_id)
        .await?
        .into_iter()
        .find(|w| w.subscription_id == webhook_id)
        .ok_or_else(|| ApiV1Error::new(Code::NotFound, "no such webhook"))?;
    let mut body = webhook(&found);
    body["secret"] = json!(state.core.webhook_secret(&found.subscription_id));
    Ok(Json(body).into_response())
}

pub async fn delete_webhook(
    State(state): State<AppState>,
    dev: Developer,
    AppItemPath(id, webhook_id): AppItemPath,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    state.core.delete_webhook(&app.app_id, &webhook_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    dev: Developer,
    AppPath(id): AppPath,
    uri: Uri,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    let params = json::query(&uri, &["limit"])?;
    let limit = match params.get("limit") {
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_DELIVERIES).contains(n))
            .ok_or_else(|| {
                ApiV1Error::new(
                    Code::InvalidRequest,
                    format!("limit must be an integer from 1 to {MAX_DELIVERIES}"),
                )
            })?,
        None => DEFAULT_DELIVERIES,
    };
    let deliveries = state.core.deliveries_of_app(&app.app_id, limit).await?;
    Ok(Json(json!({
        "deliveries": deliveries.iter().map(delivery).collect::<Vec<_>>(),
    }))
    .into_response())
}

pub async fn redeliver(
    State(state): State<AppState>,
    dev: Developer,
    AppItemPath(id, delivery_id): AppItemPath,
) -> Result<Response> {
    let app = owned_app(&state, &dev, &id).await?;
    state.core.redeliver(&app.app_id, &delivery_id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A webhook as listed (its secret only where asked for one).
fn webhook(w: &WebhookSubscription) -> Value {
    json!({
        "id": w.subscription_id,
        "url": w.url,
        "events": w.events,
        "created_at": timestamp(w.created_at),
    })
}

fn delivery(d: &Delivery) -> Value {
    json!({
        "id": d.delivery_id,
        "event_id": d.event_id,
        "event": d.event_name,
        "webhook_id": d.subscription_id,
        "url": d.url,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        // Only a pending delivery is tried again.
        "next_attempt_at": match d.status {
            DeliveryStatus::Pending => timestamp(d.next_attempt_at),
            DeliveryStatus::Delivered | DeliveryStatus::Dead => Value::Null,
        },
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "created_at": timestamp(d.created_at),
        "finished_at": d.finished_at.map_or(Value::Null, timestamp),
    })
}
