//! The request's id (`X-Request-Id`, made up by `SetRequestIdLayer` when the client sent
//! none) where a handler can read it without taking the request: error pages show it, so
//! what a user quotes finds the request's log lines.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The middleware: runs the rest of the request with its id at hand.
pub async fn remember(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_plain(id))
        .unwrap_or_default()
        .to_owned();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// The current request's id; empty outside a request or when the client sent an odd one.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Only ids a user can read out and copy (a client may send any header).
fn is_plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
