//! A repository's pages: home (clone URL, latest commit, file tree of the default branch, README),
//! tree and blob views for any ref and path, and raw files with a content type that cannot run in
//! the site's origin.

use askama::Template;

use super::history::{row, CommitRow};
use super::{Chrome, PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self, BrowseError, EntryKind};
use crate::git::{RepoDir, Visibility};
use crate::git_http::archive::{self, Archive};
use crate::git_http::blob::{self, BlobStream};
use crate::markup::{markdown, TrustedHtml};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::{browse_url, clone_url};

/// Branches, and tags, the home page's selector lists at most (the rest are a link away).
const SELECTOR_SIZE: usize = 10;

pub(crate) use crate::git_http::{open, refs_of};

/// Images up to this size are shown on their blob page (from their raw URL).
const IMAGE_SHOWN_LIMIT: u64 = 16 << 20;

pub(crate) struct FileRow {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) is_dir: bool,
    pub(crate) size: String,
}

pub(crate) struct Crumb {
    pub(crate) name: String,
    pub(crate) url: String,
}

/// What every repository page shows at the top.
pub(crate) struct RepoHead {
    /// Shown to the owner and admins only.
    pub(crate) settings_url: Option<String>,
    pub(crate) commits_url: String,
    pub(crate) branches_url: String,
    pub(crate) tags_url: String,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) home_url: String,
    pub(crate) private: bool,
    pub(crate) description: String,
    pub(crate) clone_url: String,
}

#[derive(Template)]
#[template(path = "repo.html")]
struct HomePage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    /// The first [`SELECTOR_SIZE`] branches and tags, and how many there are.
    branches: Vec<Crumb>,
    tags: Vec<Crumb>,
    branches_total: usize,
    tags_total: usize,
    latest: Option<CommitRow>,
    files: Vec<FileRow>,
    readme: Readme,
    empty: bool,
    /// Snapshot links of the shown ref, encoded (a ref name may hold `%`, `#` or `..`).
    tgz_url: String,
    zip_url: String,
}

#[derive(Template)]
#[template(path = "tree.html")]
struct TreePage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    crumbs: Vec<Crumb>,
    latest: Option<CommitRow>,
    files: Vec<FileRow>,
    readme: Readme,
}

#[derive(Template)]
#[template(path = "blob.html")]
struct BlobPage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    crumbs: Vec<Crumb>,
    size: String,
    raw_url: String,
    lines: Vec<(usize, String)>,
    binary: bool,
    /// An image: shown from its raw URL instead of as lines.
    image: bool,
    truncated: bool,
}

pub(crate) fn git_err(repo: &RepoDir) -> impl Fn(BrowseError) -> Error + '_ {
    move |e| match e {
        BrowseError::NotFound => Error::NotFound,
        BrowseError::Git(m) => Error::Internal(format!("{}/{}: {m}", repo.owner, repo.name)),
    }
}

/// The repository's title and tabs, the Commits tab on the default branch.
pub(crate) fn head(site: &Site, ctx: &PageCtx, repo: &RepoDir) -> RepoHead {
    let default = repo
        .open()
        .ok()
        .and_then(|g| browse::default_branch(&g).ok().flatten())
        .map(|d| d.name)
        .unwrap_or_else(|| "main".into());
    head_at(site, ctx, repo, &default)
}

/// The repository's title and tabs, the Commits tab on `rev` (the ref a page shows).
pub(crate) fn head_at(site: &Site, ctx: &PageCtx, repo: &RepoDir, rev: &str) -> RepoHead {
    let c = &site.config;
    let home = format!("{}/{}/{}", c.base_path, repo.owner, repo.name);
    RepoHead {
        settings_url: crate::auth::may_manage(ctx.viewer.as_ref(), &repo.owner)
            .then(|| format!("{home}/settings")),
        commits_url: browse_url(&c.base_path, &repo.owner, &repo.name, "commits", rev, ""),
        branches_url: format!("{home}/branches"),
        tags_url: format!("{home}/tags"),
        owner: repo.owner.clone(),
        name: repo.name.clone(),
        home_url: format!("{}/{}/{}", c.base_path, repo.owner, repo.name),
        private: repo.settings().visibility == Visibility::Private,
        description: repo.description(),
        clone_url: clone_url(&c.base_url, &repo.owner, &repo.name),
    }
}

fn human_size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
    }
}

