//! `GET blob/{ref}/{path}` (`blob.html`): a file at any branch, tag or commit, as numbered lines,
//! an image (from its raw URL), or a note that it is binary or too large to show. A file in a
//! language the highlighter knows is highlighted (`markup::highlight`, kept by blob id), unless
//! it is past the highlighter's bounds: then it is shown plain, with a note.

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::file_table::human_size;
use super::repo_head::{crumbs, git_err, head_at, open, Crumb};
use super::PageCall;
use crate::error::{Error, Result};
use crate::git::browse::{self, BrowseError, EntryKind};
use crate::markup::{highlight, TrustedHtml};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::browse_url;

/// Images up to this size are shown on their blob page (from their raw URL).
const IMAGE_SHOWN_LIMIT: u64 = 16 << 20;

#[derive(Template)]
#[template(path = "blob_body.html")]
struct BlobBody {
    rev: String,
    crumbs: Vec<Crumb>,
    size: String,
    raw_url: String,
    /// The file's history (`commits/{ref}/{path}`).
    history_url: String,
    /// Who last changed each line (`blame/{ref}/{path}`).
    blame_url: String,
    /// The file's lines, plain; empty when highlighted.
    lines: Vec<(usize, String)>,
    /// The file's lines highlighted, the first being line 1; empty when plain.
    code: std::sync::Arc<[TrustedHtml]>,
    /// The file is in a language the highlighter knows but too large to highlight.
    too_large_to_highlight: bool,
    binary: bool,
    /// An image: shown from its raw URL instead of as lines.
    image: bool,
    truncated: bool,
    /// Stored with Git LFS: what is shown is the object, not its pointer.
    lfs: bool,
}

/// `GET blob/{ref}/{path}`: a file's lines, an image, or a note that it is binary or too large.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let rev = at.rev.name.clone();
    let path = at.path.clone();
    let commit = at.rev.commit;
    if path.is_empty() {
        return Err(Error::NotFound);
    }
    // Kept once per commit the ref resolved to, the ref's name (its links carry it) and path.
    let key = Key::new(site, "blob", repo)
        .map(|k| k.part(commit.as_bytes()).part(rev.as_bytes()).part(&path));
    if let Some(hit) = key.as_ref().and_then(cache::get) {
        return ctx
            .render_repo_page(site, req, head_at(site, ctx, repo, &rev), &hit)
            .map(Answer::from);
    }
    let b = match browse::blob(&git, commit, &path, browse::BLOB_SHOWN_LIMIT) {
        Ok(b) => b,
        // A folder's blob URL (typed, or from an old link): its tree page.
        Err(BrowseError::NotFound) if browse::list_tree(&git, commit, &path).is_ok() => {
            let base = &site.config.base_path;
            return Ok(Response::redirect(
                302,
                browse_url(base, &repo.owner, &repo.name, "tree", &rev, &path),
            )
            .into());
        }
        Err(e) => return Err(git_err(repo)(e)),
    };
    // A file stored with Git LFS shows as the file itself when the repository keeps its object.
    let (b, lfs) = match crate::lfs::pointer::resolve(repo, &b, browse::BLOB_SHOWN_LIMIT)? {
        Some((real, _)) => (real, true),
        None => (b, false),
    };
    // A pointer whose object is not here yet (it may be uploaded any moment) is not kept.
    let key = if !lfs && crate::lfs::pointer::parse(&b.data).is_some() {
        None
    } else {
        key
    };
    let text = String::from_utf8_lossy(&b.data);
    let all: Vec<&str> = if b.is_binary {
        Vec::new()
    } else {
        text.lines().collect()
    };
    let language = match b.kind {
        EntryKind::Symlink => None,
        _ if all.is_empty() => None,
        _ => highlight::language(&path, all[0]),
    };
    let fits = highlight::fits(b.data.len(), all.len());
    let (lines, code) = match language {
        Some(language) if fits => (Vec::new(), highlight::file(b.id.as_bytes(), language, &all)),
        _ => (
            all.iter()
                .enumerate()
                .map(|(i, l)| (i + 1, l.to_string()))
                .collect(),
            std::sync::Arc::from(Vec::new()),
        ),
    };
    let base = &site.config.base_path;
    let crumbs = crumbs(site, repo, &rev, &path, true);
    let title = format!(
        "{} \u{b7} {}/{}",
        crumbs.last().map(|c| c.name.as_str()).unwrap_or_default(),
        repo.owner,
        repo.name
    );
    let fragment = Fragment::render(
        title,
        &BlobBody {
            crumbs,
            size: human_size(b.size),
            raw_url: browse_url(base, &repo.owner, &repo.name, "raw", &rev, &path),
            history_url: browse_url(base, &repo.owner, &repo.name, "commits", &rev, &path),
            blame_url: browse_url(base, &repo.owner, &repo.name, "blame", &rev, &path),
            lines,
            code,
            too_large_to_highlight: language.is_some() && !fits,
            binary: b.is_binary,
            image: image_type(&path).is_some() && b.size <= IMAGE_SHOWN_LIMIT,
            truncated: b.truncated,
            lfs,
            rev: rev.clone(),
        },
    )?;
    let fragment = match key {
        Some(key) => cache::put(key, fragment),
        None => std::sync::Arc::new(fragment),
    };
    ctx.render_repo_page(site, req, head_at(site, ctx, repo, &rev), &fragment)
        .map(Answer::from)
}

/// The content type of an image file, by its name's extension; `None` for anything else.
pub(crate) fn image_type(path: &[u8]) -> Option<&'static str> {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let ext = name
        .rsplit(|&b| b == b'.')
        .next()
        .filter(|e| e.len() < name.len())?;
    Some(match ext.to_ascii_lowercase().as_slice() {
        b"png" => "image/png",
        b"jpg" | b"jpeg" => "image/jpeg",
        b"gif" => "image/gif",
        b"webp" => "image/webp",
        b"ico" => "image/x-icon",
        b"svg" => "image/svg+xml",
        _ => return None,
    })
}
