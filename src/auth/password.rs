//! Password hashing: argon2id with OWASP's minimum cost (19 MiB, 2 passes, 1 lane), stored as a
//! PHC string. Unknown user names are checked against a dummy hash of the same cost, so the time
//! an answer takes does not tell whether a name exists.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Memory in KiB, passes, lanes.
const M_COST: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Shortest password accepted, in characters.
pub(crate) const MIN_LEN: usize = 8;
/// Longest password accepted, in bytes (argon2 takes any length; this only bounds the input).
pub(crate) const MAX_LEN: usize = 1024;

/// A well-formed hash with the same parameters as real ones, matching no password anyone types:
/// verifying against it costs what verifying a real one does.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$ZG9lcy1ub3QtZXhpc3Q$UXO+tUHZ0J1zMMUbzOjxlHHtlQRflhEhjQAZwXv4dJw";

fn hasher() -> Argon2<'static> {
    // The constants are within argon2's limits, so this cannot fail.
    let params = Params::new(M_COST, T_COST, P_COST, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password is refused, said to the person choosing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weak {
    TooShort,
    TooLong,
    ControlCharacters,
}

impl std::fmt::Display for Weak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Weak::TooShort => write!(
                f,
                "the password is too short: use at least {MIN_LEN} characters"
            ),
            Weak::TooLong => write!(f, "the password is too long: use at most {MAX_LEN} bytes"),
            Weak::ControlCharacters => {
                f.write_str("the password may not contain control characters")
            }
        }
    }
}

/// Refuses a new password that is too short, too long or holds control characters.
pub(crate) fn check_new(password: &str) -> Result<(), Weak> {
    if password.chars().count() < MIN_LEN {
        return Err(Weak::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(Weak::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(Weak::ControlCharacters);
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) for a new password.
pub(crate) fn hash(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// True when `password` matches the PHC string `phc`; false for a malformed `phc`.
/// The cost is the one recorded in `phc`, so hashes made with older parameters still verify.
pub(crate) fn verify(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => {
            // Same time as a real check, even for a broken entry.
            dummy_verify(password);
            false
        }
    }
}

/// Whether `phc` is a PHC string this module can verify (checked when users.toml is read).
pub(crate) fn is_valid_hash(phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| h.algorithm.as_str().starts_with("argon2"))
        .unwrap_or(false)
}

/// Costs what a real password check costs, and always fails: for user names that do not exist.
pub(crate) fn dummy_verify(password: &str) {
    if let Ok(parsed) = PasswordHash::new(DUMMY_HASH) {
        let _ = hasher().verify_password(password.as_bytes(), &parsed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(is_valid_hash(&h));
        assert!(verify(&h, "correct horse"));
        assert!(!verify(&h, "correct horsE"));
        assert!(!verify(&h, ""));
        assert!(!verify("not a hash", "correct horse"));
        // Two hashes of one password differ (salt).
        assert_ne!(h, hash("correct horse").unwrap());
    }

    #[test]
    fn dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real_text = hash("some password").unwrap();
        let real = PasswordHash::new(&real_text).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(
            dummy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "output length"
        );
        assert!(!verify(DUMMY_HASH, "some password"));
    }

    #[test]
    fn new_password_rules() {
        assert_eq!(check_new("1234567"), Err(Weak::TooShort));
        assert!(check_new("12345678").is_ok());
        assert!(check_new("ééééééé").is_err());
        assert!(check_new("éééééééé").is_ok());
        assert_eq!(check_new("tab\there!"), Err(Weak::ControlCharacters));
        assert_eq!(check_new(&"x".repeat(MAX_LEN + 1)), Err(Weak::TooLong));
        assert!(Weak::TooShort.to_string().contains("at least 8"));
    }
}
