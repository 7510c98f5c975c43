//! "New repository": name, description, public or private, and an optional README so the
//! repository is not empty. Creation is the same code as `forgelet repo create`.

use askama::Template;

use super::{Chrome, PageCtx};
use crate::admin;
use crate::app::Site;
use crate::error::{Error, Result};
use crate::forms::{field, form_fields};
use crate::git::names::valid_name;
use crate::request::Request;
use crate::response::Response;
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

/// Anonymous visitors are sent to sign in first.
fn need_sign_in(site: &Site) -> Response {
    let base = &site.config.base_path;
    Response::redirect(303, format!("{base}/login?next={base}/new"))
}

/// `GET /new`.
pub(crate) fn form(site: &Site, req: &Request, ctx: &PageCtx) -> Result<Response> {
    if ctx.viewer.is_none() {
        let mut r = need_sign_in(site);
        ctx.finish(site, req, &mut r);
        return Ok(r);
    }
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
}

/// `POST /new`.
pub(crate) fn submit(site: &Site, req: &Request, ctx: &PageCtx, body: &[u8]) -> Result<Response> {
    let fields = form_fields(body);
    if !ctx.csrf_ok(site, field(&fields, "csrf")) {
        return Err(Error::Forbidden(
            "This form has expired. Go back, reload the page and try again.".into(),
        ));
    }
    let Some(viewer) = &ctx.viewer else {
        let mut r = need_sign_in(site);
        ctx.finish(site, req, &mut r);
        return Ok(r);
    };
    let name = field(&fields, "name").unwrap_or("").trim().to_string();
    let name = name.strip_suffix(".git").unwrap_or(&name).to_string();
    let description = field(&fields, "description")
        .unwrap_or("")
        .trim()
        .to_string();
    let private = field(&fields, "visibility") == Some("private");
    let readme = field(&fields, "readme").is_some();
    let problem = if !valid_name(&name) {
        Some((
            400,
            "That name cannot be used: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock.".to_string(),
        ))
    } else if description.chars().count() > 300 || description.chars().any(char::is_control) {
        Some((
            400,
            "The description must be one line of at most 300 characters.".to_string(),
        ))
    } else {
        match admin::create_repo(
            &site.config,
            &site.accounts,
            &viewer.name,
            &name,
            Some(&description),
            private,
            readme,
        ) {
            Ok(_) => None,
            Err(e) if e.contains("already exists") => Some((
                409,
                format!(
                    "You already have a repository named {name} (names are unique ignoring case)."
                ),
            )),
            Err(e) => {
                return Err(Error::Internal(format!(
                    "creating {}/{name}: {e}",
                    viewer.name
                )))
            }
        }
    };
    if let Some((status, error)) = problem {
        return ctx.render(
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
        );
    }
    let mut r = Response::redirect(303, repo_url(&site.config.base_path, &viewer.name, &name));
    ctx.finish(site, req, &mut r);
    Ok(r)
}
