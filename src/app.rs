//! The dispatcher: `handle(&Site, &Params, stdin) -> Answer`. It parses the request once, finds
//! its row in the route table (`routes`), does what the row says must happen before its handler
//! runs (who the client is, its access to the repository the path names, a form's body and CSRF
//! token), calls the handler, and makes errors answers: pages in the site's layout for page rows,
//! the plain text git prints for git rows. FastCGI and CGI are thin adapters around it; it never
//! panics on input and never lets an internal detail reach the client.

use std::io::{self, Read};
use std::sync::Arc;

use crate::auth::basic::{Outcome, Refusal};
use crate::auth::{self, User};
use crate::config::Handoff;
use crate::error::{Error, Result};
use crate::forms::{field, form_fields};
use crate::gateway::{self, Params};
use crate::git::RepoDir;
use crate::git_http::{self, GitCall, Identity};
use crate::pages::{self, PageCall, PageCtx};
use crate::request::{self, Captures, Parsed, Request};
use crate::response::{Answer, Response};
use crate::routes::{self, Handler, Lane, Matched, Need, Row};
use crate::site::Site;
use crate::urls;

/// Lane indices of the FastCGI server. Quick answers (pages, generated ref lists, files handed to
/// the web server) share one lane; requests where forgelet runs git or streams what it sends,
/// which can take minutes, have their own, so slow clones never starve the web UI.
pub(crate) const LANE_QUICK: usize = 0;
pub(crate) const LANE_GIT: usize = 1;

impl gateway::App for Site {
    fn settle(&self) {
        if let Some(cache) = &self.pack_cache {
            cache.settle();
        }
    }

    fn warm(&self) {
        pages::warm();
    }

    fn call(self: Arc<Self>, params: Params) -> Box<dyn gateway::Call> {
        let head_only = request::is_head(&params);
        let routed = match Request::parse(params, &self.config.base_path) {
            Ok(Parsed::Request(req)) => match routes::route(&req.path, req.method, req.query()) {
                Ok(matched) => Routed::Row(req, matched),
                Err(e) => Routed::Refused(e.into_response()),
            },
            Ok(Parsed::RedirectToBase) => Routed::Refused(Response::redirect(
                301,
                urls::home_url(&self.config.base_path),
            )),
            Err(e) => Routed::Refused(e.into_response()),
        };
        Box::new(SiteCall {
            site: self,
            routed,
            head_only,
        })
    }
}

/// A request, parsed and routed once.
struct SiteCall {
    site: Arc<Site>,
    routed: Routed,
    head_only: bool,
}

enum Routed {
    /// Its row, and what the path captured.
    Row(Request, Matched),
    /// Answered without a row: no route fits, or the request is malformed.
    Refused(Response),
}

impl gateway::Call for SiteCall {
    fn lane(&self) -> usize {
        let Routed::Row(_, matched) = &self.routed else {
            return LANE_QUICK;
        };
        match matched.row.lane {
            Lane::Git => LANE_GIT,
            Lane::Files if self.site.config.sendfile == Handoff::None => LANE_GIT,
            Lane::Files | Lane::Quick => LANE_QUICK,
        }
    }

    fn respond(
        self: Box<Self>,
        stdin: &mut (dyn io::Read + Send),
        stdout: &mut (dyn io::Write + Send),
    ) -> io::Result<()> {
        let SiteCall {
            site,
            routed,
            head_only,
        } = *self;
        let answer = match routed {
            Routed::Row(req, matched) => handle(&site, &req, &matched, stdin),
            Routed::Refused(r) => r.into(),
        };
        match answer {
            Answer::Response(r) => finish(r).write_cgi(stdout, head_only),
            Answer::Stream(s) => s.run(stdin, stdout, head_only),
        }
    }
}

/// The most a form may send.
const FORM_BODY_MAX: u64 = 64 * 1024;

/// Answers a routed request. Only forms read `stdin` here; a streamed answer reads it as it
/// runs.
fn handle<'s>(
    site: &'s Site,
    req: &Request,
    matched: &Matched,
    stdin: &mut dyn io::Read,
) -> Answer<'s> {
    let (row, caps) = (matched.row, &matched.caps);
    match row.handler {
        Handler::Page(handler) => page(site, req, row, caps, handler, stdin),
        Handler::Git(handler) => {
            git(site, req, row, caps, handler).unwrap_or_else(|e| e.into_response().into())
        }
        Handler::Feed(handler) => feed(site, req, caps, handler),
        Handler::Lfs(route) => lfs(site, req, row, caps, route, stdin),
        Handler::Moved => moved(site, req).into(),
    }
}

