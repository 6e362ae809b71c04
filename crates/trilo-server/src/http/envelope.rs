//! The envelope: what every request and every answer of the router passes through, done by
//! one service around the whole router instead of a stack of layers on each route.
//!
//! On the way in: `Authorization` and `Cookie` are marked sensitive (never printed by a
//! `Debug` of the headers), the request gets an `X-Request-Id` when it came without one,
//! and the rest runs inside the request's span with its id at hand
//! (`request_id::current`). On the way out: a panic becomes a 500, the answer carries the
//! request id, `Referrer-Policy: no-referrer` and `X-Content-Type-Options: nosniff` unless
//! the handler set its own, it is counted by route, method and status (`/metrics`), and a
//! 5xx is logged.
//!
//! Why one service: `Router::layer` wraps every route in a box and clones that box for
//! every request, and each `from_fn` middleware boxes the rest of the stack again. The ten
//! layers this replaces cost a warm gateway call about a sixth of its CPU (README,
//! "One envelope instead of ten layers"). The only part left on each route is
//! [`KeepRoute`], because the route's template is known only after routing.

use std::any::Any;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Request, Response, StatusCode};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument;

use super::metrics::HttpMetrics;
use super::request_id::{self, RequestContext, RouteName};

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The target of the per-request log lines: `TRILO_LOG=info,trilo::request=debug` logs a
/// line as each request starts and ends; a 5xx is logged at `error` whatever the filter.
const LOG_TARGET: &str = "trilo::request";

