//! `GET commits/{ref}[/{path}]?page=N` (`commits.html`): the history of a ref, or of one path in
//! it, a page at a time; and the commit rows other pages list.

use askama::Template;

use super::repo_head::{git_err, head_at, open, RepoHead};
use super::{Chrome, PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self};
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

pub(crate) fn row(site: &Site, repo: &RepoDir, c: &browse::CommitSummary) -> CommitRow {
    CommitRow {
        short_id: c.short_id.clone(),
        url: commit_url(site, repo, &c.id.to_string()),
        summary: c.summary.clone(),
        author: c.author.name.clone(),
        date: date(c.author.time, c.author.offset_minutes),
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
                Some(name) if asked.join(&b'/') == name.as_bytes() => ctx.render(
                    site,
                    req,
                    200,
                    &CommitsPage {
                        chrome: ctx.chrome(site),
                        head: head_at(site, ctx, repo, &name),
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
            head: head_at(site, ctx, repo, &at.rev.name),
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
