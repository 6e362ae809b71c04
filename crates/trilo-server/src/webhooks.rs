//! The webhook sender: claims due deliveries from the outbox, POSTs each signed body to
//! its receiver, and records how every attempt ended (DESIGN §3 "Webhooks").
//!
//! Delivery is at least once. A claim leases its deliveries (`webhooks.lease`): if this
//! instance dies mid-send, they become due again when the lease ends and any instance sends
//! them; an outcome that cannot be recorded leaves the same. Receivers tell duplicates apart
//! by `X-Trilo-Event-Id`. Outcomes are recorded in batches, so a busy sender costs the
//! store one commit per batch rather than one per delivery.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use http::{HeaderValue, Request, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use trilo_core::Core;
use trilo_core::model::{DueDelivery, FinishedAttempt};
use trilo_core::services::events::SendResult;
use trilo_protocol::webhooks::{
    ATTEMPT_HEADER, DELIVERY_ID_HEADER, EVENT_ID_HEADER, EVENT_NAME_HEADER, SIGNATURE_HEADER,
    is_public_address, refused_literal,
};

/// How much of a receiver's answer is read: enough to keep the connection for reuse when
/// the answer is small; a larger one is dropped with its connection.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Claims per store round trip.
const MAX_CLAIM: usize = 256;
/// Outcomes per recording transaction.
const MAX_FINISH_BATCH: usize = 512;
/// Tries to record a batch of outcomes before leaving it to the leases.
const RECORD_TRIES: usize = 20;
/// The pause after the store refused a claim or a recording.
const STORE_RETRY: Duration = Duration::from_millis(500);

/// How this instance sends.
#[derive(Clone, Copy, Debug)]
pub struct SenderSettings {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How often to look for due deliveries when nothing woke the sender.
    pub poll_interval: Duration,
    /// Connect, send and answer within this, or the attempt failed.
    pub send_timeout: Duration,
    /// Send to loopback and private addresses too (development); otherwise receivers must
    /// resolve to public addresses.
    pub allow_private: bool,
}

type HttpsClient = Client<HttpsConnector<HttpConnector<Resolver>>, Body>;

/// Resolves receivers' host names, keeping only public addresses unless private ones are
/// allowed: a name that resolves into the operator's network is refused at every attempt
/// (IP literals are checked in [`request`], as the connector does not resolve them).
#[derive(Clone, Copy, Debug)]
struct Resolver {
    allow_private: bool,
}

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public_address(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::other(
                    "the receiver's name resolves to no public address",
                ));
            }
            Ok(found.into_iter())
        })
    }
}

/// The running sender; dropping it stops the sender.
#[derive(Debug)]
pub struct SenderHandle(JoinHandle<()>);

impl Drop for SenderHandle {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the sender on the current runtime.
pub fn spawn(core: Core, settings: SenderSettings) -> anyhow::Result<SenderHandle> {
    let client = https_client(settings)?;
    Ok(SenderHandle(tokio::spawn(run(core, client, settings))))
}

fn https_client(settings: SenderSettings) -> anyhow::Result<HttpsClient> {
    let mut http = HttpConnector::new_with_resolver(Resolver {
        allow_private: settings.allow_private,
    });
    http.enforce_http(false);
    http.set_connect_timeout(Some(settings.send_timeout));
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build(connector))
}

async fn run(core: Core, client: HttpsClient, settings: SenderSettings) {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let (outcomes, recorded) = mpsc::unbounded_channel();
    let recorder = tokio::spawn(record_outcomes(core.clone(), recorded));
    let _stop_recorder = AbortOnDrop(recorder);
    loop {
        // Claim no more than can start at once, so no lease ticks away in a queue.
        let free = permits.available_permits();
        if free == 0 {
            if let Ok(permit) = permits.clone().acquire_owned().await {
                drop(permit);
            }
            continue;
        }
        let limit = u32::try_from(free.min(MAX_CLAIM)).unwrap_or(1);
        let claimed = match core.claim_due_deliveries(limit).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim webhook deliveries");
                tokio::time::sleep(STORE_RETRY).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                () = core.deliveries_ready.notified() => {}
                () = tokio::time::sleep(settings.poll_interval) => {}
            }
            continue;
        }
        for due in claimed {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (core, client, outcomes) = (core.clone(), client.clone(), outcomes.clone());
            tokio::spawn(async move {
                let finished = send(&core, &client, due, settings).await;
                // The recorder outlives every sender; if it is gone, the lease brings the
                // delivery back.
                let _ = outcomes.send(finished);
                drop(permit);
            });
        }
    }
}

