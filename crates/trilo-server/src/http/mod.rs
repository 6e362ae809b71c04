//! The HTTP layer: thin handlers (extract → core → map), one `router()` per module,
//! merged here with the layers every response gets.

pub mod account;
pub mod acting;
pub mod api;
pub mod api_cors;
pub mod api_v1;
pub mod browser_clients;
pub mod common;
pub mod confirm;
pub mod console;
pub mod envelope;
pub mod errors;
pub mod extract;
pub mod gateway;
pub mod internal;
pub mod invitation;
pub mod login;
pub mod metrics;
pub mod oauth;
pub mod operator;
pub mod password_reset;
pub mod request_id;
pub mod revocation;
pub mod site_admin;
pub mod token;
pub mod wellknown;

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::response::Response;

use crate::state::AppState;

/// Request bodies larger than this get 413 before any handler runs (H-P2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Each request's span: method, path and request id. Never the query string (it can hold
/// codes and states) nor any header that carries credentials.
pub(crate) fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

pub fn router(state: AppState) -> Router {
    // What people change through the pages and /api/v1 is attributed to them; the token
    // endpoint, the gateway and the products' own calls are left out of it, so their hot
    // paths carry no actor slot.
    let attributed = Router::new()
        .merge(oauth::router())
        .merge(login::router())
        .merge(password_reset::router())
        .merge(invitation::router())
        .merge(console::router())
        .merge(site_admin::router())
        .merge(operator::router())
        .merge(account::router())
        .merge(api_v1::router())
        .layer(axum::middleware::from_fn(acting::attribute_to_the_caller));
    let routes = Router::new()
        .merge(attributed)
        .merge(token::router())
        .merge(revocation::router())
        .merge(api::router().layer(api_cors::ApiCorsLayer))
        .merge(wellknown::router())
        .merge(internal::router())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .fallback(errors::not_found)
        .with_state(state.clone())
        .layer(envelope::KeepRouteLayer);
    // Around the whole router rather than on each route (see `envelope`): the body limit
    // axum's extractors (forms, JSON) apply, and the envelope.
    let limited = tower::Layer::layer(&DefaultBodyLimit::max(MAX_BODY_BYTES), routes);
    let gateway = tower::Layer::layer(
        &api_cors::ApiCorsLayer,
        gateway::GatewayService(state.clone()),
    );
    let dispatch = GatewayFirst {
        gateway,
        routes: limited,
    };
    Router::new().fallback_service(envelope::Envelope::new(dispatch, state))
}

/// Hands the gateway's calls to it and everything else to the router (see
/// [`gateway::GatewayService`]).
#[derive(Clone)]
struct GatewayFirst<G, R> {
    gateway: G,
    routes: R,
}

impl<G, R> tower::Service<Request<Body>> for GatewayFirst<G, R>
where
    G: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    R: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<G::Future, R::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (a router and a handler).
        match self.gateway.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.routes.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if gateway::is_gateway_path(request.uri().path()) {
            request_id::note_route(request_id::RouteName::Fixed(gateway::ROUTE));
            futures_util::future::Either::Left(self.gateway.call(request))
        } else {
            futures_util::future::Either::Right(self.routes.call(request))
        }
    }
}
