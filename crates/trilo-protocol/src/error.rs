//! OAuth 2.0 error codes and the error value every protocol check returns
//! (RFC 6749 §4.1.2.1 and §5.2).

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    ServerError,
    TemporarilyUnavailable,
    /// OIDC Core §3.1.2.6: `prompt=none` without a session.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` when consent is needed.
    ConsentRequired,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error: a code from the RFC set and an optional human-readable description.
///
/// Descriptions are fixed texts written here, never echoes of request input (security
/// checklist M3, T5: only printable ASCII, no CR/LF/TAB).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OAuthError {
    #[serde(rename = "error")]
    pub code: ErrorCode,
    #[serde(rename = "error_description", skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'static, str>>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: Some(description.into()),
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "Client authentication failed.")
    }

    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "The server could not complete the request.",
        )
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.code, d),
            None => write!(f, "{}", self.code),
        }
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_rfc_field_names() {
        let e = OAuthError::invalid_grant("Unknown or invalid refresh token.");
        let json = serde_json::to_string(&e).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"error":"invalid_grant","error_description":"Unknown or invalid refresh token."}"#
        );
    }

    #[test]
    fn omits_missing_description() {
        let e = OAuthError {
            code: ErrorCode::AccessDenied,
            description: None,
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap_or_default(),
            r#"{"error":"access_denied"}"#
        );
    }
}
