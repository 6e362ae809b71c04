//! Access tokens as JWTs with the RFC 9068 profile: the claims, the compact encoding, and
//! the checks a verifier makes before and after the signature (RFC 8725 §3).
//!
//! Signing and the signature check are done by the caller with its keys; this module only
//! builds the signing input and validates everything else.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// The only algorithm trilo signs with and accepts (RFC 8725 §3.1: pinned, never taken
/// from the header).
pub const ALG: &str = "ES256";
/// RFC 9068 §2.1.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// Tokens larger than this are refused before any decoding (H-J7).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub alg: String,
    pub typ: String,
    pub kid: String,
}

/// RFC 9068 §2.2 claims plus the ids the platform needs to revoke a token early.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The account id.
    pub sub: String,
    pub aud: Audience,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    /// The grant the token was issued under.
    pub grant_id: String,
    /// The token family (one code exchange's chain).
    pub family_id: String,
    /// The family's generation when the token was issued (bumped by each refresh).
    pub generation: i64,
}

/// `aud` may be one string or an array (RFC 7519 §4.1.3); it must contain ours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// The one audience, or the first of several.
    pub fn first(&self) -> &str {
        match self {
            Self::One(a) => a,
            Self::Many(list) => list.first().map_or("", String::as_str),
        }
    }

    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(list) => list.iter().any(|a| a == aud),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is malformed")]
    Malformed,
    #[error("token type or algorithm is not accepted")]
    Unaccepted,
    #[error("token signature is invalid or its key is unknown")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token was issued for another issuer or audience")]
    WrongIssuerOrAudience,
}

/// `base64url(header) "." base64url(claims)`: the bytes to sign (RFC 7515 §5.1).
pub fn signing_input(header: &Header, claims: &impl Serialize) -> String {
    let h = serde_json::to_vec(header).unwrap_or_default();
    let c = serde_json::to_vec(claims).unwrap_or_default();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(h),
        URL_SAFE_NO_PAD.encode(c)
    )
}

/// Appends the signature to the signing input.
pub fn compact(signing_input: &str, signature: &[u8]) -> String {
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The `typ` of the gateway's assertions to upstreams: never accepted as an access token.
pub const ASSERTION_TYP: &str = "trilo-assertion+jwt";

/// What the gateway asserts to an upstream about one forwarded call (DESIGN §3): who acts,
/// for which app, on which site, with which scopes. Lives 60 seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    pub iss: String,
    /// The product key the call is for: an upstream accepts only its own.
    pub aud: String,
    /// The acting account.
    pub sub: String,
    /// The app's client id; absent when a user calls with an API token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    pub cloud_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

/// A token split and its header checked, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unverified<'a> {
    pub header: Header,
    pub signing_input: &'a str,
    pub signature: Vec<u8>,
    claims_b64: &'a str,
}

/// Splits a compact JWS and checks its header: `alg` must be ES256, `typ` must be `at+jwt`
/// (RFC 9068 §4, so other JWTs cannot pass as access tokens), and no other header member
/// may appear (`jku`, `jwk`, `x5u`, `crit`… are refused, H-J3/H-J4).
pub fn parse(token: &str) -> Result<Unverified<'_>, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_bytes = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    let header: Header = serde_json::from_slice(&header_bytes).map_err(|_| JwtError::Unaccepted)?;
    if header.alg != ALG
        || !(header.typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
            || header.typ.eq_ignore_ascii_case("application/at+jwt"))
        || header.kid.is_empty()
        || header.kid.len() > 64
    {
        return Err(JwtError::Unaccepted);
    }
    let signature = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    Ok(Unverified {
        header,
        signing_input,
        signature,
        claims_b64: c,
    })
}

/// What a verified token must say, and when.
#[derive(Clone, Copy, Debug)]
pub struct Expectations<'a> {
    pub issuer: &'a str,
    /// Any of these in `aud` will do (trilo's own audience and its aliases).
    pub audiences: &'a [String],
    pub now_unix: i64,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (at most 60 s, H-J6).
    pub leeway_secs: i64,
}

