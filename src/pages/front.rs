//! The front page: signed in, your repositories and then those shared with you; signed out, the
//! repositories anyone may read.

use askama::Template;

use super::{Chrome, PageCtx};
use crate::app::Site;
use crate::auth;
use crate::error::{Error, Result};
use crate::git::Visibility;
use crate::request::Request;
use crate::response::Response;
use crate::routes::{clone_url, repo_url};

pub(crate) struct Entry {
    pub(crate) full_name: String,
    pub(crate) url: String,
    pub(crate) clone_url: String,
    pub(crate) description: String,
    pub(crate) private: bool,
}

#[derive(Template)]
#[template(path = "front.html")]
struct FrontPage {
    chrome: Chrome,
    own: Vec<Entry>,
    others: Vec<Entry>,
    signed_in: bool,
}

pub(crate) fn handle(site: &Site, req: &Request, ctx: &PageCtx) -> Result<Response> {
    let c = &site.config;
    let viewer = ctx.viewer.as_ref();
    let mut own = Vec::new();
    let mut others = Vec::new();
    for r in site
        .repos
        .list()
        .map_err(|e| Error::internal("listing repositories", e))?
    {
        let settings = r.settings();
        if !auth::access(viewer, &r.owner, &settings, c.anonymous_read).may_read() {
            continue;
        }
        let entry = Entry {
            full_name: format!("{}/{}", r.owner, r.name),
            url: repo_url(&c.base_path, &r.owner, &r.name),
            clone_url: clone_url(&c.base_url, &r.owner, &r.name),
            description: r.description(),
            private: settings.visibility == Visibility::Private,
        };
        if viewer.is_some_and(|v| v.name.eq_ignore_ascii_case(&r.owner)) {
            own.push(entry);
        } else {
            others.push(entry);
        }
    }
    ctx.render(
        site,
        req,
        200,
        &FrontPage {
            chrome: ctx.chrome(site),
            own,
            others,
            signed_in: viewer.is_some(),
        },
    )
}
