//! The front page: the repositories anyone may read.

use askama::Template;

use crate::app::Site;
use crate::error::{Error, Result};
use crate::git::Visibility;
use crate::response::Response;
use crate::routes::{clone_url, repo_url};

pub(crate) struct Entry {
    pub(crate) full_name: String,
    pub(crate) url: String,
    pub(crate) clone_url: String,
    pub(crate) description: String,
}

#[derive(Template)]
#[template(path = "front.html")]
struct FrontPage<'a> {
    site_name: &'a str,
    base: &'a str,
    repos: Vec<Entry>,
}

pub(crate) fn handle(site: &Site) -> Result<Response> {
    let c = &site.config;
    let repos = site
        .repos
        .list()
        .map_err(|e| Error::internal("listing repositories", e))?
        .into_iter()
        .filter(|r| r.settings().visibility == Visibility::Public)
        .map(|r| Entry {
            full_name: format!("{}/{}", r.owner, r.name),
            url: repo_url(&c.base_path, &r.owner, &r.name),
            clone_url: clone_url(&c.base_url, &r.owner, &r.name),
            description: r.description(),
        })
        .collect();
    super::render(&FrontPage {
        site_name: &c.site_name,
        base: &c.base_path,
        repos,
    })
}