/// Decodes and checks the claims of a token whose signature the caller has verified.
/// Claims of the wrong JSON type, and duplicate members, fail decoding (H-J5).
pub fn validate_claims(
    token: &Unverified<'_>,
    expect: &Expectations<'_>,
) -> Result<AccessTokenClaims, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.claims_b64)
        .map_err(|_| JwtError::Malformed)?;
    let claims: AccessTokenClaims =
        serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)?;
    if claims.iss != expect.issuer || !expect.audiences.iter().any(|a| claims.aud.contains(a)) {
        return Err(JwtError::WrongIssuerOrAudience);
    }
    if claims.exp + expect.leeway_secs <= expect.now_unix {
        return Err(JwtError::Expired);
    }
    let not_before = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    if not_before - expect.leeway_secs > expect.now_unix {
        return Err(JwtError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: "https://auth.test".into(),
            sub: "acc-1".into(),
            aud: Audience::One("api.test".into()),
            client_id: "cid".into(),
            scope: "read:me".into(),
            iat: 1_000,
            exp: 4_600,
            nbf: None,
            jti: "j".into(),
            grant_id: "g".into(),
            family_id: "f".into(),
            generation: 0,
        }
    }

    fn header() -> Header {
        Header {
            alg: ALG.into(),
            typ: ACCESS_TOKEN_TYP.into(),
            kid: "k1".into(),
        }
    }

    fn expect(now: i64) -> Expectations<'static> {
        Expectations {
            issuer: "https://auth.test",
            audiences: Box::leak(
                vec!["api.test".to_owned(), "alias.test".to_owned()].into_boxed_slice(),
            ),
            now_unix: now,
            leeway_secs: 60,
        }
    }

    fn token_with(header_json: &str, claims_json: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header_json),
            URL_SAFE_NO_PAD.encode(claims_json),
            URL_SAFE_NO_PAD.encode([1u8; 64])
        )
    }

    #[test]
    fn round_trip() {
        let input = signing_input(&header(), &claims());
        let token = compact(&input, &[7u8; 64]);
        let parsed = parse(&token).ok();
        let Some(parsed) = parsed else {
            panic!("parse failed")
        };
        assert_eq!(parsed.signing_input, input);
        assert_eq!(parsed.signature, vec![7u8; 64]);
        assert_eq!(validate_claims(&parsed, &expect(2_000)), Ok(claims()));
    }

    #[test]
    fn time_checks_use_the_leeway() {
        let token = compact(&signing_input(&header(), &claims()), &[0u8; 64]);
        let Ok(p) = parse(&token) else { panic!() };
        assert_eq!(validate_claims(&p, &expect(4_600 + 59)).map(|_| ()), Ok(()));
        assert_eq!(
            validate_claims(&p, &expect(4_600 + 60)),
            Err(JwtError::Expired)
        );
        assert_eq!(validate_claims(&p, &expect(1_000 - 60)).map(|_| ()), Ok(()));
        assert_eq!(
            validate_claims(&p, &expect(1_000 - 61)),
            Err(JwtError::NotYetValid)
        );
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let mut c = claims();
        c.aud = Audience::Many(vec!["other".into(), "api.test".into()]);
        let token = compact(&signing_input(&header(), &c), &[0u8; 64]);
        let Ok(p) = parse(&token) else { panic!() };
        assert!(validate_claims(&p, &expect(2_000)).is_ok());
        c.aud = Audience::One("alias.test".into());
        let token = compact(&signing_input(&header(), &c), &[0u8; 64]);
        let Ok(p) = parse(&token) else { panic!() };
        assert!(
            validate_claims(&p, &expect(2_000)).is_ok(),
            "an accepted alias"
        );
        c.aud = Audience::One("other".into());
        let token = compact(&signing_input(&header(), &c), &[0u8; 64]);
        let Ok(p) = parse(&token) else { panic!() };
        assert_eq!(
            validate_claims(&p, &expect(2_000)),
            Err(JwtError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn hostile_headers_are_refused() {
        let c = serde_json::to_string(&claims()).unwrap_or_default();
        for h in [
            r#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#,
            r#"{"alg":"HS256","typ":"at+jwt","kid":"k1"}"#,
            r#"{"alg":"ES256","typ":"JWT","kid":"k1"}"#,
            r#"{"alg":"ES256","typ":"at+jwt","kid":""}"#,
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1","jku":"http://127.0.0.1/"}"#,
            r#"{"alg":"ES256","typ":"at+jwt","kid":"k1","crit":["b64"]}"#,
            r#"{"alg":"ES256","typ":"at+jwt"}"#,
        ] {
            assert_eq!(
                parse(&token_with(h, &c)).err(),
                Some(JwtError::Unaccepted),
                "{h}"
            );
        }
        let long_kid = format!(
            r#"{{"alg":"ES256","typ":"at+jwt","kid":"{}"}}"#,
            "k".repeat(10_000)
        );
        assert!(parse(&token_with(&long_kid, &c)).is_err());
    }

    #[test]
    fn malformed_claims_are_refused() {
        let h = r#"{"alg":"ES256","typ":"at+jwt","kid":"k1"}"#;
        let good = serde_json::to_string(&claims()).unwrap_or_default();
        for c in [
            good.replace("\"exp\":4600", "\"exp\":\"4600\""),
            good.replace("\"exp\":4600", "\"exp\":4600.5"),
            good.replace("\"nbf\"", "\"x\"")
                .replace("\"iat\":1000", "\"iat\":1000,\"nbf\":\"9999999999\""),
            good.replace(
                "\"scope\":\"read:me\"",
                "\"scope\":\"read:me\",\"scope\":\"admin\"",
            ),
        ] {
            let token = token_with(h, &c);
            let Ok(p) = parse(&token) else {
                panic!("header should parse")
            };
            assert_eq!(
                validate_claims(&p, &expect(2_000)),
                Err(JwtError::Malformed),
                "{c}"
            );
        }
        assert_eq!(parse("a.b").err(), Some(JwtError::Malformed));
        assert_eq!(parse("a.b.c.d").err(), Some(JwtError::Malformed));
        assert_eq!(
            parse(&"a".repeat(MAX_TOKEN_LEN + 1)).err(),
            Some(JwtError::Malformed)
        );
    }
}
