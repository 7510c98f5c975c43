//! `GET /{owner}` (`owner.html`): an owner's repositories that the viewer may read, a page at a
//! time.

use askama::Template;

use super::front::{entries, listing, page_number, page_of, readable_of, Entry, REPOS_PAGE_SIZE};
use super::{Chrome, PageCall};
use crate::error::{Error, Result};
use crate::response::Answer;
use crate::site::Site;
use crate::urls::owner_page_url;

#[derive(Template)]
#[template(path = "owner.html")]
struct OwnerPage {
    chrome: Chrome,
    owner: String,
    repos: Vec<Entry>,
    /// How many there are to show, over every page.
    total: usize,
    newer: Option<String>,
    older: Option<String>,
}

/// `GET /{owner}?page=N`: the owner's repositories the viewer may read. User names are known to
/// everyone signed in and to nobody else (the README's "Who may learn which user names
/// exist"): signed in, a user with nothing to show has a page that says so; signed out, an
/// owner with nothing to show is a 404, like a missing one.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, owner) = (c.req, c.ctx, c.caps.owner.as_str());
    let listing = listing(site)?;
    let all = readable_of(site, ctx, &listing, owner);
    let page = page_number(req);
    let shown = page_of(&all, page).ok_or(Error::NotFound)?;
    let repos = entries(site, ctx, &listing, shown);
    let first = all.first().and_then(|&i| listing.repos.get(i));
    let owner = match first {
        Some(first) if !repos.is_empty() || page > 1 => first.dir.owner.clone(),
        _ if ctx.viewer.is_some() => {
            let users = site.accounts.users().map_err(Error::Internal)?;
            match users.get(owner) {
                Some(u) => u.name.clone(),
                None => return Err(Error::NotFound),
            }
        }
        _ => return Err(Error::NotFound),
    };
    let base = &site.config.base_path;
    let total = all.len();
    ctx.render(
        site,
        req,
        200,
        &OwnerPage {
            chrome: ctx.chrome(site),
            newer: (page > 1).then(|| owner_page_url(base, &owner, page - 1)),
            older: (page.saturating_mul(REPOS_PAGE_SIZE) < total)
                .then(|| owner_page_url(base, &owner, page + 1)),
            owner,
            repos,
            total,
        },
    )
    .map(Answer::from)
}
