//! Owner and repository names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, not ending in `.git` or `.lock`,
//! and owners may not take the name of a route.

/// Names an owner may not have, because the first URL segment already means something else.
const RESERVED_OWNERS: &[&str] = &[
    "new",
    "login",
    "logout",
    "settings",
    "static",
    "api",
    "admin",
    "assets",
    "explore",
    "help",
    "about",
    "users",
    "repos",
    "secret",
    "robots.txt",
    "favicon.ico",
];

/// True for a syntactically valid repository (or owner) name.
pub(crate) fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 64 || !b[0].is_ascii_alphanumeric() {
        return false;
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    !(lower.ends_with(".git") || lower.ends_with(".lock"))
}

/// True for a valid owner name (a valid name that is not a route's).
pub(crate) fn valid_owner(s: &str) -> bool {
    valid_name(s) && !RESERVED_OWNERS.iter().any(|r| r.eq_ignore_ascii_case(s))
}

/// Splits `OWNER/NAME` (as typed on the command line) and checks both parts.
pub(crate) fn parse_full_name(s: &str) -> Result<(String, String), String> {
    let s = s.strip_suffix(".git").unwrap_or(s);
    let Some((owner, name)) = s.split_once('/') else {
        return Err(format!("expected OWNER/NAME, found {s:?}"));
    };
    if valid_name(owner) && !valid_owner(owner) {
        return Err(format!(
            "{owner:?} cannot be an owner name: it is reserved for forgelet's own pages (reserved: {})",
            RESERVED_OWNERS.join(", ")
        ));
    }
    if !valid_owner(owner) {
        return Err(format!(
            "invalid owner name {owner:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock"
        ));
    }
    if !valid_name(name) {
        return Err(format!(
            "invalid repository name {name:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock"
        ));
    }
    Ok((owner.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "alice",
            "A-b_c.d",
            "x1",
            &"a".repeat(64),
            "git",
            "lock",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".git",
            ".hidden",
            "-x",
            "_x",
            "a/b",
            "a b",
            "a..git",
            "x.git",
            "x.GIT",
            "x.lock",
            "..",
            ".",
            "é",
            "a\0",
            &"a".repeat(65),
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(!valid_owner("new") && !valid_owner("Settings") && valid_owner("newt"));
    }

    #[test]
    fn full_names() {
        assert_eq!(
            parse_full_name("alice/proj.git").unwrap(),
            ("alice".into(), "proj".into())
        );
        assert!(parse_full_name("alice").is_err());
        assert!(parse_full_name("alice/a/b").is_err());
        assert!(parse_full_name("login/x").is_err());
    }
}
