//! Smart HTTP: the ref advertisement and the `git-upload-pack` / `git-receive-pack` exchanges, run
//! by spawning git with `--stateless-rpc` in an environment forgelet builds from nothing.
//!
//! Fetch bodies (wants and haves) are read whole before git starts, as git's own http-backend does,
//! because upload-pack may answer before it has read every `have`, and checked to be pkt-lines;
//! push bodies stream. Each exchange takes a slot (`slots`) and runs its child through `child`:
//! input and output pumped at the same time, output a slow client has not taken yet kept aside so
//! git can finish, the whole process group stopped and reaped when the client goes away, a cap is
//! hit, or the deadline passes.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::config::{Handoff, Limits};
use crate::error::{Error, Result};
use crate::git::{maintenance, RepoDir};
use crate::gitrun::child::{self, ChildGuard};
use crate::gitrun::service::{self, protocol_version, Service as GitService};
use crate::gitrun::{busy_response, temp_file, GitRunner, BASE_SETTINGS};
use crate::packcache::key::{self, FetchRequest, Protocol};
use crate::packcache::store::{Entry, Growing, Grown, Store};
use crate::packcache::{identity, Cache, Event, Followed, Lead, Lookup};
use crate::request::Request;
use crate::response::{Answer, Body, Response, Stream};
use crate::site::Site;

use super::GitCall;

/// The two git services reachable over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    /// `git-upload-pack` / `git-receive-pack`, as in URLs and `?service=`.
    pub(crate) fn from_name(name: &str) -> Option<Service> {
        match name {
            "git-upload-pack" => Some(Service::UploadPack),
            "git-receive-pack" => Some(Service::ReceivePack),
            _ => None,
        }
    }

    /// The git service it runs.
    fn git(self) -> GitService {
        match self {
            Service::UploadPack => GitService::UploadPack,
            Service::ReceivePack => GitService::ReceivePack,
        }
    }

    /// The git subcommand, `upload-pack` / `receive-pack`.
    fn command(self) -> &'static str {
        self.git().command()
    }

    fn advertisement_type(self) -> &'static str {
        match self {
            Service::UploadPack => "application/x-git-upload-pack-advertisement",
            Service::ReceivePack => "application/x-git-receive-pack-advertisement",
        }
    }

    fn result_type(self) -> &'static str {
        match self {
            Service::UploadPack => "application/x-git-upload-pack-result",
            Service::ReceivePack => "application/x-git-receive-pack-result",
        }
    }
}

/// Who is asking, for git's hooks and the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub(crate) user: Option<String>,
}

/// Request bodies up to this size stay in memory; larger fetch requests spill to a temp file.
const SPILL_AT: usize = 4 << 20;

/// `git <service> --stateless-rpc ...` for `repo`, from an empty environment plus an allowlist
/// (the same command SSH runs, plus `--stateless-rpc`).
fn command(
    runner: &GitRunner,
    service: Service,
    repo: &RepoDir,
    who: &Identity,
    version: Option<u8>,
    limits: &Limits,
) -> Command {
    let mut c = runner.service(
        service.git(),
        &format!("{}/{}", repo.owner, repo.name),
        who.user.as_deref(),
        version,
        limits,
    );
    c.arg("--stateless-rpc");
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    c
}

