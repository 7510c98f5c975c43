//! Sign-in (`login.html`): a form checked by the same limiter and password check as git's Basic
//! auth, a signed session cookie, and a `next=` redirect only to a path under the base path.

use askama::Template;

use super::{Chrome, PageCall};
use crate::auth::basic::{Device, Outcome, Refusal};
use crate::auth::session;
use crate::error::{Error, Result};
use crate::forms::field;
use crate::response::{Answer, Response};
use crate::site::Site;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    error: String,
    user: String,
    next: String,
}

/// `next` if it is a path under the base path (never another host, scheme or `//`), else the
/// front page.
pub(crate) fn safe_next(base: &str, next: Option<&str>) -> String {
    let home = crate::urls::home_url(base);
    let Some(n) = next else { return home };
    let under_base = n == home || (n.starts_with(&home) && !n[home.len()..].starts_with('/'));
    let clean = !n.contains(['\\', '\r', '\n']) && !n.contains("//") && !n.contains("/../");
    if under_base && clean {
        n.to_string()
    } else {
        home
    }
}

/// `GET /-/login`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let next = safe_next(&site.config.base_path, req.query_param("next").as_deref());
    ctx.render(
        site,
        req,
        200,
        &LoginPage {
            chrome: ctx.chrome(site),
            error: String::new(),
            user: String::new(),
            next,
        },
    )
    .map(Answer::from)
}

/// `POST /-/login`.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, fields) = (c.req, c.ctx, c.fields);
    let base = &site.config.base_path;
    let next = safe_next(base, field(fields, "next"));
    let name = field(fields, "user").unwrap_or("").trim().to_string();
    let password = field(fields, "password").unwrap_or("");
    let client = req.remote_addr();
    let users = site.accounts.users().map_err(Error::Internal)?;
    let outcome = if name.is_empty() || password.is_empty() {
        Outcome::Refused(Refusal::Bad("Give your user name and password."))
    } else {
        site.gate
            .password(&site.accounts, &users, &name, password, client, {
                let names = super::cookie_names(site, req);
                let value = session::cookie(req.cookies(), &names.device);
                if session::device_is_for(&site.accounts, value, &name) {
                    Device::Known
                } else {
                    Device::Unknown
                }
            })
    };
    let (status, error, retry) = match outcome {
        Outcome::User(user) => {
            let mut r = Response::redirect(303, next);
            for c in super::session_cookies(site, req, &user)? {
                r.header("Set-Cookie", c);
            }
            let names = super::cookie_names(site, req);
            r.header(
                "Set-Cookie",
                super::cookie_header(
                    site,
                    req,
                    &names.device,
                    &session::device_value(&site.accounts, &user.name),
                    Some(session::DEVICE_LIFETIME_SECS),
                ),
            );
            ctx.finish(site, req, &mut r);
            return Ok(r.into());
        }
        Outcome::Anonymous => (401, "Give your user name and password.".to_string(), None),
        Outcome::Refused(Refusal::Bad(_)) => {
            (401, "Wrong user name or password.".to_string(), None)
        }
        Outcome::Refused(Refusal::Slow(secs)) => (
            429,
            format!("Too many sign-in attempts. Try again in {secs} seconds."),
            Some(secs),
        ),
        Outcome::Refused(Refusal::Busy) => (
            429,
            "The server is busy checking other sign-ins. Try again in a moment.".to_string(),
            Some(1),
        ),
        Outcome::Refused(Refusal::Broken(e)) => return Err(Error::Internal(e)),
    };
    let mut r = ctx.render(
        site,
        req,
        status,
        &LoginPage {
            chrome: ctx.chrome(site),
            error,
            user: name,
            next,
        },
    )?;
    if let Some(secs) = retry {
        r.header("Retry-After", secs.to_string());
    }
    Ok(r.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_under_the_base_path() {
        assert_eq!(safe_next("/git", Some("/git/alice/x")), "/git/alice/x");
        assert_eq!(safe_next("/git", Some("/git/")), "/git/");
        for bad in [
            "//evil.example/",
            "/git//evil.example",
            "https://evil.example/git/",
            "/gitx/",
            "/other",
            "/git/../etc",
            "/git/a\\b",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next("/git", Some(bad)), "/git/", "{bad}");
        }
        assert_eq!(safe_next("", Some("/alice")), "/alice");
        assert_eq!(safe_next("", Some("//evil")), "/");
        assert_eq!(safe_next("", None), "/");
    }
}
