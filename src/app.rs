//! The handler: `handle(&Site, &Params) -> Answer`, a response or a git exchange to run. FastCGI
//! and CGI are thin adapters around it; it never panics on input and never lets an internal
//! detail reach the client.

use std::io::{self, Read};

use crate::auth::basic::{Gate, Outcome, Refusal};
use crate::auth::{self, Accounts};
use crate::config::{Config, Handoff};
use crate::error::{Error, Result};
use crate::gateway::{self, Params};
use crate::git::{RepoDir, RepoStore};
use crate::git_http::archive::{self, Archive};
use crate::git_http::blob::BlobStream;
use crate::git_http::smart::{self, Identity, Rpc, Service};
use crate::git_http::{dumb, files};
use crate::gitrun::GitRunner;
use crate::gitrun::{DeltaGate, Snapshots};
use crate::pages::{self, PageCtx};
use crate::request::{Method, Parsed, Request};
use crate::response::Response;
use crate::routes::{self, RepoRoute, Route, View};

/// Everything a request may need, built once at start.
pub(crate) struct Site {
    pub(crate) config: Config,
    pub(crate) repos: RepoStore,
    pub(crate) git: GitRunner,
    pub(crate) accounts: Accounts,
    pub(crate) gate: Gate,
    /// The embedded stylesheet's and script's content-hashed names.
    pub(crate) assets: pages::Assets,
    /// Snapshots being made.
    pub(crate) archives: Snapshots,
    /// Whether a large raw file stored as a delta is being rebuilt.
    pub(crate) raw_deltas: DeltaGate,
}

impl Site {
    /// Fails (with a message for the sysadmin) when the users file or the secret cannot be read.
    pub(crate) fn new(config: Config) -> std::result::Result<Site, String> {
        let repos = RepoStore::new(config.repos_dir());
        let git = GitRunner::new(&config);
        let accounts = Accounts::open(&config.data_dir)?;
        Ok(Site {
            config,
            repos,
            git,
            accounts,
            gate: Gate::new(),
            assets: pages::Assets::new(),
            archives: Snapshots::default(),
            raw_deltas: DeltaGate::default(),
        })
    }
}

/// What a git request needs of its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
}

/// A repository a git client may use, and who the client is.
struct Granted {
    repo: RepoDir,
    public: bool,
    who: Identity,
}

/// What a request turns into: a response ready to send, or something that streams.
pub(crate) enum Answer {
    Response(Response),
    Rpc(Rpc),
    Archive(Archive),
    /// A raw file too large to read here, streamed by git.
    Blob(BlobStream),
}

/// Lane indices of the FastCGI server. Quick answers (pages, generated ref lists, files handed to
/// the web server) share one lane; requests where forgelet streams git data, which can take
/// minutes, have their own, so slow clones never starve the web UI.
pub(crate) const LANE_QUICK: usize = 0;
pub(crate) const LANE_GIT: usize = 1;

impl gateway::App for Site {
    fn lane(&self, params: &Params) -> usize {
        let streams_files = self.config.sendfile == Handoff::None;
        let long = match Request::parse(params, &self.config.base_path) {
            Ok(Parsed::Request(req)) => match routes::route(&req.path, req.method) {
                // A smart advertisement runs git; a dumb ref list can be megabytes, made
                // after each push: both stay off the pages' lane.
                Ok(Route::Repo {
                    page: RepoRoute::InfoRefs,
                    ..
                }) => true,
                Ok(r) => r.is_long(streams_files),
                Err(_) => false,
            },
            _ => false,
        };
        if long {
            LANE_GIT
        } else {
            LANE_QUICK
        }
    }

    fn respond(
        &self,
        params: &Params,
        stdin: &mut (dyn io::Read + Send),
        stdout: &mut (dyn io::Write + Send),
    ) -> io::Result<()> {
        let head_only = params.get(b"REQUEST_METHOD") == Some(b"HEAD");
        match handle(self, params, stdin) {
            Answer::Response(r) => r.write_cgi(stdout, head_only),
            Answer::Rpc(rpc) => rpc.run(&self.git, &self.config.limits, stdin, stdout),
            Answer::Archive(a) => a.run(
                &self.git,
                &self.archives,
                self.config.limits.git_deadline,
                stdout,
            ),
            Answer::Blob(b) => b.run(
                &self.git,
                &self.raw_deltas,
                &self.config.limits,
                head_only,
                stdout,
            ),
        }
    }
}

/// The most a form may send.
const FORM_BODY_MAX: u64 = 64 * 1024;

