//! The three error families (STYLE "Errors"): pages render an HTML message; the token
//! endpoint answers RFC 6749 §5.2 JSON with `Cache-Control: no-store`; API-host endpoints
//! answer `{"code", "message"}` JSON. Internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, HeaderValue, PRAGMA, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use trilo_core::CoreError;
use trilo_protocol::rotation::INVALID_REFRESH_TOKEN;
use trilo_protocol::{ErrorCode, OAuthError};

use super::common::render;
use crate::views::{Failure, MessagePage};

const WRONG: &str = "Something went wrong";
const NOT_FOUND: &str = "Page not found";

/// The answer to a URL no route knows: the product's 404 page, or `{"code", "message"}`
/// JSON where a program is calling (the API host's paths, or a client that asks for JSON).
pub async fn not_found(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    let path = uri.path();
    let wants_json = ["/ex/", "/api/", "/oauth/", "/rest/", "/.well-known/"]
        .iter()
        .any(|p| path.starts_with(p))
        || headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"));
    if wants_json {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "code": 404, "message": "Not Found" })),
        )
            .into_response();
    }
    PageError::NotFound(
        "There is no page at this address. It may have moved, or the link may be mistyped.",
    )
    .into_response()
}

/// An error on an HTML page.
#[derive(Debug)]
pub enum PageError {
    BadRequest(&'static str),
    Forbidden(&'static str),
    NotFound(&'static str),
    UnsupportedMediaType,
    Core(CoreError),
}

impl From<CoreError> for PageError {
    fn from(e: CoreError) -> Self {
        PageError::Core(e)
    }
}

/// A console operation's failure on a page (forms handle the user's mistakes first).
impl From<trilo_core::services::console::ConsoleError> for PageError {
    fn from(e: trilo_core::services::console::ConsoleError) -> Self {
        use trilo_core::services::console::ConsoleError;
        match e {
            ConsoleError::NotFound => PageError::NotFound("There is no such app."),
            ConsoleError::Core(e) => PageError::Core(e),
            other => PageError::Core(trilo_core::CoreError::Invalid(other.to_string())),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, WRONG, m.to_owned()),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, WRONG, m.to_owned()),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, NOT_FOUND, m.to_owned()),
            PageError::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                WRONG,
                "Forms must be sent as application/x-www-form-urlencoded.".into(),
            ),
            PageError::Core(CoreError::Invalid(m) | CoreError::InvalidField { message: m, .. }) => {
                (StatusCode::BAD_REQUEST, WRONG, m)
            }
            PageError::Core(CoreError::Unavailable(e)) => {
                tracing::error!(error = %e, "store unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    WRONG,
                    "The service is temporarily unavailable. Try again shortly.".into(),
                )
            }
            PageError::Core(e) => {
                tracing::error!(error = ?e, "page request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    WRONG,
                    "Something went wrong on our side.".into(),
                )
            }
        };
        render(
            status,
            &MessagePage {
                title: title.into(),
                message,
                failure: Some(Failure::of_this_request()),
            },
        )
    }
}

/// An error of the token, revoke or introspect endpoints (RFC 6749 §5.2).
#[derive(Debug)]
pub enum TokenEndpointError {
    Core(CoreError),
    /// Too many failed client authentications: 429 with `Retry-After` seconds.
    TooManyAttempts(i64),
}

impl From<CoreError> for TokenEndpointError {
    fn from(e: CoreError) -> Self {
        TokenEndpointError::Core(e)
    }
}

impl From<OAuthError> for TokenEndpointError {
    fn from(e: OAuthError) -> Self {
        TokenEndpointError::Core(CoreError::OAuth(e))
    }
}

impl IntoResponse for TokenEndpointError {
    fn into_response(self) -> Response {
        let core_error = match self {
            TokenEndpointError::Core(e) => e,
            TokenEndpointError::TooManyAttempts(seconds) => {
                let error = OAuthError::invalid_request(
                    "Too many failed client authentications. Retry later.",
                );
                let mut res = (StatusCode::TOO_MANY_REQUESTS, Json(&error)).into_response();
                no_store(&mut res);
                res.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(seconds));
                return res;
            }
        };
        let error = match core_error {
            CoreError::OAuth(e) => e,
            // The reference answers every failed refresh alike, with 403.
            CoreError::RefreshTokenInvalid => {
                let error = OAuthError::invalid_grant(INVALID_REFRESH_TOKEN);
                let mut res = (StatusCode::FORBIDDEN, Json(&error)).into_response();
                no_store(&mut res);
                return res;
            }
            CoreError::Unavailable(e) => {
                tracing::error!(error = %e, "store unavailable at the token endpoint");
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The service is temporarily unavailable.",
                )
            }
            e => {
                tracing::error!(error = ?e, "token endpoint failed");
                OAuthError::server_error()
            }
        };
        let status = match error.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = (status, Json(&error)).into_response();
        no_store(&mut res);
        if error.code == ErrorCode::InvalidClient {
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"trilo\""),
            );
        }
        res
    }
}

pub fn no_store(res: &mut Response) {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut()
        .insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

/// An API-host error: `{"code": <status>, "message": "..."}`, with `WWW-Authenticate` for
/// bearer problems (RFC 6750 §3).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub www_authenticate: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            www_authenticate: None,
        }
    }

    pub fn unauthorized(message: &str, error: Option<&str>) -> Self {
        let challenge = match error {
            Some(e) => format!("Bearer realm=\"trilo\", error=\"{e}\""),
            None => "Bearer realm=\"trilo\"".to_owned(),
        };
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.to_owned(),
            www_authenticate: Some(challenge),
        }
    }

    pub fn insufficient_scope(scope: &str) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: format!(
                "The access token does not grant the scope this resource needs: {scope}"
            ),
            www_authenticate: Some(format!(
                "Bearer realm=\"trilo\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
        }
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::Unavailable(e) => {
                tracing::error!(error = %e, "store unavailable on the API host");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "The service is temporarily unavailable.".into(),
                    www_authenticate: None,
                }
            }
            e => {
                tracing::error!(error = ?e, "API request failed");
                ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: "Internal error.".into(),
                    www_authenticate: None,
                }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({ "code": self.status.as_u16(), "message": self.message })),
        )
            .into_response();
        if let Some(challenge) = self
            .www_authenticate
            .and_then(|c| HeaderValue::from_str(&c).ok())
        {
            res.headers_mut().insert(WWW_AUTHENTICATE, challenge);
        }
        res
    }
}
