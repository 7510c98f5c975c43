//! `/settings/tokens`: your personal access tokens (created, shown once with how to use them with
//! git, revoked), your password (the old one asked for), and "sign out everywhere".

use askama::Template;

use super::{Chrome, PageCall, PageCtx};
use crate::auth::basic::Outcome;
use crate::auth::{self, now, password, token, users::new_stamp, Token};
use crate::error::{Error, Result};
use crate::forms::field;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;

/// Longest lifetime a token may be given here, in days.
const MAX_DAYS: u64 = 3650;

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
    format!("{}/settings/tokens", site.config.base_path)
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
            clone_example: format!("{}/OWNER/REPO.git", site.config.base_url),
            notice,
            error,
        },
    )
}

/// `GET /settings/tokens`.
pub(crate) fn form<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx) = (c.req, c.ctx);
    let notice = match req.query_param("changed").as_deref() {
        Some("password") => "Your password is changed; every other session is signed out.".into(),
        _ => String::new(),
    };
    render(site, req, ctx, 200, String::new(), notice, String::new()).map(Answer::from)
}

/// `POST /settings/tokens`.
pub(crate) fn submit<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, fields) = (c.req, c.ctx, c.fields);
    let viewer = c.viewer()?;
    let me = viewer.name.clone();
    let outcome: std::result::Result<(String, String), String> = match field(fields, "action") {
        Some("create") => {
            let name = field(fields, "name").unwrap_or("").trim().to_string();
            let days = field(fields, "expires").unwrap_or("").trim();
            let days = if days.is_empty() {
                Ok(None)
            } else {
                match days.parse::<u64>() {
                    Ok(n) if (1..=MAX_DAYS).contains(&n) => Ok(Some(n)),
                    _ => Err(format!("Give the lifetime as a number of days from 1 to {MAX_DAYS}, or leave it empty.")),
                }
            };
            match (token::valid_name(&name), days) {
                (false, _) => Err(
                    "Name the token with 1-64 letters, digits, '.', '_' or '-' (e.g. laptop)."
                        .into(),
                ),
                (_, Err(e)) => Err(e),
                (true, Ok(days)) => {
                    let plaintext = token::generate().map_err(Error::Internal)?;
                    let hash = site.accounts.token_hash(&plaintext);
                    let at = now();
                    site.accounts
                        .update(|users| {
                            let u = users.get_mut(&me).ok_or("Your account is gone.")?;
                            if u.token(&name).is_some() {
                                return Err(format!("You already have a token named {name}."));
                            }
                            u.tokens.push(Token {
                                name: name.clone(),
                                hash,
                                created: at,
                                expires: days.map(|d| at + d * 86_400),
                                last_used: None,
                            });
                            Ok(())
                        })
                        .map(|_| {
                            (
                                plaintext,
                                format!(
                                    "Token {name} created. Copy it now: it is not shown again."
                                ),
                            )
                        })
                }
            }
        }
        Some("revoke") => {
            let name = field(fields, "name").unwrap_or("").to_string();
            site.accounts
                .update(|users| {
                    let u = users.get_mut(&me).ok_or("Your account is gone.")?;
                    let before = u.tokens.len();
                    u.tokens.retain(|t| !t.name.eq_ignore_ascii_case(&name));
                    if u.tokens.len() == before {
                        return Err(format!("You have no token named {name}."));
                    }
                    Ok(())
                })
                .map(|_| {
                    (
                        String::new(),
                        format!("Token {name} revoked; it stops working at once."),
                    )
                })
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
                    Err("The two new passwords differ.".to_string())
                }
                Outcome::User(_) => {
                    let changed = password::check_new(new)
                        .map_err(|e| as_sentence(&e))
                        .and_then(|_| password::hash(new))
                        .and_then(|hash| {
                            let stamp = new_stamp()?;
                            site.accounts.update(|users| {
                                let u = users.get_mut(&me).ok_or("Your account is gone.")?;
                                u.password_hash = hash;
                                u.stamp = stamp;
                                Ok(())
                            })
                        });
                    match changed {
                        Ok(()) => return Ok(keep_signed_in(site, req, ctx, &me, "password").into()),
                        Err(e) => Err(e),
                    }
                }
                Outcome::Refused(auth::basic::Refusal::Slow(secs)) => {
                    Err(format!("Too many attempts. Try again in {secs} seconds."))
                }
                _ => Err("Your current password is not right.".to_string()),
            }
        }
        Some("signout_all") => {
            let stamp = new_stamp().map_err(Error::Internal)?;
            site.accounts
                .update(|users| {
                    let u = users.get_mut(&me).ok_or("Your account is gone.")?;
                    u.stamp = stamp;
                    Ok(())
                })
                .map_err(Error::Internal)?;
            let mut r = Response::redirect(303, format!("{}/login", site.config.base_path));
            r.header("Set-Cookie", super::end_session_cookie(site, req));
            ctx.finish(site, req, &mut r);
            return Ok(r.into());
        }
        _ => Err("Unknown action.".into()),
    };
    match outcome {
        Ok((new_token, notice)) => render(site, req, ctx, 200, new_token, notice, String::new()),
        Err(e) => render(site, req, ctx, 400, String::new(), String::new(), e),
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

/// A message in the lower-case style of the command line ("the password is too short: ...")
/// as a sentence for a page.
fn as_sentence(message: &str) -> String {
    let mut chars = message.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}
