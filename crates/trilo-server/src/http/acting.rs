//! Who a page request acts for: the signed-in user, for the audit log (see
//! `Core::acting_as`). Only requests that may change something are looked at (not GET or
//! HEAD: page views and assets cost no extra read); requests without a session cookie
//! (the API host, the token endpoint, programs) pass through untouched.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use trilo_core::Core;

use super::common::{SESSION_COOKIE, cookie, current_user};
use crate::state::AppState;

pub async fn signed_in_user(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let reads_only = matches!(*request.method(), Method::GET | Method::HEAD);
    if reads_only || cookie(request.headers(), SESSION_COOKIE).is_none() {
        return next.run(request).await;
    }
    match current_user(&state, request.headers()).await {
        Ok(Some((_, account, _))) => Core::acting_as(account.account_id, next.run(request)).await,
        // No live session, or the store is down: the handler finds out for itself.
        _ => next.run(request).await,
    }
}
