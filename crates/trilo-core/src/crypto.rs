//! Randomness, hashing, encryption at rest and password hashing.
//!
//! Generated secrets (codes, tokens, client secrets, session ids) carry 256 bits from the
//! OS CSPRNG and are stored as SHA-256 hashes, so checking them needs no slow hash
//! (DESIGN §4). argon2id is for human passwords only and runs off the async threads with a
//! cap on concurrent work, so password guessing cannot starve the server.

use std::sync::{Arc, LazyLock};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::model::TokenHash;

/// Random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // aws-lc's RNG only fails if the OS cannot provide entropy; there is no safe fallback.
    if aws_lc_rs::rand::fill(&mut buf).is_err() {
        panic_no_entropy();
    }
    buf
}

#[allow(
    clippy::panic,
    reason = "no secure way to continue without OS randomness"
)]
fn panic_no_entropy() -> ! {
    panic!("the operating system's random number generator failed")
}

/// A 256-bit random token, base64url without padding (43 characters).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A random identifier of `len` characters from `[a-zA-Z0-9]` (client ids).
pub fn random_alphanumeric(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for b in random_bytes::<64>() {
            // 62 * 4 = 248: rejecting bytes ≥ 248 keeps the choice uniform.
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

pub fn sha256(value: &str) -> TokenHash {
    Sha256::digest(value.as_bytes()).into()
}

/// Constant-time equality of two hashes.
pub fn hashes_equal(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

/// Encrypts data at rest (signing keys) with AES-256-GCM; the random nonce is prepended.
/// It also derives the other server secrets from the same key-encryption key, so every
/// instance that shares the key shares them.
#[derive(Clone)]
pub struct SealingKey(Arc<LessSafeKey>, Arc<hmac::Key>);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([redacted])")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("could not decrypt: wrong key or damaged data")]
pub struct OpenError;

impl SealingKey {
    pub fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is always valid for AES-256-GCM.
        let unbound = UnboundKey::new(&AES_256_GCM, key).unwrap_or_else(|_| unreachable_key());
        let subkeys = hmac::Key::new(hmac::HMAC_SHA256, key);
        Self(Arc::new(LessSafeKey::new(unbound)), Arc::new(subkeys))
    }

    /// A 256-bit secret for one purpose, derived from the key-encryption key (HMAC-SHA-256
    /// of the purpose's label): independent of the sealing key and of every other label.
    pub fn subkey(&self, label: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&self.1, label.as_bytes()).as_ref());
        out
    }

    /// An HMAC-SHA-256 key for one purpose, keyed by [`SealingKey::subkey`] of its label.
    pub fn mac_key(&self, label: &str) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &self.subkey(label))
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut in_out = plaintext.to_vec();
        let nonce = Nonce::assume_unique_for_key(nonce_bytes);
        if self
            .0
            .seal_in_place_append_tag(nonce, Aad::from(b"trilo-v1"), &mut in_out)
            .is_err()
        {
            unreachable_key();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&in_out);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(b"trilo-v1"), &mut in_out)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

/// Derives each refresh token's successor from the token itself: `child = HMAC(key,
/// parent)`. Racing or retried refreshes of one token, on any instance, therefore name the
/// same child without the store ever holding a token in the clear (DESIGN §3: inside the
/// leeway the previous token gets *the same* current token back).
#[derive(Clone)]
pub struct ChildTokens(hmac::Key);

impl std::fmt::Debug for ChildTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildTokens([redacted])")
    }
}

impl ChildTokens {
    pub fn new(sealing: &SealingKey) -> Self {
        Self(sealing.mac_key("trilo refresh-token successor v1"))
    }

    /// The successor of `parent`: 256 bits, base64url like every generated token.
    pub fn child_of(&self, parent: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, parent.as_bytes()).as_ref())
    }
}

/// The secrets of refresh tokens kept in their family's row (`crate::refresh_token`):
/// generation `g` of family `f` is `HMAC(key, f + ":" + g)`. Only a holder of the
/// key-encryption key can name a token, so one that checks out was issued by trilo, and a
/// copy of the database holds none. Racing refreshes on any instance name the same
/// successor, as [`ChildTokens`] does for stored tokens.
#[derive(Clone)]
pub struct KeptTokens(hmac::Key);

impl std::fmt::Debug for KeptTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeptTokens([redacted])")
    }
}

impl KeptTokens {
    pub fn new(sealing: &SealingKey) -> Self {
        Self(sealing.mac_key("trilo refresh token kept by its family v2"))
    }

    /// The secret of generation `generation` of `family_id`: 256 bits in base64url.
    pub fn secret(&self, family_id: &str, generation: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(family_id, generation).as_ref())
    }

    /// Whether `secret` is that generation's, compared in constant time.
    pub fn verify(&self, family_id: &str, generation: i64, secret: &str) -> bool {
        let mut decoded = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(secret, &mut decoded) {
            Ok(32) => {
                let expected = self.mac(family_id, generation);
                expected.as_ref().ct_eq(&decoded).into()
            }
            _ => false,
        }
    }

    fn mac(&self, family_id: &str, generation: i64) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(family_id.as_bytes());
        ctx.update(b":");
        ctx.update(generation.to_string().as_bytes());
        ctx.sign()
    }
}

