//! Web sessions and CSRF tokens. A session is a signed cookie, `NAME~EXPIRES~NONCE~MAC`, whose
//! MAC (a keyed hash under the site secret) covers the user's stamp: a password change or "sign
//! out everywhere" replaces the stamp, and every cookie made before dies with it. The nonce is
//! random for every sign-in, so each sign-in is a session of its own. Nothing is stored on the
//! server, so any number of forgelet processes share sessions through the secret alone.
//!
//! CSRF: every form carries a token bound to who submits it. Signed in, it is a keyed hash of the
//! session's nonce, so a token taken from any other session (or from no session) is refused.
//! Signed out (the sign-in form itself), it is a keyed hash of a random `csrf` cookie. A
//! cross-site page can neither read the cookies nor compute the hashes.
//!
//! Over HTTPS the cookies carry the `__Host-` prefix when forgelet is mounted at the site root
//! (so no other host under the same domain, and no other path, can set them) and `__Secure-`
//! otherwise.

use super::{Accounts, User};
use crate::keyed::{constant_time_eq, keyed_hash};

/// The session cookie's name, before any prefix.
const SESSION_NAME: &str = "forgelet_session";
/// The sign-in form's CSRF cookie's name, before any prefix.
const CSRF_NAME: &str = "forgelet_csrf";
/// The cookie that tells a browser which signed in before, before any prefix.
const DEVICE_NAME: &str = "forgelet_device";
/// How long a browser stays known for the user who signed in with it.
pub(crate) const DEVICE_LIFETIME_SECS: u64 = 365 * 24 * 3600;
/// How long a sign-in lasts.
pub(crate) const LIFETIME_SECS: u64 = 14 * 24 * 3600;

/// The names of forgelet's cookies for one site and scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CookieNames {
    pub(crate) session: String,
    pub(crate) csrf: String,
    pub(crate) device: String,
}

impl CookieNames {
    /// `https`: the site is reached over HTTPS; `at_root`: mounted at `/` (no base path).
    pub(crate) fn new(https: bool, at_root: bool) -> CookieNames {
        let prefix = match (https, at_root) {
            (true, true) => "__Host-",
            (true, false) => "__Secure-",
            (false, _) => "",
        };
        CookieNames {
            session: format!("{prefix}{SESSION_NAME}"),
            csrf: format!("{prefix}{CSRF_NAME}"),
            device: format!("{prefix}{DEVICE_NAME}"),
        }
    }
}

/// A verified session: who, and the nonce of this sign-in.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user: User,
    nonce: String,
}

fn mac(accounts: &Accounts, name: &str, stamp: &str, expires: u64, nonce: &str) -> String {
    let data = format!("{name}\0{stamp}\0{expires}\0{nonce}");
    keyed_hash(accounts.secret(), "session", data.as_bytes())
}

/// The cookie value for a fresh sign-in of `user` at `now`, with a nonce of its own. `None`
/// only when the system has no randomness to give.
pub(crate) fn issue(accounts: &Accounts, user: &User, now: u64) -> Option<String> {
    let nonce = random_hex()?;
    let expires = now + LIFETIME_SECS;
    Some(format!(
        "{}~{expires}~{nonce}~{}",
        user.name,
        mac(accounts, &user.name, &user.stamp, expires, &nonce)
    ))
}

/// The session a cookie value stands for, if it is genuine, unexpired, and the user still exists
/// with the same stamp.
pub(crate) fn verify(accounts: &Accounts, value: &str, now: u64) -> Option<Session> {
    let mut parts = value.splitn(4, '~');
    let (name, expires, nonce, given) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let expires: u64 = expires.parse().ok()?;
    if expires <= now || expires > now + LIFETIME_SECS + 60 {
        return None;
    }
    if nonce.len() != 32 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let users = accounts.users().ok()?;
    let user = users.get(name)?;
    if user.name != name {
        return None;
    }
    let want = mac(accounts, &user.name, &user.stamp, expires, nonce);
    constant_time_eq(want.as_bytes(), given.as_bytes()).then(|| Session {
        user: user.clone(),
        nonce: nonce.to_string(),
    })
}

/// 16 random bytes as hex.
fn random_hex() -> Option<String> {
    let mut r = [0u8; 16];
    getrandom::getrandom(&mut r).ok()?;
    Some(crate::fsfile::hex(&r))
}

/// A fresh random value for the sign-in form's CSRF cookie.
pub(crate) fn new_csrf_cookie() -> Option<String> {
    random_hex()
}

/// The form token of a signed-in session: it exists for this sign-in only.
pub(crate) fn session_csrf_token(accounts: &Accounts, session: &Session) -> String {
    let data = format!("{}\0{}", session.user.name, session.nonce);
    keyed_hash(accounts.secret(), "csrf-session", data.as_bytes())
}

/// The form token that goes with a signed-out client's CSRF cookie.
pub(crate) fn csrf_token(accounts: &Accounts, cookie: &str) -> String {
    keyed_hash(accounts.secret(), "csrf", cookie.as_bytes())
}

