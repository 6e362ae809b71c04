//! The refresh token's shapes. Every token issued now is `rt2_{family_id}_{generation}_{mac}`:
//! kept in its family's row ([`TokenKeeping::Family`]), its secret `mac` derived from the
//! server's key and the family and generation ([`KeptTokens`]), 256 bits in base64url (43
//! characters). Nothing of the token is stored: its family's row says which generation is
//! the head, when it was issued and when it ends ([`crate::model::KeptHead`]). A token
//! whose family, generation or secret was changed fails its MAC and is refused like any
//! unknown token, before the store is asked, and no family is touched (security checklist
//! F11); any generation the family issued checks out, so reuse of an old one is caught.
//!
//! Tokens issued before migration 0020 keep their rows in `refresh_tokens`
//! ([`TokenKeeping::Row`]), and so do their successors:
//! - `rt1_{family_id}_{generation}_{secret}`, a random secret, found by family and
//!   generation (the primary key) and checked against the SHA-256 of the whole token;
//! - a bare secret (43 characters), older still, found by its hash: migration 0018 keeps
//!   one index over them alone ([`Presented::Legacy`]).

use crate::crypto::{KeptTokens, sha256};
use crate::model::{RefreshTokenKey, TokenHash, TokenKeeping};

const KEPT_PREFIX: &str = "rt2_";
const STORED_PREFIX: &str = "rt1_";
/// The length of a bare 256-bit secret in base64url without padding.
const SECRET_LEN: usize = 43;

/// The token of `generation` of `family_id`, kept in the family's row.
pub fn kept_refresh_token(keys: &KeptTokens, family_id: &str, generation: i64) -> String {
    let secret = keys.secret(family_id, generation);
    named_token(KEPT_PREFIX, family_id, generation, &secret)
}

/// A token with its own row: `secret` stored as `generation` of `family_id`.
pub fn stored_refresh_token(family_id: &str, generation: i64, secret: &str) -> String {
    named_token(STORED_PREFIX, family_id, generation, secret)
}

/// `{prefix}{family_id}_{generation}_{secret}`, the text [`named_parts`] reads back.
fn named_token(prefix: &str, family_id: &str, generation: i64, secret: &str) -> String {
    debug_assert!(
        !family_id.contains('_') && !family_id.is_empty(),
        "family ids are UUIDs"
    );
    format!("{prefix}{family_id}_{generation}_{secret}")
}

/// What a presented refresh token says about where it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// A token that names its family and generation: kept by the family (its MAC checked
    /// out) or in its own row (its hash still to be matched).
    Keyed(RefreshTokenKey),
    /// A bare secret issued before tokens carried their key: found by its hash.
    Legacy(TokenHash),
    /// No token of trilo's (no known shape, or a kept token whose MAC fails): refused
    /// without asking the store.
    Malformed,
}

/// Reads a presented refresh token's shape and, for a kept token, checks its MAC; nothing
/// here says the token is live.
pub fn presented(token: &str, keys: &KeptTokens) -> Presented {
    if token.len() == SECRET_LEN && token.bytes().all(is_base64url) {
        return Presented::Legacy(sha256(token));
    }
    let (kept, rest) = if let Some(rest) = token.strip_prefix(KEPT_PREFIX) {
        (TokenKeeping::Family, rest)
    } else if let Some(rest) = token.strip_prefix(STORED_PREFIX) {
        (TokenKeeping::Row, rest)
    } else {
        return Presented::Malformed;
    };
    let Some((family_id, generation, secret)) = named_parts(rest) else {
        return Presented::Malformed;
    };
    if kept == TokenKeeping::Family && !keys.verify(family_id, generation, secret) {
        return Presented::Malformed;
    }
    Presented::Keyed(RefreshTokenKey {
        family_id: family_id.to_owned(),
        generation,
        token_hash: sha256(token),
        kept,
    })
}

