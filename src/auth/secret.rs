//! `{data_dir}/secret`: 32 random bytes, made on first use with mode 0600, the key of every keyed
//! hash (token hashes, credential cache keys, session cookies).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::fsfile;

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
}
