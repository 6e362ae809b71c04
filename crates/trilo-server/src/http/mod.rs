//! The HTTP layer: thin handlers (extract → core → map), one `router()` per module,
//! merged here with the layers every response gets.

pub mod account;
pub mod acting;
pub mod api;
pub mod api_v1;
pub mod browser_clients;
pub mod common;
pub mod confirm;
pub mod console;
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

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::header::{self, HeaderName, HeaderValue};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowHeaders, Any, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::AppState;

/// Request bodies larger than this get 413 before any handler runs (H-P2).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// CORS for browser apps on the API host (the reference supports it for its API host):
/// any origin may call with a bearer token; no cookies are involved, so no credentials
/// mode (security checklist §4.6).
fn api_host_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        // Mirrored, not `*`: a wildcard does not cover Authorization (Fetch standard).
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static("x-request-id")])
        .max_age(std::time::Duration::from_secs(600))
}

/// Each request's span: method, path and request id. Never the query string (it can hold
/// codes and states) nor any header that carries credentials.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
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
    let request_id = HeaderName::from_static("x-request-id");
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
    Router::new()
        .merge(attributed)
        .merge(token::router())
        .merge(revocation::router())
        .merge(
            api::router()
                .merge(gateway::router())
                .layer(api_host_cors()),
        )
        .merge(wellknown::router())
        .merge(internal::router())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .fallback(errors::not_found)
        .with_state(state.clone())
        // The layers every response passes, outermost first, as one stack: `Router::layer`
        // wraps every route in a box per call and clones each box per request, so one call
        // with the whole stack costs one clone per request where a call per layer cost a
        // dozen.
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([
                    header::AUTHORIZATION,
                    header::COOKIE,
                ]))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::new())
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                // Inside `SetRequestIdLayer`: the id is on the request by then.
                .layer(axum::middleware::from_fn(request_id::remember))
                .layer(axum::middleware::from_fn_with_state(state, metrics::record)),
        )
}