/// `{family_id}_{generation}_{secret}`, each part in its one canonical form.
fn named_parts(rest: &str) -> Option<(&str, i64, &str)> {
    let mut parts = rest.splitn(3, '_');
    let (family_id, generation, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let generation = match generation.parse::<i64>() {
        // Only the canonical decimal form: `+1` or `01` would name the same generation
        // with another text, which is not a token we issued.
        Ok(g) if g >= 0 && g.to_string() == generation => g,
        _ => return None,
    };
    let family_ok = !family_id.is_empty()
        && family_id.len() <= 64
        && family_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(is_base64url);
    (family_ok && secret_ok).then_some((family_id, generation, secret))
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{SealingKey, random_token};

    const FAMILY: &str = "019ae5b2-4c1f-7c3a-9d2e-5b8f0a1c2d3e";

    fn keys() -> KeptTokens {
        KeptTokens::new(&SealingKey::new(&[7u8; 32]))
    }

    #[test]
    fn a_token_names_its_family_and_generation_and_how_it_is_kept() {
        let kept = kept_refresh_token(&keys(), FAMILY, 41);
        let stored = stored_refresh_token(FAMILY, 41, &random_token());
        for (token, prefix, how) in [
            (kept, "rt2_", TokenKeeping::Family),
            (stored, "rt1_", TokenKeeping::Row),
        ] {
            assert!(token.starts_with(prefix), "{token}");
            assert_eq!(
                presented(&token, &keys()),
                Presented::Keyed(RefreshTokenKey {
                    family_id: FAMILY.to_owned(),
                    generation: 41,
                    token_hash: sha256(&token),
                    kept: how,
                })
            );
        }
    }

    #[test]
    fn a_kept_token_changed_anywhere_or_of_another_key_is_malformed() {
        let token = kept_refresh_token(&keys(), FAMILY, 41);
        let secret = token.rsplit('_').next().unwrap_or_default().to_owned();
        let other_key = KeptTokens::new(&SealingKey::new(&[8u8; 32]));
        let mut last_changed = token.clone();
        let last = last_changed.pop().unwrap_or('A');
        last_changed.push(if last == 'A' { 'B' } else { 'A' });
        for forged in [
            format!("rt2_{FAMILY}_42_{secret}"),
            format!("rt2_019ae5b2-4c1f-7c3a-9d2e-5b8f0a1c2d3f_41_{secret}"),
            last_changed,
            kept_refresh_token(&other_key, FAMILY, 41),
            format!("rt2_{FAMILY}_41_{}", random_token()),
        ] {
            assert_eq!(
                presented(&forged, &keys()),
                Presented::Malformed,
                "{forged}"
            );
        }
    }

    #[test]
    fn a_bare_secret_is_a_legacy_token_found_by_its_hash() {
        let secret = random_token();
        assert_eq!(
            presented(&secret, &keys()),
            Presented::Legacy(sha256(&secret))
        );
    }

    #[test]
    fn anything_else_is_malformed() {
        let secret = random_token();
        for prefix in [STORED_PREFIX, KEPT_PREFIX] {
            for token in [
                format!("{prefix}{FAMILY}_1"),
                format!("{prefix}{FAMILY}_-1_{secret}"),
                format!("{prefix}{FAMILY}_01_{secret}"),
                format!("{prefix}{FAMILY}_+1_{secret}"),
                format!("{prefix}{FAMILY}_x_{secret}"),
                format!("{prefix}_1_{secret}"),
                format!("{prefix}{FAMILY}_1_{secret}x"),
                format!("{prefix}{FAMILY}_1_{}", &secret[1..]),
                format!("{prefix}fam ily_1_{secret}"),
            ] {
                assert_eq!(
                    presented(&token, &keys()),
                    Presented::Malformed,
                    "{token:?}"
                );
            }
        }
        for token in [
            String::new(),
            "garbage".to_owned(),
            format!("rt3_{FAMILY}_1_{secret}"),
            format!("{secret}="),
        ] {
            assert_eq!(
                presented(&token, &keys()),
                Presented::Malformed,
                "{token:?}"
            );
        }
    }
}