/// The secrets of webhooks, derived rather than stored: a subscription's signing secret
/// is `HMAC(key, "subscription:" + id)` and a product's event-ingest secret
/// `HMAC(key, "product:" + key)`, so a copy of the database signs nothing and reads no
/// secret. Every instance sharing the key-encryption key derives the same ones.
#[derive(Clone)]
pub struct WebhookSecrets(hmac::Key);

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecrets([redacted])")
    }
}

impl WebhookSecrets {
    pub fn new(sealing: &SealingKey) -> Self {
        Self(sealing.mac_key("trilo webhook secrets v1"))
    }

    fn derive(&self, label: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, label.as_bytes()).as_ref())
    }

    /// The secret a subscription's deliveries are signed with (shown to its developer).
    pub fn subscription_secret(&self, subscription_id: &str) -> String {
        self.derive(&format!("subscription:{subscription_id}"))
    }

    /// The secret a product presents to post its events.
    pub fn product_secret(&self, product_key: &str) -> String {
        self.derive(&format!("product:{product_key}"))
    }

    /// Whether `presented` is the product's secret (constant time).
    pub fn is_product_secret(&self, product_key: &str, presented: &str) -> bool {
        let expected = self.product_secret(product_key);
        expected.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

/// HMAC-SHA-256 of `message` keyed with `secret`: a webhook request's signature.
pub fn hmac_sha256(secret: &str, message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    hmac::sign(&key, message).as_ref().to_vec()
}

/// A uniform number in `[0, 1)` for jitter.
pub fn random_unit() -> f64 {
    let bits = u64::from_le_bytes(random_bytes::<8>()) >> 11;
    // 53 random bits: exactly representable.
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1_u64 << 53) as f64;
    unit
}

#[allow(clippy::panic, reason = "AES-256-GCM with a 32-byte key cannot fail")]
fn unreachable_key() -> ! {
    panic!("AES-256-GCM rejected a 32-byte key")
}

/// At most this many argon2 computations run at once (each takes ~19 MiB and tens of ms).
static PASSWORD_WORK: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(2));

/// A PHC string of a password nobody knows, so unknown accounts cost the same as known
/// ones (no user enumeration by timing).
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password_blocking("trilo-dummy-password").unwrap_or_default());

fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    use argon2::PasswordHasher;
    Ok(argon2::Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_password_blocking(password: &str, phc: &str) -> bool {
    use argon2::PasswordVerifier;
    let Ok(parsed) = argon2::password_hash::phc::PasswordHash::new(phc) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Hashes a password with argon2id (default parameters) off the async threads.
pub async fn hash_password(password: String) -> anyhow::Result<String> {
    let _permit = PASSWORD_WORK.acquire().await?;
    let hash = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await?;
    hash.map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

/// Verifies a password against a PHC string; with `None`, verifies against a dummy hash
/// and returns false, taking the same time.
pub async fn verify_password(password: String, phc: Option<String>) -> anyhow::Result<bool> {
    let _permit = PASSWORD_WORK.acquire().await?;
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| DUMMY_HASH.clone());
    let ok = tokio::task::spawn_blocking(move || verify_password_blocking(&password, &phc)).await?;
    Ok(ok && known)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let t = random_token();
            assert_eq!(t.len(), 43);
            assert!(
                t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(t));
        }
    }

    #[test]
    fn alphanumeric_ids() {
        let id = random_alphanumeric(32);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn sealing_round_trips_and_detects_tampering() {
        let key = SealingKey::new(&[7u8; 32]);
        let sealed = key.seal(b"secret key material");
        assert_eq!(key.open(&sealed).unwrap(), b"secret key material");
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(key.open(&bad).is_err());
        assert!(SealingKey::new(&[8u8; 32]).open(&sealed).is_err());
    }

    #[test]
    fn child_tokens_are_deterministic_per_key_and_parent() {
        let a = ChildTokens::new(&SealingKey::new(&[7u8; 32]));
        let b = ChildTokens::new(&SealingKey::new(&[7u8; 32]));
        let other_key = ChildTokens::new(&SealingKey::new(&[8u8; 32]));
        let child = a.child_of("parent-token");
        assert_eq!(child.len(), 43);
        assert_eq!(child, b.child_of("parent-token"));
        assert_ne!(child, a.child_of("parent-tokem"));
        assert_ne!(child, other_key.child_of("parent-token"));
        assert_ne!(child, "parent-token");
    }

    #[test]
    fn subkeys_differ_by_label() {
        let key = SealingKey::new(&[7u8; 32]);
        assert_eq!(key.subkey("a"), key.subkey("a"));
        assert_ne!(key.subkey("a"), key.subkey("b"));
        assert_ne!(key.subkey("a"), [7u8; 32]);
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), Some(hash)).await.unwrap());
        assert!(
            !verify_password("trilo-dummy-password".into(), None)
                .await
                .unwrap()
        );
    }
}