/// Marks the request's credentials sensitive before anything can log them.
const SENSITIVE: [HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

/// The envelope around `inner` (the router), counting into `metrics`.
#[derive(Clone)]
pub struct Envelope<S, M> {
    inner: S,
    metrics: M,
}

impl<S, M> Envelope<S, M> {
    /// `metrics` is anything that reaches the counters (the app state, an `Arc`).
    pub fn new(inner: S, metrics: M) -> Self {
        Self { inner, metrics }
    }
}

impl<S, M> Service<Request<Body>> for Envelope<S, M>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    M: AsRef<HttpMetrics> + Clone + Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let started = Instant::now();
        mark_sensitive(request.headers_mut());
        let id = ensure_request_id(request.headers_mut());
        let span = request_span(&request, &id);
        let method = method_label(request.method());
        tracing::debug!(target: LOG_TARGET, parent: &span, "started processing request");
        // The service that was made ready answers; a clone waits for the next request.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let metrics = self.metrics.clone();
        let context = RequestContext::new(&id);
        Box::pin(
            async move {
                // The router is called inside the context, so a route can note itself, and
                // inside `catch_unwind`, so a panic while it builds the answer is caught too.
                let mut scoped = std::pin::pin!(request_id::scope(context, async move {
                    inner.call(request).await
                }));
                let outcome = AssertUnwindSafe(scoped.as_mut()).catch_unwind().await;
                let context = scoped.as_mut().take_value();
                let mut response = match outcome {
                    Ok(Ok(response)) => response,
                    Ok(Err(never)) => match never {},
                    Err(panic) => panicked(
                        panic.as_ref(),
                        context.as_ref().map_or("", RequestContext::id),
                    ),
                };
                finish(&mut response, id);
                let route = context.and_then(RequestContext::into_route);
                let status = response.status();
                let latency = started.elapsed();
                metrics.as_ref().observe(
                    route.as_ref().map_or("unmatched", RouteName::as_str),
                    method,
                    status.as_u16(),
                    latency.as_secs_f64(),
                );
                let latency_ms = latency.as_secs_f64() * 1000.0;
                tracing::debug!(
                    target: LOG_TARGET,
                    latency_ms,
                    status = status.as_u16(),
                    "finished processing request"
                );
                if status.is_server_error() {
                    tracing::error!(
                        target: LOG_TARGET,
                        latency_ms,
                        status = status.as_u16(),
                        "response failed"
                    );
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// Each request's span: method, path and request id. Never the query string (it can hold
/// codes and states) nor any header that carries credentials.
fn request_span(request: &Request<Body>, id: &HeaderValue) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = id.to_str().unwrap_or_default(),
    )
}

fn mark_sensitive(headers: &mut HeaderMap) {
    for name in SENSITIVE {
        if let header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

/// The request's `X-Request-Id`, made up (a random UUID) when the client sent none; a
/// client's own id is kept as sent, so its logs and ours name the call alike.
fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(&X_REQUEST_ID) {
        return id.clone();
    }
    let made = uuid::Uuid::new_v4();
    let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = HeaderValue::from_bytes(made.hyphenated().encode_lower(&mut text).as_bytes())
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    headers.insert(X_REQUEST_ID, id.clone());
    id
}

fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// What every answer carries unless its handler said otherwise.
fn finish(response: &mut Response<Body>, id: HeaderValue) {
    let headers = response.headers_mut();
    headers.entry(X_REQUEST_ID).or_insert(id);
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("no-referrer"));
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
}

/// A handler panicked: the client gets a plain 500 naming the request id, the log gets the
/// panic's message.
fn panicked(panic: &(dyn Any + Send), request_id: &str) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a handler panicked");
    let mut response = Response::new(Body::from(format!(
        "Internal error. If it persists, quote request id {request_id}.\n"
    )));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The one per-route part: notes the matched route's template in the request's context,
/// where the envelope (outside the router, so before any route matched) reads it for
/// `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeepRouteLayer;

impl<S> Layer<S> for KeepRouteLayer {
    type Service = KeepRoute<S>;

    fn layer(&self, inner: S) -> KeepRoute<S> {
        KeepRoute(inner)
    }
}

#[derive(Clone, Debug)]
pub struct KeepRoute<S>(S);

impl<S, B> Service<Request<B>> for KeepRoute<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        if let Some(route) = request.extensions().get::<MatchedPath>() {
            request_id::note_route(RouteName::Matched(route.clone()));
        }
        self.0.call(request)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::Arc;

    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    fn app(metrics: &Arc<HttpMetrics>) -> Envelope<Router, Arc<HttpMetrics>> {
        async fn boom() -> &'static str {
            panic!("a bug")
        }
        let routes = Router::new()
            .route("/hello/{name}", get(|| async { request_id::current() }))
            .route(
                "/credentials",
                get(|headers: HeaderMap| async move {
                    let sensitive = headers[header::AUTHORIZATION].is_sensitive();
                    format!("sensitive={sensitive}")
                }),
            )
            .route("/boom", get(boom))
            .route(
                "/own-policy",
                get(|| async { ([(header::REFERRER_POLICY, "origin")], "x") }),
            )
            .layer(KeepRouteLayer);
        Envelope::new(routes, Arc::clone(metrics))
    }

    async fn send(metrics: &Arc<HttpMetrics>, request: Request<Body>) -> (Response<Body>, String) {
        let response = app(metrics).oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            Response::from_parts(parts, Body::empty()),
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    fn get_request(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    fn get_with_id(path: &str, id: &'static str) -> Request<Body> {
        let mut request = get_request(path);
        request
            .headers_mut()
            .insert("x-request-id", HeaderValue::from_static(id));
        request
    }

    fn rendered(metrics: &HttpMetrics) -> String {
        let mut out = String::new();
        metrics.render(&mut out);
        out
    }

    #[tokio::test]
    async fn every_answer_gets_an_id_the_handler_sees_and_the_default_headers() {
        let metrics = Arc::new(HttpMetrics::default());
        let (response, body) = send(&metrics, get_request("/hello/ada")).await;
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert_eq!(id.len(), 36, "a made-up id is a UUID: {id}");
        assert_eq!(body, id, "the handler sees the id the answer carries");
        assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );

        let (response, body) = send(&metrics, get_with_id("/hello/ada", "client-7")).await;
        assert_eq!(response.headers()["x-request-id"], "client-7");
        assert_eq!(body, "client-7");

        // An odd id is answered as sent but never shown on a page.
        let (response, body) = send(&metrics, get_with_id("/hello/ada", "<b>x</b>")).await;
        assert_eq!(response.headers()["x-request-id"], "<b>x</b>");
        assert_eq!(body, "");

        let (response, _) = send(&metrics, get_request("/own-policy")).await;
        assert_eq!(response.headers()[header::REFERRER_POLICY], "origin");

        let mut with_credentials = get_request("/credentials");
        with_credentials.headers_mut().insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        let (_, body) = send(&metrics, with_credentials).await;
        assert_eq!(body, "sensitive=true");

        let counted = rendered(&metrics);
        assert!(
            counted.contains(
                "trilo_http_requests_total{route=\"/hello/{name}\",method=\"GET\",status=\"200\"} 3"
            ),
            "{counted}"
        );
    }

    #[tokio::test]
    async fn a_panic_is_a_500_naming_the_request_and_counted_under_its_route() {
        let metrics = Arc::new(HttpMetrics::default());
        let request = get_with_id("/boom", "req-boom");
        let (response, body) = send(&metrics, request).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["x-request-id"], "req-boom");
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff"
        );
        assert!(body.contains("req-boom"), "{body}");
        assert!(
            !body.contains("a bug"),
            "the panic's message stays in the log"
        );

        let (response, _) = send(&metrics, get_request("/nowhere")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);

        let counted = rendered(&metrics);
        for line in [
            "trilo_http_requests_total{route=\"/boom\",method=\"GET\",status=\"500\"} 1",
            "trilo_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        ] {
            assert!(counted.contains(line), "{line} in {counted}");
        }
    }
}
