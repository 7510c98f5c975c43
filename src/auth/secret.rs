//! `{data_dir}/secret`: 32 random bytes, made on first use with mode 0600, the key of every keyed
//! hash (token hashes, credential cache keys, session cookies).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::fsfile;

pub(crate) const SECRET_LEN: usize = 32;

/// Reads the secret, making it first when there is none. Two processes starting at once
/// end up with the same secret (see [`fsfile::create_once`]).
pub(crate) fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, String> {
    let path = data_dir.join("secret");
    let bytes = match fsfile::read_optional(&path)? {
        Some(b) => b,
        None => {
            let mut fresh = [0u8; SECRET_LEN];
            getrandom::getrandom(&mut fresh)
                .map_err(|e| format!("cannot make {}: no randomness: {e}", path.display()))?;
            let got = fsfile::create_once(&path, &fresh, 0o600)?;
            if got == fresh {
                log::info!("made a new secret in {}", path.display());
            }
            got
        }
    };
    if bytes.len() < SECRET_LEN {
        return Err(format!(
            "{} holds {} bytes, expected {SECRET_LEN} random bytes; remove it to have a new one made (this signs everyone out and invalidates every personal access token)",
            path.display(),
            bytes.len()
        ));
    }
    if let Ok(m) = fs::metadata(&path) {
        if m.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "{} can be read by other users (mode {:o}); it should be 0600",
                path.display(),
                m.permissions().mode() & 0o7777
            );
        }
    }
    Ok(bytes)
}

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
    fn secret_is_made_once_with_mode_0600() {
        let d = std::env::temp_dir().join(format!("forgelet-secret-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let d = d.clone();
                std::thread::spawn(move || load_or_create(&d).unwrap())
            })
            .collect();
        let got: Vec<Vec<u8>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(got.iter().all(|s| s == &got[0] && s.len() == SECRET_LEN));
        let mode = fs::metadata(d.join("secret")).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600);
        assert_eq!(load_or_create(&d).unwrap(), got[0]);
        fs::write(d.join("secret"), b"short").unwrap();
        assert!(load_or_create(&d).unwrap_err().contains("expected 32"));
        fs::remove_dir_all(&d).unwrap();
    }

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
