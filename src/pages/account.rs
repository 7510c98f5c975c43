//! `/-/settings/tokens`: your personal access tokens (created, shown once with how to use them with
//! git, revoked), your password (the old one asked for), and "sign out everywhere". The changes
//! are `accounts`'s, as for the command line; checking the old password stays here.

use askama::Template;

use super::{account_refusal, Chrome, PageCall, PageCtx};
use crate::accounts::{self, AccountError};
use crate::auth::basic::Outcome;
use crate::auth::{self, Token};
use crate::error::{Error, Result};
use crate::forms::field;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;

pub(crate) struct TokenRow {
    pub(crate) name: String,
    pub(crate) created: String,
    pub(crate) expires: String,
    pub(crate) last_used: String,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    user: String,
    tokens: Vec<TokenRow>,
    new_token: String,
    clone_example: String,
    notice: String,
    error: String,
}

fn page_url(site: &Site) -> String {
    crate::urls::tokens_url(&site.config.base_path)
}

fn render(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    status: u16,
    new_token: String,
    notice: String,
    error: String,
) -> Result<Response> {
    let Some(viewer) = &ctx.viewer else {
        return Err(Error::NotFound);
    };
    let users = site.accounts.users().map_err(Error::Internal)?;
    let stamp = |t: u64| date(t as i64, 0);
    let tokens = users
        .get(&viewer.name)
        .map(|u| {
            u.tokens
                .iter()
                .map(|t: &Token| TokenRow {
                    name: t.name.clone(),
                    created: stamp(t.created),
                    expires: t.expires.map(stamp).unwrap_or_else(|| "never".into()),
                    last_used: t.last_used.map(stamp).unwrap_or_else(|| "never".into()),
                })
                .collect()
        })
        .unwrap_or_default();
    ctx.render(
        site,
        req,
        status,
        &AccountPage {
            chrome: ctx.chrome(site),
            user: viewer.name.clone(),
            tokens,
            new_token,
            clone_example: crate::urls::clone_url(&site.config.base_url, "OWNER", "REPO"),
            notice,
            error,
        },
    )
}

/// `GET /-/settings/tokens`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let notice = match req.query_param("changed").as_deref() {
        Some("password") => "Your password is changed; every other session is signed out.".into(),
        _ => String::new(),
    };
    render(site, req, ctx, 200, String::new(), notice, String::new()).map(Answer::from)
}

/// `POST /-/settings/tokens`.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, fields) = (c.req, c.ctx, c.fields);
    let viewer = c.viewer()?;
    let me = viewer.name.clone();
    // A refusal: the status and the sentence for the form.
    let refused = |e: AccountError| account_refusal(e, &format!("changing the account of {me}"));
    let outcome: std::result::Result<(String, String), (u16, String)> =
        match field(fields, "action") {
            Some("create") => {
                let name = field(fields, "name").unwrap_or("").trim();
                // An empty lifetime: until revoked.
                let days =
                    Some(field(fields, "expires").unwrap_or("").trim()).filter(|d| !d.is_empty());
                match accounts::create_token(&site.accounts, &me, name, days) {
                    Ok(t) => Ok((
                        t.plaintext,
                        format!(
                            "Token {} created. Copy it now: it is not shown again.",
                            t.name
                        ),
                    )),
                    Err(e) => Err(refused(e)?),
                }
            }
            Some("revoke") => {
                let name = field(fields, "name").unwrap_or("");
                match accounts::revoke_token(&site.accounts, &me, name) {
                    Ok((_, token)) => Ok((
                        String::new(),
                        format!("Token {token} revoked; it stops working at once."),
                    )),
                    Err(e) => Err(refused(e)?),
                }
            }
            Some("password") => {
                let old = field(fields, "old").unwrap_or("");
                let new = field(fields, "new").unwrap_or("");
                let again = field(fields, "again").unwrap_or("");
                let users = site.accounts.users().map_err(Error::Internal)?;
                let client = req.remote_addr();
                match site.gate.password(
                    &site.accounts,
                    &users,
                    &me,
                    old,
                    client,
                    auth::basic::Device::Known,
                ) {
                    Outcome::User(_) if new != again => {
                        Err((400, "The two new passwords differ.".to_string()))
                    }
                    Outcome::User(_) => match accounts::set_password(&site.accounts, &me, new) {
                        Ok(_) => return Ok(keep_signed_in(site, req, ctx, &me, "password").into()),
                        Err(e) => Err(refused(e)?),
                    },
                    Outcome::Refused(auth::basic::Refusal::Slow(secs)) => Err((
                        400,
                        format!("Too many attempts. Try again in {secs} seconds."),
                    )),
                    _ => Err((400, "Your current password is not right.".to_string())),
                }
            }
            Some("signout_all") => {
                accounts::sign_out_everywhere(&site.accounts, &me)
                    .map_err(|e| Error::Internal(format!("signing {me} out everywhere: {e}")))?;
                let mut r = Response::redirect(303, crate::urls::login_url(&site.config.base_path));
                r.header("Set-Cookie", super::end_session_cookie(site, req));
                ctx.finish(site, req, &mut r);
                return Ok(r.into());
            }
            _ => Err((400, "Unknown action.".into())),
        };
    match outcome {
        Ok((new_token, notice)) => render(site, req, ctx, 200, new_token, notice, String::new()),
        Err((status, error)) => render(site, req, ctx, status, String::new(), String::new(), error),
    }
    .map(Answer::from)
}

/// After a password change every session made before it is dead (the stamp changed); this
/// browser gets a fresh one so the person who changed it stays signed in here.
fn keep_signed_in(site: &Site, req: &Request, ctx: &PageCtx, me: &str, what: &str) -> Response {
    let mut r = Response::redirect(303, format!("{}?changed={what}", page_url(site)));
    if let Some(u) = site
        .accounts
        .users()
        .ok()
        .and_then(|us| us.get(me).cloned())
    {
        if let Ok(cookies) = super::session_cookies(site, req, &u) {
            for c in cookies {
                r.header("Set-Cookie", c);
            }
        }
    }
    ctx.finish(site, req, &mut r);
    r
}
