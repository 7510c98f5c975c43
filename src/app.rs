//! The handler: `handle(&Site, &Params) -> Answer`, a response or a git exchange to run. FastCGI
//! and CGI are thin adapters around it; it never panics on input and never lets an internal
//! detail reach the client.

use std::io;

use crate::config::{Config, Handoff};
use crate::error::{Error, Result};
use crate::fcgi::{self, Params};
use crate::git::{RepoDir, RepoStore, Settings, Visibility};
use crate::git_http::smart::{self, GitRunner, Identity, Rpc, Service};
use crate::git_http::{dumb, files};
use crate::pages;
use crate::request::{Method, Parsed, Request};
use crate::response::Response;
use crate::routes::{self, RepoRoute, Route};

/// Everything a request may need, built once at start.
pub(crate) struct Site {
    pub(crate) config: Config,
    pub(crate) repos: RepoStore,
    pub(crate) git: GitRunner,
}

impl Site {
    pub(crate) fn new(config: Config) -> Site {
        let repos = RepoStore::new(config.repos_dir());
        let git = GitRunner::new(&config.data_dir);
        Site { config, repos, git }
    }
}

/// What a request turns into: a response ready to send, or a git exchange that streams.
pub(crate) enum Answer {
    Response(Response),
    Rpc(Rpc),
}

/// Lane indices of the FastCGI server. Quick answers (pages, generated ref lists, files handed to
/// the web server) share one lane; requests where forgelet streams git data, which can take
/// minutes, have their own, so slow clones never starve the web UI.
pub(crate) const LANE_QUICK: usize = 0;
pub(crate) const LANE_GIT: usize = 1;

impl fcgi::App for Site {
    fn lane(&self, params: &Params) -> usize {
        let streams_files = self.config.sendfile == Handoff::None;
        let long = match Request::parse(params, &self.config.base_path) {
            Ok(Parsed::Request(req)) => match routes::route(&req.path, req.method) {
                // A smart advertisement runs git too.
                Ok(Route::Repo {
                    page: RepoRoute::InfoRefs,
                    ..
                }) => req.query_param("service").is_some(),
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
        match handle(self, params) {
            Answer::Response(r) => r.write_cgi(stdout, head_only),
            Answer::Rpc(rpc) => rpc.run(&self.git, &self.config.limits, stdin, stdout),
        }
    }
}

/// Answers one request.
pub(crate) fn handle(site: &Site, params: &Params) -> Answer {
    let answer = match Request::parse(params, &site.config.base_path) {
        Ok(Parsed::RedirectToBase) => Ok(Answer::Response(Response::redirect(
            301,
            format!("{}/", site.config.base_path),
        ))),
        Ok(Parsed::Request(req)) => {
            routes::route(&req.path, req.method).and_then(|route| dispatch(site, &req, route))
        }
        Err(e) => Err(e),
    };
    match answer {
        Ok(Answer::Rpc(rpc)) => Answer::Rpc(rpc),
        Ok(Answer::Response(r)) => Answer::Response(finish(r)),
        Err(e) => Answer::Response(finish(e.into_response())),
    }
}

/// Headers every response carries.
fn finish(mut r: Response) -> Response {
    r.header("X-Content-Type-Options", "nosniff");
    r
}

fn dispatch(site: &Site, req: &Request, route: Route) -> Result<Answer> {
    if let Route::Repo {
        owner,
        name,
        page: RepoRoute::Rpc(service),
    } = &route
    {
        let (repo, _) = find_repo(site, owner, name)?;
        if *service == Service::ReceivePack {
            return Err(push_refused());
        }
        return Ok(Answer::Rpc(Rpc {
            service: *service,
            repo,
            who: Identity::default(),
            version: smart::protocol_version(req.header("GIT_PROTOCOL")),
            gzip: req.header("CONTENT_ENCODING").is_some_and(|e| {
                e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
            }),
            content_length: req
                .var("CONTENT_LENGTH")
                .and_then(|l| l.trim().parse().ok()),
        }));
    }
    respond_with(site, req, route).map(Answer::Response)
}

fn respond_with(site: &Site, req: &Request, route: Route) -> Result<Response> {
    match route {
        Route::Front => pages::front::handle(site),
        Route::Repo { owner, name, page } => {
            let (repo, settings) = find_repo(site, &owner, &name)?;
            let public = settings.visibility == Visibility::Public;
            match page {
                RepoRoute::Home => pages::repo::handle(site, &repo),
                RepoRoute::InfoRefs => {
                    if let Some(service) = smart_service(req)? {
                        if service == Service::ReceivePack {
                            return Err(push_refused());
                        }
                        let version = smart::protocol_version(req.header("GIT_PROTOCOL"));
                        return site.git.advertise(
                            service,
                            &repo,
                            &Identity::default(),
                            version,
                            &site.config.limits,
                        );
                    }
                    let git = open(&repo)?;
                    let body = dumb::info_refs(&git, &label(&repo))
                        .map_err(|e| Error::internal(&label(&repo), e.message()))?;
                    Ok(refs_response("text/plain; charset=utf-8", body))
                }
                RepoRoute::Head => {
                    let git = open(&repo)?;
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
                // Taken care of in dispatch.
                RepoRoute::Rpc(_) => Err(Error::NotFound),
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

/// Until accounts exist nobody may push; said so that git shows it.
fn push_refused() -> Error {
    Error::Forbidden("Pushing over HTTP is not enabled on this server yet.".into())
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

/// Finds a repository the client may read. A missing and a private repository get the same 404,
/// so names do not leak. (Once accounts exist, git clients will get 401 instead, so that git asks
/// for credentials; with no accounts such a prompt could never succeed.)
fn find_repo(site: &Site, owner: &str, name: &str) -> Result<(RepoDir, Settings)> {
    let repo = site
        .repos
        .locate(owner, name)
        .map_err(|e| Error::internal(&format!("looking up {owner}/{name}"), e))?
        .ok_or(Error::NotFound)?;
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{owner}/{name}: {problem}");
    }
    // No sign-in exists yet, so nobody may read a private repository over HTTP.
    if settings.visibility == Visibility::Private {
        return Err(Error::NotFound);
    }
    if let Some(format) = &settings.unsupported_format {
        return Err(Error::Unsupported(format!(
            "{}/{} uses the {format} object format; this server can only serve SHA-1 repositories.",
            repo.owner, repo.name
        )));
    }
    Ok((repo, settings))
}

fn open(repo: &RepoDir) -> Result<git2::Repository> {
    repo.open()
        .map_err(|e| Error::internal(&format!("opening {}", label(repo)), e.message()))
}
