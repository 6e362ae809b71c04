//! What a request carries while it runs, where code can read it without taking the
//! request: its id (`X-Request-Id`, made up by the envelope when the client sent none),
//! which error pages show so that what a user quotes finds the request's log lines, and
//! the route template it matched, which the envelope counts it under (`/metrics`).

use std::cell::OnceCell;
use std::future::Future;

use axum::extract::MatchedPath;
use axum::http::HeaderValue;
use tokio::task::futures::TaskLocalFuture;

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// One request's context (see the module's comment).
#[derive(Debug)]
pub struct RequestContext {
    id: String,
    route: OnceCell<RouteName>,
}

/// The route a request matched, as `/metrics` names it: a template, never a concrete path.
#[derive(Clone, Debug)]
pub enum RouteName {
    /// Matched by the router.
    Matched(MatchedPath),
    /// Dispatched before the router (the gateway).
    Fixed(&'static str),
}

impl RouteName {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Fixed(name) => name,
        }
    }
}

impl RequestContext {
    /// The context of a request with this `X-Request-Id`: handlers see the id as sent when
    /// it is plain, else an empty one.
    pub fn new(id: &HeaderValue) -> Self {
        let id = id
            .to_str()
            .ok()
            .filter(|id| is_plain(id))
            .unwrap_or_default();
        Self {
            id: id.to_owned(),
            route: OnceCell::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The route template the request matched, if routing got that far.
    pub fn into_route(self) -> Option<RouteName> {
        self.route.into_inner()
    }
}

/// Runs `answer` with `context` as the current request's; `take_value` on the returned
/// future gives the context back, also after a panic.
pub fn scope<F: Future>(context: RequestContext, answer: F) -> TaskLocalFuture<RequestContext, F> {
    CURRENT.scope(context, answer)
}

/// Notes the route the current request matched (once per request, where it is dispatched).
pub fn note_route(route: RouteName) {
    let _ = CURRENT.try_with(|context| context.route.set(route));
}

/// The current request's id; empty outside a request or when the client sent an odd one.
pub fn current() -> String {
    CURRENT
        .try_with(|context| context.id.clone())
        .unwrap_or_default()
}

/// Only ids a user can read out and copy (a client may send any header).
fn is_plain(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
