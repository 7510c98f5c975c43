//! `GET /-/static/{name}`: the stylesheet and the script, embedded in the binary under
//! content-hashed names, cached for good.

use super::PageCall;
use crate::assets;
use crate::error::{Error, Result};
use crate::response::{Answer, Response};
use crate::site::Site;

/// `GET /-/static/{name}`.
pub(crate) fn file<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let name = c.caps.rest.first().map(String::as_str).unwrap_or("");
    let (text, content_type) = if name == site.assets.css_name {
        (assets::CSS, "text/css; charset=utf-8")
    } else if name == site.assets.js_name {
        (assets::JS, "text/javascript; charset=utf-8")
    } else {
        return Err(Error::NotFound);
    };
    let mut r = Response::bytes(200, content_type, text.as_bytes().to_vec());
    r.cache_forever(true);
    Ok(r.into())
}
