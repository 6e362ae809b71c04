//! Token endpoint requests (RFC 6749 §3.2, §4.1.3, §6): client authentication and the
//! parameters of each grant type.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{ErrorCode, OAuthError};
use crate::params::{Params, decode};

/// How the client presented its credentials (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Basic,
    Post,
    /// Only `client_id` in the body: a public client.
    None,
}

/// The client's identity and secret, from exactly one place.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    pub method: AuthMethod,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("method", &self.method)
            .finish()
    }
}

/// Finds the client credentials in the `Authorization` header value (if any) and the body.
/// Both places at once is `invalid_request` (security checklist T2, H-T5).
pub fn client_credentials(
    authorization: Option<&str>,
    body: &Params,
) -> Result<ClientCredentials, OAuthError> {
    if body.is_repeated("client_id") || body.is_repeated("client_secret") {
        return Err(OAuthError::invalid_request(
            "Client credentials were sent more than once.",
        ));
    }
    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if body.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method: HTTP Basic or the request body, not both.",
            ));
        }
        if body.get("client_id").is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the HTTP Basic user name.",
            ));
        }
        return Ok(ClientCredentials {
            client_id,
            secret: Some(secret),
            method: AuthMethod::Basic,
        });
    }
    let Some(client_id) = body.get("client_id") else {
        return Err(OAuthError::invalid_client());
    };
    Ok(match body.get("client_secret") {
        Some(secret) => ClientCredentials {
            client_id: client_id.to_owned(),
            secret: Some(secret.to_owned()),
            method: AuthMethod::Post,
        },
        None => ClientCredentials {
            client_id: client_id.to_owned(),
            secret: None,
            method: AuthMethod::None,
        },
    })
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`; the scheme name is case-insensitive.
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    let mut parts = header.trim().splitn(2, ' ');
    let scheme = parts.next().unwrap_or_default();
    let value = parts.next().unwrap_or_default().trim();
    if !scheme.eq_ignore_ascii_case("basic") || value.is_empty() {
        return Err(OAuthError::invalid_client());
    }
    let raw = STANDARD
        .decode(value)
        .map_err(|_| OAuthError::invalid_client())?;
    let colon = raw
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(OAuthError::invalid_client)?;
    let id = decode(&raw[..colon]).map_err(|_| OAuthError::invalid_client())?;
    let secret = decode(&raw[colon + 1..]).map_err(|_| OAuthError::invalid_client())?;
    if id.is_empty() {
        return Err(OAuthError::invalid_client());
    }
    Ok((id, secret))
}

/// A token request's grant, with only the parameters that grant defines (DESIGN §3: any
/// other parameter is ignored, so a refresh request carrying a `code` still works).
#[derive(Clone, PartialEq, Eq)]
pub enum TokenGrant {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AuthorizationCode { redirect_uri, .. } => f
                .debug_struct("AuthorizationCode")
                .field("redirect_uri", redirect_uri)
                .finish_non_exhaustive(),
            Self::RefreshToken { scope, .. } => f
                .debug_struct("RefreshToken")
                .field("scope", scope)
                .finish_non_exhaustive(),
        }
    }
}

/// The `token` parameter of a revocation (RFC 7009 §2.1) or introspection (RFC 7662 §2.1)
/// request. `token_type_hint` is optional and only a hint, so it is not read.
pub fn token_parameter(body: &Params) -> Result<String, OAuthError> {
    if body.is_repeated("token") {
        return Err(OAuthError::invalid_request(
            "token was sent more than once.",
        ));
    }
    match body.get("token") {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        _ => Err(OAuthError::invalid_request("token is required.")),
    }
}

/// Reads the grant from the request body.
pub fn parse_grant(body: &Params) -> Result<TokenGrant, OAuthError> {
    if body.is_repeated("grant_type") {
        return Err(OAuthError::invalid_request(
            "grant_type was sent more than once.",
        ));
    }
    let defined: &[&str] = match body.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required.")),
        Some("authorization_code") => &["code", "redirect_uri", "code_verifier"],
        Some("refresh_token") => &["refresh_token", "scope"],
        Some(_) => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "Supported grant types are authorization_code and refresh_token.",
            ));
        }
    };
    if let Some(name) = body.first_repeated(defined) {
        return Err(OAuthError::invalid_request(format!(
            "{name} was sent more than once."
        )));
    }
    let get = |name: &str| body.get(name).map(str::to_owned);
    match body.get("grant_type") {
        Some("authorization_code") => Ok(TokenGrant::AuthorizationCode {
            code: get("code").ok_or_else(|| OAuthError::invalid_request("code is required."))?,
            redirect_uri: get("redirect_uri"),
            code_verifier: get("code_verifier"),
        }),
        _ => Ok(TokenGrant::RefreshToken {
            refresh_token: get("refresh_token")
                .ok_or_else(|| OAuthError::invalid_request("refresh_token is required."))?,
            scope: get("scope"),
        }),
    }
}

#[cfg(test)]
mod token_parameter_tests {
    use super::*;

    #[test]
    fn token_parameter_is_required_once() {
        let ok = Params::parse(b"token=abc&token_type_hint=refresh_token").unwrap_or_default();
        assert_eq!(token_parameter(&ok).ok().as_deref(), Some("abc"));
        for body in [&b""[..], b"token=", b"token=a&token=b", b"tokens=a"] {
            let params = Params::parse(body).unwrap_or_default();
            assert!(token_parameter(&params).is_err(), "{body:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(s: &str) -> Params {
        Params::parse(s.as_bytes()).unwrap_or_default()
    }

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| crate::params::encode(s);
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let c = client_credentials(Some(&basic("id:1", "s%+é")), &params("")).ok();
        assert_eq!(c.as_ref().map(|c| c.client_id.as_str()), Some("id:1"));
        assert_eq!(c.as_ref().and_then(|c| c.secret.as_deref()), Some("s%+é"));
        assert_eq!(c.map(|c| c.method), Some(AuthMethod::Basic));
    }

    #[test]
    fn basic_scheme_is_case_insensitive() {
        let h = basic("a", "b").replacen("Basic", "bAsIc", 1);
        assert!(client_credentials(Some(&h), &params("")).is_ok());
    }

    #[test]
    fn both_methods_at_once_is_invalid_request() {
        let e = client_credentials(Some(&basic("a", "b")), &params("client_secret=b")).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidRequest));
        let e = client_credentials(Some(&basic("a", "b")), &params("client_id=other")).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidRequest));
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for h in [
            "Basic",
            "Basic !!!",
            &format!("Basic {}", STANDARD.encode("nocolon")),
            "Bearer x",
        ] {
            let e = client_credentials(Some(h), &params("")).err();
            assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidClient), "{h}");
        }
    }

    #[test]
    fn body_credentials() {
        let c = client_credentials(None, &params("client_id=a&client_secret=b")).ok();
        assert_eq!(c.map(|c| c.method), Some(AuthMethod::Post));
        let c = client_credentials(None, &params("client_id=a")).ok();
        assert_eq!(c.map(|c| c.method), Some(AuthMethod::None));
        let e = client_credentials(None, &params("client_secret=b")).err();
        assert_eq!(e.map(|e| e.code), Some(ErrorCode::InvalidClient));
    }

    #[test]
    fn grants_parse_their_own_parameters_only() {
        let g = parse_grant(&params(
            "grant_type=authorization_code&code=c&redirect_uri=r",
        ))
        .ok();
        assert!(matches!(g, Some(TokenGrant::AuthorizationCode { .. })));
        // A refresh request with a (repeated) JWT-looking code is fine: code is not defined there.
        let g = parse_grant(&params(
            "grant_type=refresh_token&refresh_token=t&code=a.b.c&code=d",
        ))
        .ok();
        assert!(matches!(g, Some(TokenGrant::RefreshToken { .. })));
    }

    #[test]
    fn grant_errors() {
        let code = |s: &str| parse_grant(&params(s)).err().map(|e| e.code);
        assert_eq!(code(""), Some(ErrorCode::InvalidRequest));
        assert_eq!(
            code("grant_type=password"),
            Some(ErrorCode::UnsupportedGrantType)
        );
        assert_eq!(
            code("GRANT_TYPE=authorization_code"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("grant_type=authorization_code"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("grant_type=authorization_code&code=a&code=b"),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code("grant_type=authorization_code&grant_type=refresh_token&code=a"),
            Some(ErrorCode::InvalidRequest)
        );
    }
}