fn rows(
    site: &Site,
    repo: &RepoDir,
    rev: &str,
    dir: &[u8],
    listing: &browse::TreeListing,
) -> Vec<FileRow> {
    let base = &site.config.base_path;
    listing
        .entries
        .iter()
        .map(|e| {
            // Links carry the name's exact bytes; the page shows it as text.
            let mut path = dir.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.raw_name);
            let is_dir = e.kind == EntryKind::Dir;
            let view = if is_dir { "tree" } else { "blob" };
            FileRow {
                name: e.name.clone(),
                url: browse_url(base, &repo.owner, &repo.name, view, rev, &path),
                is_dir,
                size: e.size.map(human_size).unwrap_or_default(),
            }
        })
        .collect()
}

/// The README of a folder as its page shows it (`readme.html`).
pub(crate) enum Readme {
    None,
    /// Larger than a page reads: a link to its blob page instead.
    TooLarge {
        name: String,
        size: String,
        url: String,
    },
    /// Markdown, rendered: the one HTML a page inserts without escaping it.
    Markdown {
        name: String,
        html: TrustedHtml,
    },
    /// Any other README, shown as it is (escaped by the template).
    Plain {
        name: String,
        text: String,
    },
}

fn readme(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    rev: &str,
    commit: git2::Oid,
    dir: &[u8],
) -> Result<Readme> {
    let Some(readme) =
        browse::readme(git, commit, dir, browse::README_LIMIT).map_err(git_err(repo))?
    else {
        return Ok(Readme::None);
    };
    let base = &site.config.base_path;
    let name = readme.name;
    if readme.blob.truncated {
        // Not read at all: it is larger than a page renders.
        return Ok(Readme::TooLarge {
            name,
            size: human_size(readme.blob.size),
            url: browse_url(base, &repo.owner, &repo.name, "blob", rev, &readme.path),
        });
    }
    let text = String::from_utf8_lossy(&readme.blob.data).into_owned();
    if !readme.markdown {
        return Ok(Readme::Plain { name, text });
    }
    let blob_base = browse_url(base, &repo.owner, &repo.name, "blob", rev, "");
    let tree_base = browse_url(base, &repo.owner, &repo.name, "tree", rev, "");
    let raw_base = browse_url(base, &repo.owner, &repo.name, "raw", rev, "");
    let html = markdown::render(
        &text,
        &markdown::Context {
            blob_base: &blob_base,
            tree_base: &tree_base,
            raw_base: &raw_base,
            dir,
        },
    );
    Ok(Readme::Markdown { name, html })
}

/// The path's crumbs: the repository, then each folder, then the last part, which is a file
/// when `file` (its crumb links to the file's page, not to a folder of that name).
fn crumbs(site: &Site, repo: &RepoDir, rev: &str, path: &[u8], file: bool) -> Vec<Crumb> {
    let base = &site.config.base_path;
    let mut out = vec![Crumb {
        name: repo.name.clone(),
        url: browse_url(base, &repo.owner, &repo.name, "tree", rev, ""),
    }];
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let mut so_far = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if !so_far.is_empty() {
            so_far.push(b'/');
        }
        so_far.extend_from_slice(part);
        let view = if file && i + 1 == parts.len() {
            "blob"
        } else {
            "tree"
        };
        out.push(Crumb {
            name: String::from_utf8_lossy(part).into_owned(),
            url: browse_url(base, &repo.owner, &repo.name, view, rev, &so_far),
        });
    }
    out
}

