//! CORS on the auth host's token and revocation endpoints for browser apps (issue 15; the
//! reference's known issue "no SPA/mobile"): a public client's page exchanges its code and
//! refreshes from its own origin, which the app registers in the developer console.
//!
//! A preflight names no client, so it is answered for any origin some app registered; the
//! request itself is then answered with `Access-Control-Allow-Origin` only when its own
//! app lists the origin. A request from any other origin is refused before anything is
//! done (a code would otherwise be spent on an answer the page may not read). Requests
//! without `Origin` (servers, CLIs) are not affected. No credentials mode: no cookie is
//! involved (security checklist §4.6).

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use trilo_protocol::OAuthError;

use super::errors::TokenEndpointError;
use crate::state::AppState;

/// The `Origin` a browser sent, if any.
pub fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN)?.to_str().ok()
}

/// Refuses a browser request from an origin its app has not registered; otherwise the
/// origin that may read the answer (`None` without `Origin`), for [`respond`].
pub async fn check<'o>(
    state: &AppState,
    origin: Option<&'o str>,
    client_id: &str,
) -> Result<Option<&'o str>, TokenEndpointError> {
    let Some(origin) = origin else {
        return Ok(None);
    };
    if state.core.web_origin_allowed(client_id, origin).await? {
        return Ok(Some(origin));
    }
    Err(OAuthError::new(
        trilo_protocol::ErrorCode::UnauthorizedClient,
        "Requests from this web origin are not allowed for this app: add the origin to the \
         app's web origins in the developer console.",
    )
    .into())
}

/// The answer, readable by the page whose origin passed [`check`] (errors included, so
/// the page can show them).
pub fn respond(
    answer: Result<Response, TokenEndpointError>,
    readable_by: Option<&str>,
) -> Response {
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    allow(&mut response, readable_by);
    response
}

/// Lets the page at `origin` read `response` (the check passed for it).
pub fn allow(response: &mut Response, origin: Option<&str>) {
    let Some(value) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

/// `OPTIONS /oauth/token` and `/oauth/revoke`: the CORS preflight.
pub async fn preflight(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("origin"));
    let Some(origin) = origin(&headers) else {
        return response;
    };
    match state.core.web_origin_registered(origin).await {
        Ok(true) => {}
        Ok(false) => return response,
        Err(e) => return super::errors::ApiError::from(e).into_response(),
    }
    allow(&mut response, Some(origin));
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST"),
    );
    // The form or JSON body, and HTTP Basic for confidential clients.
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, authorization"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    response
}
