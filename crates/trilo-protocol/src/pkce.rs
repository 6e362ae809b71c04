//! PKCE (RFC 7636): challenge and verifier syntax, and the S256 check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Only S256 is accepted; `plain` is refused (security checklist P3).
pub const SUPPORTED_METHODS: [&str; 1] = ["S256"];

/// RFC 7636 §4.1: 43–128 characters of `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`.
/// The same syntax is required of challenges (§4.2, S256 output is 43 characters).
pub fn is_valid_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is the unpadded base64url of a SHA-256: exactly 43 characters.
pub fn is_valid_s256_challenge(value: &str) -> bool {
    value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// `BASE64URL(SHA256(verifier))`, RFC 7636 §4.2.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.6: the verifier must be well formed and hash to the stored challenge.
/// Compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    is_valid_verifier(verifier)
        && s256_challenge(verifier)
            .as_bytes()
            .ct_eq(challenge.as_bytes())
            .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert!(verify_s256(VERIFIER, CHALLENGE));
        assert!(is_valid_s256_challenge(CHALLENGE));
    }

    #[test]
    fn wrong_verifier_fails() {
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
        assert!(!verify_s256(other, CHALLENGE));
    }

    #[test]
    fn verifier_syntax_per_security_checklist_p6() {
        assert!(!is_valid_verifier(&"a".repeat(42)));
        assert!(is_valid_verifier(&"a".repeat(43)));
        assert!(is_valid_verifier(&"a".repeat(128)));
        assert!(!is_valid_verifier(&"a".repeat(129)));
        for bad in ['+', '/', '='] {
            let v = format!("{}{bad}", "a".repeat(43));
            assert!(!is_valid_verifier(&v), "{v}");
        }
    }
}