/// `GET info/refs?service=...`: the ref advertisement, with the `# service=` preamble unless
/// the client speaks protocol v2 (which receive-pack never does).
pub(crate) fn advertisement(
    runner: &GitRunner,
    service: Service,
    repo: &RepoDir,
    who: &Identity,
    client: &str,
    version: Option<u8>,
    limits: &Limits,
) -> Result<Response> {
    if service == Service::ReceivePack
        && matches!(
            maintenance::status(&repo.path),
            maintenance::Status::Running { .. }
        )
    {
        return Ok(being_purged(&format!("{}/{}", repo.owner, repo.name)));
    }
    let _slot = match runner.slot(client, who.user.is_none()) {
        Ok(s) => s,
        Err(busy) => return Ok(busy_response(busy)),
    };
    let mut c = command(runner, service, repo, who, version, limits);
    c.arg("--http-backend-info-refs").arg(&repo.path);
    c.stdin(Stdio::null());
    let label = format!("{}/{}", repo.owner, repo.name);
    let out = runner
        .spawn(&mut c)
        .and_then(|child| child.wait_with_output())
        .map_err(|e| Error::internal(&format!("{label}: cannot run git"), e))?;
    if !out.status.success() {
        return Err(Error::Internal(format!(
            "{label}: git {} --http-backend-info-refs failed ({}): {}",
            service.command(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let v2 = service == Service::UploadPack && version == Some(2);
    let mut body = Vec::with_capacity(out.stdout.len() + 64);
    if !v2 {
        let line = format!("# service=git-{}\n", service.command());
        body.extend_from_slice(format!("{:04x}{line}0000", line.len() + 4).as_bytes());
    }
    body.extend_from_slice(&out.stdout);
    let mut r = Response::bytes(200, service.advertisement_type(), body);
    r.no_cache();
    Ok(r)
}

/// `GET info/refs?service=git-upload-pack|git-receive-pack`.
pub(crate) fn advertise<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    let service = c
        .req
        .query_param("service")
        .and_then(|s| Service::from_name(&s))
        .ok_or(Error::NotFound)?;
    let version = protocol_version(c.req.git_protocol());
    advertisement(
        &site.git,
        service,
        c.repo,
        c.who,
        c.client(),
        version,
        &site.config.limits,
    )
    .map(Answer::from)
}

/// `POST git-upload-pack`: a fetch.
pub(crate) fn upload_pack<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    Ok(exchange(site, c, Service::UploadPack))
}

/// `POST git-receive-pack`: a push.
pub(crate) fn receive_pack<'s>(site: &'s Site, c: &GitCall<'_>) -> Result<Answer<'s>> {
    Ok(exchange(site, c, Service::ReceivePack))
}

/// The exchange, to run when the answer is written (it reads the request body as it goes).
fn exchange<'s>(site: &'s Site, c: &GitCall<'_>, service: Service) -> Answer<'s> {
    let req: &Request = c.req;
    Answer::Stream(Box::new(Running {
        rpc: Rpc {
            service,
            repo: c.repo.clone(),
            who: c.who.clone(),
            client: c.client().to_string(),
            version: protocol_version(req.git_protocol()),
            gzip: req.gzipped(),
            content_length: req.content_length(),
        },
        site,
    }))
}

/// An exchange and the site it runs in.
struct Running<'s> {
    rpc: Rpc,
    site: &'s Site,
}

impl Stream for Running<'_> {
    fn run(
        self: Box<Self>,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        _head_only: bool,
    ) -> io::Result<()> {
        self.rpc.run(self.site, input, out)
    }
}

/// One `POST git-upload-pack|git-receive-pack`, everything checked, ready to run.
pub(crate) struct Rpc {
    pub(crate) service: Service,
    pub(crate) repo: RepoDir,
    pub(crate) who: Identity,
    /// The client's address (`REMOTE_ADDR`), for the per-address share of git slots.
    pub(crate) client: String,
    pub(crate) version: Option<u8>,
    pub(crate) gzip: bool,
    pub(crate) content_length: Option<u64>,
}

/// Why a request body could not be taken.
enum BodyError {
    TooLarge(u64),
    Io(io::Error),
}

impl Rpc {
    /// Runs the exchange, writing a CGI response to `out`.
    pub(crate) fn run(
        self,
        site: &Site,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        let (runner, limits) = (&site.git, &site.config.limits);
        let cap = match self.service {
            Service::UploadPack => limits.fetch_request_bytes,
            Service::ReceivePack => limits.push_bytes,
        };
        if self.content_length.is_some_and(|n| n > cap) && !self.gzip {
            return too_large(self.service, cap).write_cgi(out, false);
        }
        let label = format!("{}/{}", self.repo.owner, self.repo.name);
        match self.service {
            Service::UploadPack => {
                // Read whole first: upload-pack may answer before it has read every `have`.
                // The body is taken before a slot is: a slow uploader holds no git.
                let mut body = match read_body(input, self.gzip, cap, &runner.tmp) {
                    Ok(b) => b,
                    Err(BodyError::TooLarge(cap)) => {
                        return too_large(self.service, cap).write_cgi(out, false)
                    }
                    Err(BodyError::Io(e)) => return Err(e),
                };
                if let Err(why) = check_pkt_lines(&mut body) {
                    MALFORMED_LOG.warn(&format!("{label}: refused a fetch request: {why}"));
                    return bad_request(why).write_cgi(out, false);
                }
                if let Some(cache) = &site.pack_cache {
                    if let Some(plan) = self.cache_plan(site, &body, &label) {
                        return self.through_cache(site, cache, plan, body, out, &label);
                    }
                }
                self.exchange(runner, limits, Box::new(body), out, &label, None, None)
                    .0
            }
            Service::ReceivePack => {
                // Held for the whole push: a purge waits for it, and none starts meanwhile.
                let hold = match maintenance::hold_for_push(&self.repo.path) {
                    Ok(Some(h)) => h,
                    Ok(None) => return being_purged(&label).write_cgi(out, false),
                    Err(e) => {
                        return Error::Internal(format!("{label}: {e}"))
                            .into_response()
                            .write_cgi(out, false)
                    }
                };
                let body = CappedReader::new(decoded(input, self.gzip), cap);
                self.exchange(
                    runner,
                    limits,
                    Box::new(body),
                    out,
                    &label,
                    None,
                    Some(&hold),
                )
                .0
            }
        }
    }

    /// Takes a slot, starts git, feeds it `body` while its output is streamed to `out` (and to
    /// `record`, when given), git holding `hold` (a push's) as long as it runs. Also says whether
    /// git answered in full and succeeded.
    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        runner: &GitRunner,
        limits: &Limits,
        body: Box<dyn Read + Send + '_>,
        out: &mut (dyn Write + Send),
        label: &str,
        record: Option<&mut dyn child::Record>,
        hold: Option<&maintenance::PushHold>,
    ) -> (io::Result<()>, bool) {
        let slot = match runner.slot(&self.client, self.who.user.is_none()) {
            Ok(s) => s,
            Err(busy) => return (busy_response(busy).write_cgi(out, false), false),
        };
        let mut c = command(
            runner,
            self.service,
            &self.repo,
            &self.who,
            self.version,
            limits,
        );
        c.arg(&self.repo.path);
        if let Some(hold) = hold {
            hold.hand_down(&mut c);
        }
        let child = match runner.spawn(&mut c) {
            Ok(child) => child,
            Err(e) => {
                let r = Error::internal(&format!("{label}: cannot run git"), e).into_response();
                return (r.write_cgi(out, false), false);
            }
        };
        let deadline = limits.git_deadline;
        let service = self.service;
        let ended = child::run(
            ChildGuard::new(child),
            slot,
            Some(body),
            deadline,
            &runner.spool,
            out,
            &mut |out, _| write_head(service, out),
            record,
        );
        let succeeded = !ended.timed_out
            && ended.feed.is_ok()
            && ended.status.as_ref().is_ok_and(|s| s.success());
        (self.ended(ended, out, label, deadline), succeeded)
    }

    /// Answers for a git that ended (the log, or the whole answer when git said nothing).
    fn ended(
        &self,
        ended: child::Ended,
        out: &mut (dyn Write + Send),
        label: &str,
        deadline: std::time::Duration,
    ) -> io::Result<()> {
        let stderr = String::from_utf8_lossy(&ended.stderr);
        let stderr = stderr.trim();
        let command = self.service.command();
        match ended.sent {
            // Headers went out: the status is said; whatever else happened is for the log.
            Ok(true) => {
                if ended.timed_out {
                    log::warn!("{label}: git {command} stopped at the deadline of {deadline:?}");
                } else if !ended.status.as_ref().is_ok_and(|s| s.success()) && ended.feed.is_ok() {
                    // Mostly a client's doing (a want git refuses, a push fsck rejects), which
                    // git has told that client: logged, but not once per request.
                    FAILED_LOG.warn(&format!(
                        "{label}: git {command} failed ({}): {stderr}",
                        child::status_text(&ended.status)
                    ));
                }
                Ok(())
            }
            // git said nothing at all: answer from what we know.
            Ok(false) => {
                let r = match (&ended.feed, &ended.status) {
                    (Err(e), _) if is_too_large(e) => too_large(self.service, cap_of(e)),
                    (Err(e), _) => return Err(io::Error::new(e.kind(), e.to_string())),
                    (Ok(_), _) if ended.timed_out => {
                        let mut r = Response::text(
                            503,
                            format!(
                                "The request took longer than the server's limit of {} seconds.\n",
                                deadline.as_secs()
                            ),
                        );
                        r.no_cache();
                        r
                    }
                    // The `0000` probe git sends before a large push ends here: 200, no body.
                    (Ok(_), Ok(s)) if s.success() => result_head(self.service),
                    (Ok(_), s) if out_of_memory(stderr) => {
                        log::warn!(
                            "{label}: git {command} ran out of memory under [limits] git_memory_mib ({}): {stderr}",
                            child::status_text(s)
                        );
                        let mut r = Response::text(
                            503,
                            "This request needs more memory than the server allows git; ask the server's administrator.\n".into(),
                        );
                        r.no_cache();
                        r
                    }
                    // The repository's own data failed git, not the request: the client is
                    // told so in words git prints, the administrator what git said.
                    (Ok(_), s) if damaged(stderr) => {
                        log::error!(
                            "{label}: git {command} found the repository damaged ({}): {stderr}; `forgelet maintain {label}` checks it",
                            child::status_text(s)
                        );
                        damaged_answer(self.service, label)
                    }
                    // Anything else git refuses before its first word is the request's fault
                    // (a well-framed but wrong fetch): 400, and a log line at most now and then.
                    (Ok(_), s) => {
                        MALFORMED_LOG.warn(&format!(
                            "{label}: git {command} refused a request ({}): {stderr}",
                            child::status_text(s)
                        ));
                        bad_request("git could not use this request")
                    }
                };
                r.write_cgi(out, false)
            }
            Err(e) => {
                log::debug!("{label}: client went away during {command}: {e}");
                Err(e)
            }
        }
    }
}