/// A feed row: the session cookie, else a personal access token by HTTP Basic (feed readers
/// keep a user name and a password, never a cookie). A token given wins over the cookie; a
/// password is refused, as a reader keeps it in the clear. Without either, a repository
/// anonymous clients may not read is the same 401 challenge git gets, so a reader asks for
/// credentials and the name of a private repository does not leak. Errors are plain text.
fn feed<'s>(site: &'s Site, req: &Request, caps: &Captures, handler: pages::Handler) -> Answer<'s> {
    let ctx = PageCtx::new(site, req);
    let repo = match (&ctx.viewer, req.authorization()) {
        (Some(viewer), None) => page_repo(site, Some(viewer), caps, Need::Read),
        _ => authorize(site, req, caps, Need::Read, true).map(|g| g.repo),
    };
    let call = |repo: &RepoDir| {
        handler(
            site,
            &PageCall {
                req,
                ctx: &ctx,
                repo: Some(repo),
                caps,
                fields: &[],
            },
        )
    };
    match repo.and_then(|repo| call(&repo)) {
        Ok(answer) => answer,
        Err(e) => e.into_response().into(),
    }
}

/// An LFS row: the client signs in with HTTP Basic, or (on the object routes) with the signed
/// header a batch answer gave it, and errors are LFS's JSON.
fn lfs<'s>(
    site: &'s Site,
    req: &Request,
    row: &Row,
    caps: &Captures,
    route: crate::lfs::Route,
    stdin: &mut dyn io::Read,
) -> Answer<'s> {
    let answer = (|| {
        let viewer = match (route.signed, req.authorization()) {
            (Some(op), Some(header)) if crate::lfs::token::is_signed(header) => {
                signed_viewer(site, caps, op, header)?
            }
            _ => identify(site, req, site.config.git_requires_token)?,
        };
        let g = grant(site, caps, row.need, viewer)?;
        (route.handler)(
            site,
            &crate::lfs::LfsCall {
                req,
                repo: &g.repo,
                user: g.who.user.as_deref(),
                write: &g.write,
                manage: g.manage,
                caps,
            },
            stdin,
        )
    })();
    answer.unwrap_or_else(|e| crate::lfs::error_response(e).into())
}

/// The user a signed LFS header was given to, if it is valid for this route, repository and
/// object, and the user still exists with the same session stamp (a password change or "sign
/// out everywhere" ends it). Access is then checked as for anyone.
fn signed_viewer(
    site: &Site,
    caps: &Captures,
    op: crate::lfs::token::Op,
    header: &str,
) -> Result<Option<User>> {
    let refused = |message: &'static str| challenge(site, message);
    // The repository as the path names it; a missing one is refused like a bad header.
    let repo = locate(site, caps)?.ok_or_else(|| refused("Authentication required."))?;
    let oid = match op {
        crate::lfs::token::Op::Verify | crate::lfs::token::Op::Api => "",
        _ => caps.rest.last().map(String::as_str).unwrap_or_default(),
    };
    let signed = crate::lfs::token::verify(
        site.accounts.secret(),
        header,
        op,
        &format!("{}/{}", repo.owner, repo.name),
        oid,
        crate::time::now(),
    )
    .map_err(refused)?;
    let Some(name) = signed.user else {
        return Ok(None);
    };
    let users = site.accounts.users().map_err(Error::Internal)?;
    match users.get(&name) {
        Some(u) if crate::keyed::constant_time_eq(u.stamp.as_bytes(), signed.stamp.as_bytes()) => {
            Ok(Some(u.clone()))
        }
        _ => Err(refused(
            "This transfer's authorization is no longer valid; run the command again.",
        )),
    }
}

/// A site page's old address: the same path and query under `/-/`, for good (308 keeps a
/// POST's method and body, so a form from a page cached before the move still works).
fn moved(site: &Site, req: &Request) -> Response {
    let mut to = format!(
        "{}{}{}",
        site.config.base_path,
        urls::SITE_PREFIX,
        urls::encode_path(&req.path)
    );
    // The query as the client sent it, when it is plain printable ASCII (it goes into a header).
    let query = req.query();
    if !query.is_empty() && query.bytes().all(|b| b.is_ascii_graphic()) {
        to.push('?');
        to.push_str(query);
    }
    let status = if req.method == request::Method::Post {
        308
    } else {
        301
    };
    Response::redirect(status, to)
}

