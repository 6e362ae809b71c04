//! The sample products' side of webhooks: after a write, post the event to trilo's
//! `POST /internal/events` with the product's events secret, as a real product would.
//!
//! Each event carries a stable id, so the few retries after a failed post are recorded
//! once by trilo.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Posts after a failure, with a growing pause.
const POST_TRIES: u32 = 5;

/// Where and how the sample products post their events.
#[derive(Clone)]
pub struct EventSink {
    url: String,
    secret: String,
    client: Client<HttpConnector, Body>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl EventSink {
    /// `url` is trilo's `…/internal/events`; `secret` the product's events secret.
    pub fn new(url: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: secret.into(),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// Posts `event` in the background; the write that caused it has already answered.
    pub fn emit(&self, event: Value) {
        let sink = self.clone();
        tokio::spawn(async move {
            for attempt in 0..POST_TRIES {
                match sink.post(&event).await {
                    Ok(()) => return,
                    Err(why) => {
                        tracing::warn!(%why, attempt, "the sample product could not post an event");
                        tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                    }
                }
            }
        });
    }

    async fn post(&self, event: &Value) -> Result<(), String> {
        let request = Request::post(&self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, format!("Bearer {}", self.secret))
            .body(Body::from(event.to_string()))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // A 4xx will not change on a retry; only the others are worth another post.
        if status.is_success() || status.is_client_error() {
            if status.is_client_error() {
                tracing::warn!(%status, "trilo refused a sample product's event");
            }
            Ok(())
        } else {
            Err(format!("trilo answered {status}"))
        }
    }
}
