//! Sign-out (`logout.html`): a GET asks (a typed or bookmarked address must not sign anyone out),
//! the form's POST ends this browser's session.

use askama::Template;

use super::{Chrome, PageCall};
use crate::error::Result;
use crate::response::{Answer, Response};
use crate::site::Site;

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    chrome: Chrome,
}

/// `GET /-/logout` (a typed or bookmarked address): a button that signs out, since a GET must
/// not; the front page for someone not signed in.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    if ctx.viewer.is_none() {
        let mut r = Response::redirect(303, crate::urls::home_url(&site.config.base_path));
        ctx.finish(site, req, &mut r);
        return Ok(r.into());
    }
    ctx.render(
        site,
        req,
        200,
        &LogoutPage {
            chrome: ctx.chrome(site),
        },
    )
    .map(Answer::from)
}

/// `POST /-/logout`: ends this browser's session.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let mut r = Response::redirect(303, crate::urls::home_url(&site.config.base_path));
    r.header("Set-Cookie", super::end_session_cookie(site, req));
    ctx.finish(site, req, &mut r);
    Ok(r.into())
}
