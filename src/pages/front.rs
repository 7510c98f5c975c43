//! `GET /` (`front.html`): signed in, your repositories and then those shared with you; signed out, the
//! repositories anyone may read; a page at a time. The list comes from the repositories'
//! listing (`git::listing`), so a page costs what it shows, not what the site holds.

use std::sync::Arc;

use askama::Template;

use super::{Chrome, PageCall, PageCtx};
use crate::auth;
use crate::error::{Error, Result};
use crate::git::listing::Listing;
use crate::git::Visibility;
use crate::request::Request;
use crate::response::Answer;
use crate::site::Site;
use crate::urls::{clone_url, home_page_url, repo_url, search_url};

pub(crate) struct Entry {
    pub(crate) full_name: String,
    pub(crate) url: String,
    pub(crate) clone_url: String,
    pub(crate) description: Arc<str>,
    pub(crate) private: bool,
    /// When its default branch last changed, `YYYY-MM-DD`; empty for an empty repository.
    pub(crate) updated: Arc<str>,
}

/// The date of the default branch's latest commit (computed again only when the branch moves).
fn last_update(repo: &crate::git::RepoDir) -> Arc<str> {
    crate::git::cache::head_date(&repo.path, || compute_last_update(repo))
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

/// The repositories the viewer may read, as positions in the listing (owner, then name): theirs,
/// then the others. Worked out from what the listing keeps, as `auth::access` decides (the owner
/// and admins read all of theirs, admins everything, anyone signed in what is public or names
/// them a collaborator, anonymous what is public when the site allows it), without a list of
/// them all: counting them and finding a page cost what the page shows, not what the site
/// holds. Each shown entry checks again with `auth::access`.
pub(crate) struct Readable<'a> {
    /// The viewer's own.
    pub(crate) own: std::ops::Range<usize>,
    others: Others<'a>,
}

enum Others<'a> {
    /// Every repository but the viewer's own (an admin).
    All(usize),
    /// The public ones and those naming the viewer a collaborator, but the viewer's own.
    Some {
        public: &'a [usize],
        shared: &'a [usize],
    },
}

impl Readable<'_> {
    /// How many others there are.
    pub(crate) fn others_len(&self) -> usize {
        let own = &self.own;
        match &self.others {
            Others::All(n) => n - own.len(),
            Others::Some { public, shared } => {
                let in_own = |list: &[usize]| {
                    list.partition_point(|&i| i < own.end)
                        - list.partition_point(|&i| i < own.start)
                };
                let shared_only = shared
                    .iter()
                    .filter(|i| public.binary_search(i).is_err() && !own.contains(i))
                    .count();
                public.len() - in_own(public) + shared_only
            }
        }
    }

    /// The others from the `skip`th on, at most `take` of them.
    pub(crate) fn others(&self, skip: usize, take: usize) -> Vec<usize> {
        let own = self.own.clone();
        match &self.others {
            Others::All(n) => (0..own.start)
                .chain(own.end..*n)
                .skip(skip)
                .take(take)
                .collect(),
            Others::Some { public, shared: [] } => {
                // Public ones only: two slices around the viewer's own, taken by position.
                let a = public.partition_point(|&i| i < own.start);
                let b = public.partition_point(|&i| i < own.end);
                let (before, after) = (&public[..a], &public[b..]);
                before
                    .get(skip.min(before.len())..)
                    .unwrap_or_default()
                    .iter()
                    .chain(
                        after
                            .get(skip.saturating_sub(before.len()).min(after.len())..)
                            .unwrap_or_default(),
                    )
                    .take(take)
                    .copied()
                    .collect()
            }
            Others::Some { public, shared } => merged(public, shared)
                .filter(|i| !own.contains(i))
                .skip(skip)
                .take(take)
                .collect(),
        }
    }
}

