//! `GET commits/{ref}[/{path}]?page=N` (`commits.html`): the history of a ref, or of one path in
//! it, a page at a time; and the commit rows other pages list.

use askama::Template;

use std::sync::Arc;
use std::time::Duration;

use super::cache::{self, Fragment, Key};
use super::repo_head::{git_err, head_at, open};
use super::{PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::{stamp, Stamp};
use crate::urls::browse_url;

/// One commit in a list.
pub(crate) struct CommitRow {
    pub(crate) short_id: String,
    pub(crate) url: String,
    pub(crate) summary: String,
    pub(crate) author: String,
    pub(crate) date: Stamp,
}

#[derive(Template)]
#[template(path = "commits_body.html")]
struct CommitsBody {
    rev: String,
    path: String,
    commits: Vec<CommitRow>,
    newer: Option<String>,
    older: Option<String>,
    /// The walk gave up (`browse::LOG_SCAN_LIMIT`, or git's deadline for a path's history):
    /// says so instead of ending silently.
    stopped: String,
}

/// How long git may look for the commits of one page of a path's history.
const PATH_LOG_DEADLINE: Duration = Duration::from_secs(10);
/// How long a path's history waits for a git slot.
const PATH_LOG_SLOT_WAIT: Duration = Duration::from_secs(5);

pub(crate) fn row(site: &Site, repo: &RepoDir, c: &browse::CommitSummary) -> CommitRow {
    CommitRow {
        short_id: c.short_id.clone(),
        url: commit_url(site, repo, &c.id.to_string()),
        summary: c.summary.clone(),
        author: c.author.name.clone(),
        date: stamp(c.author.time, c.author.offset_minutes),
    }
}

pub(crate) fn commit_url(site: &Site, repo: &RepoDir, id: &str) -> String {
    format!(
        "{}/{}/{}/commit/{id}",
        site.config.base_path, repo.owner, repo.name
    )
}

/// `GET commits/{ref}[/{path}]?page=N`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
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
                Some(name) if asked.join(&b'/') == name.as_bytes() => {
                    let fragment = Fragment::render(
                        title(repo, &name),
                        &CommitsBody {
                            rev: name.clone(),
                            path: String::new(),
                            commits: Vec::new(),
                            newer: None,
                            older: None,
                            stopped: String::new(),
                        },
                    )?;
                    ctx.render_repo_page(site, req, head_at(site, ctx, repo, &name), &fragment)
                }
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
    let head = head_at(site, ctx, repo, &at.rev.name);
    // Kept once per commit the ref resolved to, the ref's name, the path and the page.
    let key = Key::new(site, "log", repo).map(|k| {
        k.part(at.rev.commit.as_bytes())
            .part(at.rev.name.as_bytes())
            .part(&at.path)
            .part((page as u64).to_le_bytes())
    });
    if let Some(hit) = key.as_ref().and_then(cache::get) {
        return ctx.render_repo_page(site, req, head, &hit);
    }
    let size = browse::LOG_PAGE_SIZE;
    let skip = (page - 1) * size;
    let log = if at.path.is_empty() {
        let log = browse::log(&git, at.rev.commit, "", skip, size).map_err(git_err(repo))?;
        Found {
            commits: log.commits,
            has_more: log.has_more,
            stopped: if log.stopped {
                format!(
                    "The search stopped after looking through {} commits; older ones are not listed here. Use git log in a clone for the rest.",
                    browse::LOG_SCAN_LIMIT
                )
            } else {
                String::new()
            },
        }
    } else {
        path_log(
            site,
            req,
            ctx,
            &git,
            repo,
            at.rev.commit,
            &at.path,
            skip,
            size,
        )?
    };
    if log.commits.is_empty() && page > 1 && log.stopped.is_empty() {
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
    let fragment = Fragment::render(
        title(repo, &at.rev.name),
        &CommitsBody {
            rev: at.rev.name.clone(),
            path: String::from_utf8_lossy(&at.path).into_owned(),
            commits: log.commits.iter().map(|c| row(site, repo, c)).collect(),
            newer: (page > 1).then(|| format!("{here}?page={}", page - 1)),
            older: log.has_more.then(|| format!("{here}?page={}", page + 1)),
            stopped: log.stopped.clone(),
        },
    )?;
    // A page cut short by git's deadline or a busy server may come out whole next time.
    let fragment = match key {
        Some(key) if log.stopped.is_empty() || at.path.is_empty() => cache::put(key, fragment),
        _ => Arc::new(fragment),
    };
    ctx.render_repo_page(site, req, head, &fragment)
}

fn title(repo: &RepoDir, rev: &str) -> String {
    format!("History of {rev} \u{b7} {}/{}", repo.owner, repo.name)
}

/// One page of history.
struct Found {
    commits: Vec<browse::CommitSummary>,
    has_more: bool,
    /// Why the list may be incomplete; empty when it is not.
    stopped: String,
}

/// One page of the history of `path` from `start`: the commits `git log -- path` lists (git's
/// history simplification, and the changed-path Bloom filters of the commit-graph maintenance
/// writes, so the commits that cannot have touched the path are never diffed). git runs in a
/// slot, for at most [`PATH_LOG_DEADLINE`], printing at most one page and one more id.
#[allow(clippy::too_many_arguments)]
fn path_log(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    git: &git2::Repository,
    repo: &RepoDir,
    start: git2::Oid,
    path: &[u8],
    skip: usize,
    limit: usize,
) -> Result<Found> {
    use std::os::unix::ffi::OsStrExt;
    let slot =
        match site
            .git
            .slot_within(req.remote_addr(), ctx.viewer.is_none(), PATH_LOG_SLOT_WAIT)
        {
            Ok(slot) => slot,
            Err(busy) => {
                return Ok(Found {
                    commits: Vec::new(),
                    has_more: false,
                    stopped: busy.message().to_string(),
                })
            }
        };
    let mut c = site.git.git();
    // The history libgit2 shows elsewhere: no replaced objects, no rename following from a
    // repository's own settings.
    c.arg("-c")
        .arg("log.follow=false")
        .arg("--literal-pathspecs")
        .arg("--no-replace-objects")
        .arg("--git-dir")
        .arg(&repo.path)
        .arg("log")
        .arg("--format=%H")
        .arg(format!("--skip={skip}"))
        .arg(format!("--max-count={}", limit + 1))
        .arg("--end-of-options")
        .arg(start.to_string())
        .arg("--")
        .arg(std::ffi::OsStr::from_bytes(path));
    let out = site
        .git
        .output(&mut c, PATH_LOG_DEADLINE, (limit + 1) * 41)
        .map_err(|e| Error::internal("running git log for a path's history", e))?;
    drop(slot);
    let mut ids = Vec::new();
    for line in out.stdout.split(|&b| b == b'\n') {
        let Some(id) = std::str::from_utf8(line)
            .ok()
            .filter(|l| l.len() == 40)
            .and_then(|l| git2::Oid::from_str(l).ok())
        else {
            continue;
        };
        ids.push(id);
    }
    let has_more = ids.len() > limit;
    ids.truncate(limit);
    let commits = browse::summaries(git, &ids).map_err(git_err(repo))?;
    let stopped = if out.complete || has_more {
        String::new()
    } else {
        format!(
            "The search stopped after {} seconds; older commits may not be listed here. Use git log in a clone for the rest.",
            PATH_LOG_DEADLINE.as_secs()
        )
    };
    Ok(Found {
        commits,
        has_more,
        stopped,
    })
}
