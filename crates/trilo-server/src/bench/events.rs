//! The `events` scenario: products post `jira:issue_updated` events to the server's
//! `/internal/events` while its sender delivers them to a receiver on loopback. The
//! figure is deliveries per second *received*, sustained: producers hold back while more
//! than [`MAX_OUTSTANDING`] deliveries are posted but not yet received, so the backlog
//! (and with it the latency) cannot grow without bound. A delivery's latency runs from
//! the event's `timestamp` (set just before its commit) to its arrival at the receiver.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use http::{Request, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::net::TcpListener;
use trilo_core::Core;
use trilo_core::model::{ClientType, ConsentRecord, Distribution, NewCode};
use trilo_core::services::admin::NewApp;

use super::load::Measured;
use crate::demo::DemoInfo;

/// Apps subscribed to the event: each event is this many deliveries.
const SUBSCRIBED_APPS: usize = 4;
/// Events per post (one transaction each).
const EVENTS_PER_POST: usize = 25;
/// Deliveries posted but not yet received beyond which producers wait.
const MAX_OUTSTANDING: u64 = 2_048;
const EVENT: &str = "jira:issue_updated";

/// What the receiver counted.
#[derive(Default)]
struct Received {
    deliveries: AtomicU64,
    /// Set from the end of the warm-up to the end of the run.
    measuring: AtomicBool,
    latencies: Mutex<Vec<Duration>>,
}

/// The receiver and the subscribed apps, ready before the server starts.
pub struct EventsFixture {
    secret: String,
    cloud_id: String,
    received: Arc<Received>,
    receiver: tokio::task::JoinHandle<()>,
}

impl Drop for EventsFixture {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

#[derive(serde::Deserialize)]
struct Stamp {
    timestamp: i64,
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let now_ms = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    received.deliveries.fetch_add(1, Ordering::Relaxed);
    if received.measuring.load(Ordering::Relaxed)
        && let Ok(stamp) = serde_json::from_slice::<Stamp>(&body)
    {
        let ms = u64::try_from(now_ms - i128::from(stamp.timestamp)).unwrap_or(0);
        received
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Duration::from_millis(ms));
    }
    StatusCode::NO_CONTENT
}

/// Starts the receiver and subscribes [`SUBSCRIBED_APPS`] apps to it, each installed on
/// the demo site with a grant of the demo user that reads Jira work.
pub async fn prepare(core: &Core, info: &DemoInfo) -> anyhow::Result<EventsFixture> {
    let received = Arc::new(Received::default());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let router = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(received.clone());
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let user = &info.users[0].account_id;
    let cloud_id = info.sites[0].cloud_id.clone();
    for n in 0..SUBSCRIBED_APPS {
        let created = core
            .create_app(NewApp {
                owner_account_id: user.clone(),
                name: format!("Bench receiver {n}"),
                description: "Receives the events scenario's webhooks.".into(),
                avatar_url: None,
                callback_urls: vec!["https://bench.example/callback".into()],
                scopes: vec!["read:jira-work".into()],
                distribution: Distribution::Sharing,
                client_type: ClientType::Confidential,
            })
            .await?;
        let app_id = created.app.app_id;
        let now = core.now();
        core.store()
            .accept_consent(
                &ConsentRecord {
                    app_id: app_id.clone(),
                    account_id: user.clone(),
                    cloud_id: Some(cloud_id.clone()),
                    scopes: vec!["read:jira-work".into()],
                    change: trilo_core::model::GrantChange::Replace,
                    at: now,
                },
                &uuid::Uuid::now_v7().to_string(),
                &NewCode {
                    code_hash: trilo_core::crypto::random_bytes::<32>(),
                    redirect_uri: None,
                    code_challenge: None,
                    nonce: None,
                    auth_time: None,
                    expires_at: now + time::Duration::minutes(1),
                    audience: None,
                },
            )
            .await?;
        core.create_webhook(&app_id, &url, &[EVENT.to_owned()])
            .await
            .context("subscribing a bench app")?;
    }
    Ok(EventsFixture {
        secret: core.product_events_secret("jira"),
        cloud_id,
        received,
        receiver,
    })
}

/// Posts events from `concurrency` producers through the warm-up and the measured time;
/// the deliveries received in the measured time are the figure.
pub async fn measure(
    fixture: &EventsFixture,
    base: &str,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Measured> {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{base}/internal/events").parse()?;
    let body = Bytes::from(
        json!({ "events": (0..EVENTS_PER_POST).map(|n| json!({
            "event": EVENT,
            "cloudId": fixture.cloud_id,
            "container": "DEMO",
            "payload": { "issue": { "key": format!("DEMO-{n}") }, "changelog": { "items": [] } },
        })).collect::<Vec<_>>() })
        .to_string(),
    );
    let start = Instant::now();
    let (count_from, stop_at) = (start + warmup, start + warmup + duration);
    let posted = Arc::new(AtomicU64::new(
        fixture.received.deliveries.load(Ordering::Relaxed),
    ));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(Mutex::new(None::<String>));
    let per_post = (EVENTS_PER_POST * SUBSCRIBED_APPS) as u64;
    let producers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, uri, body) = (client.clone(), uri.clone(), body.clone());
            let auth = format!("Bearer {}", fixture.secret);
            let (received, posted) = (fixture.received.clone(), posted.clone());
            let (errors, first_error) = (errors.clone(), first_error.clone());
            tokio::spawn(async move {
                while Instant::now() < stop_at {
                    if posted.load(Ordering::Relaxed)
                        > received.deliveries.load(Ordering::Relaxed) + MAX_OUTSTANDING
                    {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    posted.fetch_add(per_post, Ordering::Relaxed);
                    let request = Request::post(uri.clone())
                        .header(header::CONTENT_TYPE, "application/json")
                        .header(header::AUTHORIZATION, &auth)
                        .body(Body::from(body.clone()));
                    let outcome = match request {
                        Ok(request) => match client.request(request).await {
                            Ok(res) if res.status() == StatusCode::ACCEPTED => Ok(()),
                            Ok(res) => Err(format!("the server answered {}", res.status())),
                            Err(e) => Err(e.to_string()),
                        },
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(why) = outcome {
                        // Nothing will arrive for this post.
                        posted.fetch_sub(per_post, Ordering::Relaxed);
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .get_or_insert(why);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep_until(count_from.into()).await;
    fixture.received.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep_until(stop_at.into()).await;
    fixture.received.measuring.store(false, Ordering::Relaxed);
    for producer in producers {
        producer.abort();
    }
    let latencies = std::mem::take(
        &mut *fixture
            .received
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    Ok(Measured {
        latencies,
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(),
        exhausted: 0,
    })
}
