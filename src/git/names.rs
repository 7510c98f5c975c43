//! Owner and repository names: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`, not ending in `.git` or `.lock`,
//! and owners may not take the name of a route.

/// Names an owner may not have, because the first URL segment already means something else:
/// the site pages' addresses from before they moved under `/-/` (which redirect there), and names
/// kept back for the web server and for later. The route table's test
/// (`site_pages_are_reserved_names`) checks every row's first segment is here or is no valid
/// name at all (as `-` is not); the list lives in this lower layer, which cannot see the table.
pub(crate) const RESERVED_OWNERS: &[&str] = &[
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
}
