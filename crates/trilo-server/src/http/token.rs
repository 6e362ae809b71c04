//! `POST /oauth/token` (RFC 6749 §3.2): JSON or form bodies, client authentication by
//! HTTP Basic or in the body, RFC 6749 §5.2 errors, `Cache-Control: no-store` always.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use trilo_core::{CoreError, CoreResult};
use trilo_protocol::token_request::{ClientCredentials, client_credentials, parse_grant};
use trilo_protocol::{ErrorCode, OAuthError, Params};

use super::browser_clients::{self, ClientRequest};
use super::common::{charset_is_utf8, content_type};
use super::errors::{TokenEndpointError, no_store};
use crate::state::{AppState, PeerAddr};

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/oauth/token",
        post(token).options(browser_clients::preflight),
    )
}

async fn token(State(state): State<AppState>, peer: PeerAddr, request: ClientRequest) -> Response {
    let creds = &request.creds;
    let answer = async {
        let grant = parse_grant(&request.params)?;
        let response =
            limit_client_auth(&state, &peer, creds, state.core.token(creds, grant)).await?;
        Ok(no_store_json(&response))
    }
    .await;
    request.respond(answer)
}

/// The body's parameters and the client's credentials (HTTP Basic or in the body), as the
/// token, revocation and introspection endpoints all read them.
pub fn client_request(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, ClientCredentials), OAuthError> {
    let params = body_params(headers, body)?;
    let creds = client_credentials(authorization_header(headers)?, &params)?;
    Ok((params, creds))
}

/// Runs `op`, which authenticates `creds` first, unless this client and peer have failed
/// authentication too often lately; a failed authentication counts toward the limit.
pub async fn limit_client_auth<T>(
    state: &AppState,
    peer: &PeerAddr,
    creds: &ClientCredentials,
    op: impl Future<Output = CoreResult<T>>,
) -> Result<T, TokenEndpointError> {
    let now = state.core.now();
    let limit_key = format!("{}|{}", creds.client_id, peer.key());
    if let Err(retry_after) = state.limits.client_auth.check(&limit_key, now) {
        return Err(TokenEndpointError::TooManyAttempts(
            retry_after.whole_seconds().max(1),
        ));
    }
    match op.await {
        Err(CoreError::OAuth(e)) if e.code == ErrorCode::InvalidClient => {
            state.limits.client_auth.record_failure(&limit_key, now);
            Err(CoreError::OAuth(e).into())
        }
        other => Ok(other?),
    }
}

/// A JSON answer that no cache may keep (RFC 6749 §5.1).
pub fn no_store_json(value: &impl serde::Serialize) -> Response {
    let mut res = Json(value).into_response();
    no_store(&mut res);
    res
}

/// The body as parameters: `application/json` (the reference's examples) or
/// `application/x-www-form-urlencoded` (RFC 6749). Anything else is refused.
pub fn body_params(headers: &HeaderMap, body: &Bytes) -> Result<Params, OAuthError> {
    if !charset_is_utf8(headers) {
        return Err(OAuthError::invalid_request(
            "The request body must be encoded as UTF-8.",
        ));
    }
    match content_type(headers).as_deref() {
        Some("application/x-www-form-urlencoded") => Params::parse(body)
            .map_err(|e| OAuthError::invalid_request(format!("The form body is malformed: {e}."))),
        Some("application/json") => Params::from_json(body)
            .map_err(|_| OAuthError::invalid_request("The JSON body must be one object.")),
        _ => Err(OAuthError::invalid_request(
            "Send the request as application/x-www-form-urlencoded or application/json.",
        )),
    }
}

/// The one `Authorization` header, if any; two are refused (H-T5).
pub fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "Send one Authorization header.",
        ));
    }
    match first {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| OAuthError::invalid_client()),
    }
}
