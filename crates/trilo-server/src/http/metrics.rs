//! `GET /metrics` in the Prometheus text format (issue 16): requests by route template,
//! method and status with a latency histogram, the services' counters
//! (`trilo_core::metrics`), and the webhook outbox's depth read at scrape time. Routes are
//! templates (`/ex/{*rest}`), never concrete paths, so no label names a token, account,
//! app or site. Served only to the addresses in `[http] metrics_allow` (loopback by
//! default); anyone else gets 404.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
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

/// Per route, then per (method, status): a request looks its route up by `&str`, so only
/// a route's first answer allocates.
#[derive(Default)]
pub struct HttpMetrics(Mutex<BTreeMap<String, ByAnswer>>);

/// One route's series by (method, status).
type ByAnswer = BTreeMap<(&'static str, u16), Series>;

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpMetrics")
    }
}

impl HttpMetrics {
    /// Counts one answer (the envelope calls this for every request).
    pub fn observe(&self, route: &str, method: &'static str, status: u16, secs: f64) {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_answer = match all.get_mut(route) {
            Some(by_answer) => by_answer,
            None => all.entry(route.to_owned()).or_default(),
        };
        let series = by_answer.entry((method, status)).or_default();
        series.count += 1;
        series.sum_secs += secs;
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            series.buckets[i] += 1;
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        let all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(
            out,
            "# HELP trilo_http_requests_total HTTP requests answered."
        );
        let _ = writeln!(out, "# TYPE trilo_http_requests_total counter");
        let answers = all.iter().flat_map(|(route, by_answer)| {
            by_answer
                .iter()
                .map(move |((method, status), s)| (route, method, status, s))
        });
        for (route, method, status, s) in answers {
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
        for (route, by_answer) in all.iter() {
            let mut s = Series::default();
            for each in by_answer.values() {
                s.count += each.count;
                s.sum_secs += each.sum_secs;
                for (t, b) in s.buckets.iter_mut().zip(each.buckets) {
                    *t += b;
                }
            }
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
