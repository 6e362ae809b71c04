//! OpenID Connect Core 1.0: the ID Token's claims (§2, §3.1.3.6), the claims each scope
//! releases at the UserInfo Endpoint (§5.3, §5.4), and the claims discovery lists.
//!
//! Signing is the caller's (the same ES256 keys as access tokens, with `typ: JWT`, so an
//! ID Token never passes as an access token: RFC 9068 §4, security checklist J3).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::scope::ScopeSet;

/// The scope that makes a request an OpenID Connect request (§3.1.2.1).
pub const OPENID: &str = "openid";
/// The JWS `typ` of ID Tokens (RFC 7519 §5.1; OIDC clients accept `JWT`).
pub const ID_TOKEN_TYP: &str = "JWT";

/// The claims `profile` releases (§5.4), those the account model has.
pub const PROFILE_CLAIMS: [&str; 5] = ["name", "nickname", "picture", "zoneinfo", "locale"];
/// The claims `email` releases (§5.4).
pub const EMAIL_CLAIMS: [&str; 2] = ["email", "email_verified"];

/// Every claim trilo may return, for discovery's `claims_supported`.
pub fn claims_supported() -> Vec<&'static str> {
    let mut claims = vec![
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "at_hash",
    ];
    claims.extend(PROFILE_CLAIMS);
    claims.extend(EMAIL_CLAIMS);
    claims
}

/// Whether the scopes make this an OpenID Connect request or token.
pub fn is_openid(scopes: &ScopeSet) -> bool {
    scopes.contains(OPENID)
}

/// The ID Token of the authorization code flow (§2, §3.1.3.6) and of a refresh (§12.2).
///
/// The claims of `profile` and `email` are not here: with `response_type=code` an access
/// token is issued, and §5.4 returns those claims from the UserInfo Endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The issuer exactly as discovery states it.
    pub iss: String,
    /// The account id (a public subject identifier, §8).
    pub sub: String,
    /// The client id: the only audience.
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// When the user logged in (the session's start). Always sent on the code flow, so
    /// requests with `max_age` get it as §3.1.2.1 requires; absent on a refresh, where the
    /// original time is not known (§12.2 allows leaving it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authorization request's `nonce`, unchanged (§3.1.3.6); never on a refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// See [`at_hash`].
    pub at_hash: String,
    /// What `profile` and `email` release (§5.4), as at the UserInfo Endpoint.
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

/// `at_hash` for an ES256 ID Token (§3.1.3.6): the left-most half of the SHA-256 hash of
/// the ASCII access token, base64url-encoded without padding.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// What the account says about its user, as the claims of §5.1 need it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserProfile<'a> {
    pub name: &'a str,
    pub nickname: &'a str,
    pub picture: Option<&'a str>,
    pub zoneinfo: &'a str,
    pub locale: &'a str,
    pub email: &'a str,
    /// Whether the platform has verified that the user controls `email`.
    pub email_verified: bool,
}

/// The claims the granted scopes release (§5.4). Empty values are left out (§5.3.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopedClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zoneinfo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl ScopedClaims {
    /// The claims `scopes` release about `user`: `profile`'s and `email`'s, nothing else.
    pub fn released(scopes: &ScopeSet, user: &UserProfile<'_>) -> ScopedClaims {
        let some = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        let mut claims = ScopedClaims::default();
        if scopes.contains("profile") {
            claims.name = some(user.name);
            claims.nickname = some(user.nickname);
            claims.picture = user.picture.and_then(some);
            claims.zoneinfo = some(user.zoneinfo);
            claims.locale = some(user.locale);
        }
        if scopes.contains("email") {
            claims.email = some(user.email);
            claims.email_verified = claims.email.is_some().then_some(user.email_verified);
        }
        claims
    }
}

