//! Authorization server metadata (RFC 8414 §2) and the OpenID discovery document
//! (OpenID Connect Discovery 1.0 §3): one document, listing only what is served.

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub authorization_response_iss_parameter_supported: bool,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    /// Discovery §3 defaults this to `true` when absent; trilo takes no `request_uri`.
    pub request_uri_parameter_supported: bool,
}

/// Builds the document. `auth_url` is the issuer exactly as configured (no trailing
/// slash is added or removed: `issuer` must equal the `iss` of every token, RFC 8414 §3.3);
/// `api_url` serves `/me` and the UserInfo Endpoint `/userinfo` (OIDC Core §5.3).
pub fn server_metadata(auth_url: &str, api_url: &str, scopes: Vec<String>) -> ServerMetadata {
    let base = auth_url.trim_end_matches('/');
    let api = api_url.trim_end_matches('/');
    let auth_methods = vec!["client_secret_basic", "client_secret_post", "none"];
    ServerMetadata {
        issuer: auth_url.to_owned(),
        authorization_endpoint: format!("{base}/authorize"),
        token_endpoint: format!("{base}/oauth/token"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        revocation_endpoint: format!("{base}/oauth/revoke"),
        introspection_endpoint: format!("{base}/oauth/introspect"),
        userinfo_endpoint: format!("{api}/userinfo"),
        scopes_supported: scopes,
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        grant_types_supported: vec!["authorization_code", "refresh_token"],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        code_challenge_methods_supported: crate::pkce::SUPPORTED_METHODS.to_vec(),
        authorization_response_iss_parameter_supported: true,
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec![crate::jwt::ALG],
        claims_supported: crate::oidc::claims_supported(),
        request_uri_parameter_supported: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertises_s256_only_and_no_implicit_or_password() {
        let m = server_metadata("https://auth.test", "https://api.test", vec![]);
        assert_eq!(m.issuer, "https://auth.test");
        assert_eq!(m.token_endpoint, "https://auth.test/oauth/token");
        assert_eq!(m.code_challenge_methods_supported, vec!["S256"]);
        assert!(!m.grant_types_supported.contains(&"implicit"));
        assert!(!m.grant_types_supported.contains(&"password"));
        assert!(m.authorization_response_iss_parameter_supported);
    }

    #[test]
    fn openid_discovery_names_what_is_served() {
        let m = server_metadata(
            "https://auth.test",
            "https://api.test/",
            vec!["openid".into()],
        );
        assert_eq!(m.userinfo_endpoint, "https://api.test/userinfo");
        assert_eq!(m.jwks_uri, "https://auth.test/.well-known/jwks.json");
        assert_eq!(m.response_types_supported, vec!["code"]);
        assert_eq!(m.subject_types_supported, vec!["public"]);
        assert_eq!(m.id_token_signing_alg_values_supported, vec!["ES256"]);
        assert!(!m.request_uri_parameter_supported);
        for claim in ["sub", "auth_time", "nonce", "at_hash", "email", "name"] {
            assert!(m.claims_supported.contains(&claim), "{claim}");
        }
    }
}
