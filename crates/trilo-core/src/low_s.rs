//! One spelling per ES256 signature (issue 16): ECDSA signatures are malleable, `(r, s)`
//! and `(r, n − s)` both verify, so trilo issues only the low-S form (`s ≤ n/2`) and
//! refuses the high-S one. A token then has exactly one valid encoding, so its hash (the
//! gateway's cache key) cannot be varied by re-spelling the signature.

/// The order n of the P-256 group, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// ⌊n/2⌋, big-endian.
const HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42, 0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8,
];

/// Whether a fixed-length `r || s` signature (RFC 7518 §3.4) has a low `s`. Anything
/// that is not 64 bytes is not.
pub fn is_low_s(signature: &[u8]) -> bool {
    signature.len() == 64 && signature[32..] <= HALF_N[..]
}

/// Rewrites a fixed-length `r || s` signature into its low-S form (`s := n − s` when
/// `s > n/2`); other lengths are left alone.
pub fn normalize(signature: &mut [u8]) {
    if signature.len() != 64 || is_low_s(signature) {
        return;
    }
    negate_s(signature);
}

/// `s := n − s` in a 64-byte `r || s`: the signature's other valid spelling (tests use it
/// to forge the high-S form). Other lengths are left alone.
pub fn negate_s(signature: &mut [u8]) {
    if signature.len() != 64 {
        return;
    }
    let s = &mut signature[32..];
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let minuend = u16::from(N[i]);
        let subtrahend = u16::from(s[i]) + borrow;
        let (digit, next) = if minuend >= subtrahend {
            (minuend - subtrahend, 0)
        } else {
            (minuend + 256 - subtrahend, 1)
        };
        s[i] = u8::try_from(digit).unwrap_or(0);
        borrow = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_n_is_n_shifted_right() {
        let mut carry = 0u8;
        let mut half = [0u8; 32];
        for (i, byte) in N.iter().enumerate() {
            half[i] = (byte >> 1) | (carry << 7);
            carry = byte & 1;
        }
        assert_eq!(half, HALF_N);
    }

    #[test]
    fn a_high_s_becomes_n_minus_s_and_a_low_one_stays() {
        let mut sig = [0u8; 64];
        sig[32..].copy_from_slice(&N);
        sig[63] -= 1; // s = n − 1, high
        assert!(!is_low_s(&sig));
        normalize(&mut sig);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(&sig[32..], &one, "n − (n − 1) = 1");
        assert!(is_low_s(&sig));
        let mut half = [0u8; 64];
        half[32..].copy_from_slice(&HALF_N);
        assert!(is_low_s(&half));
        let before = half;
        normalize(&mut half);
        assert_eq!(half, before);
        assert!(!is_low_s(&[0u8; 63]));
    }
}
