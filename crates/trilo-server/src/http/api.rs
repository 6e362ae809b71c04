//! The API host's own endpoints: `GET /oauth/token/accessible-resources`, `GET /me` (the
//! reference's profile, for `read:me`) and the OpenID Connect UserInfo Endpoint
//! `/userinfo` (OIDC Core §5.3, for `openid`).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use trilo_core::services::access::{DEFAULT_AVATAR_PATH, TokenContext, TokenRejection};
use trilo_protocol::oidc::OPENID;

use super::errors::{ApiError, no_store};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/token/accessible-resources",
            get(accessible_resources),
        )
        .route("/me", get(me))
        .route(DEFAULT_AVATAR_PATH, get(default_avatar))
        .route("/userinfo", get(userinfo).post(userinfo))
}

async fn accessible_resources(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = bearer_token(&headers)?;
    let json = state
        .core
        .accessible_resources_json(token)
        .await?
        .map_err(rejected)?;
    Ok(([(CONTENT_TYPE, "application/json")], json.to_string()).into_response())
}

/// The picture `/me` names for an account without one: a neutral silhouette, the same
/// for everyone (it tells nothing about the account).
async fn default_avatar() -> Response {
    const SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 48 48\" \
        width=\"48\" height=\"48\"><rect width=\"48\" height=\"48\" rx=\"24\" \
        fill=\"#dfe1e6\"/><circle cx=\"24\" cy=\"19\" r=\"8\" fill=\"#7a869a\"/>\
        <path d=\"M9 40c2-8 8-12 15-12s13 4 15 12\" fill=\"#7a869a\"/></svg>";
    (
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (axum::http::header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SVG,
    )
        .into_response()
}

async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let ctx = bearer(&state, &headers).await?;
    if !ctx.scopes.contains("read:me") {
        return Err(ApiError::insufficient_scope("read:me"));
    }
    let account = state.core.token_account(&ctx).await?.map_err(rejected)?;
    Ok(Json(state.core.profile(&account)).into_response())
}

/// OIDC Core §5.3: GET and POST alike, the access token in the `Authorization` header
/// (RFC 6750 §2.1); 401 `invalid_token` for a bad token, 403 `insufficient_scope` without
/// `openid` (§5.3.3).
async fn userinfo(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let ctx = bearer(&state, &headers).await?;
    if !ctx.scopes.contains(OPENID) {
        return Err(ApiError::insufficient_scope(OPENID));
    }
    let account = state.core.token_account(&ctx).await?.map_err(rejected)?;
    let mut res = Json(state.core.userinfo(&ctx, &account)).into_response();
    no_store(&mut res);
    Ok(res)
}

/// The bearer token from the one `Authorization` header (scheme case-insensitive, RFC
/// 6750 §2.1; never from the query, security checklist J6), checked and live.
pub async fn bearer(state: &AppState, headers: &HeaderMap) -> Result<TokenContext, ApiError> {
    let token = bearer_token(headers)?;
    state
        .core
        .check_access_token(token)
        .await?
        .map_err(rejected)
}

/// The token of the one `Authorization: Bearer` header (scheme case-insensitive, RFC 6750
/// §2.1; never from the query, security checklist J6).
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "An access token is required: send Authorization: Bearer <token>.",
            None,
        )
    };
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(missing());
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(missing)
}

/// A refused token's answer: 401 `invalid_token`.
fn rejected(rejection: TokenRejection) -> ApiError {
    match rejection {
        TokenRejection::Invalid(_) => ApiError::unauthorized(
            "The access token is invalid or expired.",
            Some("invalid_token"),
        ),
        TokenRejection::Revoked => {
            ApiError::unauthorized("The access token has been revoked.", Some("invalid_token"))
        }
    }
}
