//! Git LFS over HTTP: the batch API, objects stored per repository and handed to the web server
//! like git's own files, uploads checked against their id before they are kept.
//!
//! The client asks `POST {repo}.git/info/lfs/objects/batch` (HTTP Basic, as for git routes:
//! read access to download, write access to upload) and is given, per object, where to fetch or
//! send it: `{repo}.git/info/lfs/objects/{oid}` with a signed `Authorization` header of its own
//! ([`token`]), valid for a few minutes and for that one object, operation and repository, so
//! an object is not another password check (argon2) each. The object routes take that header or
//! HTTP Basic; either way the dispatcher checks the client's access to the repository again.
//!
//! Objects live in the repository's own folder (`lfs/objects/ab/cd/{oid}`), so they move with a
//! rename, go to the trash with the repository and are kept by a backup of the data directory;
//! no object is ever shared between repositories (an id alone must never tell whether someone
//! else's repository holds a file, or let anyone fetch it). An upload is streamed into
//! `lfs/tmp/`, hashed as it arrives, and renamed into place only when its SHA-256 and size are
//! the ones named: a broken or lying upload leaves nothing behind.

pub(crate) mod batch;
pub(crate) mod locks;
pub(crate) mod objects;
pub(crate) mod pointer;
pub(crate) mod token;

use std::io::Read;

use crate::error::Error;
use crate::git::RepoDir;
use crate::request::{Captures, Request};
use crate::response::{Answer, Response};
use crate::site::Site;

/// The media type of every LFS request and answer.
pub(crate) const MEDIA_TYPE: &str = "application/vnd.git-lfs+json";

/// What an LFS route's handler is given (after the dispatcher found the repository and checked
/// the client's access to it as the row needs).
pub(crate) struct LfsCall<'r> {
    pub(crate) req: &'r Request,
    pub(crate) repo: &'r RepoDir,
    /// The client's user; `None` when anonymous.
    pub(crate) user: Option<&'r str>,
    /// What the dispatcher answers to this client for a write to the repository: `Ok` when it
    /// may write. The batch route needs read access; its uploads need this too.
    pub(crate) write: &'r std::result::Result<(), Error>,
    /// The client is the repository's owner or a site admin (who may break others' locks).
    pub(crate) manage: bool,
    pub(crate) caps: &'r Captures,
}

/// An LFS route's handler. `body` is the request's body (the batch and verify requests' JSON,
/// an upload's bytes).
pub(crate) type Handler =
    for<'s> fn(&'s Site, &LfsCall<'_>, &mut dyn Read) -> crate::error::Result<Answer<'s>>;

/// An LFS row's handler, and which signed header its object routes take besides HTTP Basic.
#[derive(Clone, Copy)]
pub(crate) struct Route {
    pub(crate) handler: Handler,
    pub(crate) signed: Option<token::Op>,
}

/// An LFS answer: `value` as JSON with the LFS media type.
pub(crate) fn json(status: u16, value: &serde_json::Value) -> Response {
    let mut r = Response::bytes(status, MEDIA_TYPE, value.to_string().into_bytes());
    r.no_store();
    r
}

/// An error as LFS clients show it: `{"message": ...}` with the status of the error, and for a
/// 401 the challenge git-lfs answers with the user's credentials.
pub(crate) fn error_response(e: Error) -> Response {
    let plain = e.into_response();
    let message = match &plain.body {
        crate::response::Body::Bytes(b) => String::from_utf8_lossy(b).trim().to_string(),
        _ => String::new(),
    };
    let mut r = json(plain.status, &serde_json::json!({ "message": message }));
    for (name, value) in plain.headers {
        if matches!(name, "WWW-Authenticate" | "Retry-After" | "Allow") {
            if name == "WWW-Authenticate" {
                r.header("LFS-Authenticate", value.clone());
            }
            r.header(name, value);
        }
    }
    r
}

pub(crate) use crate::git::lfs::valid_oid;
