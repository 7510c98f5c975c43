//! Git over HTTP: the dumb protocol's files, generated from the repository on each request, and
//! the smart protocol, run by git itself.
//!
//! A git route's handler runs after the dispatcher has found the repository and checked the
//! client's access to it (HTTP Basic, the row's need): it is given the repository, who the
//! client is, and whether anyone may read it.

pub(crate) mod dumb;
pub(crate) mod files;
pub(crate) mod push;
pub(crate) mod smart;

use crate::error::Result;
use crate::git::RepoDir;
use crate::request::{Captures, Request};
use crate::response::Answer;
use crate::site::Site;

pub(crate) use smart::Identity;

/// What a git route's handler is given.
pub(crate) struct GitCall<'r> {
    pub(crate) req: &'r Request,
    /// The repository the path names, which the client may use as the row needs.
    pub(crate) repo: &'r RepoDir,
    pub(crate) who: &'r Identity,
    /// Anyone may read the repository, so shared caches may keep what is sent.
    pub(crate) public: bool,
    pub(crate) caps: &'r Captures,
}

impl GitCall<'_> {
    /// The client's address, for logs and its share of git slots.
    pub(crate) fn client(&self) -> &str {
        self.req.remote_addr()
    }
}

/// A git route's handler.
pub(crate) type Handler = for<'s> fn(&'s Site, &GitCall<'_>) -> Result<Answer<'s>>;
