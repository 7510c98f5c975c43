//! Personal access tokens: `flt_` and 40 hex digits (20 random bytes). Only a keyed hash of a
//! token is stored; the plaintext is shown once, when it is made.

use crate::fsfile::hex;

/// What every token starts with, so secret scanners and people can tell one on sight.
pub(crate) const PREFIX: &str = "flt_";
const RANDOM_BYTES: usize = 20;

/// A fresh token's plaintext.
pub(crate) fn generate() -> Result<String, String> {
    let mut r = [0u8; RANDOM_BYTES];
    getrandom::getrandom(&mut r).map_err(|e| format!("no randomness for a token: {e}"))?;
    Ok(format!("{PREFIX}{}", hex(&r)))
}

/// True when `s` has the shape of a token (cheap test before any hashing).
pub(crate) fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(PREFIX).is_some_and(|h| {
        h.len() == 2 * RANDOM_BYTES
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A token's name: 1-64 letters, digits, '.', '_' or '-' (it shows up in lists and commands).
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// A stored token hash: 64 lower-case hex digits (HMAC-SHA256).
pub(crate) fn valid_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_their_shape() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 44);
        assert!(looks_like_token(&a), "{a}");
        for bad in [
            "",
            "flt_",
            "flt_xyz",
            "FLT_0123456789012345678901234567890123456789",
            &a[1..],
        ] {
            assert!(!looks_like_token(bad), "{bad}");
        }
        assert!(valid_name("laptop-2") && !valid_name("") && !valid_name("a b"));
        assert!(valid_hash(&"0a".repeat(32)) && !valid_hash(&"0A".repeat(32)));
    }
}
