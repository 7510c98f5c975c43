//! Request errors: each maps to an HTTP status and a short public message; details go to the log only.

use std::fmt;

use crate::response::Response;

/// Why a request could not be answered normally.
#[derive(Debug)]
pub(crate) enum Error {
    /// The request itself is malformed (bad percent-encoding, control bytes, ...).
    BadRequest(&'static str),
    /// Nothing here (or nothing the client may know of).
    NotFound,
    /// Known and readable, but this is not allowed; the message is safe to show (git prints it).
    Forbidden(String),
    /// The path exists but not for this method.
    MethodNotAllowed(&'static str),
    /// A repository forgelet cannot serve (e.g. SHA-256); the message is safe to show.
    Unsupported(String),
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
            Error::Forbidden(_) => 403,
            Error::NotFound => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::Unsupported(_) => 501,
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
            Error::Unsupported(m) | Error::Forbidden(m) => format!("{m}\n"),
            Error::Internal(detail) => {
                log::error!("{detail}");
                "Internal server error; the details are in the server's log.\n".to_string()
            }
        };
        let mut r = Response::text(status, message);
        r.no_cache();
        if let Error::MethodNotAllowed(allow) = self {
            r.header("Allow", allow);
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
            Error::Unsupported(m) | Error::Forbidden(m) => f.write_str(m),
            Error::Internal(d) => f.write_str(d),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;
