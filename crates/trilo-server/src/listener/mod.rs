//! The accept loop (issue 16): what axum's `serve` does, plus what a public listener
//! needs against slow, idle and greedy clients. A client gets `header_read_timeout` to
//! send a request's headers, which also bounds how long a keep-alive connection may idle
//! between requests (hyper arms the timer whenever it waits for a request head); a body
//! that stalls longer than `body_read_timeout` between parts fails its request; one
//! address holds at most `max_connections_per_peer` connections, and those beyond are
//! closed as they are accepted. On shutdown the loop stops accepting and waits for the
//! connections' requests in flight to finish.
//!
//! Behind a reverse proxy every connection comes from the proxy. For a peer listed in
//! `trusted_proxies` the client is the nearest address in `X-Forwarded-For` that is not a
//! trusted proxy itself, and that is the address every handler sees (`ConnectInfo`: rate
//! limits, the gateway's `Forwarded`). Anyone else's `X-Forwarded-For` is ignored.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::connect_info::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

mod stalled_body;
use stalled_body::StallTimeout;

/// How the listener treats its clients (`[http]` in the configuration).
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections_per_peer: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<[IpAddr]>,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections_per_peer: 512,
            trusted_proxies: Arc::from(Vec::new()),
        }
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy, else the nearest
/// untrusted hop of `X-Forwarded-For` (read from the right, as each proxy appends).
pub fn client_address(
    peer: SocketAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[IpAddr],
) -> SocketAddr {
    if !trusted.contains(&peer.ip()) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .map_or(peer, |ip| SocketAddr::new(*ip, 0))
}

/// Open connections per peer address.
#[derive(Clone, Default)]
struct PeerCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One counted connection; dropping it gives the slot back.
struct PeerSlot {
    counts: PeerCounts,
    ip: IpAddr,
}

impl PeerCounts {
    fn take(&self, ip: IpAddr, max: usize) -> Option<PeerSlot> {
        let mut counts = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let open = counts.entry(ip).or_insert(0);
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(PeerSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = counts.get_mut(&self.ip) {
            *open = open.saturating_sub(1);
            if *open == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then waits (at most 30 s) for
/// the requests in flight.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    settings: ListenerSettings,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let counts = PeerCounts::default();
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = counts.take(peer.ip(), settings.max_connections_per_peer) else {
            tracing::debug!(peer = %peer.ip(), "too many connections from one address");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let trusted = Arc::clone(&settings.trusted_proxies);
        let body_timeout = settings.body_read_timeout;
        let service =
            router
                .clone()
                .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                    // The body's timeout here rather than as a router layer, which would
                    // cost a boxed clone per request.
                    let mut request = request
                        .map(|body| axum::body::Body::new(StallTimeout::new(body_timeout, body)));
                    let client = client_address(peer, request.headers(), &trusted);
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(client));
                    request
                });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(Duration::from_secs(30)) => {
            tracing::warn!("connections still open 30 s after shutdown began");
        }
    }
    Ok::<_, anyhow::Error>(()).context("serving HTTP")
}
