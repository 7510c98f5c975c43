//! History pages: the commit log of a ref (and a path), one commit with its diff, and the
//! branches and tags lists.

use askama::Template;

use super::repo::{git_err, head, open, Crumb, RepoHead};
use super::{Chrome, PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self, DiffLimits, FileStatus, LineKind};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;
use crate::urls::browse_url;

/// One commit in a list.
pub(crate) struct CommitRow {
    pub(crate) short_id: String,
    pub(crate) url: String,
    pub(crate) summary: String,
    pub(crate) author: String,
    pub(crate) date: String,
}

#[derive(Template)]
#[template(path = "commits.html")]
struct CommitsPage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    path: String,
    commits: Vec<CommitRow>,
    newer: Option<String>,
    older: Option<String>,
    /// The walk gave up (`browse::LOG_SCAN_LIMIT`): says so instead of ending silently.
    stopped: String,
}

pub(crate) struct FileView {
    pub(crate) status: &'static str,
    pub(crate) path: String,
    pub(crate) old_path: String,
    pub(crate) additions: usize,
    pub(crate) deletions: usize,
    pub(crate) binary: bool,
    pub(crate) too_large: bool,
    pub(crate) complete: bool,
    pub(crate) counted: bool,
    /// (css class, old line, new line, text)
    pub(crate) lines: Vec<(&'static str, String, String, String)>,
}

#[derive(Template)]
#[template(path = "commit.html")]
struct CommitPage {
    chrome: Chrome,
    head: RepoHead,
    short_id: String,
    id: String,
    summary: String,
    body: String,
    author: String,
    date: String,
    parents: Vec<Crumb>,
    tree_url: String,
    files: Vec<FileView>,
    /// Every file the commit changed, listed or not.
    files_changed: usize,
    /// `files_changed` is a lower bound.
    more_files: bool,
    /// Empty when not every file was counted.
    additions: String,
    deletions: String,
    cut_note: String,
}

pub(crate) struct RefRow {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) note: String,
    pub(crate) commit: Option<CommitRow>,
}

#[derive(Template)]
#[template(path = "refs.html")]
struct RefsPage {
    chrome: Chrome,
    head: RepoHead,
    title: &'static str,
    rows: Vec<RefRow>,
    /// How many in all, over every page.
    total: usize,
    newer: Option<String>,
    older: Option<String>,
}

pub(crate) fn row(site: &Site, repo: &RepoDir, c: &browse::CommitSummary) -> CommitRow {
    CommitRow {
        short_id: c.short_id.clone(),
        url: commit_url(site, repo, &c.id.to_string()),
        summary: c.summary.clone(),
        author: c.author.name.clone(),
        date: date(c.author.time, c.author.offset_minutes),
    }
}

fn commit_url(site: &Site, repo: &RepoDir, id: &str) -> String {
    format!(
        "{}/{}/{}/commit/{id}",
        site.config.base_path, repo.owner, repo.name
    )
}

/// `GET commits/{ref}[/{path}]?page=N`.
pub(crate) fn commits<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    log_page(site, c.req, c.ctx, c.repo()?, &c.rest_bytes()).map(Answer::from)
}

