//! Trust in the gateway: every request carries trilo's identity headers and a short-lived
//! ES256 assertion that vouches for them; anything else is answered 401 before a handler
//! runs. The contract is fixed and shared with trilo's gateway (DESIGN §3 "Gateway").

use std::collections::HashSet;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use time::OffsetDateTime;
// The claims and `typ` are shared with trilo's gateway, which signs what this verifies.
// `typ` keeps any other trilo JWT (an access token) from standing in (RFC 8725 §3.11).
pub use trilo_protocol::jwt::{ASSERTION_TYP, AssertionClaims};

use super::{Product, Upstream, UpstreamConfig};

/// The compact JWS the gateway signs for each forwarded request.
pub const ASSERTION_HEADER: &str = "x-trilo-assertion";
/// The acting account; equals the assertion's `sub`.
pub const ACCOUNT_ID_HEADER: &str = "x-trilo-account-id";
/// The app; equals the assertion's `client_id`. Both are absent when a user calls with an
/// API token (no app involved).
pub const CLIENT_ID_HEADER: &str = "x-trilo-client-id";
/// The site; equals the assertion's `cloud_id`.
pub const CLOUD_ID_HEADER: &str = "x-trilo-cloud-id";
/// The granted scopes, space-separated.
pub const SCOPES_HEADER: &str = "x-trilo-scopes";
/// Container keys (project or space keys) a data security policy hides from the app,
/// comma-separated; may be empty or absent.
pub const BLOCKED_CONTAINERS_HEADER: &str = "x-trilo-blocked-containers";
/// `exp - iat` of an assertion; a longer one is refused, so a leaked assertion is worth
/// little.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;
/// Clock skew tolerated between trilo and the upstream (DESIGN §3: ≤ 60 s).
const LEEWAY_SECS: i64 = 60;

/// Who is calling, as the gateway vouched for it; handlers read it from the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account_id: String,
    /// `None` for a user's own API token.
    pub client_id: Option<String>,
    pub cloud_id: String,
    /// From the signed `scope` claim rather than the header.
    pub scopes: Vec<String>,
    pub blocked_containers: HashSet<String>,
}

impl Caller {
    /// Whether the app may not see the project or space with this key.
    pub fn is_blocked(&self, container_key: &str) -> bool {
        self.blocked_containers.contains(container_key)
    }
}

