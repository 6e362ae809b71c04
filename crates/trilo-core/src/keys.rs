//! The access-token signing keys (DESIGN §4 "Signing key"): generated on first start,
//! stored encrypted, kept parsed in memory (re-parsing a key per signature doubles its
//! cost, DESIGN §5), and rotated.
//!
//! Rotation never surprises a verifier: a `next` key is published in the JWKS (and
//! loaded by every instance) before it signs anything, so when a rotation makes it
//! `current`, tokens it signs verify everywhere at once, even at an instance that has not
//! yet re-read the keys. The retired key stays published and accepted for
//! `retired_kept`, longer than any token it signed lives.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::crypto::{SealingKey, random_alphanumeric};
use crate::model::{KeyState, SigningKeyRecord};
use crate::store::{Store, StoreError};

struct LoadedKey {
    kid: String,
    pair: EcdsaKeyPair,
}

/// One reading of the stored keys: the current private key, and the public keys of every
/// key a token may carry (next, current, recently retired) by kid.
pub struct KeySet {
    current: LoadedKey,
    /// When the current key became current (for the rotation schedule).
    current_since: OffsetDateTime,
    next_kid: Option<String>,
    public: HashMap<String, Vec<u8>>,
    jwks: serde_json::Value,
    /// The stored (kid, state) pairs this set was built from: a reload that reads the same
    /// keeps the set.
    read: Vec<(String, KeyState)>,
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
    /// The set `records` describe at `now`: retired keys older than `retired_kept` are left
    /// out (nothing they signed is still valid).
    fn from_records(
        records: &[SigningKeyRecord],
        sealing: &SealingKey,
        now: OffsetDateTime,
        retired_kept: Duration,
    ) -> Result<KeySet, KeyError> {
        let mut public = HashMap::new();
        // Current first (the key a client that takes the first entry should use), then
        // next, then retired.
        let (mut current_jwk, mut next_jwk, mut retired_jwks) = (None, None, Vec::new());
        let mut current = None;
        let mut next_kid = None;
        let mut read = Vec::new();
        let published = records.iter().filter(|r| {
            r.alg == trilo_protocol::jwt::ALG
                && (r.state != KeyState::Retired
                    || r.retired_at.is_some_and(|at| now < at + retired_kept))
        });
        for r in published {
            let pkcs8 = sealing
                .open(&r.private_key_encrypted)
                .map_err(|_| KeyError::CannotDecrypt)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                .map_err(|_| KeyError::Damaged)?;
            public.insert(r.kid.clone(), pair.public_key().as_ref().to_vec());
            let jwk = public_jwk(&r.kid, pair.public_key().as_ref())?;
            read.push((r.kid.clone(), r.state));
            match r.state {
                KeyState::Current => {
                    current_jwk = Some(jwk);
                    current = Some((
                        LoadedKey {
                            kid: r.kid.clone(),
                            pair,
                        },
                        r.activated_at.unwrap_or(r.created_at),
                    ));
                }
                KeyState::Next => {
                    next_kid = Some(r.kid.clone());
                    next_jwk = Some(jwk);
                }
                KeyState::Retired => retired_jwks.push(jwk),
            }
        }
        let (current, current_since) = current.ok_or(KeyError::Damaged)?;
        let jwks: Vec<_> = current_jwk
            .into_iter()
            .chain(next_jwk)
            .chain(retired_jwks.into_iter().rev())
            .collect();
        Ok(KeySet {
            current,
            current_since,
            next_kid,
            public,
            jwks: json!({ "keys": jwks }),
            read,
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

    /// The JWK Set document (RFC 7517 §5): current, next, then recently retired keys.
    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    /// The key the next rotation makes current.
    pub fn next_kid(&self) -> Option<&str> {
        self.next_kid.as_deref()
    }

    /// When the current key became current.
    pub fn current_since(&self) -> OffsetDateTime {
        self.current_since
    }
}

/// The keys an instance signs and verifies with: a [`KeySet`] replaced whole when the
/// stored keys change (a rotation here, elsewhere or by the CLI), so a signer always takes
/// one snapshot and never pairs one key's kid with another's signature.
pub struct KeyRing {
    set: RwLock<Arc<KeySet>>,
    sealing: SealingKey,
    retired_kept: Duration,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("set", &*self.snapshot())
            .finish_non_exhaustive()
    }
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotated {
    pub retired: String,
    pub current: String,
    pub next: String,
}

impl KeyRing {
    /// Loads the keys from the store, first adding a current and a next key if either is
    /// missing (first start, or a database from before rotation).
    pub async fn load_or_create(
        store: &dyn Store,
        sealing: &SealingKey,
        retired_kept: Duration,
        now: OffsetDateTime,
    ) -> Result<KeyRing, KeyError> {
        let records = complete(store, sealing, now).await?;
        let set = KeySet::from_records(&records, sealing, now, retired_kept)?;
        Ok(KeyRing {
            set: RwLock::new(Arc::new(set)),
            sealing: sealing.clone(),
            retired_kept,
        })
    }

    /// The keys as last read: sign and name the kid from the same snapshot.
    pub fn snapshot(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the stored keys again; returns whether the set changed.
    pub async fn reload(&self, store: &dyn Store, now: OffsetDateTime) -> Result<bool, KeyError> {
        let records = store.signing_keys().await?;
        self.install(&records, now)
    }

    fn install(&self, records: &[SigningKeyRecord], now: OffsetDateTime) -> Result<bool, KeyError> {
        let set = KeySet::from_records(records, &self.sealing, now, self.retired_kept)?;
        let mut slot = self.set.write().unwrap_or_else(|e| e.into_inner());
        if slot.read == set.read {
            return Ok(false);
        }
        *slot = Arc::new(set);
        Ok(true)
    }

    /// Whether the current key has been current for `rotate_every` or longer.
    pub fn rotation_due(&self, now: OffsetDateTime, rotate_every: Duration) -> bool {
        now >= self.snapshot().current_since + rotate_every
    }

    /// Retires the current key, makes the next current and adds a new next. `Ok(None)`
    /// when another instance rotated the same keys first (this ring then holds theirs), or,
    /// with `only_if_due`, when the keys just read are not due for rotation: a schedule
    /// that found the keys due may have been beaten by another instance's rotation (or by
    /// this instance's own), and must not rotate the keys that rotation made.
    pub async fn rotate(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
        only_if_due: Option<Duration>,
    ) -> Result<Option<Rotated>, KeyError> {
        let records = complete(store, &self.sealing, now).await?;
        self.install(&records, now)?;
        if only_if_due.is_some_and(|every| !self.rotation_due(now, every)) {
            return Ok(None);
        }
        let set = self.snapshot();
        let next = set.next_kid().ok_or(KeyError::Damaged)?.to_owned();
        let new_next = generate(&self.sealing, KeyState::Next, now)?;
        let outcome = store
            .rotate_signing_keys(set.current_kid(), &next, &new_next, now)
            .await;
        let rotated = match outcome {
            Ok(()) => Some(Rotated {
                retired: set.current_kid().to_owned(),
                current: next,
                next: new_next.kid,
            }),
            Err(StoreError::Conflict { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        self.reload(store, now).await?;
        Ok(rotated)
    }

    // Shorthands over one snapshot, for callers that use the keys once.

    pub fn current_kid(&self) -> String {
        self.snapshot().current_kid().to_owned()
    }

    pub fn verify(&self, kid: &str, message: &[u8], signature: &[u8]) -> bool {
        self.snapshot().verify(kid, message, signature)
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.snapshot().jwks().clone()
    }
}

/// The stored keys, after adding a current and a next key where missing. Two instances
/// doing this at once: the one-per-state indexes refuse the second, which reads again.
async fn complete(
    store: &dyn Store,
    sealing: &SealingKey,
    now: OffsetDateTime,
) -> Result<Vec<SigningKeyRecord>, KeyError> {
    for _ in 0..4 {
        let records = store.signing_keys().await?;
        let missing = [KeyState::Current, KeyState::Next]
            .into_iter()
            .find(|state| !records.iter().any(|r| r.state == *state));
        let Some(state) = missing else {
            return Ok(records);
        };
        match store
            .insert_signing_key(&generate(sealing, state, now)?)
            .await
        {
            Ok(()) | Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(KeyError::Store(StoreError::Unavailable(
        "could not establish a current and a next signing key".into(),
    )))
}

fn generate(
    sealing: &SealingKey,
    state: KeyState,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, KeyError> {
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
        state,
        private_key_encrypted: sealing.seal(pkcs8.as_ref()),
        public_jwk: jwk.to_string(),
        created_at: now,
        activated_at: (state == KeyState::Current).then_some(now),
        retired_at: None,
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