fn log_page(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    repo: &RepoDir,
    segments: &[&[u8]],
) -> Result<Response> {
    let git = open(repo)?;
    let at = match browse::resolve_ref_path(&git, segments) {
        Ok(at) => at,
        Err(browse::BrowseError::NotFound) => {
            // The default branch before its first push: an empty history, not a 404.
            let unborn = browse::default_branch(&git)
                .ok()
                .flatten()
                .filter(|d| d.commit.is_none())
                .map(|d| d.name);
            let asked: Vec<&[u8]> = segments.iter().copied().filter(|s| !s.is_empty()).collect();
            return match unborn {
                Some(name) if asked.join(&b'/') == name.as_bytes() => ctx.render(
                    site,
                    req,
                    200,
                    &CommitsPage {
                        chrome: ctx.chrome(site),
                        head: super::repo::head_at(site, ctx, repo, &name),
                        rev: name,
                        path: String::new(),
                        commits: Vec::new(),
                        newer: None,
                        older: None,
                        stopped: String::new(),
                    },
                ),
                _ => Err(Error::NotFound),
            };
        }
        Err(e) => return Err(git_err(repo)(e)),
    };
    let page: usize = req
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .filter(|&p| (1..=100_000).contains(&p))
        .unwrap_or(1);
    let size = browse::LOG_PAGE_SIZE;
    let log = browse::log(&git, at.rev.commit, &at.path, (page - 1) * size, size)
        .map_err(git_err(repo))?;
    if log.commits.is_empty() && page > 1 && !log.stopped {
        return Err(Error::NotFound);
    }
    let here = browse_url(
        &site.config.base_path,
        &repo.owner,
        &repo.name,
        "commits",
        &at.rev.name,
        &at.path,
    );
    ctx.render(
        site,
        req,
        200,
        &CommitsPage {
            chrome: ctx.chrome(site),
            head: super::repo::head_at(site, ctx, repo, &at.rev.name),
            rev: at.rev.name.clone(),
            path: String::from_utf8_lossy(&at.path).into_owned(),
            commits: log.commits.iter().map(|c| row(site, repo, c)).collect(),
            newer: (page > 1).then(|| format!("{here}?page={}", page - 1)),
            older: log.has_more.then(|| format!("{here}?page={}", page + 1)),
            stopped: if log.stopped {
                format!(
                    "The search stopped after looking through {} commits; older ones are not listed here. Use git log in a clone for the rest.",
                    browse::LOG_SCAN_LIMIT
                )
            } else {
                String::new()
            },
        },
    )
}

/// `GET commit/{rev}`: a commit id, a branch or a tag, with one `~N` or `^N` at most (see
/// `browse::resolve_commit_rev`).
pub(crate) fn commit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    commit_page(site, c.req, c.ctx, c.repo()?, &c.caps.rest.join("/")).map(Answer::from)
}

fn commit_page(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    repo: &RepoDir,
    id: &str,
) -> Result<Response> {
    let git = open(repo)?;
    let oid = browse::resolve_commit_rev(&git, id).map_err(git_err(repo))?;
    let c = browse::commit_diff(&git, oid, &DiffLimits::default()).map_err(git_err(repo))?;
    let files = c
        .files
        .iter()
        .map(|f| FileView {
            status: match f.status {
                FileStatus::Added => "added",
                FileStatus::Deleted => "deleted",
                FileStatus::Modified => "modified",
                FileStatus::Renamed => "renamed",
                FileStatus::Copied => "copied",
                FileStatus::TypeChange => "type changed",
            },
            path: f
                .new_path
                .clone()
                .or_else(|| f.old_path.clone())
                .unwrap_or_default(),
            old_path: match (&f.old_path, &f.new_path) {
                (Some(o), Some(n)) if o != n => o.clone(),
                _ => String::new(),
            },
            additions: f.additions,
            deletions: f.deletions,
            binary: f.binary,
            too_large: f.too_large,
            complete: f.complete,
            counted: f.counted,
            lines: f
                .hunks
                .iter()
                .flat_map(|h| {
                    std::iter::once(("hunk", String::new(), String::new(), h.header.clone())).chain(
                        h.lines.iter().map(|l| {
                            let class = match l.kind {
                                LineKind::Added => "add",
                                LineKind::Removed => "del",
                                LineKind::Context => "ctx",
                                LineKind::NoNewline => "note",
                            };
                            let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_default();
                            (
                                class,
                                n(l.old_line),
                                n(l.new_line),
                                format!("{}{}", l.kind.origin(), l.content.trim_end_matches('\n')),
                            )
                        }),
                    )
                })
                .collect(),
        })
        .collect();
    let cut_note = match &c.truncated {
        Some(cut) if cut.files_more => format!(
            "This commit changes more than {} files; the first {} are shown. Clone the repository to see the rest.",
            cut.files_total,
            cut.files_total.min(c.files.len())
        ),
        Some(cut) if cut.files_omitted > 0 => format!(
            "This commit changes {} files; the first {} are shown. Clone the repository to see the rest.",
            cut.files_total,
            cut.files_total - cut.files_omitted
        ),
        Some(_) => "This diff is too large to show whole; the changes past the limit are not shown. Clone the repository to see them.".to_string(),
        None => String::new(),
    };
    let body = c
        .message
        .split_once('\n')
        .map(|(_, rest)| rest.trim().to_string())
        .unwrap_or_default();
    let id_s = c.id.to_string();
    ctx.render(
        site,
        req,
        200,
        &CommitPage {
            chrome: ctx.chrome(site),
            head: head(site, ctx, repo),
            short_id: c.short_id.clone(),
            tree_url: browse_url(
                &site.config.base_path,
                &repo.owner,
                &repo.name,
                "tree",
                &id_s,
                "",
            ),
            id: id_s,
            summary: c.summary.clone(),
            body,
            author: format!("{} <{}>", c.author.name, c.author.email),
            date: date(c.author.time, c.author.offset_minutes),
            parents: c
                .parents
                .iter()
                .map(|p| {
                    let s = p.to_string();
                    Crumb {
                        name: s[..7.min(s.len())].to_string(),
                        url: commit_url(site, repo, &s),
                    }
                })
                .collect(),
            files,
            files_changed: c.truncated.map_or(c.files.len(), |t| t.files_total),
            more_files: c.truncated.is_some_and(|t| t.files_more),
            additions: c.additions.map(|n| n.to_string()).unwrap_or_default(),
            deletions: c.deletions.map(|n| n.to_string()).unwrap_or_default(),
            cut_note,
        },
    )
}