/// Headers every response carries.
fn finish(mut r: Response) -> Response {
    if !r
        .headers
        .iter()
        .any(|(k, _)| *k == "X-Content-Type-Options")
    {
        r.header("X-Content-Type-Options", "nosniff");
    }
    r
}

/// A page row: the viewer is whoever the session cookie says, and errors are pages.
fn page<'s>(
    site: &'s Site,
    req: &Request,
    row: &Row,
    caps: &Captures,
    handler: pages::Handler,
    stdin: &mut dyn io::Read,
) -> Answer<'s> {
    let ctx = PageCtx::new(site, req);
    match call_page(site, req, &ctx, row, caps, handler, stdin) {
        Ok(answer) => answer,
        Err(e) => pages::error_page(site, req, &ctx, e).into(),
    }
}

fn call_page<'s>(
    site: &'s Site,
    req: &Request,
    ctx: &PageCtx,
    row: &Row,
    caps: &Captures,
    handler: pages::Handler,
    stdin: &mut dyn io::Read,
) -> Result<Answer<'s>> {
    // Sign in first, then come back here.
    let sign_in = || {
        let base = &site.config.base_path;
        let next = format!("{base}{}", req.path);
        let mut r = Response::redirect(303, urls::login_then(base, &next));
        ctx.finish(site, req, &mut r);
        Ok(r.into())
    };
    if row.need == Need::SignedIn && ctx.viewer.is_none() {
        return sign_in();
    }
    let repo = match row.need {
        Need::Read | Need::Write | Need::Manage => {
            match page_repo(site, ctx.viewer.as_ref(), caps, row.need) {
                Ok(repo) => Some(repo),
                // A page of a repository they may read but not change: someone not signed in
                // may be its owner, so they are asked to sign in (as GitHub does) rather than
                // refused. A form posted without a session is still refused.
                Err(Error::Forbidden(_)) if ctx.viewer.is_none() && !row.form => return sign_in(),
                Err(e) => return Err(e),
            }
        }
        Need::Anyone | Need::SignedIn => None,
    };
    let fields = if row.form {
        let fields = form_fields(&read_form(stdin)?);
        if !ctx.csrf_ok(site, field(&fields, "csrf")) {
            return Err(Error::Forbidden(
                "This form has expired. Go back, reload the page and try again.".into(),
            ));
        }
        fields
    } else {
        Vec::new()
    };
    handler(
        site,
        &PageCall {
            req,
            ctx,
            repo: repo.as_ref(),
            caps,
            fields: &fields,
        },
    )
}

/// The repository a page's path names, if the viewer may use it as `need` says: one they may
/// not read is the same 404 as a missing one; one they may read but not manage is a 403.
fn page_repo(site: &Site, viewer: Option<&User>, caps: &Captures, need: Need) -> Result<RepoDir> {
    let repo = locate(site, caps)?.ok_or(Error::NotFound)?;
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{}/{}: {problem}", repo.owner, repo.name);
    }
    let access = auth::access(viewer, &repo.owner, &settings, site.config.anonymous_read);
    if !access.may_read() {
        return Err(Error::NotFound);
    }
    match need {
        Need::Manage if !auth::may_manage(viewer, &repo.owner) => Err(Error::Forbidden(
            "Only the owner and site admins can change this repository's settings.".into(),
        )),
        Need::Write if !access.may_write() => Err(Error::Forbidden(format!(
            "You may read {}/{} but not change it.",
            repo.owner, repo.name
        ))),
        _ => Ok(repo),
    }
}

fn locate(site: &Site, caps: &Captures) -> Result<Option<RepoDir>> {
    site.repos
        .locate(&caps.owner, &caps.name)
        .map_err(|e| Error::internal(&format!("looking up {}/{}", caps.owner, caps.name), e))
}

/// A form body, capped.
fn read_form(stdin: &mut dyn io::Read) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    let n = Read::take(stdin, FORM_BODY_MAX + 1)
        .read_to_end(&mut body)
        .map_err(|_| Error::BadRequest("the form could not be read"))?;
    if n as u64 > FORM_BODY_MAX {
        return Err(Error::BadRequest("the form is too large"));
    }
    Ok(body)
}

