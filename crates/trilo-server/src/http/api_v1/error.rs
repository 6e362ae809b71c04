//! The one error table of `/api/v1` (STYLE "Errors", meilisearch's model): each [`Code`]
//! has an HTTP status and a stable message prefix. Bodies are
//! `{"code": <status>, "message": "<prefix>: <detail>"}`; clients branch on the status and
//! the prefix, people read the detail. Internal causes are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::{HeaderValue, WWW_AUTHENTICATE};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use trilo_core::CoreError;
use trilo_core::services::console::{ConsoleError, InstalledSite};

/// The challenge of every 401: HTTP Basic with `email:api-token` (RFC 7617); a console
/// session cookie works too, and is described in the OpenAPI document.
pub const CHALLENGE: &str = "Basic realm=\"trilo\", charset=\"UTF-8\"";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    MalformedJson,
    InvalidRequest,
    InvalidCallbackUrl,
    UnknownScope,
    ScopeNotAdded,
    Unauthenticated,
    CrossSiteRequest,
    NotOperator,
    OwnApp,
    NotFound,
    MethodNotAllowed,
    AppInstalled,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Internal,
    Unavailable,
}

impl Code {
    /// Every code, for the OpenAPI document and tests.
    pub const ALL: [Code; 17] = [
        Code::MalformedJson,
        Code::InvalidRequest,
        Code::InvalidCallbackUrl,
        Code::UnknownScope,
        Code::ScopeNotAdded,
        Code::Unauthenticated,
        Code::CrossSiteRequest,
        Code::NotOperator,
        Code::OwnApp,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::AppInstalled,
        Code::Conflict,
        Code::PayloadTooLarge,
        Code::UnsupportedMediaType,
        Code::Internal,
        Code::Unavailable,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            Code::MalformedJson
            | Code::InvalidRequest
            | Code::InvalidCallbackUrl
            | Code::UnknownScope
            | Code::ScopeNotAdded => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::CrossSiteRequest | Code::NotOperator | Code::OwnApp => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::AppInstalled | Code::Conflict => StatusCode::CONFLICT,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable start of the message.
    pub fn prefix(self) -> &'static str {
        match self {
            Code::MalformedJson => "Malformed JSON",
            Code::InvalidRequest => "Invalid request",
            Code::InvalidCallbackUrl => "Invalid callback URL",
            Code::UnknownScope => "Unknown scope",
            Code::ScopeNotAdded => "Scope not added",
            Code::Unauthenticated => "Authentication required",
            Code::CrossSiteRequest => "Cross-site request refused",
            Code::NotOperator => "Operators only",
            Code::OwnApp => "Own app",
            Code::NotFound => "Not found",
            Code::MethodNotAllowed => "Method not allowed",
            Code::AppInstalled => "App installed",
            Code::Conflict => "Conflict",
            Code::PayloadTooLarge => "Payload too large",
            Code::UnsupportedMediaType => "Unsupported media type",
            Code::Internal => "Internal error",
            Code::Unavailable => "Service unavailable",
        }
    }

    /// When the code is used, for the document's table.
    pub fn meaning(self) -> &'static str {
        match self {
            Code::MalformedJson => "the body is not JSON",
            Code::InvalidRequest => {
                "a field, query parameter or value is wrong (the message names it)"
            }
            Code::InvalidCallbackUrl => "a callback URL fails the registration rules",
            Code::UnknownScope => "a scope is in no product's catalog and is no identity scope",
            Code::ScopeNotAdded => "an authorization URL asks for a scope the app has not added",
            Code::Unauthenticated => "no valid session cookie or Basic email:api-token",
            Code::CrossSiteRequest => {
                "a write from another origin, or a cookie write without X-Requested-With"
            }
            Code::NotOperator => "reviewing apps needs an operator",
            Code::OwnApp => "operators cannot review their own apps",
            Code::NotFound => {
                "no such app for this developer, no such webhook or delivery of the app, or \
                 no such route"
            }
            Code::MethodNotAllowed => "the route does not take this method",
            Code::AppInstalled => "delete refused while the app is installed; `sites` lists where",
            Code::Conflict => "the change conflicts with the current state",
            Code::PayloadTooLarge => "the body is over the size limit",
            Code::UnsupportedMediaType => "a body that is not application/json (UTF-8)",
            Code::Internal => "a fault on the server (logged)",
            Code::Unavailable => "the database cannot be reached; retry",
        }
    }
}

