//! Errors as pages (`error.html`): the status and the same short public message as the plain-text
//! answer, in the site's layout.

use super::{Chrome, PageCtx};
use crate::error::Error;
use crate::request::Request;
use crate::response::Response;
use crate::site::Site;

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

/// An error as a page in the site's layout: the status and the same short public message as the
/// plain-text answer (an internal error's detail goes to the log only, never here).
pub(crate) fn error_page(site: &Site, req: &Request, ctx: &PageCtx, e: Error) -> Response {
    let plain = e.into_response();
    let status = plain.status;
    let message = match &plain.body {
        crate::response::Body::Bytes(b) => String::from_utf8_lossy(b).trim().to_string(),
        _ => String::new(),
    };
    let title = match status {
        403 => "Not allowed",
        404 => "Not found",
        405 => "Not here",
        429 => "Too many attempts",
        503 => "Busy",
        507 => "Could not save",
        s if s >= 500 => "Something went wrong",
        _ => "Cannot do that",
    };
    // The plain 404's whole message is its title.
    let message = if status == 404 {
        "There is nothing here, or you may not see it.".to_string()
    } else {
        message
    };
    let page = ErrorPage {
        chrome: ctx.chrome(site),
        status,
        title,
        message,
    };
    // Headers of the plain answer that matter (Allow, Retry-After) carry over.
    let carried: Vec<(&'static str, String)> = plain
        .headers
        .iter()
        .filter(|(k, _)| matches!(*k, "Allow" | "Retry-After"))
        .cloned()
        .collect();
    match ctx.render(site, req, status, &page) {
        Ok(mut r) => {
            r.headers.extend(carried);
            r
        }
        Err(_) => plain,
    }
}
