//! Keyed hashes: HMAC-SHA256 under a key, for one named purpose, as hex; and a comparison whose
//! time does not depend on where two strings differ.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::fsfile;

/// Hex HMAC-SHA256 of `data` under `key`, for the purpose `label`: a label keeps hashes made
/// for one use (tokens) from ever equalling those made for another (cache keys, cookies).
pub(crate) fn keyed_hash(key: &[u8], label: &str, data: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(label.as_bytes());
    mac.update(&[0]);
    mac.update(data);
    fsfile::hex(&mac.finalize().into_bytes())
}

/// Compares two strings in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_hashes_depend_on_key_label_and_data() {
        let h = keyed_hash(b"k", "token", b"x");
        assert_eq!(h.len(), 64);
        assert_eq!(h, keyed_hash(b"k", "token", b"x"));
        assert_ne!(h, keyed_hash(b"K", "token", b"x"));
        assert_ne!(h, keyed_hash(b"k", "cache", b"x"));
        assert_ne!(h, keyed_hash(b"k", "token", b"y"));
        assert!(constant_time_eq(b"ab", b"ab"));
        assert!(!constant_time_eq(b"ab", b"ac") && !constant_time_eq(b"ab", b"abc"));
    }
}