/// Whether a submitted form's token matches what this client should hold: the session's token
/// when signed in, else the token of its (non-empty) CSRF cookie.
pub(crate) fn csrf_ok(
    accounts: &Accounts,
    session: Option<&Session>,
    cookie: Option<&str>,
    field: Option<&str>,
) -> bool {
    let want = match (session, cookie) {
        (Some(s), _) => session_csrf_token(accounts, s),
        (None, Some(c)) if !c.is_empty() => csrf_token(accounts, c),
        _ => return false,
    };
    field.is_some_and(|f| constant_time_eq(want.as_bytes(), f.as_bytes()))
}

/// The device cookie's value for a browser that signed in as `name`: `NAME~MAC`. It lets that
/// browser past the per-user limit on password attempts (see `basic`), nothing more.
pub(crate) fn device_value(accounts: &Accounts, name: &str) -> String {
    let name = name.to_ascii_lowercase();
    let mac = keyed_hash(accounts.secret(), "device", name.as_bytes());
    format!("{name}~{mac}")
}

/// Whether a device cookie's value is genuine and names `name` (ignoring ASCII case).
pub(crate) fn device_is_for(accounts: &Accounts, value: Option<&str>, name: &str) -> bool {
    value.is_some_and(|v| constant_time_eq(device_value(accounts, name).as_bytes(), v.as_bytes()))
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
        let a = Accounts::open(&dir, None).unwrap();
        a.update(|u| {
            u.add(User {
                name: "alice".into(),
                admin: false,
                stamp: "s1".into(),
                password_hash: super::super::password::hash("a password").unwrap(),
                tokens: Vec::new(),
                ssh_keys: Vec::new(),
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
        let c = issue(&a, &alice, now).unwrap();
        assert_eq!(verify(&a, &c, now + 10).unwrap().user.name, "alice");
        // Every sign-in is a session of its own.
        assert_ne!(issue(&a, &alice, now).unwrap(), c);
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
        // Another nonce under the same MAC.
        let parts: Vec<&str> = c.split('~').collect();
        let swapped = format!("{}~{}~{}~{}", parts[0], parts[1], "0".repeat(32), parts[3]);
        assert!(verify(&a, &swapped, now).is_none());
        assert!(verify(&a, "garbage", now).is_none());
        // A new stamp (password change, sign out everywhere) ends the session.
        a.update(|u| {
            u.get_mut("alice").unwrap().stamp = "s2".into();
            Ok::<_, String>(())
        })
        .unwrap();
        assert!(verify(&a, &c, now + 10).is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_or_the_cookie() {
        let (dir, a) = accounts();
        let alice = a.users().unwrap().get("alice").unwrap().clone();
        let now = 1_700_000_000;
        let s1 = verify(&a, &issue(&a, &alice, now).unwrap(), now).unwrap();
        let s2 = verify(&a, &issue(&a, &alice, now).unwrap(), now).unwrap();
        let c = new_csrf_cookie().unwrap();
        let anon = csrf_token(&a, &c);
        // Signed out: the token of the cookie, nothing else.
        assert!(csrf_ok(&a, None, Some(&c), Some(&anon)));
        assert!(!csrf_ok(&a, None, Some(&c), Some("x")));
        assert!(!csrf_ok(&a, None, None, Some(&anon)));
        assert!(!csrf_ok(&a, None, Some(&c), None));
        assert!(!csrf_ok(&a, None, Some(""), Some(&csrf_token(&a, ""))));
        // Signed in: a pair planted from a signed-out page does not pass, nor another
        // session's token.
        let t1 = session_csrf_token(&a, &s1);
        assert!(csrf_ok(&a, Some(&s1), Some(&c), Some(&t1)));
        assert!(!csrf_ok(&a, Some(&s1), Some(&c), Some(&anon)));
        assert!(!csrf_ok(&a, Some(&s2), None, Some(&t1)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn device_cookies_name_one_user() {
        let (dir, a) = accounts();
        let v = device_value(&a, "Alice");
        assert!(device_is_for(&a, Some(&v), "alice"));
        assert!(device_is_for(&a, Some(&v), "ALICE"));
        assert!(!device_is_for(&a, Some(&v), "bob"));
        assert!(!device_is_for(&a, Some(&v.replace("alice", "bob")), "bob"));
        assert!(!device_is_for(&a, None, "alice"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn cookie_names_and_header_parsing() {
        assert_eq!(CookieNames::new(false, true).session, "forgelet_session");
        assert_eq!(
            CookieNames::new(true, true).session,
            "__Host-forgelet_session"
        );
        assert_eq!(CookieNames::new(true, false).csrf, "__Secure-forgelet_csrf");
        let h = Some("a=1; forgelet_session=alice~1~x; b=2");
        assert_eq!(cookie(h, "forgelet_session"), Some("alice~1~x"));
        assert_eq!(cookie(h, "b"), Some("2"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie(None, "a"), None);
    }
}