/// What the pack cache needs to know of a cacheable fetch.
struct CachePlan {
    group: String,
    key: String,
    /// No `have`s: a clone.
    full: bool,
    /// The refs when the key was made (a push meanwhile makes git's answer another one's).
    refs: Vec<u8>,
}

/// The refs of `repo` and what they point at, and `HEAD`: what a push changes.
fn ref_state(repo: &Path) -> io::Result<Vec<u8>> {
    let snap = crate::git::refs::snapshot(repo)?;
    let mut out = std::fs::read(repo.join("HEAD"))?;
    for r in &snap.refs {
        out.extend_from_slice(&r.name);
        out.push(0);
        out.extend_from_slice(r.target.as_bytes());
        if let Some(p) = r.peeled {
            out.extend_from_slice(p.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// `sha256` when the repository's config says so, else `sha1`.
fn object_format(repo: &Path) -> &'static str {
    let config = std::fs::read_to_string(repo.join("config")).unwrap_or_default();
    let sha256 = config.lines().any(|l| {
        let l = l.trim().to_ascii_lowercase();
        l.starts_with("objectformat") && l.ends_with("sha256")
    });
    if sha256 {
        "sha256"
    } else {
        "sha1"
    }
}

impl Rpc {
    /// The cache key of a fetch, when its answer may be cached.
    fn cache_plan(&self, site: &Site, body: &Spooled, label: &str) -> Option<CachePlan> {
        // Larger requests (tens of thousands of haves) are one client's own.
        let Spooled::Memory(bytes) = body else {
            return None;
        };
        let protocol = match self.version {
            Some(2) => Protocol::V2,
            _ => Protocol::V0,
        };
        let req = match FetchRequest::parse(bytes.get_ref(), protocol) {
            Ok(r) => r,
            Err(why) => {
                log::debug!("{label}: a fetch not cached: {why:?}");
                return None;
            }
        };
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            log::warn!("{label}: the pack cache cannot {what}: {e}");
        };
        let id = identity::of(&self.repo.path)
            .map_err(|e| fail("know the repository", &e))
            .ok()?;
        let refs = ref_state(&self.repo.path)
            .map_err(|e| fail("read the refs", &e))
            .ok()?;
        let git_version = site.git.version();
        if git_version.is_empty() {
            return None;
        }
        let mut settings: Vec<String> = BASE_SETTINGS.iter().map(|s| s.to_string()).collect();
        settings.extend(service::settings(&site.config.limits));
        settings.push("upload-pack --stateless-rpc --strict".into());
        settings.push(format!(
            "GIT_PROTOCOL=version={}",
            self.version.unwrap_or(0)
        ));
        let key = key::key(
            &req,
            &key::Context {
                repository: &id.key,
                ref_state: &refs,
                git_version,
                settings: &settings,
                object_format: object_format(&self.repo.path),
                purge_generation: id.generation,
            },
        );
        Some(CachePlan {
            group: id.group,
            key,
            full: !req.has_haves(),
            refs,
        })
    }

    /// A cacheable fetch: answered from the cache, or by git with its answer kept.
    fn through_cache(
        &self,
        site: &Site,
        cache: &Cache,
        plan: CachePlan,
        body: Spooled,
        out: &mut (dyn Write + Send),
        label: &str,
    ) -> io::Result<()> {
        let (runner, limits) = (&site.git, &site.config.limits);
        let uncached = |body: Spooled, out: &mut (dyn Write + Send)| {
            cache.count(Event::Pass);
            self.exchange(runner, limits, Box::new(body), out, label, None, None)
                .0
        };
        // An entry found is sent; one evicted meanwhile leaves the answer to git.
        let hit = |entry: Entry, body: Spooled, out: &mut (dyn Write + Send)| match send_entry(
            site, &plan, entry, out,
        ) {
            Ok(true) => {
                cache.count(Event::Hit);
                Ok(())
            }
            Ok(false) => uncached(body, out),
            Err(e) => Err(e),
        };
        match cache.lookup(&plan.group, &plan.key, plan.full) {
            Lookup::Hit(entry) => hit(entry, body, out),
            Lookup::Lead(lead) => {
                cache.count(Event::Miss);
                let mut recording = Recording {
                    lead: Some(lead),
                    repo: &self.repo.path,
                    refs: &plan.refs,
                };
                let (sent, succeeded) = self.exchange(
                    runner,
                    limits,
                    Box::new(body),
                    out,
                    label,
                    Some(&mut recording),
                    None,
                );
                // Not finished when git ended (it failed, or it was not known whether it had
                // all of the request): finished now.
                recording.finish(succeeded);
                sent
            }
            Lookup::Follow(follow) => match follow.wait() {
                Followed::Hit(entry) => hit(entry, body, out),
                Followed::Growing(growing) => {
                    cache.count(Event::Hit);
                    send_growing(growing, out, limits.git_deadline, label)
                }
                Followed::Gone => uncached(body, out),
            },
            Lookup::Pass(why) => {
                log::debug!("{label}: a fetch answered without the pack cache: {why}");
                uncached(body, out)
            }
        }
    }
}

/// git's answer written for the cache, and finished as soon as git has ended well, while the
/// client may still be taking it: identical requests waiting for the entry need not wait for a
/// slow client too.
struct Recording<'c, 'p> {
    lead: Option<Lead<'c>>,
    repo: &'p Path,
    /// The refs the key was made with.
    refs: &'p [u8],
}

impl Recording<'_, '_> {
    fn finish(&mut self, succeeded: bool) {
        if let Some(lead) = self.lead.take() {
            // A push while git ran: the answer may be the new refs' one.
            let same_refs = ref_state(self.repo).is_ok_and(|r| r == self.refs);
            lead.finish(succeeded && same_refs);
        }
    }
}

impl Write for Recording<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.lead {
            Some(lead) => lead.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl child::Record for Recording<'_, '_> {
    fn complete(&mut self) {
        self.finish(true);
    }
}

/// A cached answer: handed to the web server (nginx turns the internal redirect of the POST
/// into a GET of the file), or sent by forgelet. False when it is gone (nothing was sent).
fn send_entry(
    site: &Site,
    plan: &CachePlan,
    entry: Entry,
    out: &mut (dyn Write + Send),
) -> io::Result<bool> {
    let mut r = Response::new(200);
    r.header("Content-Type", Service::UploadPack.result_type());
    r.no_cache();
    match site.config.sendfile {
        Handoff::XAccelRedirect => r.header(
            "X-Accel-Redirect",
            format!(
                "{}/{}",
                site.config.pack_cache.internal_prefix,
                Store::relative(&plan.group, &plan.key)
            ),
        ),
        Handoff::XSendfile => r.header("X-Sendfile", entry.path.to_string_lossy().into_owned()),
        Handoff::None => {
            // Evicted since it was found (renamed aside): git answers instead.
            let Ok(file) = File::open(&entry.path) else {
                return Ok(false);
            };
            r.body = Body::File {
                file,
                start: 0,
                len: entry.len,
            };
        }
    }
    r.write_cgi(out, false).map(|()| true)
}

/// An answer read as another run of git writes it.
fn send_growing(
    mut growing: Growing,
    out: &mut (dyn Write + Send),
    deadline: std::time::Duration,
    label: &str,
) -> io::Result<()> {
    log::info!("{label}: sending an answer as git makes it for an identical request");
    write_head(Service::UploadPack, out)?;
    let started = std::time::Instant::now();
    let mut buf = vec![0u8; 65_535];
    loop {
        match growing.read(&mut buf)? {
            Grown::Bytes(n) => {
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
            Grown::Waiting if started.elapsed() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Grown::Waiting => {
                return Err(io::Error::other(format!(
                    "{label}: the answer being made took longer than the deadline"
                )))
            }
            Grown::Complete => return Ok(()),
            Grown::Abandoned => {
                return Err(io::Error::other(format!(
                    "{label}: the answer being made was given up"
                )))
            }
        }
    }
}

/// Refused and failed requests are logged at most once a minute, with the number held back: a
/// client sending garbage must not fill the log.
static MALFORMED_LOG: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new(60);
static FAILED_LOG: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new(60);

/// git's own words when an allocation fails (malloc, mmap of a pack).
fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("Out of memory")
        || stderr.contains("mmap failed")
        || stderr.contains("Cannot allocate memory")
}

/// 503 for a push while the repository is purged: git prints the message when it comes with
/// the ref advertisement (`info/refs?service=git-receive-pack`), where it is checked first.
pub(crate) fn being_purged(label: &str) -> Response {
    let mut r = Response::text(
        503,
        format!(
            "{label} is being purged of unreachable objects; pushes are refused until it is done. Push again in a minute.\n"
        ),
    );
    r.header("Retry-After", "60");
    r.no_cache();
    r
}

/// Whether git's complaint is about the repository's data (an object it cannot read, a pack
/// gone or corrupt) rather than about the request.
fn damaged(stderr: &str) -> bool {
    [
        "is corrupt",
        "inflate:",
        "unable to unpack",
        "Could not read ",
        "unable to read ",
        "bad object",
        "cannot be accessed",
        "possible repository corruption",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
}

/// The answer for a repository whose data git cannot read: git's own `ERR` line, which the
/// client prints as "remote error: ..." (a status other than 200 would show only its number).
fn damaged_answer(service: Service, label: &str) -> Response {
    let mut r = result_head(service);
    let text = format!("ERR {label} is damaged on the server (git cannot read its data); its administrator will find what is wrong with `forgelet maintain {label}`\n");
    r.body = crate::response::Body::Bytes(format!("{:04x}{text}", text.len() + 4).into_bytes());
    r
}

/// 400 with a message git prints.
fn bad_request(why: &str) -> Response {
    let mut r = Response::text(400, format!("Bad request: {why}.\n"));
    r.no_cache();
    r
}

/// Checks that a fetch request is a sequence of well-formed pkt-lines (what git's client
/// sends); the reader is rewound for git. The reason when it is not.
fn check_pkt_lines(body: &mut Spooled) -> std::result::Result<(), &'static str> {
    let result = (|| {
        let mut lines = 0usize;
        let mut head = [0u8; 4];
        loop {
            match read_full(body, &mut head) {
                Ok(0) if lines > 0 => return Ok(()),
                Ok(0) => return Err("the request is empty"),
                Ok(4) => {}
                Ok(_) => return Err("the request ends inside a pkt-line header"),
                Err(_) => return Err("the request could not be read"),
            }
            lines += 1;
            let text = std::str::from_utf8(&head).map_err(|_| "a pkt-line length is not hex")?;
            let len =
                usize::from_str_radix(text, 16).map_err(|_| "a pkt-line length is not hex")?;
            match len {
                // flush, delim, response-end
                0..=2 => continue,
                3 => return Err("a pkt-line has the invalid length 3"),
                n if n > 65_520 => return Err("a pkt-line is longer than 65520 bytes"),
                n => {
                    let want = (n - 4) as u64;
                    let skipped = io::copy(&mut (&mut *body).take(want), &mut io::sink())
                        .map_err(|_| "the request could not be read")?;
                    if skipped != want {
                        return Err("the request ends inside a pkt-line");
                    }
                }
            }
        }
    })();
    body.rewind().map_err(|_| "the request could not be read")?;
    result
}

/// [`check_pkt_lines`] on a body held in memory.
pub(crate) fn check_pkt_lines_in(body: Vec<u8>) -> std::result::Result<(), &'static str> {
    check_pkt_lines(&mut Spooled::Memory(Cursor::new(body)))
}

/// Reads until `buf` is full or the input ends; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The headers of a result stream: never cached, never buffered by nginx.
fn result_head(service: Service) -> Response {
    let mut r = Response::new(200);
    r.header("Content-Type", service.result_type());
    r.no_cache();
    r.header("X-Accel-Buffering", "no");
    r
}

fn write_head(service: Service, out: &mut (dyn Write + Send)) -> io::Result<()> {
    let mut head = Vec::new();
    let r = result_head(service);
    head.extend_from_slice(format!("Status: {} OK\r\n", r.status).as_bytes());
    for (k, v) in &r.headers {
        head.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    out.write_all(&head)
}

/// 413 with a message git prints.
fn too_large(service: Service, cap: u64) -> Response {
    let what = match service {
        Service::UploadPack => "fetch request",
        Service::ReceivePack => "push",
    };
    let mut r = Response::text(
        413,
        format!(
            "This {what} is larger than the server's limit of {} MiB.\n",
            cap >> 20
        ),
    );
    r.no_cache();
    r
}

/// The request body, inflated when the client sent it gzipped.
fn decoded<'a>(input: &'a mut (dyn Read + Send), gzip: bool) -> Box<dyn Read + Send + 'a> {
    if gzip {
        Box::new(flate2::read::GzDecoder::new(input))
    } else {
        Box::new(input)
    }
}

/// A fetch request body, whole: in memory, or past `SPILL_AT` in an unlinked temp file.
enum Spooled {
    Memory(Cursor<Vec<u8>>),
    File(File),
}

impl Spooled {
    fn rewind(&mut self) -> io::Result<()> {
        match self {
            Spooled::Memory(c) => c.set_position(0),
            Spooled::File(f) => {
                f.seek(SeekFrom::Start(0))?;
            }
        }
        Ok(())
    }
}

impl Read for Spooled {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Spooled::Memory(c) => c.read(buf),
            Spooled::File(f) => f.read(buf),
        }
    }
}

