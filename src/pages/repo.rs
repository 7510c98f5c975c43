//! A repository's home page (for now: its clone URL, description, branches and tags).

use askama::Template;

use crate::app::Site;
use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::Response;
use crate::routes::clone_url;

use super::{Chrome, PageCtx};

#[derive(Template)]
#[template(path = "repo.html")]
struct RepoPage {
    chrome: Chrome,
    full_name: String,
    description: String,
    clone_url: String,
    branches: Vec<String>,
    tags: Vec<String>,
    empty: bool,
}

pub(crate) fn handle(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    repo: &RepoDir,
) -> Result<Response> {
    let c = &site.config;
    let git = repo.open().map_err(|e| {
        Error::internal(
            &format!("opening {}/{}", repo.owner, repo.name),
            e.message(),
        )
    })?;
    let mut branches = Vec::new();
    let mut tags = Vec::new();
    let refs = git
        .references()
        .map_err(|e| Error::internal("listing refs", e.message()))?;
    for r in refs.flatten() {
        let name = String::from_utf8_lossy(r.name_bytes()).into_owned();
        if let Some(b) = name.strip_prefix("refs/heads/") {
            branches.push(b.to_string());
        } else if let Some(t) = name.strip_prefix("refs/tags/") {
            tags.push(t.to_string());
        }
    }
    branches.sort();
    tags.sort();
    let empty = branches.is_empty() && tags.is_empty();
    ctx.render(
        site,
        req,
        200,
        &RepoPage {
            chrome: ctx.chrome(site),
            full_name: format!("{}/{}", repo.owner, repo.name),
            description: repo.description(),
            clone_url: clone_url(&c.base_url, &repo.owner, &repo.name),
            branches,
            tags,
            empty,
        },
    )
}