/// Why a request was refused; the text goes into the 401 body to help whoever wires up a
/// gateway (these are sample products: nothing here is secret).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejection {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is not valid text")]
    BadHeader(&'static str),
    #[error("the assertion is not a compact JWS")]
    Malformed,
    #[error("the assertion's typ is not {ASSERTION_TYP}")]
    WrongType,
    #[error("the assertion is not signed with ES256")]
    WrongAlgorithm,
    #[error("the assertion names no kid")]
    MissingKid,
    #[error("the assertion's kid is not in the trusted key set")]
    UnknownKid,
    #[error("the trusted key for the assertion's kid is not an ES256 key")]
    UnusableKey,
    #[error("the assertion's signature does not verify")]
    BadSignature,
    #[error("the assertion's claims are missing or malformed")]
    MalformedClaims,
    #[error("the assertion's issuer is not trusted")]
    WrongIssuer,
    #[error("the assertion is not for this product")]
    WrongAudience,
    #[error("the assertion has expired")]
    Expired,
    #[error("the assertion was issued in the future")]
    NotYetValid,
    #[error("the assertion lives longer than {ASSERTION_LIFETIME_SECS} s")]
    TooLong,
    #[error("the {0} header does not match the assertion")]
    Mismatch(&'static str),
}

/// Middleware: verifies the request and hands the [`Caller`] to the handler.
pub(crate) async fn require_assertion(
    State((upstream, product)): State<(Upstream, Product)>,
    mut request: Request,
    next: Next,
) -> Response {
    let verified = verify(
        &upstream.config,
        product,
        request.headers(),
        OffsetDateTime::now_utc(),
    );
    match verified {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(rejection) => {
            tracing::info!(product = product.key(), %rejection, "refused a request");
            product.error(
                StatusCode::UNAUTHORIZED,
                format!("Client must be authenticated to access this resource: {rejection}."),
            )
        }
    }
}

/// Checks the assertion (ES256 only, a trusted `kid`, `typ`, `iss`, `aud` = the route's
/// product, `exp` with leeway) and that it vouches for the identity headers.
pub(crate) fn verify(
    config: &UpstreamConfig,
    product: Product,
    headers: &HeaderMap,
    now: OffsetDateTime,
) -> Result<Caller, Rejection> {
    let account_id = required(headers, ACCOUNT_ID_HEADER)?;
    let client_id = optional(headers, CLIENT_ID_HEADER)?;
    let cloud_id = required(headers, CLOUD_ID_HEADER)?;
    // Required although the scopes are read from the claim: it is part of the contract.
    required(headers, SCOPES_HEADER)?;
    let blocked = optional(headers, BLOCKED_CONTAINERS_HEADER)?.unwrap_or_default();
    let token = required(headers, ASSERTION_HEADER)?;

    let claims = verify_signed(config, product, token)?;

    let now = now.unix_timestamp();
    if claims.exp.saturating_add(LEEWAY_SECS) < now {
        return Err(Rejection::Expired);
    }
    if claims.iat > now.saturating_add(LEEWAY_SECS) {
        return Err(Rejection::NotYetValid);
    }
    if claims.exp.saturating_sub(claims.iat) > ASSERTION_LIFETIME_SECS {
        return Err(Rejection::TooLong);
    }
    if claims.sub != account_id {
        return Err(Rejection::Mismatch(ACCOUNT_ID_HEADER));
    }
    if claims.client_id.as_deref() != client_id {
        return Err(Rejection::Mismatch(CLIENT_ID_HEADER));
    }
    if claims.cloud_id != cloud_id {
        return Err(Rejection::Mismatch(CLOUD_ID_HEADER));
    }
    Ok(Caller {
        scopes: claims.scope.split_whitespace().map(str::to_owned).collect(),
        blocked_containers: blocked
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
        account_id: claims.sub,
        client_id: claims.client_id,
        cloud_id: claims.cloud_id,
    })
}

/// The JOSE part: header checks, key lookup, signature, `iss` and `aud`. Time is checked by
/// the caller against its explicit `now`.
fn verify_signed(
    config: &UpstreamConfig,
    product: Product,
    token: &str,
) -> Result<AssertionClaims, Rejection> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(ASSERTION_TYP))
    {
        return Err(Rejection::WrongType);
    }
    // Pinned: the header's `alg` never chooses the verification (RFC 8725 §3.1).
    if header.alg != Algorithm::ES256 {
        return Err(Rejection::WrongAlgorithm);
    }
    let kid = header.kid.ok_or(Rejection::MissingKid)?;
    let jwk = config.key(&kid).ok_or(Rejection::UnknownKid)?;
    let is_p256 = matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec)
        if ec.curve == EllipticCurve::P256);
    let alg_fits = jwk
        .common
        .key_algorithm
        .is_none_or(|a| a == KeyAlgorithm::ES256);
    if !is_p256 || !alg_fits {
        return Err(Rejection::UnusableKey);
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| Rejection::UnusableKey)?;

    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[config.issuer()]);
    validation.set_audience(&[product.key()]);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<AssertionClaims>(token, &key, &validation).map_err(|e| {
        match e.kind() {
            ErrorKind::InvalidSignature => Rejection::BadSignature,
            ErrorKind::InvalidIssuer => Rejection::WrongIssuer,
            ErrorKind::InvalidAudience => Rejection::WrongAudience,
            ErrorKind::InvalidAlgorithm => Rejection::WrongAlgorithm,
            ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
                Rejection::Malformed
            }
            _ => Rejection::MalformedClaims,
        }
    })?;
    Ok(data.claims)
}