/// A git row: the client signs in with HTTP Basic, and errors are plain text.
fn git<'s>(
    site: &'s Site,
    req: &Request,
    row: &Row,
    caps: &Captures,
    handler: git_http::Handler,
) -> Result<Answer<'s>> {
    let g = authorize(site, req, caps, row.need, site.config.git_requires_token)?;
    handler(
        site,
        &GitCall {
            req,
            repo: &g.repo,
            who: &g.who,
            public: g.public,
            caps,
        },
    )
}

/// A repository a git client may use, and who the client is.
struct Granted {
    repo: RepoDir,
    public: bool,
    who: Identity,
    /// What a write to the repository gets: `Ok` when the client may write.
    write: Result<()>,
    /// The client is the repository's owner or a site admin.
    manage: bool,
}

/// Who a git client is and what it may do with the repository, as ARCHITECTURE.md's "Who may do
/// what" says: anonymous access to a private or missing repository is the same 401 (so git asks
/// for credentials and names do not leak); a signed-in user who may not read it gets 404; one
/// who may read but not write gets 403 when pushing. On a site with no users at all nobody
/// could answer a challenge, so hidden repositories are plain 404s there.
/// `tokens_only`: a password is refused, only a personal access token signs in.
fn authorize(
    site: &Site,
    req: &Request,
    caps: &Captures,
    need: Need,
    tokens_only: bool,
) -> Result<Granted> {
    let viewer = identify(site, req, tokens_only)?;
    grant(site, caps, need, viewer)
}

/// Who the client is by HTTP Basic (a token, or when `tokens_only` is false a password too,
/// through the limiter); `None`: anonymous.
fn identify(site: &Site, req: &Request, tokens_only: bool) -> Result<Option<User>> {
    let client = req.remote_addr();
    match site
        .gate
        .check(&site.accounts, req.authorization(), client, tokens_only)
    {
        Outcome::Anonymous => Ok(None),
        Outcome::User(u) => Ok(Some(u)),
        Outcome::Refused(Refusal::Bad(message)) => Err(challenge(site, message)),
        Outcome::Refused(Refusal::Slow(secs)) => Err(Error::TooMany(secs)),
        Outcome::Refused(Refusal::Busy) => Err(Error::TooMany(1)),
        Outcome::Refused(Refusal::Broken(e)) => Err(Error::Internal(e)),
    }
}

fn challenge(site: &Site, message: &'static str) -> Error {
    Error::Unauthorized {
        realm: site.config.site_name.clone(),
        message,
    }
}

/// The repository the path names, if `viewer` may use it as `need` says (see [`authorize`]).
fn grant(site: &Site, caps: &Captures, need: Need, viewer: Option<User>) -> Result<Granted> {
    let challenge = |message: &'static str| challenge(site, message);
    let hidden = || -> Error {
        if viewer.is_some() {
            return Error::NotFound;
        }
        match site.accounts.users() {
            Ok(users) if users.is_empty() => Error::NotFound,
            _ => challenge("Authentication required."),
        }
    };
    let repo = locate(site, caps)?.ok_or_else(hidden)?;
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{}/{}: {problem}", repo.owner, repo.name);
    }
    let access = auth::access(
        viewer.as_ref(),
        &repo.owner,
        &settings,
        site.config.anonymous_read,
    );
    if !access.may_read() {
        return Err(hidden());
    }
    let write = if access.may_write() {
        Ok(())
    } else {
        Err(match viewer {
            None => challenge("Authentication required to push."),
            Some(_) => Error::Forbidden(format!(
                "You may read {}/{} but not push to it.",
                repo.owner, repo.name
            )),
        })
    };
    if need != Need::Read {
        write.clone()?;
    }
    if let Some(format) = &settings.unsupported_format {
        return Err(Error::Unsupported(format!(
            "{}/{} uses the {format} object format; this server can only serve SHA-1 repositories.",
            repo.owner, repo.name
        )));
    }
    // Shared caches may keep objects only of what anyone may read.
    let public = auth::access(None, &repo.owner, &settings, site.config.anonymous_read).may_read();
    let manage = auth::access::may_manage(viewer.as_ref(), &repo.owner);
    Ok(Granted {
        repo,
        public,
        who: Identity {
            user: viewer.map(|u| u.name),
        },
        write,
        manage,
    })
}