/// The UserInfo Endpoint's answer (§5.3.2): `sub` and the released claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub claims: ScopedClaims,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256_base64url() {
        // (access token, at_hash): OIDC Core Appendix A.3's example token, and values
        // computed independently (Python: urlsafe_b64encode(sha256(t).digest()[:16])).
        for (token, expected) in [
            (
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                "77QmUPtjPfzWtF2AnpK9RQ",
            ),
            ("dNZX1hEZ9wBCzNL40Upu646bdzQA", "wfgvmE9VxjAudsl9lc6TqA"),
            ("", "47DEQpj8HBSa-_TImW-5JA"),
        ] {
            assert_eq!(at_hash(token), expected, "{token}");
        }
    }

    fn alice() -> UserProfile<'static> {
        UserProfile {
            name: "Alice Admin",
            nickname: "alice",
            picture: Some("https://avatars.test/alice.png"),
            zoneinfo: "Europe/Paris",
            locale: "fr-FR",
            email: "alice@example.test",
            email_verified: false,
        }
    }

    fn released(scopes: &str) -> serde_json::Value {
        let scopes = ScopeSet::parse(scopes).unwrap_or_default();
        serde_json::to_value(ScopedClaims::released(&scopes, &alice())).unwrap_or_default()
    }

    #[test]
    fn each_scope_releases_its_own_claims() {
        let profile = serde_json::json!({
            "name": "Alice Admin",
            "nickname": "alice",
            "picture": "https://avatars.test/alice.png",
            "zoneinfo": "Europe/Paris",
            "locale": "fr-FR",
        });
        let email = serde_json::json!({
            "email": "alice@example.test",
            "email_verified": false,
        });
        let mut both = profile.clone();
        if let (Some(b), Some(e)) = (both.as_object_mut(), email.as_object()) {
            b.extend(e.clone());
        }
        for (scopes, expected) in [
            ("openid", serde_json::json!({})),
            ("openid read:me offline_access", serde_json::json!({})),
            ("openid profile", profile.clone()),
            ("openid email", email.clone()),
            ("openid profile email", both.clone()),
            ("email profile", both),
        ] {
            assert_eq!(released(scopes), expected, "{scopes}");
        }
    }

    #[test]
    fn empty_values_are_left_out() {
        let user = UserProfile {
            picture: None,
            nickname: "",
            email: "",
            ..alice()
        };
        let scopes = ScopeSet::from_tokens(["openid", "profile", "email"]);
        let claims = ScopedClaims::released(&scopes, &user);
        assert_eq!(claims.picture, None);
        assert_eq!(claims.nickname, None);
        assert_eq!(claims.email, None);
        assert_eq!(claims.email_verified, None, "no address, nothing verified");
        assert_eq!(claims.name.as_deref(), Some("Alice Admin"));
    }

    #[test]
    fn userinfo_is_sub_and_the_claims_flat() {
        let info = UserInfo {
            sub: "acc-1".into(),
            claims: ScopedClaims::released(&ScopeSet::from_tokens(["openid", "email"]), &alice()),
        };
        assert_eq!(
            serde_json::to_value(&info).unwrap_or_default(),
            serde_json::json!({
                "sub": "acc-1",
                "email": "alice@example.test",
                "email_verified": false,
            })
        );
    }

    #[test]
    fn id_token_claims_leave_out_what_is_unknown() {
        let mut claims = IdTokenClaims {
            iss: "https://auth.test".into(),
            sub: "acc-1".into(),
            aud: "client-1".into(),
            exp: 4_600,
            iat: 1_000,
            auth_time: Some(900),
            nonce: Some("n-0S6_WzA2Mj".into()),
            at_hash: at_hash("token"),
            claims: ScopedClaims {
                email: Some("a@example.com".into()),
                ..ScopedClaims::default()
            },
        };
        let json = serde_json::to_value(&claims).unwrap_or_default();
        assert_eq!(json["aud"], "client-1", "one audience, as a string");
        assert_eq!(
            json["email"], "a@example.com",
            "released claims sit at the top level"
        );
        claims.claims = ScopedClaims::default();
        assert_eq!(json["auth_time"], 900);
        assert_eq!(json["nonce"], "n-0S6_WzA2Mj");
        claims.auth_time = None;
        claims.nonce = None;
        let json = serde_json::to_value(&claims).unwrap_or_default();
        let mut names: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort_unstable();
        assert_eq!(names, ["at_hash", "aud", "exp", "iat", "iss", "sub"]);
    }

    #[test]
    fn claims_supported_lists_every_claim_released() {
        let supported = claims_supported();
        for claim in PROFILE_CLAIMS.iter().chain(&EMAIL_CLAIMS) {
            assert!(supported.contains(claim), "{claim}");
        }
        let json = serde_json::to_value(ScopedClaims::released(
            &ScopeSet::from_tokens(["profile", "email"]),
            &alice(),
        ))
        .unwrap_or_default();
        for name in json.as_object().into_iter().flat_map(|o| o.keys()) {
            assert!(supported.contains(&name.as_str()), "{name}");
        }
    }
}
