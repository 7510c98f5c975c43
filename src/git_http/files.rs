//! Loose objects and pack files: checked to be real files inside the repository, then handed to the
//! web server (`X-Accel-Redirect`, `X-Sendfile`) or streamed by forgelet itself with Range support
//! (`downloads::file`).

use crate::error::Result;
use crate::response::{Answer, Response};
use crate::site::Site;

use super::GitCall;

/// The kinds of immutable file the dumb protocol fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Loose,
    Pack,
    Index,
}

impl FileKind {
    fn content_type(self) -> &'static str {
        match self {
            FileKind::Loose => "application/x-git-loose-object",
            FileKind::Pack => "application/x-git-packed-objects",
            FileKind::Index => "application/x-git-packed-objects-toc",
        }
    }
}

/// `GET objects/{2 hex}/{38 hex}`.
pub(crate) fn loose<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    answer(site, c, FileKind::Loose)
}

/// `GET objects/pack/pack-{40 hex}.pack`.
pub(crate) fn pack<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    answer(site, c, FileKind::Pack)
}

/// `GET objects/pack/pack-{40 hex}.idx`.
pub(crate) fn index<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    answer(site, c, FileKind::Index)
}

/// The file the route's captured segments name below `objects/` (checked against their
/// patterns by the route table).
fn answer<'s>(site: &'s Site, c: &GitCall<'_>, kind: FileKind) -> Result<Answer<'s>> {
    let rel = match kind {
        FileKind::Loose => format!("objects/{}", c.caps.rest.join("/")),
        FileKind::Pack | FileKind::Index => format!("objects/pack/{}", c.caps.rest.join("/")),
    };
    let mut r = Response::new(200);
    r.header("Content-Type", kind.content_type());
    r.cache_forever(c.public);
    crate::downloads::file::send(&site.config, c.repo, &rel, r, c.req.range()).map(Answer::from)
}
