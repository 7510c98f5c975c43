//! "New repository": name, description, public or private, and an optional README so the
//! repository is not empty. Creation is `repos::create`, as for `forgelet repo create`.

use askama::Template;

use super::{repo_refusal, Chrome, PageCall};
use crate::error::Result;
use crate::forms::field;
use crate::repos::{self, NewRepo};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::repo_url;

#[derive(Template)]
#[template(path = "new_repo.html")]
struct NewRepoPage {
    chrome: Chrome,
    error: String,
    name: String,
    description: String,
    private: bool,
    readme: bool,
}

/// `GET /-/new`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    ctx.render(
        site,
        req,
        200,
        &NewRepoPage {
            chrome: ctx.chrome(site),
            error: String::new(),
            name: String::new(),
            description: String::new(),
            private: false,
            readme: true,
        },
    )
    .map(Answer::from)
}

/// `POST /-/new`.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, fields) = (c.req, c.ctx, c.fields);
    let viewer = c.viewer()?;
    let name = field(fields, "name").unwrap_or("").trim().to_string();
    let name = name.strip_suffix(".git").unwrap_or(&name).to_string();
    let description = field(fields, "description")
        .unwrap_or("")
        .trim()
        .to_string();
    let private = field(fields, "visibility") == Some("private");
    let readme = field(fields, "readme").is_some();
    let created = repos::create(
        &site.config,
        &site.accounts,
        &NewRepo {
            owner: &viewer.name,
            name: &name,
            description: &description,
            private,
            readme,
        },
    );
    let problem = match created {
        Ok(_) => None,
        Err(e) => Some(repo_refusal(
            e,
            &format!("creating {}/{name}", viewer.name),
        )?),
    };
    if let Some((status, error)) = problem {
        return ctx
            .render(
                site,
                req,
                status,
                &NewRepoPage {
                    chrome: ctx.chrome(site),
                    error,
                    name,
                    description,
                    private,
                    readme,
                },
            )
            .map(Answer::from);
    }
    let mut r = Response::redirect(303, repo_url(&site.config.base_path, &viewer.name, &name));
    ctx.finish(site, req, &mut r);
    Ok(r.into())
}