/// An error answer of `/api/v1`.
#[derive(Debug)]
pub struct ApiV1Error {
    pub code: Code,
    pub detail: String,
    /// For [`Code::AppInstalled`]: the sites the app is installed on.
    pub sites: Vec<InstalledSite>,
}

impl ApiV1Error {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiV1Error {
            code,
            detail: detail.into(),
            sites: Vec::new(),
        }
    }

    pub fn message(&self) -> String {
        format!("{}: {}", self.code.prefix(), self.detail)
    }
}

impl From<CoreError> for ApiV1Error {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound(what) => ApiV1Error::new(Code::NotFound, format!("no such {what}")),
            CoreError::Invalid(m) | CoreError::InvalidField { message: m, .. } => {
                ApiV1Error::new(Code::InvalidRequest, m)
            }
            CoreError::Conflict(m) => ApiV1Error::new(Code::Conflict, m),
            CoreError::Unavailable(e) => {
                tracing::error!(error = %e, "store unavailable on /api/v1");
                ApiV1Error::new(Code::Unavailable, "try again shortly")
            }
            e => {
                tracing::error!(error = ?e, "/api/v1 request failed");
                ApiV1Error::new(Code::Internal, "something went wrong on our side")
            }
        }
    }
}

impl From<ConsoleError> for ApiV1Error {
    fn from(e: ConsoleError) -> Self {
        let detail = e.to_string();
        match e {
            ConsoleError::NotFound => ApiV1Error::new(Code::NotFound, "no such app"),
            ConsoleError::InvalidCallbackUrl { .. } => {
                ApiV1Error::new(Code::InvalidCallbackUrl, detail)
            }
            ConsoleError::UnknownScope(_) => ApiV1Error::new(Code::UnknownScope, detail),
            ConsoleError::ScopeNotAdded(_) => ApiV1Error::new(Code::ScopeNotAdded, detail),
            ConsoleError::Invalid(m) => ApiV1Error::new(Code::InvalidRequest, m),
            ConsoleError::Field { .. } => ApiV1Error::new(Code::InvalidRequest, detail),
            ConsoleError::Installed(sites) => {
                let names: Vec<String> = sites
                    .iter()
                    .map(|s| format!("{} ({})", s.name, s.cloud_id))
                    .collect();
                ApiV1Error {
                    code: Code::AppInstalled,
                    detail: format!(
                        "the app is installed on {}; uninstall it there first",
                        names.join(", ")
                    ),
                    sites,
                }
            }
            ConsoleError::NotOperator => ApiV1Error::new(Code::NotOperator, detail),
            ConsoleError::OwnApp => ApiV1Error::new(Code::OwnApp, detail),
            ConsoleError::Core(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiV1Error {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut body = json!({ "code": status.as_u16(), "message": self.message() });
        if self.code == Code::AppInstalled {
            body["sites"] = Value::Array(
                self.sites
                    .iter()
                    .map(|s| json!({ "cloud_id": s.cloud_id, "name": s.name, "url": s.url }))
                    .collect(),
            );
        }
        let mut res = (status, Json(body)).into_response();
        if self.code == Code::Unauthenticated {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_unique_and_statuses_are_errors() {
        for (i, a) in Code::ALL.iter().enumerate() {
            assert!(a.status().is_client_error() || a.status().is_server_error());
            for b in &Code::ALL[i + 1..] {
                assert_ne!(a.prefix(), b.prefix());
            }
        }
    }
}
