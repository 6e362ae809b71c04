//! CORS on the API host (the reference supports it there): browser apps call with a bearer
//! token from any origin, with any method and the request headers they ask for; the answer
//! exposes `X-Request-Id`; a preflight is kept 10 minutes. No cookies are involved, so
//! never credentials mode (security checklist §4.6).
//!
//! These are the answers tower-http's `CorsLayer` gave with `allow_origin(Any)`,
//! `allow_methods(Any)`, `allow_headers(mirror_request())`, `expose_headers([x-request-id])`
//! and `max_age(600 s)`. It is written out here because that layer built its headers anew
//! for every request (a header map, a joined `Vary`, a clone of its settings) on the
//! gateway's hot path, where these are constants.

use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, Request, Response};
use futures_util::FutureExt;
use futures_util::future::{Either, Map, Ready, ready};
use tower::{Layer, Service};

const ANY: HeaderValue = HeaderValue::from_static("*");
/// Answers differ by these request headers, so caches must key on them.
const VARY: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);
const EXPOSED: HeaderValue = HeaderValue::from_static("x-request-id");
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("600");

/// CORS for the routes it wraps (see the module's comment).
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiCorsLayer;

impl<S> Layer<S> for ApiCorsLayer {
    type Service = ApiCors<S>;

    fn layer(&self, inner: S) -> ApiCors<S> {
        ApiCors(inner)
    }
}

#[derive(Clone, Debug)]
pub struct ApiCors<S>(S);

type Answer<E> = Result<Response<Body>, E>;

impl<S> Service<Request<Body>> for ApiCors<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future =
        Either<Ready<Answer<S::Error>>, Map<S::Future, fn(Answer<S::Error>) -> Answer<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // Every OPTIONS is taken for a preflight and answered here, as before.
        if request.method() == Method::OPTIONS {
            return Either::Left(ready(Ok(preflight(request.headers()))));
        }
        let add: fn(Answer<S::Error>) -> Answer<S::Error> = |answer| {
            answer.map(|mut response| {
                add_cors_headers(response.headers_mut());
                response
            })
        };
        Either::Right(self.0.call(request).map(add))
    }
}

/// The headers every answer to a call carries (the handler's own `Vary` values are kept).
fn add_cors_headers(headers: &mut HeaderMap) {
    headers.append(header::VARY, VARY);
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
}

/// The answer to a preflight: whatever was asked is allowed, without credentials.
fn preflight(asked: &HeaderMap) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    let headers = response.headers_mut();
    headers.insert(header::VARY, VARY);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, ANY);
    if let Some(wanted) = asked.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, wanted.clone());
    }
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY);
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app() -> Router {
        Router::new()
            .route(
                "/me",
                get(|| async { ([(header::VARY, "accept-language")], "me") }),
            )
            .layer(ApiCorsLayer)
    }

    /// The headers of the app's 200 answer to `request`.
    async fn answered(request: Request<Body>) -> HeaderMap {
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.headers().clone()
    }

    #[tokio::test]
    async fn a_preflight_allows_what_was_asked_from_any_origin_without_credentials() {
        let request = Request::options("/me")
            .header(header::ORIGIN, "https://app.example.test")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "DELETE")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, x-custom",
            )
            .body(Body::empty())
            .unwrap();
        let h = answered(request).await;
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_METHODS], "*");
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, x-custom"
        );
        assert_eq!(h[header::ACCESS_CONTROL_MAX_AGE], "600");
        assert_eq!(h[header::VARY], VARY);
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }

    #[tokio::test]
    async fn an_answer_is_open_to_any_origin_exposes_the_request_id_and_keeps_its_vary() {
        let request = Request::get("/me")
            .header(header::ORIGIN, "https://app.example.test")
            .body(Body::empty())
            .unwrap();
        let h = answered(request).await;
        assert_eq!(h[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], "x-request-id");
        let vary: Vec<_> = h.get_all(header::VARY).iter().collect();
        assert_eq!(vary, [HeaderValue::from_static("accept-language"), VARY]);
        assert!(h.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
    }
}