/// What the viewer may read (see [`Readable`]).
pub(crate) fn readable<'a>(site: &Site, ctx: &PageCtx, listing: &'a Listing) -> Readable<'a> {
    let Some(v) = ctx.viewer.as_ref() else {
        let public: &[usize] = if site.config.anonymous_read {
            &listing.public
        } else {
            &[]
        };
        return Readable {
            own: 0..0,
            others: Others::Some {
                public,
                shared: &[],
            },
        };
    };
    let own = listing.owned_by(&v.name);
    let others = if v.admin {
        Others::All(listing.repos.len())
    } else {
        Others::Some {
            public: &listing.public,
            shared: listing.collaborations(&v.name),
        }
    };
    Readable { own, others }
}

/// Two ascending lists as one, without repeats.
fn merged<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let (mut a, mut b) = (a.iter().copied().peekable(), b.iter().copied().peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some(x), Some(y)) if x == y => {
            b.next();
            a.next()
        }
        (Some(x), Some(y)) if y < x => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The positions of `owner`'s repositories the viewer may read.
pub(crate) fn readable_of(
    site: &Site,
    ctx: &PageCtx,
    listing: &Listing,
    owner: &str,
) -> Vec<usize> {
    listing
        .owned_by(owner)
        .filter(|&i| {
            listing.repos.get(i).is_some_and(|r| {
                auth::access(
                    ctx.viewer.as_ref(),
                    &r.dir.owner,
                    &r.settings,
                    site.config.anonymous_read,
                )
                .may_read()
            })
        })
        .collect()
}

/// Every repository, from the listing.
pub(crate) fn listing(site: &Site) -> Result<Arc<Listing>> {
    site.repos
        .listing()
        .map_err(|e| Error::internal("listing repositories", e))
}

/// The entries shown for `page`, each checked against its settings as they are now (the
/// listing may be older): one the viewer may no longer read, or whose config is gone, is left
/// out. The description is the listing's (forgelet's changes to it are seen at once).
pub(crate) fn entries(
    site: &Site,
    ctx: &PageCtx,
    listing: &Listing,
    shown: &[usize],
) -> Vec<Entry> {
    let c = &site.config;
    shown
        .iter()
        .filter_map(|&i| {
            let listed = listing.repos.get(i)?;
            let r = &listed.dir;
            let settings = listing.current_settings(i)?;
            if !auth::access(ctx.viewer.as_ref(), &r.owner, &settings, c.anonymous_read).may_read()
            {
                return None;
            }
            let url = repo_url(&c.base_path, &r.owner, &r.name);
            // The clone URL is the page's, on the site's address (`urls::clone_url`), made from
            // the path already encoded.
            let clone_url = match url.strip_prefix(c.base_path.as_str()) {
                Some(path) => format!("{}{path}.git", c.base_url),
                None => clone_url(&c.base_url, &r.owner, &r.name),
            };
            Some(Entry {
                full_name: format!("{}/{}", r.owner, r.name),
                url,
                clone_url,
                description: Arc::clone(&listed.description),
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
    /// The repository search's address, and its (empty) text.
    action: String,
    q: String,
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
    let listing = listing(site)?;
    let readable = readable(site, ctx, &listing);
    let own_total = readable.own.len();
    let total = own_total + readable.others_len();
    let page = page_number(req);
    let skip = (page - 1).saturating_mul(REPOS_PAGE_SIZE);
    if skip >= total && page > 1 {
        return Err(Error::NotFound);
    }
    let own_part: Vec<usize> = readable
        .own
        .clone()
        .skip(skip)
        .take(REPOS_PAGE_SIZE)
        .collect();
    let other_part = readable.others(
        skip.saturating_sub(own_total),
        REPOS_PAGE_SIZE - own_part.len(),
    );
    let base = &site.config.base_path;
    ctx.render(
        site,
        req,
        200,
        &FrontPage {
            chrome: ctx.chrome(site),
            action: search_url(base),
            q: String::new(),
            own: entries(site, ctx, &listing, &own_part),
            others: entries(site, ctx, &listing, &other_part),
            signed_in: ctx.viewer.is_some(),
            own_total,
            total,
            newer: (page > 1).then(|| home_page_url(base, page - 1)),
            older: (page.saturating_mul(REPOS_PAGE_SIZE) < total)
                .then(|| home_page_url(base, page + 1)),
        },
    )
    .map(Answer::from)
}
