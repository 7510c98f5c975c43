//! Downloads from a repository's pages: `raw/{ref}/{path}` (a file's bytes, typed so nothing can
//! run in the site's origin) and `archive/{ref}.tar.gz|.zip` (a snapshot made by git).

use super::blob::image_type;
use super::repo_head::{git_err, open};
use super::PageCall;
use crate::downloads::archive::{self, Archive};
use crate::downloads::blob::{self as blob_stream, BlobStream};
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::response::{Answer, Response};
use crate::site::Site;

/// `raw/{ref}/{path}`: the bytes, typed so nothing can run in the site's origin: text (HTML and
/// scripts included) as `text/plain`, images with their own type under a sandboxing policy,
/// anything else as a download. Files up to `blob_stream::INLINE_LIMIT` are read here; larger ones are
/// streamed by git (see `downloads::blob`), never read whole into forgelet.
pub(crate) fn raw<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let path = at.path;
    if path.is_empty() {
        return Err(Error::NotFound);
    }
    let b = browse::blob(
        &git,
        at.rev.commit,
        &path,
        blob_stream::INLINE_LIMIT as usize,
    )
    .map_err(git_err(repo))?;
    // A file stored with Git LFS: the object, sent as git's files are.
    if let Some((real, pointer)) = crate::lfs::pointer::resolve(repo, &b, 8000)? {
        // raw_head decides text or binary from the first bytes, as resolve did.
        let first: &[u8] = if real.is_binary { b"\0" } else { &real.data };
        let mut r = raw_head(&path, first);
        // A web server sending the file keeps only some of these headers: nginx drops the
        // policy and nosniff across X-Accel-Redirect. An SVG (the one type raw/ names that can
        // hold scripts) shown in a tab without its sandbox would run them in the site's origin:
        // it is a download instead (an <img> of it still shows, where scripts never run).
        if site.config.sendfile != crate::config::Handoff::None
            && image_type(&path) == Some("image/svg+xml")
        {
            attachment(&mut r, &path);
        }
        return crate::downloads::file::send(
            &site.config,
            repo,
            &crate::lfs::objects::rel_path(&pointer.oid),
            r,
            req.range(),
        )
        .map(Answer::from);
    }
    if !b.truncated {
        let mut r = raw_head(&path, &b.data);
        r.body = crate::response::Body::Bytes(b.data);
        return Ok(r.into());
    }
    Ok(BlobStream {
        repo: repo.clone(),
        id: b.id,
        size: b.size,
        head: Box::new(move |first: &[u8]| raw_head(&path, first)),
        client: req.remote_addr().to_string(),
        anonymous: ctx.viewer.is_none(),
    }
    .answer(site))
}

/// `archive/{ref}.tar.gz|.zip`: the ref resolved to a commit id before git sees it, and a
/// snapshot over `[limits] archive_mib` refused before git starts.
pub(crate) fn archive<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let joined = c.caps.rest.join("/");
    let (rev, format) = archive::Format::split(&joined).ok_or(Error::NotFound)?;
    let git = open(repo)?;
    let resolved = browse::resolve_ref(&git, rev).map_err(git_err(repo))?;
    let cap = site.config.limits.archive_bytes;
    let fits = git
        .find_commit(resolved.commit)
        .and_then(|c| archive::size_of_tree(&git, c.tree_id(), cap))
        .map_err(|e| Error::internal(&format!("{}/{}", repo.owner, repo.name), e.message()))?;
    if fits.is_none() {
        return Err(Error::TooLarge(format!(
            "This snapshot would be larger than the server's limit of {} MiB; clone the repository instead.",
            cap >> 20
        )));
    }
    Ok(Archive {
        repo: repo.clone(),
        commit: resolved.commit,
        rev: rev.to_string(),
        format,
        client: req.remote_addr().to_string(),
        anonymous: ctx.viewer.is_none(),
    }
    .answer(site))
}

/// The headers of a raw file, from its name and its first bytes.
fn raw_head(path: &[u8], first: &[u8]) -> Response {
    let image = image_type(path);
    let is_binary = first[..first.len().min(8000)].contains(&0);
    let content_type = match (image, is_binary) {
        (Some(t), _) => t,
        (None, false) => "text/plain; charset=utf-8",
        (None, true) => "application/octet-stream",
    };
    let mut r = Response::new(200);
    r.header("Content-Type", content_type);
    r.header("X-Content-Type-Options", "nosniff");
    r.no_cache();
    r.header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; sandbox",
    );
    if image.is_none() && is_binary {
        attachment(&mut r, path);
    }
    r
}

/// Makes `r` a download named after the last part of `path` (only ASCII letters, digits and
/// `._-` kept).
fn attachment(r: &mut Response, path: &[u8]) {
    let file_name = String::from_utf8_lossy(path.rsplit(|&b| b == b'/').next().unwrap_or(path));
    let safe: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    r.header(
        "Content-Disposition",
        format!("attachment; filename=\"{safe}\""),
    );
}