fn read_body(
    input: &mut (dyn Read + Send),
    gzip: bool,
    cap: u64,
    tmp: &Path,
) -> std::result::Result<Spooled, BodyError> {
    let mut src = CappedReader::new(decoded(input, gzip), cap);
    let mut mem = Vec::new();
    let n = (&mut src)
        .take(SPILL_AT as u64)
        .read_to_end(&mut mem)
        .map_err(body_error)?;
    if n < SPILL_AT {
        return Ok(Spooled::Memory(Cursor::new(mem)));
    }
    let mut file = temp_file(tmp).map_err(BodyError::Io)?;
    file.write_all(&mem).map_err(BodyError::Io)?;
    io::copy(&mut src, &mut file).map_err(body_error)?;
    file.seek(SeekFrom::Start(0)).map_err(BodyError::Io)?;
    Ok(Spooled::File(file))
}

fn body_error(e: io::Error) -> BodyError {
    if is_too_large(&e) {
        BodyError::TooLarge(cap_of(&e))
    } else {
        BodyError::Io(e)
    }
}

/// A reader that fails with a recognisable error once more than `cap` bytes came through.
struct CappedReader<R> {
    inner: R,
    left: u64,
    cap: u64,
}

/// Marker text of the error CappedReader returns (with the cap after it).
const TOO_LARGE: &str = "request body larger than ";

