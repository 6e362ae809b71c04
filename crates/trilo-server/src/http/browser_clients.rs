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

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use trilo_protocol::token_request::ClientCredentials;
use trilo_protocol::{OAuthError, Params};

use super::errors::TokenEndpointError;
use super::token::client_request;
use crate::state::AppState;

/// The `Origin` a browser sent, if any.
fn origin(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::ORIGIN)?.to_str().ok()
}

/// A request to the token or revocation endpoint, which a browser app may send: its
/// parameters and client credentials, read only once the page's origin passed the
/// client's check. Both endpoints answer through [`ClientRequest::respond`], so the answer
/// (errors included) is readable by exactly that origin.
pub struct ClientRequest {
    pub params: Params,
    pub creds: ClientCredentials,
    /// The origin that may read the answer (`None` without `Origin`).
    readable_by: Option<String>,
}

impl ClientRequest {
    /// The answer, readable by the page whose origin passed the check (errors included,
    /// so the page can show them).
    pub fn respond(&self, answer: Result<Response, TokenEndpointError>) -> Response {
        let mut response = answer.unwrap_or_else(IntoResponse::into_response);
        allow(&mut response, self.readable_by.as_deref());
        response
    }
}

impl FromRequest<AppState> for ClientRequest {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let checked = async {
            let (params, creds) = client_request(&headers, &body)?;
            let readable_by = check(state, origin(&headers), &creds.client_id).await?;
            Ok::<_, TokenEndpointError>(ClientRequest {
                params,
                creds,
                readable_by: readable_by.map(str::to_owned),
            })
        };
        checked.await.map_err(IntoResponse::into_response)
    }
}

/// Refuses a browser request from an origin its app has not registered; otherwise the
/// origin that may read the answer (`None` without `Origin`).
async fn check<'o>(
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
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
        // The form or JSON body, and HTTP Basic for confidential clients.
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, authorization",
        ),
        (header::ACCESS_CONTROL_MAX_AGE, "600"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}