/// Branches or tags on one page.
const REFS_PAGE_SIZE: usize = 100;

/// `GET branches?page=N`.
pub(crate) fn branches<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    refs(site, c.req, c.ctx, c.repo()?, false).map(Answer::from)
}

/// `GET tags?page=N`.
pub(crate) fn tags<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    refs(site, c.req, c.ctx, c.repo()?, true).map(Answer::from)
}

fn refs(site: &Site, req: &Request, ctx: &PageCtx, repo: &RepoDir, tags: bool) -> Result<Response> {
    let git = open(repo)?;
    let snap = super::repo::refs_of(repo)?;
    let base = &site.config.base_path;
    let page: usize = req
        .query_param("page")
        .and_then(|p| p.parse().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(1);
    let skip = (page - 1).saturating_mul(REFS_PAGE_SIZE);
    let (rows, total): (Vec<RefRow>, usize) = if tags {
        let list = browse::tags(&git, &snap, skip, REFS_PAGE_SIZE).map_err(git_err(repo))?;
        let rows = list
            .items
            .into_iter()
            .map(|t| RefRow {
                url: browse_url(base, &repo.owner, &repo.name, "tree", &t.rev, ""),
                note: t
                    .annotation
                    .as_ref()
                    .map(|a| a.message.lines().next().unwrap_or("").to_string())
                    .unwrap_or_default(),
                commit: t.commit.as_ref().map(|c| row(site, repo, c)),
                name: t.name,
            })
            .collect();
        (rows, list.total)
    } else {
        let list = browse::branches(&git, &snap, skip, REFS_PAGE_SIZE).map_err(git_err(repo))?;
        let rows = list
            .items
            .into_iter()
            .map(|b| RefRow {
                url: browse_url(base, &repo.owner, &repo.name, "tree", &b.rev, ""),
                note: if b.is_default {
                    "default".into()
                } else {
                    String::new()
                },
                commit: Some(row(site, repo, &b.commit)),
                name: b.name,
            })
            .collect();
        (rows, list.total)
    };
    if rows.is_empty() && page > 1 {
        return Err(Error::NotFound);
    }
    let here = format!(
        "{}/{}/{}/{}",
        base,
        repo.owner,
        repo.name,
        if tags { "tags" } else { "branches" }
    );
    ctx.render(
        site,
        req,
        200,
        &RefsPage {
            chrome: ctx.chrome(site),
            head: head(site, ctx, repo),
            title: if tags { "Tags" } else { "Branches" },
            rows,
            total,
            newer: (page > 1).then(|| format!("{here}?page={}", page - 1)),
            older: (skip + REFS_PAGE_SIZE < total).then(|| format!("{here}?page={}", page + 1)),
        },
    )
}
