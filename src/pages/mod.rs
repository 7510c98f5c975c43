//! HTML pages, one module per page, each with a view struct bound to a template of the same name.
//! Every page shares the chrome here: who is signed in, the CSRF token for its forms, and the
//! headers every page carries.

pub(crate) mod account;
pub(crate) mod blame;
pub(crate) mod blob;
pub(crate) mod cache;
pub(crate) mod code_search;
pub(crate) mod commit;
pub(crate) mod commits;
pub(crate) mod compare;
pub(crate) mod downloads;
pub(crate) mod error;
pub(crate) mod feeds;
pub(crate) mod file_table;
pub(crate) mod front;
pub(crate) mod home;
pub(crate) mod keys;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod new_repo;
pub(crate) mod owner;
pub(crate) mod readme;
pub(crate) mod refs;
pub(crate) mod repo_head;
pub(crate) mod repo_search;
pub(crate) mod settings;
pub(crate) mod static_file;
pub(crate) mod tree;

pub(crate) use error::error_page;

use crate::accounts::AccountError;
use crate::auth::{now, session, User};
use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::repos::RepoError;
use crate::request::{Captures, Request};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls;

/// What a page's handler is given. The dispatcher has already checked what the route needs
/// (a signed-in viewer, access to the repository its path names) and, for a form, read the
/// body and checked its CSRF token.
pub(crate) struct PageCall<'r> {
    pub(crate) req: &'r Request,
    pub(crate) ctx: &'r PageCtx,
    /// The repository the path names, when it does.
    pub(crate) repo: Option<&'r RepoDir>,
    pub(crate) caps: &'r Captures,
    /// A form's fields (empty for a GET).
    pub(crate) fields: &'r [(String, String)],
}

impl PageCall<'_> {
    /// The repository the path names (every repository route has one).
    pub(crate) fn repo(&self) -> Result<&RepoDir> {
        self.repo.ok_or(Error::NotFound)
    }

    /// The segments the route's `Rest` took, as bytes: the part of a browse URL that names a
    /// ref and a file, which routing saw with U+FFFD in place of bytes that are not UTF-8.
    pub(crate) fn rest_bytes(&self) -> Vec<&[u8]> {
        self.req.last_segments(self.caps.rest.len())
    }

    /// The viewer, whom the route needs signed in.
    pub(crate) fn viewer(&self) -> Result<&User> {
        self.ctx.viewer.as_ref().ok_or(Error::NotFound)
    }
}

/// A page route's handler.
pub(crate) type Handler = for<'s> fn(&'s Site, &PageCall<'_>) -> Result<Answer<'s>>;

/// What the shared layout shows.
pub(crate) struct Chrome {
    pub(crate) site_name: String,
    pub(crate) css_url: String,
    pub(crate) js_url: String,
    pub(crate) home_url: String,
    pub(crate) login_url: String,
    pub(crate) logout_url: String,
    pub(crate) new_repo_url: String,
    pub(crate) tokens_url: String,
    /// The signed-in user's SSH keys.
    pub(crate) keys_url: String,
    /// The signed-in user's name.
    pub(crate) viewer: Option<String>,
    /// For the forms on the page (sign out, and the page's own).
    pub(crate) csrf: String,
}

/// Per-request state of a page: the signed-in user and what the page's forms are bound to.
pub(crate) struct PageCtx {
    pub(crate) viewer: Option<User>,
    session: Option<session::Session>,
    /// The cookie names for this site and scheme.
    names: session::CookieNames,
    /// A signed-out client's CSRF cookie (empty when signed in).
    csrf_cookie: String,
    /// The CSRF cookie is new and must be set on the response.
    new_csrf_cookie: bool,
}

/// Whether the client reaches the site over HTTPS: `base_url` says so, or the web server does.
pub(crate) fn is_https(site: &Site, req: &Request) -> bool {
    site.config.base_url.starts_with("https://") || req.https()
}