/// `GET /{owner}/{repo}`.
pub(crate) fn home<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let base = &site.config.base_path;
    let snap = refs_of(repo)?;
    let branches = browse::some_branches(&git, &snap, SELECTOR_SIZE).map_err(git_err(repo))?;
    let tags = browse::some_tags(&snap, SELECTOR_SIZE).map_err(git_err(repo))?;
    let default = browse::default_branch(&git).map_err(git_err(repo))?;
    // The default branch, or (when HEAD names a branch that does not exist) the first one.
    let start = match default {
        Some(browse::DefaultBranch {
            name,
            commit: Some(c),
        }) => Some((name, c)),
        _ => match branches.items.first() {
            Some(b) => Some((
                b.rev.clone(),
                browse::resolve_ref(&git, &b.rev)
                    .map_err(git_err(repo))?
                    .commit,
            )),
            None => None,
        },
    };
    let link = |r: &browse::RefLink| Crumb {
        name: r.name.clone(),
        url: browse_url(base, &repo.owner, &repo.name, "tree", &r.rev, ""),
    };
    let branch_links = branches.items.iter().map(link).collect();
    let tag_links = tags.items.iter().map(link).collect();
    let mut page = HomePage {
        chrome: ctx.chrome(site),
        head: match &start {
            Some((rev, _)) => head_at(site, ctx, repo, rev),
            None => head(site, ctx, repo),
        },
        rev: String::new(),
        branches: branch_links,
        tags: tag_links,
        branches_total: branches.total,
        tags_total: tags.total,
        latest: None,
        files: Vec::new(),
        readme: Readme::None,
        empty: start.is_none(),
        tgz_url: String::new(),
        zip_url: String::new(),
    };
    if let Some((rev, commit)) = start {
        let listing = browse::list_tree(&git, commit, "").map_err(git_err(repo))?;
        page.files = rows(site, repo, &rev, b"", &listing);
        page.latest = listing.last_commit.as_ref().map(|c| row(site, repo, c));
        page.readme = readme(site, &git, repo, &rev, commit, b"")?;
        let archive = |ext: &str| {
            browse_url(
                base,
                &repo.owner,
                &repo.name,
                "archive",
                &format!("{rev}.{ext}"),
                "",
            )
        };
        page.tgz_url = archive("tar.gz");
        page.zip_url = archive("zip");
        page.rev = rev;
    }
    ctx.render(site, req, 200, &page).map(Answer::from)
}

/// `GET tree/{ref}[/{path}]`.
pub(crate) fn tree<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    browse(site, c, View::Tree)
}

/// `GET blob/{ref}/{path}`.
pub(crate) fn blob<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    browse(site, c, View::Blob)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Tree,
    Blob,
}

fn browse<'s>(site: &'s Site, c: &PageCall<'_>, view: View) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let rev = at.rev.name.clone();
    let path = at.path.clone();
    let commit = at.rev.commit;
    match view {
        View::Tree => {
            let listing = browse::list_tree(&git, commit, &path).map_err(git_err(repo))?;
            let readme = readme(site, &git, repo, &rev, commit, &path)?;
            ctx.render(
                site,
                req,
                200,
                &TreePage {
                    chrome: ctx.chrome(site),
                    head: head_at(site, ctx, repo, &rev),
                    crumbs: crumbs(site, repo, &rev, &path, false),
                    files: rows(site, repo, &rev, &path, &listing),
                    latest: listing.last_commit.as_ref().map(|c| row(site, repo, c)),
                    readme,
                    rev,
                },
            )
        }
        View::Blob => {
            if path.is_empty() {
                return Err(Error::NotFound);
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
            let lines = if b.is_binary {
                Vec::new()
            } else {
                String::from_utf8_lossy(&b.data)
                    .lines()
                    .enumerate()
                    .map(|(i, l)| (i + 1, l.to_string()))
                    .collect()
            };
            let base = &site.config.base_path;
            ctx.render(
                site,
                req,
                200,
                &BlobPage {
                    chrome: ctx.chrome(site),
                    head: head_at(site, ctx, repo, &rev),
                    crumbs: crumbs(site, repo, &rev, &path, true),
                    size: human_size(b.size),
                    raw_url: browse_url(base, &repo.owner, &repo.name, "raw", &rev, &path),
                    lines,
                    binary: b.is_binary,
                    image: image_type(&path).is_some() && b.size <= IMAGE_SHOWN_LIMIT,
                    truncated: b.truncated,
                    rev,
                },
            )
        }
    }
    .map(Answer::from)
}

/// The content type of an image file, by its name's extension; `None` for anything else.
fn image_type(path: &[u8]) -> Option<&'static str> {
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

/// `raw/{ref}/{path}`: the bytes, typed so nothing can run in the site's origin: text (HTML and
/// scripts included) as `text/plain`, images with their own type under a sandboxing policy,
/// anything else as a download. Files up to `blob::INLINE_LIMIT` are read here; larger ones are
/// streamed by git (see `git_http::blob`), never read whole into forgelet.
pub(crate) fn raw<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let path = at.path;
    if path.is_empty() {
        return Err(Error::NotFound);
    }
    let b = browse::blob(&git, at.rev.commit, &path, blob::INLINE_LIMIT as usize)
        .map_err(git_err(repo))?;
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
    let file_name = String::from_utf8_lossy(path.rsplit(|&b| b == b'/').next().unwrap_or(path));
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
    r
}