/// Sends one delivery and says how the attempt ended.
async fn send(
    core: &Core,
    client: &HttpsClient,
    due: DueDelivery,
    settings: SenderSettings,
) -> FinishedAttempt {
    let d = &due.delivery;
    let timeout = settings.send_timeout;
    let result = match request(core, &due, settings.allow_private) {
        Ok(request) => match tokio::time::timeout(timeout, answer(client, request)).await {
            Ok(result) => result,
            Err(_) => SendResult::NoAnswer(format!("no answer within {} ms", timeout.as_millis())),
        },
        Err(why) => SendResult::NoAnswer(why),
    };
    if let SendResult::NoAnswer(why) = &result {
        tracing::debug!(delivery = %d.delivery_id, attempt = d.attempts, %why, "webhook attempt failed");
    }
    core.attempt_outcome(d, result)
}

fn request(core: &Core, due: &DueDelivery, allow_private: bool) -> Result<Request<Body>, String> {
    let d = &due.delivery;
    let url =
        url::Url::parse(&d.url).map_err(|_| "the webhook URL cannot be sent to".to_owned())?;
    if let Some(refused) = refused_literal(&url, allow_private) {
        return Err(refused.to_string());
    }
    let uri: http::Uri = d
        .url
        .parse()
        .map_err(|_| "the webhook URL cannot be sent to".to_owned())?;
    let signature = core.sign_delivery(&d.subscription_id, due.body.as_bytes(), core.now());
    let value =
        |v: &str| HeaderValue::from_str(v).map_err(|_| "a header value is not sendable".to_owned());
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("trilo-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header(SIGNATURE_HEADER, value(&signature)?)
        .header(EVENT_ID_HEADER, value(&d.event_id)?)
        .header(EVENT_NAME_HEADER, value(&d.event_name)?)
        .header(DELIVERY_ID_HEADER, value(&d.delivery_id)?)
        .header(ATTEMPT_HEADER, d.attempts)
        .body(Body::from(due.body.clone()))
        .map_err(|e| format!("the request could not be built: {e}"))
}

/// The receiver's status, after reading at most [`MAX_ANSWER_BYTES`] of its answer.
async fn answer(client: &HttpsClient, request: Request<Body>) -> SendResult {
    let response = match client.request(request).await {
        Ok(response) => response,
        Err(e) => return SendResult::NoAnswer(describe(&e)),
    };
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut read = 0;
    while read <= MAX_ANSWER_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            Some(Err(_)) | None => break,
        }
    }
    SendResult::Answered(status)
}

/// A short cause for the developer's delivery list; never the URL's query.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut text = if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text.chars().take(300).collect()
}

/// Records outcomes in batches: whatever arrived while the last batch was written.
async fn record_outcomes(core: Core, mut outcomes: mpsc::UnboundedReceiver<FinishedAttempt>) {
    let mut batch = Vec::with_capacity(MAX_FINISH_BATCH);
    while outcomes.recv_many(&mut batch, MAX_FINISH_BATCH).await > 0 {
        for _ in 0..RECORD_TRIES {
            match core.finish_attempts(&batch).await {
                Ok(()) => break,
                Err(e) => {
                    // Unrecorded outcomes are not lost deliveries: their leases end and
                    // they are sent again.
                    tracing::warn!(error = %e, outcomes = batch.len(), "could not record webhook outcomes");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        }
        batch.clear();
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
