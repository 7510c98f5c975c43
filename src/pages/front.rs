//! `GET /` (`front.html`): signed in, your repositories and then those shared with you; signed out, the
//! repositories anyone may read.

use askama::Template;

use super::{Chrome, PageCall, PageCtx};
use crate::auth;
use crate::error::{Error, Result};
use crate::git::Visibility;
use crate::response::Answer;
use crate::site::Site;
use crate::urls::{clone_url, repo_url};

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

/// Every repository the viewer may read, with its owner.
pub(crate) fn visible(site: &Site, ctx: &PageCtx) -> Result<Vec<(String, Entry)>> {
    let c = &site.config;
    let viewer = ctx.viewer.as_ref();
    let mut out = Vec::new();
    for r in site
        .repos
        .list()
        .map_err(|e| Error::internal("listing repositories", e))?
    {
        let settings = r.settings();
        if !auth::access(viewer, &r.owner, &settings, c.anonymous_read).may_read() {
            continue;
        }
        out.push((
            r.owner.clone(),
            Entry {
                full_name: format!("{}/{}", r.owner, r.name),
                url: repo_url(&c.base_path, &r.owner, &r.name),
                clone_url: clone_url(&c.base_url, &r.owner, &r.name),
                description: r.description(),
                private: settings.visibility == Visibility::Private,
                updated: last_update(&r),
            },
        ));
    }
    Ok(out)
}

#[derive(Template)]
#[template(path = "front.html")]
struct FrontPage {
    chrome: Chrome,
    own: Vec<Entry>,
    others: Vec<Entry>,
    signed_in: bool,
}

/// `GET /`: the repositories the viewer may read, their own first.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let viewer = ctx.viewer.as_ref();
    let (own, others): (Vec<_>, Vec<_>) = visible(site, ctx)?
        .into_iter()
        .partition(|(o, _)| viewer.is_some_and(|v| v.name.eq_ignore_ascii_case(o)));
    ctx.render(
        site,
        req,
        200,
        &FrontPage {
            chrome: ctx.chrome(site),
            own: own.into_iter().map(|(_, e)| e).collect(),
            others: others.into_iter().map(|(_, e)| e).collect(),
            signed_in: viewer.is_some(),
        },
    )
    .map(Answer::from)
}
