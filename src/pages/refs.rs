//! `GET branches` and `GET tags` (`refs.html`): a repository's branches (the default first, then
//! the newest) and tags (the newest first), a page at a time.

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::commits::{row, CommitRow};
use super::repo_head::{git_err, head, open, refs_of, RepoHead};
use super::{PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::{browse_url, compare_url};

pub(crate) struct RefRow {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) note: String,
    pub(crate) commit: Option<CommitRow>,
    /// A branch other than the default: its compare page against the default branch.
    pub(crate) compare: Option<String>,
}

#[derive(Template)]
#[template(path = "refs_body.html")]
struct RefsBody {
    title: &'static str,
    rows: Vec<RefRow>,
    /// How many in all, over every page.
    total: usize,
    newer: Option<String>,
    older: Option<String>,
}

/// Branches or tags on one page.
pub(crate) const REFS_PAGE_SIZE: usize = 50;

/// `GET branches?page=N`.
pub(crate) fn branches<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    refs(site, c.req, c.ctx, c.repo()?, false).map(Answer::from)
}

/// `GET tags?page=N`.
pub(crate) fn tags<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    refs(site, c.req, c.ctx, c.repo()?, true).map(Answer::from)
}

/// The repository's head, with the tags' feed on the tags page.
fn page_head(site: &Site, ctx: &PageCtx, repo: &RepoDir, tags: bool) -> RepoHead {
    let mut h = head(site, ctx, repo);
    if tags {
        h.feed = Some(super::feeds::tags_link(site, repo));
    }
    h
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
    let prefix: &[u8] = if tags { b"refs/tags/" } else { b"refs/heads/" };
    // Kept once per state of the listed refs (and, for branches, the default branch, listed
    // first): every other part of a row is an object, which never changes.
    let digest = snap.derived(
        if tags {
            "page-digest-tags"
        } else {
            "page-digest-branches"
        },
        |s| -> Result<[u8; 32]> {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for r in s.under(prefix) {
                h.update((r.name.len() as u64).to_le_bytes());
                h.update(&r.name);
                h.update(r.target.as_bytes());
                h.update(r.peeled.map(|p| p.as_bytes().to_vec()).unwrap_or_default());
                h.update([0]);
            }
            Ok(h.finalize().into())
        },
    )?;
    let default = if tags {
        String::new()
    } else {
        browse::default_branch(&git)
            .map_err(git_err(repo))?
            .map(|d| d.name)
            .unwrap_or_default()
    };
    let key = Key::new(site, if tags { "tags" } else { "branches" }, repo).map(|k| {
        k.part(*digest)
            .part(default.as_bytes())
            .part((page as u64).to_le_bytes())
    });
    if let Some(hit) = key.as_ref().and_then(cache::get) {
        return ctx.render_repo_page(site, req, page_head(site, ctx, repo, tags), &hit);
    }
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
                compare: None,
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
                compare: (!b.is_default && !default.is_empty())
                    .then(|| compare_url(base, &repo.owner, &repo.name, &default, &b.rev)),
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
    let title = if tags { "Tags" } else { "Branches" };
    let fragment = Fragment::render(
        format!("{title} \u{b7} {}/{}", repo.owner, repo.name),
        &RefsBody {
            title,
            rows,
            total,
            newer: match page {
                1 => None,
                2 => Some(here.clone()),
                _ => Some(format!("{here}?page={}", page - 1)),
            },
            older: (skip + REFS_PAGE_SIZE < total).then(|| format!("{here}?page={}", page + 1)),
        },
    )?;
    let fragment = match key {
        Some(key) => cache::put(key, fragment),
        None => std::sync::Arc::new(fragment),
    };
    ctx.render_repo_page(site, req, page_head(site, ctx, repo, tags), &fragment)
}
