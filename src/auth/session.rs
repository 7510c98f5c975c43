//! Web sessions and CSRF tokens. A session is a signed cookie, `NAME~EXPIRES~MAC`, whose MAC (a
//! keyed hash under the site secret) covers the user's stamp: a password change or "sign out
//! everywhere" replaces the stamp, and every cookie made before dies with it. Nothing is stored on
//! the server, so any number of forgelet processes share sessions through the secret alone.
//!
//! CSRF: a random `forgelet_csrf` cookie, and in every form a field holding a keyed hash of it.
//! A cross-site page can neither read the cookie nor compute the hash.

use super::secret::{constant_time_eq, keyed_hash};
use super::{Accounts, User};

/// The session cookie's name.
pub(crate) const COOKIE: &str = "forgelet_session";
/// The CSRF cookie's name.
pub(crate) const CSRF_COOKIE: &str = "forgelet_csrf";
/// How long a sign-in lasts.
pub(crate) const LIFETIME_SECS: u64 = 14 * 24 * 3600;

fn mac(accounts: &Accounts, name: &str, stamp: &str, expires: u64) -> String {
    let data = format!("{name}\0{stamp}\0{expires}");
    keyed_hash(accounts.secret(), "session", data.as_bytes())
}

/// The cookie value for a fresh sign-in of `user` at `now`.
pub(crate) fn issue(accounts: &Accounts, user: &User, now: u64) -> String {
    let expires = now + LIFETIME_SECS;
    format!(
        "{}~{expires}~{}",
        user.name,
        mac(accounts, &user.name, &user.stamp, expires)
    )
}

/// The signed-in user a cookie value stands for, if it is genuine, unexpired, and the user still
/// exists with the same stamp.
pub(crate) fn verify(accounts: &Accounts, value: &str, now: u64) -> Option<User> {
    let mut parts = value.splitn(3, '~');
    let (name, expires, given) = (parts.next()?, parts.next()?, parts.next()?);
    let expires: u64 = expires.parse().ok()?;
    if expires <= now || expires > now + LIFETIME_SECS + 60 {
        return None;
    }
    let users = accounts.users().ok()?;
    let user = users.get(name)?;
    if user.name != name {
        return None;
    }
    let want = mac(accounts, &user.name, &user.stamp, expires);
    constant_time_eq(want.as_bytes(), given.as_bytes()).then(|| user.clone())
}

/// A fresh random value for the CSRF cookie.
pub(crate) fn new_csrf_cookie() -> Option<String> {
    let mut r = [0u8; 16];
    getrandom::getrandom(&mut r).ok()?;
    Some(super::fsfile::hex(&r))
}

/// The form field that goes with a CSRF cookie value.
pub(crate) fn csrf_token(accounts: &Accounts, cookie: &str) -> String {
    keyed_hash(accounts.secret(), "csrf", cookie.as_bytes())
}

/// Whether a submitted form's token matches the CSRF cookie.
pub(crate) fn csrf_ok(accounts: &Accounts, cookie: Option<&str>, field: Option<&str>) -> bool {
    match (cookie, field) {
        (Some(c), Some(f)) if !c.is_empty() => {
            constant_time_eq(csrf_token(accounts, c).as_bytes(), f.as_bytes())
        }
        _ => false,
    }
}

/// The value of cookie `name` in a `Cookie:` header.
pub(crate) fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (std::path::PathBuf, Accounts) {
        let dir = std::env::temp_dir().join(format!(
            "forgelet-session-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Accounts::open(&dir).unwrap();
        a.update(|u| {
            u.add(User {
                name: "alice".into(),
                admin: false,
                stamp: "s1".into(),
                password_hash: super::super::password::hash("a password").unwrap(),
                tokens: Vec::new(),
            })
        })
        .unwrap();
        (dir, a)
    }

    #[test]
    fn cookies_verify_expire_and_die_with_the_stamp() {
        let (dir, a) = accounts();
        let alice = a.users().unwrap().get("alice").unwrap().clone();
        let now = 1_700_000_000;
        let c = issue(&a, &alice, now);
        assert_eq!(verify(&a, &c, now + 10).unwrap().name, "alice");
        // Expired, tampered, unknown user.
        assert!(verify(&a, &c, now + LIFETIME_SECS + 1).is_none());
        assert!(verify(&a, &c.replace("alice", "bob"), now).is_none());
        let mut bad = c.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(verify(&a, &bad, now).is_none());
        let longer = c.replacen(
            &format!("~{}~", now + LIFETIME_SECS),
            &format!("~{}~", now + 10 * LIFETIME_SECS),
            1,
        );
        assert!(verify(&a, &longer, now).is_none());
        assert!(verify(&a, "garbage", now).is_none());
        // A new stamp (password change, sign out everywhere) ends the session.
        a.update(|u| {
            u.get_mut("alice").unwrap().stamp = "s2".into();
            Ok(())
        })
        .unwrap();
        assert!(verify(&a, &c, now + 10).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn csrf_tokens_match_their_cookie_only() {
        let (dir, a) = accounts();
        let c = new_csrf_cookie().unwrap();
        let t = csrf_token(&a, &c);
        assert!(csrf_ok(&a, Some(&c), Some(&t)));
        assert!(!csrf_ok(&a, Some(&c), Some("x")));
        assert!(!csrf_ok(&a, None, Some(&t)));
        assert!(!csrf_ok(&a, Some(&c), None));
        assert!(!csrf_ok(&a, Some(""), Some(&csrf_token(&a, ""))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cookie_header_parsing() {
        let h = Some("a=1; forgelet_session=alice~1~x; b=2");
        assert_eq!(cookie(h, COOKIE), Some("alice~1~x"));
        assert_eq!(cookie(h, "b"), Some("2"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie(None, "a"), None);
    }
}
