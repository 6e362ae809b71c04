//! Test side of the gateway contract: a freshly generated ES256 key, assertions signed with
//! it, and the identity headers they vouch for. Plays trilo's part so the upstreams are
//! tested against the contract rather than against their own verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::http::HeaderMap;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use time::OffsetDateTime;

use super::UpstreamConfig;
use super::trust::{
    ACCOUNT_ID_HEADER, ASSERTION_HEADER, ASSERTION_LIFETIME_SECS, ASSERTION_TYP, AssertionClaims,
    BLOCKED_CONTAINERS_HEADER, CLIENT_ID_HEADER, CLOUD_ID_HEADER, SCOPES_HEADER,
};

pub(crate) const ISSUER: &str = "https://auth.trilo.test";
pub(crate) const CLIENT_ID: &str = "client-1";
pub(crate) const SCOPES: &str = "read:jira-work write:jira-work";

pub(crate) struct TestKey {
    pub kid: String,
    /// PKCS#8 DER, for signing the way trilo's gateway does.
    pub pkcs8: Vec<u8>,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let encoding = EncodingKey::from_ec_der(pkcs8.as_ref());
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Self {
            kid: kid.to_owned(),
            pkcs8: pkcs8.as_ref().to_vec(),
            encoding,
            jwk,
        }
    }
}

pub(crate) fn config_with(keys: &[&TestKey]) -> UpstreamConfig {
    UpstreamConfig::new(
        ISSUER,
        JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        },
    )
    .with_links_base("https://api.trilo.test")
}

/// The identity headers alone, with no assertion.
pub(crate) fn identity_headers(
    account_id: &str,
    client_id: Option<&str>,
    cloud_id: &str,
) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ACCOUNT_ID_HEADER, account_id.parse().unwrap());
    if let Some(client_id) = client_id {
        h.insert(CLIENT_ID_HEADER, client_id.parse().unwrap());
    }
    h.insert(CLOUD_ID_HEADER, cloud_id.parse().unwrap());
    h.insert(SCOPES_HEADER, SCOPES.parse().unwrap());
    h
}

/// An assertion as trilo's gateway would sign it; tests bend one field at a time.
pub(crate) struct Assertion<'k> {
    key: &'k TestKey,
    pub claims: AssertionClaims,
    pub typ: Option<String>,
    pub blocked: Option<String>,
    /// Sign HS256 with this secret instead of ES256 with the key.
    pub hmac_secret: Option<Vec<u8>>,
}

impl<'k> Assertion<'k> {
    pub fn new(key: &'k TestKey, aud: &str, account_id: &str, cloud_id: &str) -> Self {
        let iat = OffsetDateTime::now_utc().unix_timestamp();
        Self {
            key,
            claims: AssertionClaims {
                iss: ISSUER.into(),
                aud: aud.into(),
                sub: account_id.into(),
                client_id: Some(CLIENT_ID.into()),
                cloud_id: cloud_id.into(),
                scope: SCOPES.into(),
                iat,
                exp: iat + ASSERTION_LIFETIME_SECS,
                jti: uuid::Uuid::new_v4().to_string(),
            },
            typ: Some(ASSERTION_TYP.into()),
            blocked: None,
            hmac_secret: None,
        }
    }

    pub fn blocking(mut self, keys: &str) -> Self {
        self.blocked = Some(keys.into());
        self
    }

    pub fn token(&self) -> String {
        let (alg, key) = match &self.hmac_secret {
            Some(secret) => (Algorithm::HS256, EncodingKey::from_secret(secret)),
            None => (Algorithm::ES256, self.key.encoding.clone()),
        };
        let mut header = Header::new(alg);
        header.typ = self.typ.clone();
        header.kid = Some(self.key.kid.clone());
        jsonwebtoken::encode(&header, &self.claims, &key).unwrap()
    }

    /// The identity headers from the claims, plus the signed assertion.
    pub fn headers(&self) -> HeaderMap {
        let c = &self.claims;
        let mut h = identity_headers(&c.sub, c.client_id.as_deref(), &c.cloud_id);
        h.insert(ASSERTION_HEADER, self.token().parse().unwrap());
        if let Some(blocked) = &self.blocked {
            h.insert(BLOCKED_CONTAINERS_HEADER, blocked.parse().unwrap());
        }
        h
    }
}
