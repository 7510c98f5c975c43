//! `GET /{owner}` (`owner.html`): an owner's repositories that the viewer may read.

use askama::Template;

use super::front::{visible, Entry};
use super::{Chrome, PageCall};
use crate::error::{Error, Result};
use crate::response::Answer;
use crate::site::Site;

#[derive(Template)]
#[template(path = "owner.html")]
struct OwnerPage {
    chrome: Chrome,
    owner: String,
    repos: Vec<Entry>,
}

/// `GET /{owner}`: the owner's repositories the viewer may read. User names are known to
/// everyone signed in and to nobody else (the README's "Who may learn which user names
/// exist"): signed in, a user with nothing to show has a page that says so; signed out, an
/// owner with nothing to show is a 404, like a missing one.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, owner) = (c.req, c.ctx, c.caps.owner.as_str());
    let repos: Vec<Entry> = visible(site, ctx)?
        .into_iter()
        .filter(|(o, _)| o.eq_ignore_ascii_case(owner))
        .map(|(_, e)| e)
        .collect();
    let owner = match repos.first() {
        Some(first) => first
            .full_name
            .split('/')
            .next()
            .unwrap_or(owner)
            .to_string(),
        None if ctx.viewer.is_some() => {
            let users = site.accounts.users().map_err(Error::Internal)?;
            match users.get(owner) {
                Some(u) => u.name.clone(),
                None => return Err(Error::NotFound),
            }
        }
        None => return Err(Error::NotFound),
    };
    ctx.render(
        site,
        req,
        200,
        &OwnerPage {
            chrome: ctx.chrome(site),
            owner,
            repos,
        },
    )
    .map(Answer::from)
}
