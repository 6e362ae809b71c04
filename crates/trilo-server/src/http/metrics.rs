//! `GET /metrics` in the Prometheus text format (issue 16): requests by route template,
//! method and status with a latency histogram, the services' counters
//! (`trilo_core::metrics`), and the webhook outbox's depth read at scrape time. Routes are
//! templates (`/ex/{*rest}`), never concrete paths, so no label names a token, account,
//! app or site. Served only to the addresses in `[http] metrics_allow` (loopback by
//! default); anyone else gets 404.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::{AppState, PeerAddr};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum_secs: f64,
    /// Non-cumulative: observations at most `BUCKETS[i]` and above the one before.
    buckets: [u64; BUCKETS.len()],
}

/// Per (route, method, status).
#[derive(Default)]
pub struct HttpMetrics(Mutex<BTreeMap<(String, &'static str, u16), Series>>);

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpMetrics")
    }
}

impl HttpMetrics {
    fn observe(&self, route: String, method: &'static str, status: u16, secs: f64) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let series = all.entry((route, method, status)).or_default();
        series.count += 1;
        series.sum_secs += secs;
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            series.buckets[i] += 1;
        }
    }

    fn render(&self, out: &mut String) {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP trilo_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE trilo_http_requests_total counter");
        for ((route, method, status), s) in all.iter() {
            let _ = writeln!(
                out,
                "trilo_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP trilo_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE trilo_http_request_duration_seconds histogram");
        let mut by_route: BTreeMap<&str, Series> = BTreeMap::new();
        for ((route, _, _), s) in all.iter() {
            let total = by_route.entry(route.as_str()).or_default();
            total.count += s.count;
            total.sum_secs += s.sum_secs;
            for (t, b) in total.buckets.iter_mut().zip(s.buckets) {
                *t += b;
            }
        }
        for (route, s) in by_route {
            let mut cumulative = 0;
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "trilo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "trilo_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "trilo_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                s.sum_secs
            );
            let _ = writeln!(
                out,
                "trilo_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                s.count
            );
        }
    }
}

/// The middleware that counts every answer.
pub async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    state.http_metrics.observe(
        route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>, peer: PeerAddr) -> Response {
    let allowed = peer.0.is_some_and(|ip| state.metrics_allow.contains(&ip));
    if !allowed {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut out = String::new();
    state.http_metrics.render(&mut out);
    state.core.render_metrics(&mut out);
    if let Ok(counts) = state.core.delivery_counts().await {
        trilo_core::metrics::counter(
            &mut out,
            "trilo_webhook_deliveries",
            "Webhook deliveries in the outbox by status (pending is the depth).",
            &[
                (
                    "status=\"pending\"",
                    u64::try_from(counts.pending).unwrap_or(0),
                ),
                (
                    "status=\"delivered\"",
                    u64::try_from(counts.delivered).unwrap_or(0),
                ),
                ("status=\"dead\"", u64::try_from(counts.dead).unwrap_or(0)),
            ],
        );
        out = out.replace(
            "# TYPE trilo_webhook_deliveries counter",
            "# TYPE trilo_webhook_deliveries gauge",
        );
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}
