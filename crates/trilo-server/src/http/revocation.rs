//! `POST /oauth/revoke` (RFC 7009) and `POST /oauth/introspect` (RFC 7662): client
//! authentication and bodies as at the token endpoint, RFC 6749 §5.2 errors.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use trilo_protocol::token_request::token_parameter;

use super::browser_clients::{self, ClientRequest};
use super::errors::TokenEndpointError;
use super::token::{client_request, limit_client_auth, no_store_json};
use crate::state::{AppState, PeerAddr};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/revoke",
            post(revoke).options(browser_clients::preflight),
        )
        .route("/oauth/introspect", post(introspect))
}

/// 200 with `{}` whether or not there was anything to revoke (RFC 7009 §2.2).
async fn revoke(State(state): State<AppState>, peer: PeerAddr, request: ClientRequest) -> Response {
    let creds = &request.creds;
    let answer = async {
        let token = token_parameter(&request.params)?;
        limit_client_auth(&state, &peer, creds, state.core.revoke(creds, &token)).await?;
        // RFC 7009 §2.2 leaves the body to the server; an empty JSON object suits clients
        // that parse every answer of the auth host as JSON.
        Ok(no_store_json(&serde_json::json!({})))
    }
    .await;
    request.respond(answer)
}

async fn introspect(
    State(state): State<AppState>,
    peer: PeerAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenEndpointError> {
    let (params, creds) = client_request(&headers, &body)?;
    let token = token_parameter(&params)?;
    let answer =
        limit_client_auth(&state, &peer, &creds, state.core.introspect(&creds, &token)).await?;
    Ok(no_store_json(&answer))
}