/// The cookie names for this request's site and scheme.
pub(crate) fn cookie_names(site: &Site, req: &Request) -> session::CookieNames {
    session::CookieNames::new(is_https(site, req), site.config.base_path.is_empty())
}

impl PageCtx {
    pub(crate) fn new(site: &Site, req: &Request) -> PageCtx {
        let cookies = req.cookies();
        let names = cookie_names(site, req);
        let session = session::cookie(cookies, &names.session)
            .and_then(|v| session::verify(&site.accounts, v, now()));
        let (csrf_cookie, new_csrf_cookie) = if session.is_some() {
            (String::new(), false)
        } else {
            let existing = session::cookie(cookies, &names.csrf).filter(|c| {
                !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_hexdigit())
            });
            match existing {
                Some(c) => (c.to_string(), false),
                None => (session::new_csrf_cookie().unwrap_or_default(), true),
            }
        };
        PageCtx {
            viewer: session.as_ref().map(|s| s.user.clone()),
            session,
            names,
            csrf_cookie,
            new_csrf_cookie,
        }
    }

    /// Whether a submitted form's token belongs to this client: to its session when signed in,
    /// else to the CSRF cookie it already had.
    pub(crate) fn csrf_ok(&self, site: &Site, field: Option<&str>) -> bool {
        if self.session.is_none() && self.new_csrf_cookie {
            return false;
        }
        session::csrf_ok(
            &site.accounts,
            self.session.as_ref(),
            Some(&self.csrf_cookie),
            field,
        )
    }

    /// The token the page's forms carry.
    fn csrf_token(&self, site: &Site) -> String {
        match &self.session {
            Some(s) => session::session_csrf_token(&site.accounts, s),
            None => session::csrf_token(&site.accounts, &self.csrf_cookie),
        }
    }

    pub(crate) fn chrome(&self, site: &Site) -> Chrome {
        let c = &site.config;
        Chrome {
            site_name: c.site_name.clone(),
            css_url: urls::asset_url(&c.base_path, &site.assets.css_name),
            js_url: urls::asset_url(&c.base_path, &site.assets.js_name),
            home_url: urls::home_url(&c.base_path),
            login_url: urls::login_url(&c.base_path),
            logout_url: urls::logout_url(&c.base_path),
            new_repo_url: urls::new_repo_url(&c.base_path),
            tokens_url: urls::tokens_url(&c.base_path),
            keys_url: urls::keys_url(&c.base_path),
            viewer: self.viewer.as_ref().map(|u| u.name.clone()),
            csrf: self.csrf_token(site),
        }
    }

    /// Adds the headers every page carries, and the CSRF cookie when it is new.
    pub(crate) fn finish(&self, site: &Site, req: &Request, r: &mut Response) {
        if self.viewer.is_some() {
            r.no_store();
        } else {
            r.no_cache();
        }
        r.header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        );
        r.header("X-Frame-Options", "DENY");
        r.header("Referrer-Policy", "same-origin");
        if self.new_csrf_cookie && !self.csrf_cookie.is_empty() {
            r.header(
                "Set-Cookie",
                cookie_header(site, req, &self.names.csrf, &self.csrf_cookie, None),
            );
        }
    }

    /// Renders a page with `status`.
    pub(crate) fn render(
        &self,
        site: &Site,
        req: &Request,
        status: u16,
        t: &impl askama::Template,
    ) -> Result<Response> {
        let body = t
            .render()
            .map_err(|e| Error::internal("rendering a page", e))?;
        let mut r = Response::html(status, body);
        self.finish(site, req, &mut r);
        Ok(r)
    }

    /// Renders a page whose template marks where `fragment` goes (`cache::MARK`), with it there.
    pub(crate) fn render_with(
        &self,
        site: &Site,
        req: &Request,
        status: u16,
        t: &impl askama::Template,
        fragment: &cache::Fragment,
    ) -> Result<Response> {
        let page = t
            .render()
            .map_err(|e| Error::internal("rendering a page", e))?;
        let mut r = Response::html(status, fragment.fill(&page)?);
        self.finish(site, req, &mut r);
        Ok(r)
    }

    /// A repository page (`repo_page.html`): the title and tabs for this viewer, then
    /// `fragment`, with its title.
    pub(crate) fn render_repo_page(
        &self,
        site: &Site,
        req: &Request,
        head: repo_head::RepoHead,
        fragment: &cache::Fragment,
    ) -> Result<Response> {
        let page = RepoPage {
            chrome: self.chrome(site),
            head,
            title: &fragment.title,
        };
        self.render_with(site, req, 200, &page, fragment)
    }
}

