//! `GET branches` and `GET tags` (`refs.html`): a repository's branches (the default first, then
//! the newest) and tags (the newest first), a page at a time.

use askama::Template;

use super::commits::{row, CommitRow};
use super::repo_head::{git_err, head, open, refs_of, RepoHead};
use super::{Chrome, PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::browse_url;

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
    let snap = refs_of(repo)?;
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