fn required<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Rejection> {
    optional(headers, name)?.ok_or(Rejection::MissingHeader(name))
}

/// A header that, when present, must appear once: two values would leave it ambiguous which
/// one the assertion vouched for.
fn optional<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, Rejection> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Rejection::BadHeader(name));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| Rejection::BadHeader(name))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::upstream::test_support::{
        Assertion, ISSUER, TestKey, config_with, identity_headers,
    };

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn check(
        config: &UpstreamConfig,
        product: Product,
        a: &Assertion,
    ) -> Result<Caller, Rejection> {
        verify(config, product, &a.headers(), now())
    }

    #[test]
    fn verify_accepts_assertion_when_it_vouches_for_the_headers() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.blocked = Some(" DEMO, ,OPS".into());
        let caller = check(&config, Product::Jira, &a).unwrap();
        assert_eq!(caller.account_id, "acc-1");
        assert_eq!(caller.client_id, a.claims.client_id);
        assert_eq!(caller.cloud_id, "cloud-a");
        assert_eq!(caller.scopes, ["read:jira-work", "write:jira-work"]);
        assert!(caller.is_blocked("DEMO") && caller.is_blocked("OPS"));
        assert_eq!(caller.blocked_containers.len(), 2);
    }

    #[test]
    fn verify_accepts_assertion_when_signed_like_trilo_gateway() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
        use trilo_protocol::jwt;
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "confluence", "acc-1", "cloud-a");
        a.claims.client_id = None;
        // trilo's own JWS code, not jsonwebtoken's, so both ends agree on the wire format.
        let header = jwt::Header {
            alg: jwt::ALG.into(),
            typ: ASSERTION_TYP.into(),
            kid: "k1".into(),
        };
        let input = jwt::signing_input(&header, &a.claims);
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.pkcs8).unwrap();
        let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        let mut headers = a.headers();
        headers.insert(
            ASSERTION_HEADER,
            jwt::compact(&input, signature.as_ref()).parse().unwrap(),
        );
        let caller = verify(&config, Product::Confluence, &headers, now()).unwrap();
        assert_eq!(
            (caller.account_id.as_str(), caller.client_id),
            ("acc-1", None)
        );
    }

    #[test]
    fn verify_rejects_when_assertion_or_identity_header_missing() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        for name in [
            ASSERTION_HEADER,
            ACCOUNT_ID_HEADER,
            CLOUD_ID_HEADER,
            SCOPES_HEADER,
        ] {
            let mut headers = a.headers();
            headers.remove(name);
            assert_eq!(
                verify(&config, Product::Jira, &headers, now()),
                Err(Rejection::MissingHeader(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn verify_rejects_when_assertion_is_garbage() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        for garbage in ["", "not-a-jwt", "a.b.c", "!!!.???.###"] {
            let mut headers = identity_headers("acc-1", Some("client-1"), "cloud-a");
            headers.insert(ASSERTION_HEADER, garbage.parse().unwrap());
            assert_eq!(
                verify(&config, Product::Jira, &headers, now()),
                Err(Rejection::Malformed),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn verify_rejects_when_assertion_expired_beyond_leeway() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.iat -= 200;
        a.claims.exp -= 200;
        assert_eq!(check(&config, Product::Jira, &a), Err(Rejection::Expired));
        // Within the leeway it still passes: clocks drift.
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.iat -= 90;
        a.claims.exp -= 90;
        assert!(check(&config, Product::Jira, &a).is_ok());
    }

    #[test]
    fn verify_rejects_when_assertion_lives_too_long_or_starts_in_future() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.exp += 3600;
        assert_eq!(check(&config, Product::Jira, &a), Err(Rejection::TooLong));
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.iat += 600;
        a.claims.exp += 600;
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::NotYetValid)
        );
    }

    #[test]
    fn verify_rejects_when_audience_is_another_product() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let a = Assertion::new(&key, "confluence", "acc-1", "cloud-a");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::WrongAudience)
        );
        assert!(check(&config, Product::Confluence, &a).is_ok());
    }

    #[test]
    fn verify_rejects_when_issuer_differs() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.iss = format!("{ISSUER}/other");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::WrongIssuer)
        );
    }

    #[test]
    fn verify_rejects_when_kid_unknown_or_key_differs() {
        let trusted = TestKey::generate("k1");
        let config = config_with(&[&trusted]);
        let other = TestKey::generate("k2");
        let a = Assertion::new(&other, "jira", "acc-1", "cloud-a");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::UnknownKid)
        );
        // Same kid, different key: an attacker guessing kids gets nowhere.
        let impostor = TestKey::generate("k1");
        let a = Assertion::new(&impostor, "jira", "acc-1", "cloud-a");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::BadSignature)
        );
    }

    #[test]
    fn verify_rejects_when_typ_or_alg_differs() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.typ = Some("at+jwt".into());
        assert_eq!(check(&config, Product::Jira, &a), Err(Rejection::WrongType));
        a.typ = None;
        assert_eq!(check(&config, Product::Jira, &a), Err(Rejection::WrongType));
        // An HMAC token keyed with public material must never pass (alg confusion).
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.hmac_secret = Some(b"public-key-bytes".to_vec());
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::WrongAlgorithm)
        );
    }

    #[test]
    fn verify_rejects_when_header_and_claim_disagree() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        for name in [ACCOUNT_ID_HEADER, CLIENT_ID_HEADER, CLOUD_ID_HEADER] {
            let a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
            let mut headers = a.headers();
            headers.insert(name, "someone-else".parse().unwrap());
            assert_eq!(
                verify(&config, Product::Jira, &headers, now()),
                Err(Rejection::Mismatch(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn verify_accepts_no_app_when_neither_header_nor_claim_names_one() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        // A user's API token: no app, so neither the header nor the claim.
        let mut a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        a.claims.client_id = None;
        let caller = check(&config, Product::Jira, &a).unwrap();
        assert_eq!(caller.client_id, None);
        // The header without the claim, or the claim without the header, is a mismatch.
        let mut headers = a.headers();
        headers.insert(CLIENT_ID_HEADER, "client-1".parse().unwrap());
        assert_eq!(
            verify(&config, Product::Jira, &headers, now()),
            Err(Rejection::Mismatch(CLIENT_ID_HEADER))
        );
        let a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        let mut headers = a.headers();
        headers.remove(CLIENT_ID_HEADER);
        assert_eq!(
            verify(&config, Product::Jira, &headers, now()),
            Err(Rejection::Mismatch(CLIENT_ID_HEADER))
        );
    }

    #[test]
    fn verify_rejects_when_identity_header_repeated() {
        let key = TestKey::generate("k1");
        let config = config_with(&[&key]);
        let a = Assertion::new(&key, "jira", "acc-1", "cloud-a");
        let mut headers = a.headers();
        headers.append(ACCOUNT_ID_HEADER, "acc-2".parse().unwrap());
        assert_eq!(
            verify(&config, Product::Jira, &headers, now()),
            Err(Rejection::BadHeader(ACCOUNT_ID_HEADER))
        );
    }

    #[test]
    fn verify_follows_key_set_when_keys_replaced() {
        let old = TestKey::generate("k1");
        let new = TestKey::generate("k2");
        let config = config_with(&[&old]);
        let a = Assertion::new(&new, "jira", "acc-1", "cloud-a");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::UnknownKid)
        );
        let shared = config.clone();
        shared.replace_keys(jsonwebtoken::jwk::JwkSet {
            keys: vec![new.jwk.clone()],
        });
        assert!(check(&config, Product::Jira, &a).is_ok());
        let a = Assertion::new(&old, "jira", "acc-1", "cloud-a");
        assert_eq!(
            check(&config, Product::Jira, &a),
            Err(Rejection::UnknownKid)
        );
    }
}
