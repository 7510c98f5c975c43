//! Request errors: each maps to an HTTP status and a short public message; details go to the log only.

use std::fmt;

use crate::response::Response;

/// Why a request could not be answered normally.
#[derive(Debug, Clone)]
pub(crate) enum Error {
    /// The request itself is malformed (bad percent-encoding, control bytes, ...).
    BadRequest(&'static str),
    /// Nothing here (or nothing the client may know of).
    NotFound,
    /// Credentials are needed (or were wrong): 401 with a Basic challenge for `realm`.
    Unauthorized {
        realm: String,
        message: &'static str,
    },
    /// Too many attempts (or every password check is busy): 429, retry after this many seconds.
    TooMany(u64),
    /// Known and readable, but this is not allowed; the message is safe to show (git prints it).
    Forbidden(String),
    /// The path exists but not for this method.
    MethodNotAllowed(&'static str),
    /// A repository forgelet cannot serve (e.g. SHA-256); the message is safe to show.
    Unsupported(String),
    /// What was asked for is larger than the server sends (413); the message is safe to show.
    TooLarge(String),
    /// Too much of this work is going on right now (503, `Retry-After`); the message is safe
    /// to show.
    Busy(String),
    /// The request is well-formed but says something this route cannot take (422); the
    /// message is safe to show.
    Invalid(String),
    /// The request conflicts with what the server keeps (409); the message is safe to show.
    Conflict(String),
    /// The repository's data cannot be read (an object or a pack damaged or gone): 500 naming
    /// the repository (`owner/name`, which the client may read) and what its administrator can
    /// run; the detail is logged, never shown.
    Damaged { repo: String, detail: String },
    /// Something broke on our side; the detail is logged, never shown.
    Internal(String),
}

impl Error {
    pub(crate) fn internal(context: &str, e: impl fmt::Display) -> Error {
        Error::Internal(format!("{context}: {e}"))
    }

    pub(crate) fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::Unauthorized { .. } => 401,
            Error::Forbidden(_) => 403,
            Error::TooMany(_) => 429,
            Error::NotFound => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Unsupported(_) => 501,
            Error::TooLarge(_) => 413,
            Error::Busy(_) => 503,
            Error::Invalid(_) => 422,
            Error::Conflict(_) => 409,
            Error::Damaged { .. } => 500,
            Error::Internal(detail) if disk_full(detail) => 507,
            Error::Internal(_) => 500,
        }
    }

    /// The error as the client sees it: a plain-text body, never an internal detail.
    pub(crate) fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Error::BadRequest(m) => format!("Bad request: {m}.\n"),
            Error::NotFound => "Not found.\n".to_string(),
            Error::MethodNotAllowed(allow) => format!("Method not allowed; use {allow}.\n"),
            Error::Unsupported(m)
            | Error::Forbidden(m)
            | Error::TooLarge(m)
            | Error::Busy(m)
            | Error::Invalid(m)
            | Error::Conflict(m) => format!("{m}\n"),
            Error::Unauthorized { message, .. } => format!("{message}\n"),
            Error::TooMany(secs) => {
                format!("Too many sign-in attempts; try again in {secs} seconds.\n")
            }
            Error::Damaged { repo, detail } => {
                log::error!("{repo}: damaged: {detail}; `forgelet maintain {repo}` checks it");
                format!("The repository {repo} cannot be read: its data on the server is damaged. Its administrator can find what is wrong with `forgelet maintain {repo}`.\n")
            }
            Error::Internal(detail) if disk_full(detail) => {
                log::error!("{detail}");
                "The server could not save this: its disk is full. Nothing was changed; try again later, or tell the site's administrator.\n".to_string()
            }
            Error::Internal(detail) => {
                log::error!("{detail}");
                "Internal server error; the details are in the server's log.\n".to_string()
            }
        };
        let mut r = Response::text(status, message);
        r.no_cache();
        match self {
            Error::MethodNotAllowed(allow) => r.header("Allow", allow),
            Error::Unauthorized { realm, .. } => {
                let realm: String = realm.chars().filter(|c| *c != '"' && *c != '\\').collect();
                r.header(
                    "WWW-Authenticate",
                    format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
                );
            }
            Error::TooMany(secs) => r.header("Retry-After", secs.to_string()),
            Error::Busy(_) => r.header("Retry-After", BUSY_RETRY_SECS.to_string()),
            _ => {}
        }
        r
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadRequest(m) => write!(f, "bad request: {m}"),
            Error::NotFound => f.write_str("not found"),
            Error::MethodNotAllowed(a) => write!(f, "method not allowed (allow: {a})"),
            Error::Unsupported(m)
            | Error::Forbidden(m)
            | Error::TooLarge(m)
            | Error::Busy(m)
            | Error::Invalid(m)
            | Error::Conflict(m) => f.write_str(m),
            Error::Unauthorized { message, .. } => f.write_str(message),
            Error::TooMany(s) => write!(f, "too many attempts (retry after {s} s)"),
            Error::Damaged { repo, detail } => write!(f, "{repo}: damaged: {detail}"),
            Error::Internal(d) => f.write_str(d),
        }
    }
}

/// Whether an internal error's detail says the disk is full: the text the system gives a
/// full disk (`ENOSPC`) or quota (`EDQUOT`), as an io error or a git child prints it. The
/// client is then told why nothing was saved (507), which it can act on, instead of a bare 500.
fn disk_full(detail: &str) -> bool {
    detail.contains("No space left on device") || detail.contains("Disk quota exceeded")
}

/// How long a client told the server is busy waits before asking again.
const BUSY_RETRY_SECS: u64 = 5;

pub(crate) type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_as_such_and_other_internal_errors_are_not() {
        let full = Error::internal(
            "changing the account of alice",
            "cannot write /srv/users.toml: No space left on device (os error 28)",
        );
        assert_eq!(full.status(), 507);
        let r = full.into_response();
        let body = match &r.body {
            crate::response::Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        assert!(body.contains("could not save"), "{body}");
        assert!(body.contains("disk is full"), "{body}");
        assert!(!body.contains("users.toml"), "a detail was shown: {body}");
        let quota = Error::Internal("git: Disk quota exceeded".into());
        assert_eq!(quota.status(), 507);
        let other = Error::Internal("cannot write: Permission denied (os error 13)".into());
        assert_eq!(other.status(), 500);
    }
}
