//! `GET /` (`front.html`): signed in, your repositories and then those shared with you; signed out, the
//! repositories anyone may read; a page at a time. The list comes from the repositories'
//! listing (`git::listing`), so a page costs what it shows, not what the site holds.

use askama::Template;

use super::{Chrome, PageCall, PageCtx};
use crate::auth;
use crate::error::{Error, Result};
use crate::git::listing::{Listed, Listing};
use crate::git::Visibility;
use crate::request::Request;
use crate::response::Answer;
use crate::site::Site;
use crate::urls::{clone_url, home_page_url, repo_url};

pub(crate) struct Entry {
    pub(crate) full_name: String,
    pub(crate) url: String,
    pub(crate) clone_url: String,
    pub(crate) description: String,
    pub(crate) private: bool,
    /// When its default branch last changed, `YYYY-MM-DD`; empty for an empty repository.
    pub(crate) updated: String,
}

/// The date of the default branch's latest commit (computed again only when the branch moves).
fn last_update(repo: &crate::git::RepoDir) -> String {
    crate::git::cache::head_date(&repo.path, || compute_last_update(repo)).to_string()
}

fn compute_last_update(repo: &crate::git::RepoDir) -> String {
    let Ok(git) = repo.open_uncached() else {
        return String::new();
    };
    let when = git
        .head()
        .and_then(|h| h.peel_to_commit())
        .map(|c| c.committer().when());
    match when {
        Ok(t) => {
            let d = crate::time::date(t.seconds(), t.offset_minutes());
            d.split(' ').next().unwrap_or("").to_string()
        }
        Err(_) => String::new(),
    }
}

/// Repositories on one page of the front page, the dashboard or an owner's page.
pub(crate) const REPOS_PAGE_SIZE: usize = 50;

/// The page a request asks for (`?page=N`, from 1).
pub(crate) fn page_number(req: &Request) -> usize {
    req.query_param("page")
        .and_then(|p| p.parse().ok())
        .filter(|&p| p >= 1)
        .unwrap_or(1)
}

/// The repositories the viewer may read, in the listing's order (owner, then name), optionally
/// only `owner`'s. Decided on the listing's settings, which each shown entry checks again.
pub(crate) fn readable<'l>(
    site: &Site,
    ctx: &PageCtx,
    listing: &'l Listing,
    owner: Option<&str>,
) -> Vec<&'l Listed> {
    let viewer = ctx.viewer.as_ref();
    listing
        .repos
        .iter()
        .filter(|r| owner.map_or(true, |o| r.dir.owner.eq_ignore_ascii_case(o)))
        .filter(|r| {
            auth::access(
                viewer,
                &r.dir.owner,
                &r.settings,
                site.config.anonymous_read,
            )
            .may_read()
        })
        .collect()
}

/// Every repository, from the listing.
pub(crate) fn listing(site: &Site) -> Result<std::sync::Arc<Listing>> {
    site.repos
        .listing()
        .map_err(|e| Error::internal("listing repositories", e))
}

/// The entries shown for `page`, each checked against its settings as they are now (the
/// listing may be older): one the viewer may no longer read is left out.
pub(crate) fn entries(site: &Site, ctx: &PageCtx, shown: &[&Listed]) -> Vec<Entry> {
    let c = &site.config;
    shown
        .iter()
        .filter_map(|l| {
            let r = &l.dir;
            let settings = r.shared_settings();
            if !auth::access(ctx.viewer.as_ref(), &r.owner, &settings, c.anonymous_read).may_read()
            {
                return None;
            }
            Some(Entry {
                full_name: format!("{}/{}", r.owner, r.name),
                url: repo_url(&c.base_path, &r.owner, &r.name),
                clone_url: clone_url(&c.base_url, &r.owner, &r.name),
                description: r.description(),
                private: settings.visibility == Visibility::Private,
                updated: last_update(r),
            })
        })
        .collect()
}

/// The part of `all` on page `page`, or `None` past the last page (the first page always exists).
pub(crate) fn page_of<T>(all: &[T], page: usize) -> Option<&[T]> {
    let skip = (page - 1).saturating_mul(REPOS_PAGE_SIZE);
    if skip >= all.len() && page > 1 {
        return None;
    }
    let end = skip.saturating_add(REPOS_PAGE_SIZE).min(all.len());
    Some(all.get(skip..end).unwrap_or_default())
}

#[derive(Template)]
#[template(path = "front.html")]
struct FrontPage {
    chrome: Chrome,
    own: Vec<Entry>,
    others: Vec<Entry>,
    signed_in: bool,
    /// How many the viewer owns, over every page.
    own_total: usize,
    /// How many there are to show, over every page.
    total: usize,
    newer: Option<String>,
    older: Option<String>,
}

/// `GET /?page=N`: the repositories the viewer may read, their own first, a page at a time.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let viewer = ctx.viewer.as_ref();
    let listing = listing(site)?;
    let is_own = |l: &Listed| viewer.is_some_and(|v| v.name.eq_ignore_ascii_case(&l.dir.owner));
    let (own, others): (Vec<&Listed>, Vec<&Listed>) = readable(site, ctx, &listing, None)
        .into_iter()
        .partition(|l| is_own(l));
    let own_total = own.len();
    let all: Vec<&Listed> = own.into_iter().chain(others).collect();
    let page = page_number(req);
    let shown = page_of(&all, page).ok_or(Error::NotFound)?;
    let own_shown = shown.iter().take_while(|l| is_own(l)).count();
    let (own_part, other_part) = shown.split_at(own_shown);
    let base = &site.config.base_path;
    let total = all.len();
    ctx.render(
        site,
        req,
        200,
        &FrontPage {
            chrome: ctx.chrome(site),
            own: entries(site, ctx, own_part),
            others: entries(site, ctx, other_part),
            signed_in: viewer.is_some(),
            own_total,
            total,
            newer: (page > 1).then(|| home_page_url(base, page - 1)),
            older: (page.saturating_mul(REPOS_PAGE_SIZE) < total)
                .then(|| home_page_url(base, page + 1)),
        },
    )
    .map(Answer::from)
}
