//! Discovery documents (RFC 8414, OpenID Connect Discovery) and the JWK Set, plus the
//! stylesheet and the operational probes.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use trilo_protocol::metadata::server_metadata;
use trilo_protocol::scope::IDENTITY_SCOPES;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/assets/trilo.css", get(stylesheet))
        .route("/assets/site-avatar.svg", get(site_avatar))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn metadata(State(state): State<AppState>) -> Response {
    let s = &state.core.settings;
    let scopes = IDENTITY_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    Json(server_metadata(&s.auth_url, &s.api_url, scopes)).into_response()
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = Json(state.core.keys.jwks()).into_response();
    res.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

async fn stylesheet() -> Response {
    asset(
        include_str!("../../assets/trilo.css"),
        "text/css; charset=utf-8",
    )
}

/// The avatar of sites that have none of their own (the demo's).
async fn site_avatar() -> Response {
    asset(
        include_str!("../../assets/site-avatar.svg"),
        "image/svg+xml",
    )
}

/// The tab icon (browsers also ask for `/favicon.ico` on their own: the SVG serves both).
async fn favicon() -> Response {
    asset(include_str!("../../assets/favicon.svg"), "image/svg+xml")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    res.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.core.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}