/// A repository page around a fragment (see `cache`).
#[derive(askama::Template)]
#[template(path = "repo_page.html")]
struct RepoPage<'a> {
    chrome: Chrome,
    head: repo_head::RepoHead,
    title: &'a str,
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, scoped to the base path, Secure over HTTPS.
/// `max_age` of `Some(0)` deletes the cookie; `None` makes it last for the browser session.
pub(crate) fn cookie_header(
    site: &Site,
    req: &Request,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    let c = &site.config;
    let path = if c.base_path.is_empty() {
        "/"
    } else {
        &c.base_path
    };
    let mut v = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        v.push_str(&format!("; Max-Age={age}"));
    }
    if is_https(site, req) {
        v.push_str("; Secure");
    }
    v
}

/// `Set-Cookie` headers for a fresh session of `user`, with a nonce of its own: the session
/// cookie, and the removal of the signed-out CSRF cookie (whose tokens mean nothing once signed
/// in).
pub(crate) fn session_cookies(site: &Site, req: &Request, user: &User) -> Result<[String; 2]> {
    let names = cookie_names(site, req);
    let value = session::issue(&site.accounts, user, now())
        .ok_or_else(|| Error::Internal("no randomness for a session cookie".into()))?;
    Ok([
        cookie_header(
            site,
            req,
            &names.session,
            &value,
            Some(session::LIFETIME_SECS),
        ),
        cookie_header(site, req, &names.csrf, "", Some(0)),
    ])
}

/// `Set-Cookie` that removes the session cookie.
pub(crate) fn end_session_cookie(site: &Site, req: &Request) -> String {
    cookie_header(site, req, &cookie_names(site, req).session, "", Some(0))
}

/// A message in the lower-case style of the command line ("the password is too short: ...")
/// as a sentence for a page.
pub(crate) fn as_sentence(message: &str) -> String {
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

/// A refused repository operation as a form shows it: the status (409 for a name taken, 400 for
/// other input the form can correct) and the sentence. A failure on the server's side is an
/// internal error, `context` saying what was being done.
pub(crate) fn repo_refusal(e: RepoError, context: &str) -> Result<(u16, String)> {
    match e {
        RepoError::Failed(detail) => Err(Error::Internal(format!("{context}: {detail}"))),
        RepoError::Exists { .. } | RepoError::PushRunning(_) => {
            Ok((409, as_sentence(&e.to_string())))
        }
        e => Ok((400, as_sentence(&e.to_string()))),
    }
}

/// Loads what the first pages of a long-running process would otherwise wait for: the syntax
/// highlighter's grammars (see [`crate::gateway::App::warm`]).
pub(crate) fn warm() {
    crate::markup::highlight::warm();
}

/// A refused account operation as a form shows it (see [`repo_refusal`]).
pub(crate) fn account_refusal(e: AccountError, context: &str) -> Result<(u16, String)> {
    match e {
        AccountError::Failed(detail) => Err(Error::Internal(format!("{context}: {detail}"))),
        AccountError::Repo(e) => repo_refusal(e, context),
        AccountError::Exists(_)
        | AccountError::TokenExists { .. }
        | AccountError::KeyNameExists { .. }
        | AccountError::KeyInUse
        | AccountError::KeyAlreadyTheirs { .. } => Ok((409, as_sentence(&e.to_string()))),
        e => Ok((400, as_sentence(&e.to_string()))),
    }
}
