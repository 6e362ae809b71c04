//! Products → trilo: events (`POST /internal/events`) and the objects inside containers
//! (`POST /internal/objects`) that data security policy events list.
//!
//! A product authenticates with its events secret (`Authorization: Bearer …`; the operator
//! reads it with `trilo admin product-secret KEY`). Answers are the API host's
//! `{"code", "message"}` errors; an accepted event is durable when the 202 is sent.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use trilo_core::CoreError;
use trilo_core::services::events::{Ingested, ProductEvent};

use super::errors::ApiError;
use crate::state::AppState;

/// The most events one post may carry.
const MAX_EVENTS_PER_POST: usize = 1_000;
/// An events post: up to 1,000 events of up to the event size each, bounded as a whole.
const MAX_EVENTS_BODY: usize = 8 * 1024 * 1024;
/// An objects report: a quarter of a million ids fits.
const MAX_OBJECTS_BODY: usize = 16 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/internal/events",
            post(post_events).layer(DefaultBodyLimit::max(MAX_EVENTS_BODY)),
        )
        .route(
            "/internal/objects",
            post(post_objects).layer(DefaultBodyLimit::max(MAX_OBJECTS_BODY)),
        )
}

/// One event as a product posts it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EventIn {
    /// The product's own id: a retried post with the same id is recorded once.
    id: Option<String>,
    event: String,
    cloud_id: String,
    container: Option<String>,
    account_id: Option<String>,
    object: Option<ObjectIn>,
    #[serde(default)]
    payload: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectIn {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

/// One event, or `{"events": [...]}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EventsIn {
    Many { events: Vec<EventIn> },
    One(Box<EventIn>),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ObjectsIn {
    cloud_id: String,
    container: String,
    #[serde(rename = "type")]
    kind: String,
    ids: Vec<String>,
}

/// The product whose events secret the request carries.
async fn product(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::unauthorized("A product's events secret is required.", None))?;
    state
        .core
        .product_of_events_secret(presented)
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized("The events secret is not valid.", Some("invalid_token"))
        })
}

fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "The body must be application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("The body is not valid: {e}"),
        )
    })
}

/// A product's mistake is a 4xx naming it; the store's trouble is the usual 503/500.
fn client_error(e: CoreError) -> ApiError {
    match e {
        CoreError::Invalid(m) | CoreError::InvalidField { message: m, .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, m)
        }
        CoreError::NotFound(what) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("Unknown {what}."))
        }
        other => other.into(),
    }
}

fn ingested_json(i: &Ingested) -> Value {
    json!({ "eventId": i.event_id, "deliveries": i.deliveries, "duplicate": i.duplicate })
}

async fn post_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let product = product(&state, &headers).await?;
    let (events, many) = match json_body::<EventsIn>(&headers, &body)? {
        EventsIn::Many { events } => (events, true),
        EventsIn::One(event) => (vec![*event], false),
    };
    if events.is_empty() || events.len() > MAX_EVENTS_PER_POST {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("A post carries 1 to {MAX_EVENTS_PER_POST} events."),
        ));
    }
    let events = events
        .into_iter()
        .map(|e| ProductEvent {
            id: e.id,
            name: e.event,
            cloud_id: e.cloud_id,
            container: e.container,
            account_id: e.account_id,
            object: e.object.map(|o| (o.kind, o.id)),
            payload: e.payload,
        })
        .collect();
    // One transaction for the post: a refused event (named in the message) records none.
    let out: Vec<Value> = state
        .core
        .ingest_events(&product, events)
        .await
        .map_err(client_error)?
        .iter()
        .map(ingested_json)
        .collect();
    let body = if many {
        json!({ "events": out })
    } else {
        out.into_iter().next().unwrap_or(Value::Null)
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn post_objects(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let product = product(&state, &headers).await?;
    let report: ObjectsIn = json_body(&headers, &body)?;
    let reported = state
        .core
        .report_container_objects(
            &product,
            &report.cloud_id,
            &report.container,
            &report.kind,
            report.ids,
        )
        .await
        .map_err(client_error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "reported": reported }))).into_response())
}
