//! Who a request to the pages or `/api/v1` acts for, for the audit log (see
//! `Core::acting_for_the_caller`). Requests that may change something (not GET or HEAD)
//! run with an empty actor, which the first step that authenticates the caller fills in:
//! the session lookup of the pages (`common::current_user`) or the API token check of
//! `/api/v1`. Nothing is looked up here, so a request costs no extra read to be attributed.

use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use trilo_core::Core;

pub async fn attribute_to_the_caller(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    Core::acting_for_the_caller(next.run(request)).await
}