/// Answers one request. Only page forms read `stdin` here; git exchanges read it as they run.
pub(crate) fn handle(site: &Site, params: &Params, stdin: &mut dyn io::Read) -> Answer {
    let answer = match Request::parse(params, &site.config.base_path) {
        Ok(Parsed::RedirectToBase) => Ok(Answer::Response(Response::redirect(
            301,
            format!("{}/", site.config.base_path),
        ))),
        Ok(Parsed::Request(req)) => routes::route(&req.path, req.method)
            .and_then(|route| dispatch(site, &req, route, stdin)),
        Err(e) => Err(e),
    };
    match answer {
        Ok(Answer::Rpc(rpc)) => Answer::Rpc(rpc),
        Ok(Answer::Archive(a)) => Answer::Archive(a),
        Ok(Answer::Blob(b)) => Answer::Blob(b),
        Ok(Answer::Response(r)) => Answer::Response(finish(r)),
        Err(e) => Answer::Response(finish(e.into_response())),
    }
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

fn dispatch(site: &Site, req: &Request, route: Route, stdin: &mut dyn io::Read) -> Result<Answer> {
    if let Route::Repo {
        owner,
        name,
        page: RepoRoute::Rpc(service),
    } = &route
    {
        let need = match service {
            Service::UploadPack => Need::Read,
            Service::ReceivePack => Need::Write,
        };
        let g = authorize(site, req, owner, name, need)?;
        return Ok(Answer::Rpc(Rpc {
            service: *service,
            repo: g.repo,
            who: g.who,
            client: req.var("REMOTE_ADDR").unwrap_or("unknown").to_string(),
            version: smart::protocol_version(req.header("GIT_PROTOCOL")),
            gzip: req.header("CONTENT_ENCODING").is_some_and(|e| {
                e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
            }),
            content_length: req
                .var("CONTENT_LENGTH")
                .and_then(|l| l.trim().parse().ok()),
        }));
    }
    let is_page = match &route {
        Route::Front
        | Route::Login
        | Route::Logout
        | Route::NewRepo
        | Route::Account
        | Route::Owner(_) => true,
        Route::Repo { page, .. } => match page {
            RepoRoute::Browse(View::Archive | View::Raw, _) => false,
            RepoRoute::Home | RepoRoute::Browse(..) => true,
            _ => false,
        },
        Route::Static(_) => false,
    };
    if is_page {
        return page(site, req, route, stdin).map(Answer::Response);
    }
    if let Route::Repo {
        owner,
        name,
        page: RepoRoute::Browse(View::Archive, segments),
    } = &route
    {
        return snapshot(site, req, owner, name, segments);
    }
    if let Route::Repo {
        owner,
        name,
        page: RepoRoute::Browse(View::Raw, segments),
    } = &route
    {
        let ctx = PageCtx::new(site, req);
        let raw = find_page_repo(site, &ctx, owner, name)
            .and_then(|repo| pages::repo::raw(req, &ctx, &repo, segments));
        return Ok(match raw {
            Ok(pages::repo::Raw::Response(r)) => Answer::Response(r),
            Ok(pages::repo::Raw::Stream(s)) => Answer::Blob(s),
            Err(e) => Answer::Response(pages::error_page(site, req, &ctx, e)),
        });
    }
    respond_with(site, req, route).map(Answer::Response)
}

/// Site pages: they know who is signed in, and their errors carry the page headers.
fn page(site: &Site, req: &Request, route: Route, stdin: &mut dyn io::Read) -> Result<Response> {
    let ctx = PageCtx::new(site, req);
    page_for(site, req, &ctx, route, stdin).or_else(|e| Ok(pages::error_page(site, req, &ctx, e)))
}

fn page_for(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    route: Route,
    stdin: &mut dyn io::Read,
) -> Result<Response> {
    let body = if req.method == Method::Post {
        read_form(stdin)?
    } else {
        Vec::new()
    };
    match (route, req.method) {
        (Route::Front, _) => pages::front::handle(site, req, ctx),
        (Route::Owner(owner), _) => pages::front::owner(site, req, ctx, &owner),
        (Route::Login, Method::Post) => pages::login::submit(site, req, ctx, &body),
        (Route::Login, _) => pages::login::form(site, req, ctx),
        (Route::Logout, Method::Post) => pages::login::logout(site, req, ctx, &body),
        (Route::Logout, _) => pages::login::logout_form(site, req, ctx),
        (Route::NewRepo, Method::Post) => pages::new_repo::submit(site, req, ctx, &body),
        (Route::NewRepo, _) => pages::new_repo::form(site, req, ctx),
        (Route::Account, Method::Post) => pages::account::submit(site, req, ctx, &body),
        (Route::Account, _) => pages::account::form(site, req, ctx),
        (
            Route::Repo {
                owner,
                name,
                page: RepoRoute::Home,
            },
            _,
        ) => {
            let repo = find_page_repo(site, ctx, &owner, &name)?;
            pages::repo::home(site, req, ctx, &repo)
        }
        (
            Route::Repo {
                owner,
                name,
                page: RepoRoute::Browse(View::Settings, _),
            },
            Method::Post,
        ) => {
            let repo = site
                .repos
                .locate(&owner, &name)
                .map_err(|e| Error::internal(&format!("looking up {owner}/{name}"), e))?
                .ok_or(Error::NotFound)?;
            pages::settings::submit(site, req, ctx, &repo, &body)
        }
        (
            Route::Repo {
                owner,
                name,
                page: RepoRoute::Browse(view, segments),
            },
            _,
        ) => {
            let repo = find_page_repo(site, ctx, &owner, &name)?;
            pages::repo::browse(site, req, ctx, &repo, view, &segments)
        }
        _ => Err(Error::NotFound),
    }
}

/// `archive/{ref}.tar.gz|.zip`: the ref resolved to a commit id before git sees it.
fn snapshot(
    site: &Site,
    req: &Request,
    owner: &str,
    name: &str,
    segments: &[String],
) -> Result<Answer> {
    let ctx = PageCtx::new(site, req);
    let repo = find_page_repo(site, &ctx, owner, name)?;
    let joined = segments.join("/");
    let (rev, format) = archive::Format::split(&joined).ok_or(Error::NotFound)?;
    let git = pages::repo::open(&repo)?;
    let resolved = crate::git::browse::resolve_ref(&git, rev).map_err(|e| match e {
        crate::git::browse::BrowseError::NotFound => Error::NotFound,
        crate::git::browse::BrowseError::Git(m) => Error::Internal(m),
    })?;
    let cap = site.config.limits.archive_bytes;
    let fits = git
        .find_commit(resolved.commit)
        .and_then(|c| archive::size_of_tree(&git, c.tree_id(), cap))
        .map_err(|e| Error::internal(&label(&repo), e.message()))?;
    if fits.is_none() {
        return Err(Error::TooLarge(format!(
            "This snapshot would be larger than the server's limit of {} MiB; clone the repository instead.",
            cap >> 20
        )));
    }
    Ok(Answer::Archive(Archive {
        repo,
        commit: resolved.commit,
        rev: rev.to_string(),
        format,
        client: req.var("REMOTE_ADDR").unwrap_or("unknown").to_string(),
        anonymous: ctx.viewer.is_none(),
    }))
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

fn respond_with(site: &Site, req: &Request, route: Route) -> Result<Response> {
    match route {
        Route::Static(name) => pages::static_file(site, &name),
        Route::Front
        | Route::Login
        | Route::Logout
        | Route::NewRepo
        | Route::Account
        | Route::Owner(_) => Err(Error::NotFound),
        Route::Repo {
            page: RepoRoute::Home,
            ..
        } => Err(Error::NotFound),
        Route::Repo { owner, name, page } => {
            let service = match page {
                RepoRoute::InfoRefs => smart_service(req)?,
                _ => None,
            };
            let need = match service {
                Some(Service::ReceivePack) => Need::Write,
                _ => Need::Read,
            };
            let Granted { repo, public, who } = authorize(site, req, &owner, &name, need)?;
            match page {
                // Answered as pages and in dispatch.
                RepoRoute::Home | RepoRoute::Browse(..) | RepoRoute::Rpc(_) => Err(Error::NotFound),
                RepoRoute::InfoRefs => {
                    if let Some(service) = service {
                        let version = smart::protocol_version(req.header("GIT_PROTOCOL"));
                        return smart::advertise(
                            &site.git,
                            service,
                            &repo,
                            &who,
                            req.var("REMOTE_ADDR").unwrap_or("unknown"),
                            version,
                            &site.config.limits,
                        );
                    }
                    let git = pages::repo::open(&repo)?;
                    let snap = pages::repo::refs_of(&repo)?;
                    dumb::info_refs_response(&site.config, &repo, &git, &snap)
                }
                RepoRoute::Head => {
                    let git = pages::repo::open(&repo)?;
                    let body = dumb::head(&git)
                        .map_err(|e| Error::internal(&label(&repo), e.message()))?;
                    Ok(refs_response("text/plain", body))
                }
                RepoRoute::PacksList => {
                    let body =
                        dumb::packs(&repo.path).map_err(|e| Error::internal(&label(&repo), e))?;
                    Ok(refs_response("text/plain; charset=utf-8", body))
                }
                RepoRoute::File(rel, kind) => {
                    let range = (req.method == Method::Get)
                        .then(|| req.header("RANGE"))
                        .flatten();
                    files::send(&site.config, &repo, &rel, kind, public, range)
                }
            }
        }
    }
}

/// `info/refs?service=...`: which smart service is asked for, if any.
fn smart_service(req: &Request) -> Result<Option<Service>> {
    match req.query_param("service") {
        None => Ok(None),
        Some(name) => Service::from_name(&name)
            .map(Some)
            .ok_or_else(|| Error::Forbidden("Unsupported service.".into())),
    }
}

/// A generated, changing git file: never cached.
fn refs_response(content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::bytes(200, content_type, body);
    r.no_cache();
    r
}

fn label(repo: &RepoDir) -> String {
    format!("{}/{}", repo.owner, repo.name)
}

/// Finds a repository for a page, as the signed-in viewer (if any) may see it; a missing and a
/// hidden repository are the same 404.
fn find_page_repo(site: &Site, ctx: &PageCtx, owner: &str, name: &str) -> Result<RepoDir> {
    let repo = site
        .repos
        .locate(owner, name)
        .map_err(|e| Error::internal(&format!("looking up {owner}/{name}"), e))?
        .ok_or(Error::NotFound)?;
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{owner}/{name}: {problem}");
    }
    let access = auth::access(
        ctx.viewer.as_ref(),
        &repo.owner,
        &settings,
        site.config.anonymous_read,
    );
    if !access.may_read() {
        return Err(Error::NotFound);
    }
    Ok(repo)
}

/// Who a git client is and what it may do with `owner/name`, as DESIGN.md's "Who may do what"
/// says: anonymous access to a private or missing repository is the same 401 (so git asks for
/// credentials and names do not leak); a signed-in user who may not read it gets 404; one who
/// may read but not write gets 403 when pushing. On a site with no users at all nobody could
/// answer a challenge, so hidden repositories are plain 404s there.
fn authorize(site: &Site, req: &Request, owner: &str, name: &str, need: Need) -> Result<Granted> {
    let challenge = |message: &'static str| Error::Unauthorized {
        realm: site.config.site_name.clone(),
        message,
    };
    let client = req.var("REMOTE_ADDR").unwrap_or("unknown");
    let viewer = match site.gate.check(
        &site.accounts,
        req.header("AUTHORIZATION"),
        client,
        site.config.git_requires_token,
    ) {
        Outcome::Anonymous => None,
        Outcome::User(u) => Some(u),
        Outcome::Refused(Refusal::Bad(message)) => return Err(challenge(message)),
        Outcome::Refused(Refusal::Slow(secs)) => return Err(Error::TooMany(secs)),
        Outcome::Refused(Refusal::Busy) => return Err(Error::TooMany(1)),
        Outcome::Refused(Refusal::Broken(e)) => return Err(Error::Internal(e)),
    };
    let hidden = || -> Error {
        if viewer.is_some() {
            return Error::NotFound;
        }
        match site.accounts.users() {
            Ok(users) if users.is_empty() => Error::NotFound,
            _ => challenge("Authentication required."),
        }
    };
    let repo = site
        .repos
        .locate(owner, name)
        .map_err(|e| Error::internal(&format!("looking up {owner}/{name}"), e))?
        .ok_or_else(hidden)?;
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{owner}/{name}: {problem}");
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
    if need == Need::Write && !access.may_write() {
        return Err(match viewer {
            None => challenge("Authentication required to push."),
            Some(_) => Error::Forbidden(format!(
                "You may read {}/{} but not push to it.",
                repo.owner, repo.name
            )),
        });
    }
    if let Some(format) = &settings.unsupported_format {
        return Err(Error::Unsupported(format!(
            "{}/{} uses the {format} object format; this server can only serve SHA-1 repositories.",
            repo.owner, repo.name
        )));
    }
    // Shared caches may keep objects only of what anyone may read.
    let public = auth::access(None, &repo.owner, &settings, site.config.anonymous_read).may_read();
    Ok(Granted {
        repo,
        public,
        who: Identity {
            user: viewer.map(|u| u.name),
        },
    })
}
