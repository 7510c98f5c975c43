//! The signed `Authorization` header a batch answer gives with each action: it names the
//! operation, the repository, the object, the user (and the user's session stamp, so a password
//! change or "sign out everywhere" ends it) and when it expires, under a keyed hash of the site
//! secret. Checking it costs one HMAC, not an argon2 run; the dispatcher then checks that user's
//! access to the repository as for any request.

use crate::keyed::{constant_time_eq, keyed_hash};

/// How long an action's header is good for. git-lfs asks the batch API again for an action
/// that has expired before it starts the transfer.
pub(crate) const LIFETIME_SECS: u64 = 900;

/// The scheme of the header: not `Basic`, so it is never taken for a password.
const SCHEME: &str = "Bearer ";
const VERSION: &str = "lfs1";

/// What a signed header allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Download,
    Upload,
    /// The verify request after an upload (for the repository, no one object).
    Verify,
    /// The batch and lock routes of one repository, from `git-lfs-authenticate` over SSH (for
    /// the repository, no one object).
    Api,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Download => "download",
            Op::Upload => "upload",
            Op::Verify => "verify",
            Op::Api => "api",
        }
    }
}

/// Who a valid header was given to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    /// `None`: given to an anonymous client (a public repository's download).
    pub(crate) user: Option<String>,
    /// The user's session stamp when it was given, to be compared with the user's current one.
    pub(crate) stamp: String,
}

fn mac(
    secret: &[u8],
    op: Op,
    repo: &str,
    oid: &str,
    user: &str,
    stamp: &str,
    expires: u64,
) -> String {
    let data = format!(
        "{VERSION}\0{}\0{repo}\0{oid}\0{user}\0{stamp}\0{expires}",
        op.name()
    );
    keyed_hash(secret, "lfs-action", data.as_bytes())
}

/// The `Authorization` header value for `op` on `oid` of `repo` (`owner/name`) by `user`
/// (with its session stamp), expiring at `expires` (Unix seconds).
pub(crate) fn sign(
    secret: &[u8],
    op: Op,
    repo: &str,
    oid: &str,
    user: Option<(&str, &str)>,
    expires: u64,
) -> String {
    let (name, stamp) = user.unwrap_or(("", ""));
    format!(
        "{SCHEME}{VERSION}.{}.{expires}.{}.{}.{}",
        op.name(),
        crate::fsfile::hex(name.as_bytes()),
        crate::fsfile::hex(stamp.as_bytes()),
        mac(secret, op, repo, oid, name, stamp, expires)
    )
}

/// Whether `header` is a signed action header at all (as opposed to HTTP Basic).
pub(crate) fn is_signed(header: &str) -> bool {
    header
        .strip_prefix(SCHEME)
        .is_some_and(|t| t.starts_with(VERSION))
}

/// Checks a signed header for `op` on `oid` of `repo` at `now`: who it was given to, or why it
/// is refused (for the client to read).
pub(crate) fn verify(
    secret: &[u8],
    header: &str,
    op: Op,
    repo: &str,
    oid: &str,
    now: u64,
) -> Result<Signed, &'static str> {
    const BAD: &str = "This transfer's authorization is not valid; run the command again.";
    let token = header.strip_prefix(SCHEME).ok_or(BAD)?;
    let parts: Vec<&str> = token.split('.').collect();
    let [version, op_name, expires, user_hex, stamp_hex, given] = parts[..] else {
        return Err(BAD);
    };
    if version != VERSION {
        return Err(BAD);
    }
    if op_name != op.name() {
        return Err("This authorization is for another transfer.");
    }
    let expires: u64 = expires.parse().map_err(|_| BAD)?;
    let user = unhex(user_hex).ok_or(BAD)?;
    let stamp = unhex(stamp_hex).ok_or(BAD)?;
    let want = mac(secret, op, repo, oid, &user, &stamp, expires);
    if !constant_time_eq(want.as_bytes(), given.as_bytes()) {
        return Err(BAD);
    }
    if now > expires {
        return Err("This transfer's authorization has expired; run the command again.");
    }
    Ok(Signed {
        user: (!user.is_empty()).then_some(user),
        stamp,
    })
}

fn unhex(s: &str) -> Option<String> {
    if s.len() % 2 != 0 || s.len() > 512 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn a_signed_header_allows_exactly_what_it_names_until_it_expires() {
        let s = b"secret";
        let h = sign(
            s,
            Op::Download,
            "alice/r",
            OID,
            Some(("alice", "st1")),
            1000,
        );
        assert!(is_signed(&h) && !is_signed("Basic YWxpY2U6cHc="));
        let ok = verify(s, &h, Op::Download, "alice/r", OID, 999).unwrap();
        assert_eq!(ok.user.as_deref(), Some("alice"));
        assert_eq!(ok.stamp, "st1");
        assert!(verify(s, &h, Op::Download, "alice/r", OID, 1000).is_ok());
        assert!(
            verify(s, &h, Op::Download, "alice/r", OID, 1001).is_err(),
            "expired"
        );
        assert!(
            verify(s, &h, Op::Upload, "alice/r", OID, 999).is_err(),
            "other op"
        );
        assert!(
            verify(s, &h, Op::Download, "alice/s", OID, 999).is_err(),
            "other repo"
        );
        let other = OID.replace('4', "5");
        assert!(
            verify(s, &h, Op::Download, "alice/r", &other, 999).is_err(),
            "other oid"
        );
        assert!(
            verify(b"other", &h, Op::Download, "alice/r", OID, 999).is_err(),
            "other key"
        );
        // Changing any part breaks the signature.
        let forged = h.replace(&crate::fsfile::hex(b"alice"), &crate::fsfile::hex(b"admin"));
        assert!(verify(s, &forged, Op::Download, "alice/r", OID, 999).is_err());
        let later = h.replace(".1000.", ".9999.");
        assert!(verify(s, &later, Op::Download, "alice/r", OID, 999).is_err());
        // Anonymous.
        let anon = sign(s, Op::Download, "alice/r", OID, None, 1000);
        assert_eq!(
            verify(s, &anon, Op::Download, "alice/r", OID, 5)
                .unwrap()
                .user,
            None
        );
        for junk in [
            "",
            "Bearer ",
            "Bearer lfs1",
            "Bearer lfs1.download.x.y.z.w",
            "Basic x",
        ] {
            assert!(
                verify(s, junk, Op::Download, "alice/r", OID, 5).is_err(),
                "{junk}"
            );
        }
    }
}
