//! HTML pages, one module per page, each with a view struct bound to a template of the same name.

pub(crate) mod front;
pub(crate) mod repo;

use crate::error::{Error, Result};
use crate::response::Response;

/// Renders a page and adds the headers every page carries.
pub(crate) fn render(t: &impl askama::Template) -> Result<Response> {
    let body = t
        .render()
        .map_err(|e| Error::internal("rendering a page", e))?;
    let mut r = Response::html(200, body);
    r.no_cache();
    r.header(
        "Content-Security-Policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    r.header("X-Frame-Options", "DENY");
    r.header("Referrer-Policy", "same-origin");
    Ok(r)
}
