//! The refresh token's shape: `rt1_{family_id}_{generation}_{secret}`, the secret 256
//! bits in base64url (43 characters). The token says where it is stored, so a refresh
//! finds it by its family and generation (the primary key of `refresh_tokens`, which
//! keeps a family's tokens together) instead of through an index of random hashes, and a
//! rotation's parent and child land on the same page. The store still checks the SHA-256
//! of the whole token: a token whose family or generation was changed matches no row and
//! is refused like any unknown token, and no family is touched (security checklist F11).
//!
//! Tokens issued before this shape (43 characters, a bare secret) are still found by their
//! hash: migration 0018 keeps one index over them alone ([`Presented::Legacy`]).

use crate::crypto::sha256;
use crate::model::{RefreshTokenKey, TokenHash};

const PREFIX: &str = "rt1_";
/// The length of a bare 256-bit secret in base64url without padding.
const SECRET_LEN: usize = 43;

/// A refresh token for `secret` stored as `generation` of `family_id`.
pub fn refresh_token(family_id: &str, generation: i64, secret: &str) -> String {
    debug_assert!(
        !family_id.contains('_') && !family_id.is_empty(),
        "family ids are UUIDs"
    );
    format!("{PREFIX}{family_id}_{generation}_{secret}")
}

/// What a presented refresh token says about where it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presented {
    /// A token of today's shape: its family, generation and hash.
    Keyed(RefreshTokenKey),
    /// A bare secret issued before tokens carried their key: found by its hash.
    Legacy(TokenHash),
    /// Neither shape: no token of trilo's, refused without asking the store.
    Malformed,
}

/// Reads a presented refresh token's shape; nothing here says it is valid.
pub fn presented(token: &str) -> Presented {
    if token.len() == SECRET_LEN && token.bytes().all(is_base64url) {
        return Presented::Legacy(sha256(token));
    }
    let Some(rest) = token.strip_prefix(PREFIX) else {
        return Presented::Malformed;
    };
    let mut parts = rest.splitn(3, '_');
    let (Some(family_id), Some(generation), Some(secret)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Presented::Malformed;
    };
    let generation = match generation.parse::<i64>() {
        // Only the canonical decimal form: `+1` or `01` would name the same row with
        // another hash, which matches nothing anyway, but is not a token we issued.
        Ok(g) if g >= 0 && g.to_string() == generation => g,
        _ => return Presented::Malformed,
    };
    let family_ok = !family_id.is_empty()
        && family_id.len() <= 64
        && family_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !family_ok || secret.len() != SECRET_LEN || !secret.bytes().all(is_base64url) {
        return Presented::Malformed;
    }
    Presented::Keyed(RefreshTokenKey {
        family_id: family_id.to_owned(),
        generation,
        token_hash: sha256(token),
    })
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::random_token;

    const FAMILY: &str = "019ae5b2-4c1f-7c3a-9d2e-5b8f0a1c2d3e";

    #[test]
    fn a_token_names_its_family_and_generation() {
        let secret = random_token();
        let token = refresh_token(FAMILY, 41, &secret);
        assert_eq!(
            presented(&token),
            Presented::Keyed(RefreshTokenKey {
                family_id: FAMILY.to_owned(),
                generation: 41,
                token_hash: sha256(&token),
            })
        );
    }

    #[test]
    fn a_bare_secret_is_a_legacy_token_found_by_its_hash() {
        let secret = random_token();
        assert_eq!(presented(&secret), Presented::Legacy(sha256(&secret)));
    }

    #[test]
    fn anything_else_is_malformed() {
        let secret = random_token();
        for token in [
            String::new(),
            "garbage".to_owned(),
            format!("{PREFIX}{FAMILY}_1"),
            format!("{PREFIX}{FAMILY}_-1_{secret}"),
            format!("{PREFIX}{FAMILY}_01_{secret}"),
            format!("{PREFIX}{FAMILY}_+1_{secret}"),
            format!("{PREFIX}{FAMILY}_x_{secret}"),
            format!("{PREFIX}_1_{secret}"),
            format!("{PREFIX}{FAMILY}_1_{secret}x"),
            format!("{PREFIX}{FAMILY}_1_{}", &secret[1..]),
            format!("{PREFIX}fam ily_1_{secret}"),
            format!("rt2_{FAMILY}_1_{secret}"),
            format!("{secret}="),
        ] {
            assert_eq!(presented(&token), Presented::Malformed, "{token:?}");
        }
    }
}
