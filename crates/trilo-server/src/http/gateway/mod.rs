//! `ANY /ex/{product}/{cloudid}/{api}`: the API gateway (DESIGN §3 "Gateway"). The service
//! reads the credentials and the raw path, asks core whether the call is admitted, and
//! forwards it (see `forward`).

mod exchange;
pub mod forward;

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::header::{ALLOW, AUTHORIZATION, HeaderValue};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::future::BoxFuture;
use trilo_core::services::gateway::{Caller, Challenge, GatewayCall, Refusal};

use super::errors::ApiError;
use crate::state::AppState;

/// What `/metrics` calls the gateway's route.
pub const ROUTE: &str = "/ex/{*rest}";

/// Whether `path` is the gateway's: `/ex/` and anything after it.
pub fn is_gateway_path(path: &str) -> bool {
    path.starts_with("/ex/")
}

/// The gateway as a service of its own, for every method: `http::router` hands it the
/// requests whose path [`is_gateway_path`] before the router would match them (the
/// router's matching, path parameters and per-route boxes were a tenth of a warm call's
/// allocations, and the gateway reads the raw path itself).
#[derive(Clone, Debug)]
pub struct GatewayService(pub AppState);

impl tower::Service<Request<Body>> for GatewayService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let state = self.0.clone();
        Box::pin(async move {
            Ok(match handle(&state, request).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            })
        })
    }
}

/// Hands the gateway's calls to [`GatewayService`] and everything else to the router.
#[derive(Clone)]
pub struct GatewayFirst<G, R> {
    pub gateway: G,
    pub routes: R,
}

impl<G, R> tower::Service<Request<Body>> for GatewayFirst<G, R>
where
    G: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
    R: tower::Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures_util::future::Either<G::Future, R::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Both are always ready (a router and a handler).
        match self.gateway.poll_ready(cx) {
            Poll::Ready(Ok(())) => self.routes.poll_ready(cx),
            other => other,
        }
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_gateway_path(request.uri().path()) {
            super::request_id::note_route(super::request_id::RouteName::Fixed(ROUTE));
            futures_util::future::Either::Left(self.gateway.call(request))
        } else {
            futures_util::future::Either::Right(self.routes.call(request))
        }
    }
}

async fn handle(state: &AppState, request: Request<Body>) -> Result<Response, ApiError> {
    let uri = request.uri().clone();
    let Some((product, cloud_id, path)) = split_path(uri.path()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "Gateway URLs look like /ex/{product}/{cloudid}/{api}.",
        ));
    };
    let admitted = {
        // Borrowed from the request: the token is read, never copied.
        let authorization = credentials(&request)?;
        let caller = match &authorization {
            Credentials::Bearer(token) => Caller::Bearer(token),
            Credentials::Basic { email, secret } => Caller::ApiToken { email, secret },
        };
        let call = GatewayCall {
            product,
            cloud_id,
            method: request.method().as_str(),
            path,
        };
        match state.core.admit(caller, &call).await? {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return Ok(refused(
                    refusal,
                    state.upstreams.settings().reference_scope_mismatch,
                ));
            }
        }
    };
    let forwarded_path = admitted.aliased_path.as_deref().unwrap_or(path);
    state
        .upstreams
        .forward(request, &admitted, forwarded_path, uri.query())
        .await
}

/// `/ex/{product}/{cloudid}{api}` split raw (undecoded); `{api}` is `/` when absent.
fn split_path(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/ex/")?;
    let (product, rest) = rest.split_once('/')?;
    let (cloud_id, api) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    (!product.is_empty() && !cloud_id.is_empty()).then_some((product, cloud_id, api))
}

enum Credentials<'a> {
    Bearer(&'a str),
    Basic { email: String, secret: String },
}

/// The one `Authorization` header: `Bearer <access token>` or `Basic` with
/// `email:api-token` (RFC 7617; never from the query, security checklist J6).
fn credentials(request: &Request<Body>) -> Result<Credentials<'_>, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            "Credentials are required: send Authorization: Bearer <access token>, or Basic \
             with email:api-token.",
            None,
        )
    };
    let mut values = request.headers().get_all(AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(missing());
    };
    let (scheme, rest) = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .ok_or_else(missing)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Credentials::Bearer(rest));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD
            .decode(rest)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some((email, secret)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            return Ok(Credentials::Basic {
                email: email.to_owned(),
                secret: secret.to_owned(),
            });
        }
    }
    Err(missing())
}

/// The reference platform's answer to a token without the operation's scopes.
pub const REFERENCE_SCOPE_MISMATCH: &str = "Unauthorized; scope does not match";

fn refused(mut refusal: Refusal, reference_scope_mismatch: bool) -> Response {
    if reference_scope_mismatch && refusal.challenge == Challenge::InsufficientScope {
        refusal.status = 401;
        refusal.message = REFERENCE_SCOPE_MISMATCH.to_owned();
    }
    let status = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::FORBIDDEN);
    let challenge = match refusal.challenge {
        Challenge::None => None,
        Challenge::Basic => Some("Basic realm=\"trilo\"".to_owned()),
        Challenge::Bearer => Some("Bearer realm=\"trilo\"".to_owned()),
        Challenge::InvalidToken => {
            Some("Bearer realm=\"trilo\", error=\"invalid_token\"".to_owned())
        }
        Challenge::InsufficientScope => {
            Some("Bearer realm=\"trilo\", error=\"insufficient_scope\"".to_owned())
        }
    };
    let mut response = ApiError {
        status,
        message: refusal.message,
        www_authenticate: challenge,
    }
    .into_response();
    if !refusal.allow.is_empty()
        && let Ok(allow) = HeaderValue::from_str(&refusal.allow.join(", "))
    {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_paths_split_into_product_site_and_api() {
        assert_eq!(
            split_path("/ex/jira/abc/rest/api/3/myself"),
            Some(("jira", "abc", "/rest/api/3/myself"))
        );
        assert_eq!(split_path("/ex/jira/abc"), Some(("jira", "abc", "/")));
        assert_eq!(split_path("/ex/jira/abc/"), Some(("jira", "abc", "/")));
        assert_eq!(split_path("/ex/jira"), None);
        assert_eq!(split_path("/ex//abc/x"), None);
    }

    #[test]
    fn only_paths_under_ex_go_to_the_gateway_before_the_router() {
        assert!(is_gateway_path("/ex/jira/abc/rest/api/3/myself"));
        assert!(is_gateway_path("/ex/"));
        for elsewhere in ["/ex", "/example", "/exit/x", "/me", "/"] {
            assert!(!is_gateway_path(elsewhere), "{elsewhere}");
        }
    }
}