impl<R: Read> CappedReader<R> {
    fn new(inner: R, cap: u64) -> Self {
        CappedReader {
            inner,
            left: cap,
            cap,
        }
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more tells "exactly at the cap" from "over it".
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{TOO_LARGE}{}", self.cap),
                )),
            };
        }
        let want = buf.len().min(self.left.min(usize::MAX as u64) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn is_too_large(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData && e.to_string().starts_with(TOO_LARGE)
}

fn cap_of(e: &io::Error) -> u64 {
    e.to_string()
        .strip_prefix(TOO_LARGE)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_requests_must_be_pkt_lines() {
        let check = |body: &[u8]| {
            let mut s = Spooled::Memory(Cursor::new(body.to_vec()));
            let r = check_pkt_lines(&mut s);
            // Rewound for git either way.
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            assert_eq!(back, body);
            r
        };
        assert_eq!(check(b"0012command=fetch\n00010009done\n0000"), Ok(()));
        assert_eq!(check(b"0000"), Ok(()));
        assert!(check(b"").is_err());
        assert!(check(b"hello").is_err());
        assert!(check(b"0003").is_err());
        assert!(check(b"0009don").is_err());
        assert!(check(b"00").is_err());
        assert!(check(b"fff0").is_err());
    }

    #[test]
    fn capped_reader_tells_over_from_at() {
        let mut out = Vec::new();
        let n = CappedReader::new(&b"12345"[..], 5)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(n, 5);
        let e = CappedReader::new(&b"123456"[..], 5)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(is_too_large(&e));
        assert_eq!(cap_of(&e), 5);
    }

    #[test]
    fn bodies_spill_to_a_file_past_the_threshold() {
        let dir = std::env::temp_dir();
        let small = vec![7u8; 1000];
        let mut input: &[u8] = &small;
        let Ok(Spooled::Memory(_)) = read_body(&mut input, false, 1 << 30, &dir) else {
            panic!("small body not in memory");
        };
        let big = vec![9u8; SPILL_AT + 10];
        let mut input: &[u8] = &big;
        let Ok(mut spooled @ Spooled::File(_)) = read_body(&mut input, false, 1 << 30, &dir) else {
            panic!("big body not spilled");
        };
        let mut back = Vec::new();
        spooled.read_to_end(&mut back).unwrap();
        assert_eq!(back, big);
        let mut input: &[u8] = &big;
        assert!(matches!(
            read_body(&mut input, false, 100, &dir),
            Err(BodyError::TooLarge(100))
        ));
    }

    #[test]
    fn gzip_bodies_are_inflated_and_capped_after_inflating() {
        use flate2::write::GzEncoder;
        let plain = vec![b'a'; 100_000];
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&plain).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 1000);
        let mut input: &[u8] = &gz;
        let mut body = read_body(&mut input, true, 1 << 20, &std::env::temp_dir())
            .ok()
            .unwrap();
        let mut back = Vec::new();
        body.read_to_end(&mut back).unwrap();
        assert_eq!(back, plain);
        let mut input: &[u8] = &gz;
        assert!(matches!(
            read_body(&mut input, true, 50_000, &std::env::temp_dir()),
            Err(BodyError::TooLarge(50_000))
        ));
    }
}
