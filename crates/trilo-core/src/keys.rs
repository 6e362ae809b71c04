//! The access-token signing keys: generated on first start, stored encrypted, kept parsed
//! in memory (re-parsing a key per signature doubles its cost, DESIGN §5).

use std::collections::HashMap;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use time::OffsetDateTime;

use crate::crypto::{SealingKey, random_alphanumeric};
use crate::model::{KeyState, SigningKeyRecord};
use crate::store::{Store, StoreError};

struct LoadedKey {
    kid: String,
    pair: EcdsaKeyPair,
}

/// Public keys by kid, and the current private key.
pub struct KeySet {
    current: LoadedKey,
    public: HashMap<String, Vec<u8>>,
    jwks: serde_json::Value,
    rng: SystemRandom,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("current_kid", &self.current.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "a stored signing key cannot be decrypted: is the key-encryption key the one it was stored with?"
    )]
    CannotDecrypt,
    #[error("a stored signing key is damaged")]
    Damaged,
}

impl KeySet {
    /// Loads the keys from the store, generating and storing a current key if there is none.
    pub async fn load_or_create(
        store: &dyn Store,
        sealing: &SealingKey,
        now: OffsetDateTime,
    ) -> Result<Arc<KeySet>, KeyError> {
        for _ in 0..3 {
            let records = store.signing_keys().await?;
            if records.iter().any(|r| r.state == KeyState::Current) {
                return Self::from_records(&records, sealing).map(Arc::new);
            }
            let record = generate(sealing, now)?;
            match store.insert_signing_key(&record).await {
                // Another instance created one first: load theirs.
                Ok(()) | Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(KeyError::Store(StoreError::Unavailable(
            "could not establish a current signing key".into(),
        )))
    }

    fn from_records(
        records: &[SigningKeyRecord],
        sealing: &SealingKey,
    ) -> Result<KeySet, KeyError> {
        let mut public = HashMap::new();
        let mut jwks = Vec::new();
        let mut current = None;
        for r in records.iter().filter(|r| r.alg == trilo_protocol::jwt::ALG) {
            let pkcs8 = sealing
                .open(&r.private_key_encrypted)
                .map_err(|_| KeyError::CannotDecrypt)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                .map_err(|_| KeyError::Damaged)?;
            public.insert(r.kid.clone(), pair.public_key().as_ref().to_vec());
            jwks.push(public_jwk(&r.kid, pair.public_key().as_ref())?);
            if r.state == KeyState::Current {
                current = Some(LoadedKey {
                    kid: r.kid.clone(),
                    pair,
                });
            }
        }
        let current = current.ok_or(KeyError::Damaged)?;
        Ok(KeySet {
            current,
            public,
            jwks: json!({ "keys": jwks }),
            rng: SystemRandom::new(),
        })
    }

    pub fn current_kid(&self) -> &str {
        &self.current.kid
    }

    /// ES256 signature (fixed-length r||s, RFC 7518 §3.4) over the signing input, in its
    /// low-S form (`crate::low_s`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig = self
            .current
            .pair
            .sign(&self.rng, message)
            .map_err(|_| KeyError::Damaged)?;
        let mut sig = sig.as_ref().to_vec();
        crate::low_s::normalize(&mut sig);
        Ok(sig)
    }

    /// Verifies with the key named by `kid`; an unknown kid, or the high-S spelling of a
    /// signature, fails like a bad signature.
    pub fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool {
        if !crate::low_s::is_low_s(signature) {
            return false;
        }
        self.public.get(kid).is_some_and(|key| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key)
                .verify(message, signature)
                .is_ok()
        })
    }

    /// The JWK Set document (RFC 7517 §5).
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }
}

fn generate(sealing: &SealingKey, now: OffsetDateTime) -> Result<SigningKeyRecord, KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Damaged)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Damaged)?;
    let kid = random_alphanumeric(16);
    let jwk = public_jwk(&kid, pair.public_key().as_ref())?;
    Ok(SigningKeyRecord {
        kid,
        alg: trilo_protocol::jwt::ALG.to_owned(),
        state: KeyState::Current,
        private_key_encrypted: sealing.seal(pkcs8.as_ref()),
        public_jwk: jwk.to_string(),
        created_at: now,
    })
}

/// An EC public JWK (RFC 7518 §6.2) from an uncompressed P-256 point `04 || x || y`.
fn public_jwk(kid: &str, point: &[u8]) -> Result<serde_json::Value, KeyError> {
    if point.len() != 65 || point[0] != 4 {
        return Err(KeyError::Damaged);
    }
    Ok(json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        "kid": kid,
        "alg": trilo_protocol::jwt::ALG,
        "use": "sig",
    }))
}
