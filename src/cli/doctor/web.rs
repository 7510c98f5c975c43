//! doctor's checks through the web server, as git and a browser meet it: forgelet answers at
//! the URL; a token reaches forgelet (the Authorization header); `info/refs` dumb and smart;
//! protocol v2 negotiated (the Git-Protocol header); the internal sendfile location closed to
//! the outside; a push of several MiB in chunks; a private repository, its pack included,
//! refused to anonymous clients; git's files sent by the web server; a fetch, and whether its
//! answer streams; the timeouts toward forgelet (from the web server's config, when given).
//!
//! The repository these run against is a private one doctor makes (`repos::create`, owned by
//! an admin or else the first user, named `doctor-` and random hex) with a token for its owner
//! (`accounts::create_token`, lasting a day at most); both are removed at the end whatever
//! happened ([`Temporary`], also on a panic or a signal). A user's repository is never used.

use sha2::Digest as _;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{Client, Reply, Request, Url};
use super::webconf::{self, Verdict};
use super::{interrupted, random_hex, Report};
use crate::accounts;
use crate::auth::keys::encode_base64;
use crate::auth::Accounts;
use crate::config::{Config, Handoff};
use crate::git::{RepoDir, RepoStore};
use crate::repos::{self, NewRepo};

/// The temporary repository's description: doctor removes a repository only while it says so.
const DESCRIPTION: &str = "temporary repository of forgelet doctor, removed when doctor ends";
/// The push: this many files of random bytes (more objects than git's `unpackLimit`, so the
/// server keeps a pack), 5 MiB in all, sent in chunks of `http.postBuffer`.
const PUSH_FILES: usize = 128;
const PUSH_FILE_BYTES: usize = 40 * 1024;
/// git's own default: a push larger than this is sent in chunks.
const POST_BUFFER: usize = 1 << 20;
/// How long the push may take.
const PUSH_DEADLINE: Duration = Duration::from_secs(300);
/// An answer shorter than this cannot tell a streaming web server from a buffering one.
const MEASURABLE: Duration = Duration::from_secs(1);

/// The checks through the web server, for a line saying they were skipped.
/// The object the LFS check sends: larger than the pages' body cap (256 KiB).
const LFS_CHECK_BYTES: usize = 300 << 10;

/// Identical clones the pack cache check makes at most, past the first.
const PACK_CACHE_TRIES: u64 = 4;

const WEB_CHECKS: &[&str] = &[
    "credentials",
    "info/refs dumb",
    "info/refs smart",
    "protocol v2",
    "internal location",
    "push",
    "private repository",
    "object files",
    "git lfs",
    "fetch",
    "pack cache",
];

/// The web server in front, as its `Server` header names it: each fix is said for it alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Nginx,
    Apache,
    Lighttpd,
    Unknown,
}

impl Front {
    fn of(server: Option<&str>) -> Front {
        let s = server.unwrap_or_default().to_ascii_lowercase();
        if s.starts_with("nginx") || s.starts_with("openresty") || s.starts_with("angie") {
            Front::Nginx
        } else if s.starts_with("apache") {
            Front::Apache
        } else if s.starts_with("lighttpd") {
            Front::Lighttpd
        } else {
            Front::Unknown
        }
    }
}

/// What to change, for the web server in front (for each of the three when doctor cannot
/// tell which it is).
fn fix(front: Front, nginx: &str, apache: &str, lighttpd: &str) -> String {
    match front {
        Front::Nginx => format!("nginx: {nginx}"),
        Front::Apache => format!("Apache: {apache}"),
        Front::Lighttpd => format!("lighttpd: {lighttpd}"),
        Front::Unknown => format!("nginx: {nginx}; Apache: {apache}; lighttpd: {lighttpd}"),
    }
}

/// What doctor made, removed by [`Temporary::clean`] (or on drop, should doctor panic).
struct Temporary<'a> {
    config: &'a Config,
    /// A private folder for the push's work tree and curl's files.
    scratch: Option<PathBuf>,
    accounts: Option<Accounts>,
    repo: Option<RepoDir>,
    /// The owner's folder in `repos/` did not exist before the repository.
    owner_dir_made: bool,
    /// (user, token name).
    token: Option<(String, String)>,
}

impl Temporary<'_> {
    /// Removes what doctor made: what was removed, or what is left and how to remove it.
    fn clean(&mut self) -> Result<Vec<String>, Vec<String>> {
        let mut done = Vec::new();
        let mut left = Vec::new();
        if let Some(repo) = self.repo.take() {
            let label = format!("{}/{}", repo.owner, repo.name);
            let desc = fs::read_to_string(repo.path.join("description")).unwrap_or_default();
            if desc.trim() != DESCRIPTION {
                left.push(format!(
                    "{label} was left in place: its description is no longer doctor's, so someone may have taken it over; remove it yourself if it is doctor's ({})",
                    repo.path.display()
                ));
            } else {
                let trash = self.config.data_dir.join("trash");
                let trash_existed = trash.exists();
                // Out of the repositories folder at once (a rename), then removed for good.
                match repos::delete_to_trash(self.config, &repo) {
                    Ok(moved) => match fs::remove_dir_all(&moved) {
                        Ok(()) => {
                            done.push(format!("the repository {label}"));
                            if !trash_existed {
                                let _ = fs::remove_dir(&trash);
                            }
                        }
                        Err(e) => left.push(format!(
                            "{label} was moved to {} but not removed ({e}): `rm -rf {}`",
                            moved.display(),
                            moved.display()
                        )),
                    },
                    Err(e) => left.push(format!(
                        "cannot remove {label} ({e}): `rm -rf {}`",
                        repo.path.display()
                    )),
                }
                if self.owner_dir_made {
                    if let Some(dir) = repo.path.parent() {
                        // Only when empty: a repository made meanwhile stays.
                        let _ = fs::remove_dir(dir);
                    }
                }
            }
        }
        if let (Some(acc), Some((user, name))) = (&self.accounts, self.token.take()) {
            match accounts::revoke_token(acc, &user, &name) {
                Ok(_) => done.push(format!("the token {name} of {user}")),
                Err(e) => left.push(format!(
                    "cannot revoke the token {name} of {user} ({e}): `forgelet token revoke {user} {name}` (it expires within a day anyway)"
                )),
            }
        }
        if let Some(dir) = self.scratch.take() {
            if let Err(e) = fs::remove_dir_all(&dir) {
                left.push(format!(
                    "cannot remove {} ({e}): `rm -rf {}`",
                    dir.display(),
                    dir.display()
                ));
            }
        }
        if left.is_empty() {
            Ok(done)
        } else {
            Err(left)
        }
    }
}

impl Drop for Temporary<'_> {
    fn drop(&mut self) {
        let _ = self.clean();
    }
}

/// A private folder for doctor's files: in `{data_dir}/tmp` when doctor may write there,
/// else in the system's temporary folder.
fn make_scratch(config: &Config, may_write: bool) -> Result<PathBuf, String> {
    let parent = if may_write {
        config.data_dir.join("tmp")
    } else {
        std::env::temp_dir()
    };
    let dir = parent.join(format!("forgelet-doctor-{}", random_hex(6)?));
    fs::create_dir_all(&parent)
        .and_then(|_| fs::DirBuilder::new().mode(0o700).create(&dir))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The checks through the web server at `url`, then the removal of what doctor made.
pub(super) fn check(
    config: &Config,
    url: &Url,
    may_write: bool,
    nginx_conf: Option<&Path>,
    apache_conf: Option<&Path>,
    r: &mut Report,
) {
    plain_http(url, r);
    if url.base_path != config.base_path {
        r.warn(
            "url",
            format!(
                "the URL's path {:?} is not forgelet's base path {:?} (base_url or base_path in {}): forgelet answers only under its base path; check the URL, or make the config and the web server's config agree",
                url.base_path,
                config.base_path,
                config.file.display()
            ),
        );
    }
    let mut t = Temporary {
        config,
        scratch: None,
        accounts: None,
        repo: None,
        owner_dir_made: false,
        token: None,
    };
    let mut measured = None;
    let mut front = Front::Unknown;
    match make_scratch(config, may_write) {
        Err(e) => r.fail("web", format!("{e}; skipped: {}", WEB_CHECKS.join(", "))),
        Ok(scratch) => {
            t.scratch = Some(scratch.clone());
            match Client::for_url(url, &scratch) {
                Err(why) => r.skip("web", format!("{why}; skipped: {}", WEB_CHECKS.join(", "))),
                Ok(client) => {
                    let mut w = Web {
                        config,
                        url,
                        client,
                        front,
                        scratch,
                        r,
                    };
                    measured = w.run(&mut t, may_write);
                    front = w.front;
                }
            }
        }
    }
    buffering(front, measured, nginx_conf, apache_conf, r);
    timeouts(nginx_conf, apache_conf, r);
    let made = t.repo.is_some() || t.token.is_some();
    match t.clean() {
        Ok(done) if made => r.ok("cleanup", format!("removed {}", done.join(" and "))),
        Ok(_) => {}
        Err(left) => r.fail("cleanup", left.join("; ")),
    }
}

/// Plain HTTP anywhere but on this host sends passwords and tokens in clear.
fn plain_http(url: &Url, r: &mut Report) {
    if url.https {
        r.ok("https", format!("{} is served over HTTPS", url.root()));
    } else if url.is_loopback() {
        r.ok(
            "https",
            format!(
                "{} is plain HTTP on a loopback address: nothing leaves this host",
                url.root()
            ),
        );
    } else {
        r.warn(
            "https",
            format!(
                "{} is plain HTTP on a host others reach: git sends passwords and tokens with every request, and browsers the session cookie, in clear; serve forgelet over HTTPS (a certificate from Let's Encrypt, e.g. certbot) and set base_url to https://...",
                url.root()
            ),
        );
    }
}

/// The buffering verdict: from the web server's config when given, else from the fetch's
/// timing when it took long enough to tell.
fn buffering(
    front: Front,
    measured: Option<(Duration, Duration)>,
    nginx_conf: Option<&Path>,
    apache_conf: Option<&Path>,
    r: &mut Report,
) {
    let timing = measured.map(|(first, total)| {
        format!(
            "first byte of the fetch's answer after {} ms of {} ms",
            first.as_millis(),
            total.as_millis()
        )
    });
    let mut any = false;
    for (path, parse) in [
        (
            nginx_conf,
            webconf::nginx_buffering as fn(&Path, &str) -> Verdict,
        ),
        (apache_conf, webconf::apache_buffering),
    ] {
        let Some(path) = path else { continue };
        any = true;
        let verdict = match fs::read_to_string(path) {
            Ok(text) => parse(path, &text),
            Err(e) => Verdict::Failed(format!("cannot read {}: {e}", path.display())),
        };
        let with = |m: String| match &timing {
            Some(t) => format!("{m} ({t})"),
            None => m,
        };
        match verdict {
            Verdict::Ok(m) => r.ok("buffering", with(m)),
            Verdict::Warning(m) => r.warn("buffering", with(m)),
            Verdict::Failed(m) => r.fail("buffering", with(m)),
        }
    }
    if any {
        return;
    }
    match measured {
        Some((first, total)) if total >= MEASURABLE => {
            if first.as_secs_f64() >= 0.9 * total.as_secs_f64() {
                r.warn(
                    "buffering",
                    format!(
                        "{}: the answer arrived all at once, so the web server seems to hold back git's answers (progress, keepalives) that forgelet asks it to stream: {}",
                        timing.unwrap_or_default(),
                        fix(
                            front,
                            "do not list X-Accel-Buffering in fastcgi_ignore_headers",
                            "`ProxySet flushpackets=on` inside <Proxy \"fcgi://forgelet/\">",
                            "`server.stream-response-body = 2` in forgelet's block"
                        )
                    ),
                );
            } else {
                r.ok(
                    "buffering",
                    format!("git's answer streams: {}", timing.unwrap_or_default()),
                );
            }
        }
        Some((_, total)) => r.skip(
            "buffering",
            format!(
                "the fetch's whole answer took {} ms here, too quick to tell whether the web server streams git's answers; give --nginx-conf PATH or --apache-conf PATH to check the web server's config instead",
                total.as_millis()
            ),
        ),
        None => r.skip(
            "buffering",
            "no fetch to measure; give --nginx-conf PATH or --apache-conf PATH to check the web server's config",
        ),
    }
}

/// The web server's timeouts toward forgelet, from its config when given.
fn timeouts(nginx_conf: Option<&Path>, apache_conf: Option<&Path>, r: &mut Report) {
    let mut any = false;
    for (path, parse) in [
        (
            nginx_conf,
            webconf::nginx_timeouts as fn(&Path, &str) -> Verdict,
        ),
        (apache_conf, webconf::apache_timeouts),
    ] {
        let Some(path) = path else { continue };
        any = true;
        match fs::read_to_string(path).map(|text| parse(path, &text)) {
            Ok(Verdict::Ok(m)) => r.ok("timeouts", m),
            Ok(Verdict::Warning(m)) => r.warn("timeouts", m),
            Ok(Verdict::Failed(m)) => r.fail("timeouts", m),
            Err(e) => r.fail("timeouts", format!("cannot read {}: {e}", path.display())),
        }
    }
    if !any {
        r.skip(
            "timeouts",
            format!(
                "how long the web server waits for forgelet (at least {} s: git can be silent that long) cannot be seen from outside without waiting as long; give --nginx-conf PATH (fastcgi_read_timeout, fastcgi_send_timeout) or --apache-conf PATH (ProxySet timeout) to check the config",
                webconf::MIN_TIMEOUT_SECS
            ),
        );
    }
}

/// The temporary repository as the checks use it.
struct Made {
    owner: String,
    name: String,
    path: PathBuf,
    /// `BASE/OWNER/NAME.git`, from the host's root.
    git_path: String,
    /// The `Authorization` header's value for the owner's token.
    auth: String,
}

/// The checks that talk to the web server, with what they share.
struct Web<'a, 'r> {
    config: &'a Config,
    url: &'a Url,
    client: Client,
    front: Front,
    scratch: PathBuf,
    r: &'r mut Report,
}

impl Web<'_, '_> {
    /// Runs the checks in order; the fetch's (first byte, whole answer) times, if measured.
    fn run(&mut self, t: &mut Temporary<'_>, may_write: bool) -> Option<(Duration, Duration)> {
        if !self.reachable() {
            self.r.skip(
                "web",
                format!(
                    "the web server did not answer as forgelet; skipped: {}",
                    WEB_CHECKS.join(", ")
                ),
            );
            return None;
        }
        if !may_write {
            self.r.skip(
                "temporary repository",
                format!(
                    "doctor does not run as the owner of data_dir (see data_dir above), so it makes no temporary repository; skipped: {}",
                    WEB_CHECKS.join(", ")
                ),
            );
            return None;
        }
        let made = self.make_temporary(t)?;
        let mut main = None;
        let creds = !interrupted() && self.credentials(&made, &mut main);
        if creds && !interrupted() {
            self.smart(&made);
        }
        if creds && !interrupted() {
            self.v2(&made);
        }
        if !interrupted() {
            self.internal(&made);
        }
        let mut want = main;
        if creds && !interrupted() {
            if let Some(pushed) = self.push(&made) {
                want = Some(pushed);
            }
        }
        let file = object_file(&made.path);
        if !interrupted() {
            self.private_repository(&made, file.as_deref());
        }
        if !creds {
            for c in [
                "info/refs dumb",
                "info/refs smart",
                "protocol v2",
                "push",
                "object files",
                "git lfs",
                "fetch",
                "pack cache",
            ] {
                self.r
                    .skip(c, "needs a token to reach forgelet (see credentials above)");
            }
            return None;
        }
        if !interrupted() {
            if let Some(file) = &file {
                self.object_files(&made, file);
            }
        }
        if !interrupted() {
            self.lfs(&made);
        }
        if interrupted() {
            return None;
        }
        let oid = want?;
        let times = self.fetch(&made, &oid);
        if times.is_some() && !interrupted() {
            self.pack_cache(&made, &oid);
        }
        times
    }

    fn send(&mut self, req: &Request<'_>) -> Result<Reply, String> {
        let reply = self.client.send(req)?;
        if self.front == Front::Unknown {
            self.front = Front::of(reply.header("Server"));
        }
        Ok(reply)
    }

    /// `{origin}{path}`, for messages.
    fn full(&self, path: &str) -> String {
        format!("{}{path}", self.url.origin())
    }

    /// forgelet's front page answers through the web server.
    fn reachable(&mut self) -> bool {
        let path = format!("{}/", self.url.base_path);
        let full = self.full(&path);
        match self.send(&Request::get(&path, &[])) {
            Err(e) => {
                self.r.fail(
                    "web server",
                    format!(
                        "{full}: {e}: is the web server running and listening there? (the URL is base_url in {}, or give it: forgelet doctor URL)",
                        self.config.file.display()
                    ),
                );
                false
            }
            Ok(reply) if matches!(reply.status, 502..=504) => {
                let socket = &self.config.server.listen;
                self.r.fail(
                    "web server",
                    format!(
                        "{full} answered {}: the web server cannot reach forgelet: is forgelet running (see socket above), and does the web server pass to its socket ({socket}), with permission to connect (socket_group)? The web server's error log says why",
                        reply.status
                    ),
                );
                false
            }
            Ok(reply) if reply.status == 404 => {
                self.r.fail(
                    "web server",
                    format!(
                        "{full} answered 404: forgelet is not behind this path; the web server's location for forgelet must be the path of base_url ({:?})",
                        self.config.base_path
                    ),
                );
                false
            }
            Ok(reply) if (300..400).contains(&reply.status) => {
                // forgelet's own redirects (to the sign-in page) stay on its origin.
                let location = reply.header("Location").unwrap_or_default().to_string();
                if location.contains("://") && !location.starts_with(&self.url.origin()) {
                    self.r.fail(
                        "web server",
                        format!(
                            "{full} redirects to {location}: clients go there, so check that URL: `forgelet doctor URL`, and set base_url in {} to it",
                            self.config.file.display()
                        ),
                    );
                    return false;
                }
                self.reached(&full, &reply);
                true
            }
            Ok(reply) if reply.status == 403 => {
                self.r.fail(
                    "web server",
                    format!(
                        "{full} answered 403: the web server refuses forgelet's URLs before forgelet sees them: {}",
                        fix(
                            self.front,
                            "an allow/deny or auth_basic rule covers forgelet's location",
                            "forgelet's section needs `Require all granted`, and no other section may deny its path",
                            "a mod_access or mod_auth rule covers forgelet's path"
                        )
                    ),
                );
                false
            }
            Ok(reply) if reply.status >= 400 && reply.status != 401 => {
                self.r.fail(
                    "web server",
                    format!(
                        "{full} answered {}: forgelet's front page should answer; the web server's error log and forgelet's (journalctl -u forgelet) say why",
                        reply.describe()
                    ),
                );
                false
            }
            Ok(reply) => {
                self.reached(&full, &reply);
                true
            }
        }
    }

    fn reached(&mut self, full: &str, reply: &Reply) {
        let server = reply
            .header("Server")
            .map_or(String::new(), |s| format!(", Server: {s}"));
        self.r.ok(
            "web server",
            format!("{full} answers {}{server}", reply.status),
        );
    }

    /// A private repository and a token for its owner (an admin, else the first user).
    fn make_temporary(&mut self, t: &mut Temporary<'_>) -> Option<Made> {
        let check = "temporary repository";
        let accounts = match Accounts::open(&self.config.data_dir, self.config.ssh.live_key_index())
        {
            Ok(a) => a,
            Err(e) => {
                self.r.fail(check, format!("cannot open the users: {e}"));
                return None;
            }
        };
        let owner = match accounts.users() {
            Ok(users) => users
                .iter()
                .find(|u| u.admin)
                .or_else(|| users.iter().next())
                .map(|u| u.name.clone()),
            Err(e) => {
                self.r.fail(check, e);
                return None;
            }
        };
        let Some(owner) = owner else {
            self.r.skip(
                check,
                format!(
                    "there are no users, so doctor cannot make a private repository to check with; add one (`forgelet user add NAME --admin`) and run doctor again; skipped: {}",
                    WEB_CHECKS.join(", ")
                ),
            );
            return None;
        };
        let suffix = match random_hex(6) {
            Ok(s) => s,
            Err(e) => {
                self.r.fail(check, e);
                return None;
            }
        };
        let name = format!("doctor-{suffix}");
        let store = RepoStore::new(self.config.repos_dir());
        t.owner_dir_made = !store.root().join(&owner).exists();
        let repo = repos::create(
            self.config,
            &accounts,
            &NewRepo {
                owner: &owner,
                name: &name,
                description: DESCRIPTION,
                private: true,
                readme: true,
            },
        );
        let repo = match repo {
            Ok(r) => r,
            Err(e) => {
                self.r.fail(
                    check,
                    format!(
                        "cannot create {owner}/{name}: {}",
                        super::super::repo_error(e)
                    ),
                );
                return None;
            }
        };
        t.repo = Some(repo.clone());
        let token = match accounts::create_token(&accounts, &repo.owner, &name, Some("1")) {
            Ok(tok) => tok,
            Err(e) => {
                self.r.fail(
                    check,
                    format!(
                        "cannot make a token for {}: {}",
                        repo.owner,
                        super::super::account_error(e)
                    ),
                );
                t.accounts = Some(accounts);
                return None;
            }
        };
        t.token = Some((token.user.clone(), token.name.clone()));
        t.accounts = Some(accounts);
        self.r.ok(
            check,
            format!(
                "made the private repository {}/{} and a token for {} (both removed at the end)",
                repo.owner, repo.name, token.user
            ),
        );
        Some(Made {
            git_path: format!("{}/{}/{}.git", self.url.base_path, repo.owner, repo.name),
            auth: format!(
                "Basic {}",
                encode_base64(format!("{}:{}", token.user, token.plaintext).as_bytes())
            ),
            owner: repo.owner,
            name: repo.name,
            path: repo.path,
        })
    }

    /// The owner's token reaches forgelet (the `Authorization` header is passed), and the dumb
    /// `info/refs` lists the branch; `main` is set to its commit.
    fn credentials(&mut self, m: &Made, main: &mut Option<String>) -> bool {
        let path = format!("{}/info/refs", m.git_path);
        let full = self.full(&path);
        let auth = [("Authorization", m.auth.as_str())];
        let reply = match self.send(&Request::get(&path, &auth)) {
            Ok(r) => r,
            Err(e) => {
                self.r.fail("credentials", format!("GET {full}: {e}"));
                return false;
            }
        };
        if reply.status == 401 {
            let fix = credentials_fix(self.front);
            self.r.fail(
                "credentials",
                format!(
                    "a valid token of {} was refused (401) on GET {full}: the web server does not pass the Authorization header to forgelet, so git can never sign in (no push, no private repository): {fix}",
                    m.owner
                ),
            );
            return false;
        }
        if reply.status != 200 {
            self.r.fail(
                "credentials",
                format!(
                    "GET {full} with a valid token of {} answered {} instead of 200: the web server's error log and forgelet's (journalctl -u forgelet) say why",
                    m.owner,
                    reply.describe()
                ),
            );
            return false;
        }
        self.r.ok(
            "credentials",
            "a token reaches forgelet: the web server passes the Authorization header",
        );
        let text = String::from_utf8_lossy(&reply.body);
        *main = ref_in(&text, "refs/heads/main");
        if main.is_some() {
            self.r.ok(
                "info/refs dumb",
                format!("GET {full} lists refs/heads/main"),
            );
        } else {
            self.r.fail(
                "info/refs dumb",
                format!(
                    "GET {full} answered {} instead of the list of refs: dumb clones fail; the web server's error log and forgelet's (journalctl -u forgelet) say why",
                    reply.describe()
                ),
            );
        }
        true
    }

    /// The smart ref advertisement, with its content type (git refuses it otherwise).
    fn smart(&mut self, m: &Made) {
        let path = format!("{}/info/refs?service=git-upload-pack", m.git_path);
        let full = self.full(&path);
        let auth = [("Authorization", m.auth.as_str())];
        let reply = match self.send(&Request::get(&path, &auth)) {
            Ok(r) => r,
            Err(e) => {
                self.r.fail("info/refs smart", format!("GET {full}: {e}"));
                return;
            }
        };
        let ctype = reply.header("Content-Type").unwrap_or_default().to_string();
        let want = "application/x-git-upload-pack-advertisement";
        if reply.status != 200 || !reply.body.starts_with(b"001e# service=git-upload-pack\n") {
            self.r.fail(
                "info/refs smart",
                format!(
                    "GET {full} answered {} instead of git's ref advertisement: smart clones fail; the web server's error log and forgelet's (journalctl -u forgelet) say why",
                    reply.describe()
                ),
            );
        } else if ctype != want {
            self.r.fail(
                "info/refs smart",
                format!(
                    "GET {full} came back as {ctype:?}, not {want}, and git refuses it: something in the web server sets the content type for forgelet's URLs ({}); leave forgelet's own",
                    fix(
                        self.front,
                        "a `default_type`, `types` or `add_header Content-Type` in forgelet's location",
                        "a ForceType, AddType or Header set Content-Type applying to forgelet's URLs",
                        "a mimetype.assign or setenv.set-response-header for forgelet's URLs"
                    )
                ),
            );
        } else {
            self.r
                .ok("info/refs smart", format!("GET {full} answers {want}"));
        }
    }

    /// Protocol v2: the `Git-Protocol` header reaches forgelet.
    fn v2(&mut self, m: &Made) {
        let path = format!("{}/info/refs?service=git-upload-pack", m.git_path);
        let full = self.full(&path);
        let headers = [
            ("Authorization", m.auth.as_str()),
            ("Git-Protocol", "version=2"),
        ];
        let reply = match self.send(&Request::get(&path, &headers)) {
            Ok(r) => r,
            Err(e) => {
                self.r.fail("protocol v2", format!("GET {full}: {e}"));
                return;
            }
        };
        if reply.status == 200 && contains(&reply.body, b"version 2\n") {
            self.r.ok(
                "protocol v2",
                "negotiated: the web server passes the Git-Protocol header",
            );
        } else if reply.status == 200 {
            self.r.fail(
                "protocol v2",
                format!(
                    "forgelet answered protocol v0 to `Git-Protocol: version=2`: the web server does not pass the Git-Protocol header to forgelet, so clones and fetches fall back to the slower v0 (every ref advertised on each fetch): {}",
                    fix(
                        self.front,
                        "remove any `fastcgi_param HTTP_GIT_PROTOCOL ...` from forgelet's snippet and keep `fastcgi_pass_request_headers on` (the default), which passes every request header to forgelet",
                        "remove any `RequestHeader unset Git-Protocol`; mod_proxy_fcgi passes every request header",
                        "remove any setenv.set-request-header that clears Git-Protocol; lighttpd passes every request header"
                    )
                ),
            );
        } else {
            self.r.fail(
                "protocol v2",
                format!(
                    "GET {full} with Git-Protocol: version=2 answered {}",
                    reply.describe()
                ),
            );
        }
    }

    /// The internal location behind X-Accel-Redirect answers nobody from outside.
    fn internal(&mut self, m: &Made) {
        let prefix = self.config.internal_prefix.clone();
        let path = format!("{prefix}/{}/{}.git/HEAD", m.owner, m.name);
        let full = self.full(&path);
        match self.send(&Request::get(&path, &[])) {
            Err(e) => self.r.fail("internal location", format!("GET {full}: {e}")),
            Ok(reply) if (200..300).contains(&reply.status) => {
                let repos = self.config.repos_dir();
                let fix = fix(
                    self.front,
                    &format!("add `internal;` to the `location ^~ {prefix}/` block of forgelet's snippet"),
                    &format!("remove the Alias (or RewriteRule) that serves {} at {prefix}; X-Sendfile needs no URL for it", repos.display()),
                    &format!("remove the alias.url that serves {} at {prefix}; X-Sendfile needs no URL for it", repos.display()),
                );
                self.r.fail(
                    "internal location",
                    format!(
                        "GET {full} answered {} to an anonymous client: the web server serves the repositories folder to anyone, private repositories included: {fix}",
                        reply.status
                    ),
                );
            }
            Ok(reply) => self.r.ok(
                "internal location",
                format!(
                    "GET {full} answers {} from outside (internal_prefix is reached only through forgelet)",
                    reply.status
                ),
            ),
        }
    }

    /// `git` isolated from the host's and the user's config, signing in with the token.
    fn git(&self, m: &Made) -> Command {
        let mut c = Command::new("git");
        c.env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            )
            .env("HOME", &self.scratch)
            .env("LC_ALL", "C")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "forgelet doctor")
            .env("GIT_AUTHOR_EMAIL", "doctor@forgelet.invalid")
            .env("GIT_COMMITTER_NAME", "forgelet doctor")
            .env("GIT_COMMITTER_EMAIL", "doctor@forgelet.invalid")
            // In the environment, not the arguments, which other users can list.
            .env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "http.extraHeader")
            .env("GIT_CONFIG_VALUE_0", format!("Authorization: {}", m.auth));
        for keep in [
            "SSL_CERT_FILE",
            "SSL_CERT_DIR",
            "GIT_SSL_CAINFO",
            "GIT_SSL_CAPATH",
        ] {
            if let Some(v) = std::env::var_os(keep) {
                c.env(keep, v);
            }
        }
        c.stdin(Stdio::null());
        c
    }

    /// Runs a git command to its end (or its deadline, or doctor's interruption): whether it
    /// succeeded, and what it printed on stderr.
    fn run_git(&self, mut c: Command, deadline: Duration) -> Result<(bool, String), String> {
        let err_path = self.scratch.join("git-stderr");
        let err = fs::File::create(&err_path)
            .map_err(|e| format!("cannot create {}: {e}", err_path.display()))?;
        let mut child = c
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run git: {e}"))?;
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) => {}
                Err(e) => return Err(format!("cannot wait for git: {e}")),
            }
            if interrupted() || start.elapsed() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(if interrupted() {
                    "interrupted".to_string()
                } else {
                    format!("git did not finish within {} s", deadline.as_secs())
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let text = fs::read_to_string(&err_path).unwrap_or_default();
        Ok((status.success(), text))
    }

    /// A new commit of 5 MiB of random files, pushed with git in chunks; its id when it
    /// arrived.
    fn push(&mut self, m: &Made) -> Option<String> {
        let check = "push";
        let work = self.scratch.join("work");
        let prepared = (|| -> Result<String, String> {
            fs::create_dir_all(&work)
                .map_err(|e| format!("cannot create {}: {e}", work.display()))?;
            let mut c = self.git(m);
            c.arg("-C").arg(&work).args(["init", "-q"]);
            run_ok(self.run_git(c, PUSH_DEADLINE), "git init")?;
            let mut bytes = vec![0u8; PUSH_FILE_BYTES];
            for i in 0..PUSH_FILES {
                getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
                let f = work.join(format!("random-{i:03}.bin"));
                fs::write(&f, &bytes).map_err(|e| format!("cannot write {}: {e}", f.display()))?;
            }
            let mut c = self.git(m);
            c.arg("-C").arg(&work).args(["add", "-A"]);
            run_ok(self.run_git(c, PUSH_DEADLINE), "git add")?;
            let mut c = self.git(m);
            c.arg("-C").arg(&work).args([
                "commit",
                "-q",
                "-m",
                "forgelet doctor: a push in chunks",
            ]);
            run_ok(self.run_git(c, PUSH_DEADLINE), "git commit")?;
            let head = self
                .git(m)
                .arg("-C")
                .arg(&work)
                .args(["rev-parse", "HEAD"])
                .output()
                .map_err(|e| format!("cannot run git: {e}"))?;
            Ok(String::from_utf8_lossy(&head.stdout).trim().to_string())
        })();
        let commit = match prepared {
            Ok(c) if c.len() == 40 => c,
            Ok(c) => {
                self.r.fail(check, format!("git rev-parse printed {c:?}"));
                return None;
            }
            Err(e) => {
                self.r.fail(check, format!("cannot prepare the push: {e}"));
                return None;
            }
        };
        let url = format!("{}{}", self.url.origin(), m.git_path);
        let mut c = self.git(m);
        c.arg("-C")
            .arg(&work)
            .arg("-c")
            .arg(format!("http.postBuffer={POST_BUFFER}"))
            .args(["-c", "pack.compression=0", "push", "-q"])
            .arg(&url)
            .arg("HEAD:refs/heads/doctor");
        let started = Instant::now();
        let mib = (PUSH_FILES * PUSH_FILE_BYTES) as f64 / f64::from(1 << 20);
        match self.run_git(c, PUSH_DEADLINE) {
            Err(e) => {
                self.r.fail(check, format!("git push {url}: {e}"));
                None
            }
            Ok((false, stderr)) => {
                let msg = self.push_failure(m, &url, &stderr, mib);
                self.r.fail(check, msg);
                None
            }
            Ok((true, _)) => {
                let secs = started.elapsed().as_secs_f64();
                let path = format!("{}/info/refs", m.git_path);
                let auth = [("Authorization", m.auth.as_str())];
                let listed = self
                    .send(&Request::get(&path, &auth))
                    .ok()
                    .and_then(|r| ref_in(&String::from_utf8_lossy(&r.body), "refs/heads/doctor"));
                if listed.as_deref() == Some(commit.as_str()) {
                    self.r.ok(
                        check,
                        format!(
                            "git pushed {mib:.0} MiB in chunks (http.postBuffer 1 MiB) in {secs:.1} s, and the new branch is there"
                        ),
                    );
                    Some(commit)
                } else {
                    self.r.fail(
                        check,
                        format!(
                            "git push {url} reported success, but info/refs does not list the new branch at {commit}: see forgelet's log (journalctl -u forgelet)"
                        ),
                    );
                    None
                }
            }
        }
    }

    /// What a failed push's stderr means, and what to change.
    fn push_failure(&self, m: &Made, url: &str, stderr: &str, mib: f64) -> String {
        let said = |code: &str| {
            stderr.contains(&format!("HTTP {code}")) || stderr.contains(&format!("error: {code}"))
        };
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let git_said = tail.into_iter().rev().collect::<Vec<_>>().join(" / ");
        let base = &self.config.base_path;
        if said("413") {
            let own = if self.config.limits.push_bytes < (6 << 20) {
                format!(
                    " (or forgelet's own [limits] push_mib in {} is below the push: raise it)",
                    self.config.file.display()
                )
            } else {
                String::new()
            };
            format!(
                "the web server refused a {mib:.0} MiB push sent in chunks with 413 (request body too large){own}: {}; git said: {git_said}",
                fix(
                    self.front,
                    "`client_max_body_size 0;` in the `location ~ /git-receive-pack$` block of forgelet's snippet (forgelet caps pushes itself, [limits] push_mib)",
                    &format!("`LimitRequestBody 0` in the <LocationMatch \"^{base}/.+/git-receive-pack$\"> section of forgelet's config, after any section that sets a smaller limit (forgelet caps pushes itself, [limits] push_mib)"),
                    "`server.max-request-size = 0` in the `$HTTP[\"url\"] =~ \"/git-receive-pack$\"` block of forgelet's config"
                )
            )
        } else if said("411") {
            format!(
                "the web server refused a push sent in chunks (411 Length Required; git sends every push over http.postBuffer, 1 MiB by default, in chunks): {}; git said: {git_said}",
                fix(
                    self.front,
                    "nginx 1.3.9 or newer reads chunked bodies; check that nothing in front of it (a proxy, a load balancer) refuses them",
                    "check that nothing in front of mod_proxy_fcgi (a proxy, mod_security) requires a Content-Length",
                    "keep `server.stream-request-body = 0` in the `$HTTP[\"url\"] =~ \"/git-receive-pack$\"` block: lighttpd cannot stream a chunked body to FastCGI"
                )
            )
        } else if said("401")
            || stderr.contains("Authentication failed")
            || stderr.contains("could not read Username")
        {
            format!(
                "git push was refused (401) though the token of {} is valid: the web server does not pass the Authorization header to forgelet on pushes: {}; git said: {git_said}",
                m.owner,
                credentials_fix(self.front)
            )
        } else if said("403") {
            format!(
                "forgelet refused the push to {}/{} (403) though {} owns it: see forgelet's log (journalctl -u forgelet); git said: {git_said}",
                m.owner, m.name, m.owner
            )
        } else if said("502") || said("504") {
            format!(
                "the web server lost forgelet during the push (502/504): its timeouts toward forgelet may be too short (see timeouts) or forgelet stopped; its error log says which; git said: {git_said}"
            )
        } else {
            format!("git push {url} failed: {git_said}")
        }
    }

    /// The private repository is refused to anonymous clients on the dumb and smart routes,
    /// and so is its pack file (or an object file).
    fn private_repository(&mut self, m: &Made, file: Option<&str>) {
        let gp = &m.git_path;
        let mut asks: Vec<(String, Option<&[u8]>)> = vec![
            (format!("{gp}/info/refs"), None),
            (format!("{gp}/info/refs?service=git-upload-pack"), None),
            (format!("{gp}/git-upload-pack"), Some(b"0000".as_slice())),
            (
                format!("{gp}/info/lfs/objects/batch"),
                Some(br#"{"operation":"download","objects":[]}"#.as_slice()),
            ),
        ];
        if let Some(f) = file {
            asks.push((format!("{gp}/{f}"), None));
        }
        let mut wrong = Vec::new();
        let mut served = Vec::new();
        for (path, body) in &asks {
            let method = if body.is_some() { "POST" } else { "GET" };
            let headers = [("Content-Type", "application/x-git-upload-pack-request")];
            let req = Request {
                method,
                path,
                headers: if body.is_some() { &headers } else { &[] },
                body: *body,
            };
            match self.send(&req) {
                Err(e) => wrong.push(format!("{method} {}: {e}", self.full(path))),
                Ok(r) if r.status == 401 && r.header("WWW-Authenticate").is_some() => {}
                Ok(r) if r.status == 401 => wrong.push(format!(
                    "{method} {} answered 401 without WWW-Authenticate, so git does not ask for credentials (the web server drops forgelet's header)",
                    self.full(path)
                )),
                Ok(r) if (200..300).contains(&r.status) => served.push(format!("{method} {}", self.full(path))),
                Ok(r) => wrong.push(format!(
                    "{method} {} answered {} instead of 401",
                    self.full(path),
                    r.describe()
                )),
            }
        }
        let check = "private repository";
        if !served.is_empty() {
            let repos = self.config.repos_dir();
            self.r.fail(
                check,
                format!(
                    "{} answered 2xx to an anonymous client: the web server serves a private repository without asking forgelet: remove any root, alias or Alias that maps a public URL to {}; every URL under {}/ must go to forgelet",
                    served.join(", "),
                    repos.display(),
                    self.url.base_path
                ),
            );
        } else if !wrong.is_empty() {
            self.r.fail(check, wrong.join("; "));
        } else {
            let what = if file.is_some_and(|f| f.ends_with(".pack")) {
                "dumb and smart info/refs, upload-pack, the LFS batch API and its pack file"
            } else {
                "dumb and smart info/refs, upload-pack, the LFS batch API and an object file"
            };
            self.r.ok(
                check,
                format!("{what} are refused to anonymous clients (401 with a challenge)"),
            );
        }
    }

    /// With the token, the web server sends git's file after forgelet authorized it (the
    /// sendfile setting's path through the web server).
    fn object_files(&mut self, m: &Made, file: &str) {
        let check = "object files";
        let path = format!("{}/{file}", m.git_path);
        let full = self.full(&path);
        let auth = [("Authorization", m.auth.as_str())];
        let on_disk = m.path.join(file);
        let expected = fs::read(&on_disk).unwrap_or_default();
        let how = match self.config.sendfile {
            Handoff::XAccelRedirect => "x-accel-redirect",
            Handoff::XSendfile => "x-sendfile",
            Handoff::None => "none",
        };
        match self.send(&Request::get(&path, &auth)) {
            Err(e) => self.r.fail(check, format!("GET {full}: {e}")),
            Ok(r) if r.status == 200 && r.body == expected => self.r.ok(
                check,
                format!(
                    "GET {full} sends the file's {} bytes (sendfile = \"{how}\")",
                    expected.len()
                ),
            ),
            Ok(r) if r.status == 200 => self.r.fail(
                check,
                format!(
                    "GET {full} answered 200 but with {} bytes that are not {} ({} bytes): something between forgelet and the client changes git's files; dumb clones fail",
                    r.body.len(),
                    on_disk.display(),
                    expected.len()
                ),
            ),
            Ok(r) => {
                let prefix = &self.config.internal_prefix;
                let repos = self.config.repos_dir();
                let rd = repos.display();
                let why = match self.config.sendfile {
                    Handoff::XAccelRedirect => format!(
                        "forgelet handed {} to nginx (X-Accel-Redirect: {prefix}/...), which could not send it: the `location ^~ {prefix}/` block must say `alias {rd}/;` (and internal_prefix in {} must be {prefix}), and nginx's user must be able to read the file (see repos modes); nginx's error log names the path it tried",
                        on_disk.display(),
                        self.config.file.display()
                    ),
                    Handoff::XSendfile => format!(
                        "forgelet handed {} to the web server (X-Sendfile), which could not send it: {}; the web server's user must be able to read the file (see repos modes)",
                        on_disk.display(),
                        fix(
                            self.front,
                            "nginx does not read X-Sendfile: set sendfile = \"x-accel-redirect\" in the config",
                            &format!("mod_xsendfile must be loaded (a2enmod xsendfile) with `XSendFile On` and `XSendFilePath {rd}` in forgelet's section, else set sendfile = \"none\""),
                            &format!("`\"x-sendfile\" => \"enable\"` and `\"x-sendfile-docroot\" => ( \"{rd}\" )` in fastcgi.server")
                        )
                    ),
                    Handoff::None => format!(
                        "forgelet streams {} itself (sendfile = \"none\") and failed: see forgelet's log (journalctl -u forgelet)",
                        on_disk.display()
                    ),
                };
                self.r.fail(
                    check,
                    format!("GET {full} answered {}: {why}", r.describe()),
                );
            }
        }
    }

    /// Git LFS through the web server: an object larger than the pages' body cap uploaded
    /// with the batch API's signed action, then downloaded (sent as git's files are).
    fn lfs(&mut self, m: &Made) {
        let check = "git lfs";
        let mut data = vec![0u8; LFS_CHECK_BYTES];
        if let Err(e) = getrandom::getrandom(&mut data) {
            self.r.fail(check, format!("no randomness: {e}"));
            return;
        }
        let oid: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let batch_path = format!("{}/info/lfs/objects/batch", m.git_path);
        let lfs_json = "application/vnd.git-lfs+json";
        let headers = [
            ("Authorization", m.auth.as_str()),
            ("Content-Type", lfs_json),
            ("Accept", lfs_json),
        ];
        let action = |this: &mut Self, op: &str| -> Result<(String, String), String> {
            let body = format!(
                r#"{{"operation":"{op}","transfers":["basic"],"objects":[{{"oid":"{oid}","size":{}}}]}}"#,
                data.len()
            );
            let req = Request {
                method: "POST",
                path: &batch_path,
                headers: &headers,
                body: Some(body.as_bytes()),
            };
            let full = this.full(&batch_path);
            let r = this.send(&req).map_err(|e| format!("POST {full}: {e}"))?;
            if r.status != 200 {
                return Err(format!("POST {full} answered {}", r.describe()));
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body)
                .map_err(|e| format!("POST {full}: the answer is not JSON ({e})"))?;
            let a = &v["objects"][0]["actions"][op];
            let href = a["href"]
                .as_str()
                .ok_or_else(|| format!("POST {full}: no {op} action in {v}"))?;
            let header = a["header"]["Authorization"].as_str().unwrap_or_default();
            // The path of the absolute href (it is built on base_url).
            let path = href
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .ok_or_else(|| format!("POST {full}: the {op} action's href {href} has no path"))?;
            Ok((path, header.to_string()))
        };
        let (up_path, up_auth) = match action(self, "upload") {
            Ok(x) => x,
            Err(e) => return self.r.fail(check, e),
        };
        let up_headers = [("Authorization", up_auth.as_str())];
        let full = self.full(&up_path);
        let put = Request {
            method: "PUT",
            path: &up_path,
            headers: &up_headers,
            body: Some(&data),
        };
        match self.send(&put) {
            Ok(r) if r.status == 200 => {}
            Ok(r) if r.status == 413 => {
                let base = &self.config.base_path;
                let fix = fix(
                    self.front,
                    "the `location ~ \"/info/lfs/objects/[0-9a-f]{64}$\"` block of forgelet's snippet, with `client_max_body_size 4096m;` (at least [limits] lfs_object_mib)",
                    &format!("the <LocationMatch \"^{base}/.+/info/lfs/objects/[0-9a-f]{{64}}$\"> section of forgelet's config, with `LimitRequestBody 0`"),
                    "the `$HTTP[\"url\"] =~ \"/info/lfs/objects/[0-9a-f]{64}$\"` block of forgelet's config, with `server.max-request-size` of at least [limits] lfs_object_mib in KiB",
                );
                return self.r.fail(
                    check,
                    format!(
                        "PUT {full} of {} KiB was refused with 413 by the web server: {fix}",
                        data.len() >> 10
                    ),
                );
            }
            Ok(r) => {
                return self
                    .r
                    .fail(check, format!("PUT {full} answered {}", r.describe()))
            }
            Err(e) => return self.r.fail(check, format!("PUT {full}: {e}")),
        }
        let (down_path, down_auth) = match action(self, "download") {
            Ok(x) => x,
            Err(e) => return self.r.fail(check, e),
        };
        let down_headers = [("Authorization", down_auth.as_str())];
        let full = self.full(&down_path);
        match self.send(&Request::get(&down_path, &down_headers)) {
            Ok(r) if r.status == 200 && r.body == data => self.r.ok(
                check,
                format!(
                    "a {} KiB object went up through the batch API and came back sent by the web server",
                    data.len() >> 10
                ),
            ),
            Ok(r) => self.r.fail(
                check,
                format!(
                    "GET {full} answered {} instead of the {} bytes uploaded: the web server does not send LFS objects (see object files: the same internal location serves them)",
                    r.describe(),
                    data.len()
                ),
            ),
            Err(e) => self.r.fail(check, format!("GET {full}: {e}")),
        }
    }

    /// A fetch of `want` over smart HTTP (protocol v0, which needs no Git-Protocol header):
    /// the answer carries a pack; its (first byte, whole answer) times.
    /// A clone's POST of `want` (protocol v0, as `git clone` of one branch sends it).
    fn clone_post(&mut self, m: &Made, want: &str) -> (String, Result<Reply, String>) {
        let path = format!("{}/git-upload-pack", m.git_path);
        let full = self.full(&path);
        let body = format!(
            "{}0000{}",
            pkt(&format!(
                "want {want} side-band-64k ofs-delta agent=forgelet-doctor\n"
            )),
            pkt("done\n")
        );
        let headers = [
            ("Authorization", m.auth.as_str()),
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Accept", "application/x-git-upload-pack-result"),
        ];
        let req = Request {
            method: "POST",
            path: &path,
            headers: &headers,
            body: Some(body.as_bytes()),
        };
        let reply = self.send(&req);
        (full, reply)
    }

    /// The same clone again until the pack cache answers it (it keeps an answer once it has seen
    /// the request `min_hits` times), then whether that answer reached the client: the web
    /// server sends it from `[pack_cache] dir` through its own internal location, which a
    /// misconfigured web server answers 404, and clones then fail only once an answer is kept.
    fn pack_cache(&mut self, m: &Made, want: &str) {
        let check = "pack cache";
        let pc = &self.config.pack_cache;
        if pc.max_bytes == 0 {
            self.r.skip(check, "off ([pack_cache] max_mib = 0)");
            return;
        }
        if pc.min_hits > PACK_CACHE_TRIES {
            self.r.skip(
                check,
                format!(
                    "[pack_cache] min_hits = {}: doctor does not repeat a clone that often",
                    pc.min_hits
                ),
            );
            return;
        }
        let (dir, prefix) = (pc.dir.clone(), pc.internal_prefix.clone());
        let hits = || crate::packcache::counts(&dir).hits;
        for _ in 0..=PACK_CACHE_TRIES {
            let before = hits();
            let (full, reply) = self.clone_post(m, want);
            // The hit is counted once forgelet has handed the answer over: a moment after.
            let until = Instant::now() + Duration::from_secs(2);
            let mut hit = hits() > before;
            while !hit && Instant::now() < until && reply.is_ok() {
                std::thread::sleep(Duration::from_millis(50));
                hit = hits() > before;
            }
            match reply {
                Err(e) => {
                    self.r.fail(check, format!("POST {full}: {e}"));
                    return;
                }
                Ok(r) if hit && r.status == 200 && contains(&r.body, b"PACK") => {
                    self.r.ok(
                        check,
                        format!(
                            "a repeated clone was answered from {} ({} bytes)",
                            dir.display(),
                            r.body.len()
                        ),
                    );
                    return;
                }
                Ok(r) if hit => {
                    self.r.fail(
                        check,
                        format!(
                            "a clone answered from the pack cache reached the client as {}: clones of anything seen before fail. The web server must send the files of {dir}/ at its internal location {prefix}/{}",
                            r.describe(),
                            self.pack_cache_fix(&dir, &prefix),
                            dir = dir.display(),
                        ),
                    );
                    return;
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        self.r.warn(
            check,
            format!(
                "{} identical clones and none was answered from the pack cache in {}: forgelet's log says why (a folder it cannot write, or [pack_cache] free_mib)",
                PACK_CACHE_TRIES + 1,
                dir.display()
            ),
        );
    }

    /// How the web server in front sends the pack cache's entries.
    fn pack_cache_fix(&self, dir: &Path, prefix: &str) -> String {
        let d = dir.display();
        match self.front {
            Front::Nginx | Front::Unknown => {
                format!(" (nginx: `location ^~ {prefix}/ {{ internal; alias {d}/; }}`)")
            }
            Front::Apache => format!(" (Apache: `XSendFilePath {d}`)"),
            Front::Lighttpd => format!(" (lighttpd: {d} among `x-sendfile-docroot`)"),
        }
    }

    fn fetch(&mut self, m: &Made, want: &str) -> Option<(Duration, Duration)> {
        let check = "fetch";
        let (full, reply) = self.clone_post(m, want);
        match reply {
            Err(e) => {
                self.r.fail(check, format!("POST {full}: {e}"));
                None
            }
            Ok(r) if r.status == 200 && contains(&r.body, b"PACK") => {
                self.r.ok(
                    check,
                    format!(
                        "a clone's POST {full} answers {} bytes with the pack in {} ms",
                        r.body.len(),
                        r.total.as_millis()
                    ),
                );
                Some((r.first_byte, r.total))
            }
            Ok(r) => {
                self.r.fail(
                    check,
                    format!(
                        "a clone's POST {full} answered {} instead of a pack: clones fail; the web server's error log and forgelet's (journalctl -u forgelet) say why",
                        r.describe()
                    ),
                );
                None
            }
        }
    }
}

/// The fix for an Authorization header that does not reach forgelet.
fn credentials_fix(front: Front) -> String {
    fix(
        front,
        "keep `fastcgi_pass_request_headers on` (the default) in forgelet's snippet, and set no `fastcgi_param HTTP_AUTHORIZATION`",
        "`CGIPassAuth On` inside forgelet's <LocationMatch> (forgelet-fcgi.conf) or <Location> (forgelet-cgi.conf): Apache withholds the Authorization header from FastCGI and CGI programs otherwise",
        "take forgelet's URLs out of any auth.require (mod_auth), which takes the Authorization header for itself",
    )
}

fn run_ok(result: Result<(bool, String), String>, what: &str) -> Result<(), String> {
    match result? {
        (true, _) => Ok(()),
        (false, err) => Err(format!("{what}: {}", err.trim())),
    }
}

/// The object id a dumb `info/refs` lists for `name`.
fn ref_in(info_refs: &str, name: &str) -> Option<String> {
    info_refs.lines().find_map(|l| {
        let (id, r) = l.split_once('\t')?;
        (r == name && id.len() == 40).then(|| id.to_string())
    })
}

/// A pkt-line.
fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A file of the repository the web server sends for dumb clients, by its path in the
/// repository: its largest pack, else a loose object.
fn object_file(repo: &Path) -> Option<String> {
    let packs = fs::read_dir(repo.join("objects/pack")).ok();
    let largest = packs
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".pack"))
        .filter_map(|e| Some((e.metadata().ok()?.len(), e.file_name())))
        .max();
    if let Some((_, name)) = largest {
        return Some(format!("objects/pack/{}", name.to_string_lossy()));
    }
    let dirs = fs::read_dir(repo.join("objects")).ok()?;
    for d in dirs.flatten() {
        let dn = d.file_name().to_string_lossy().into_owned();
        if dn.len() != 2 || !dn.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        if let Some(f) = fs::read_dir(d.path()).ok()?.flatten().next() {
            return Some(format!("objects/{dn}/{}", f.file_name().to_string_lossy()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fronts_are_told_by_their_server_header() {
        assert_eq!(Front::of(Some("nginx/1.22.1")), Front::Nginx);
        assert_eq!(Front::of(Some("Apache/2.4.62 (Debian)")), Front::Apache);
        assert_eq!(Front::of(Some("lighttpd/1.4.69")), Front::Lighttpd);
        assert_eq!(Front::of(None), Front::Unknown);
        assert!(fix(Front::Unknown, "a", "b", "c").contains("Apache: b"));
        assert_eq!(fix(Front::Nginx, "a", "b", "c"), "nginx: a");
    }

    #[test]
    fn refs_and_pkt_lines() {
        let id = "a".repeat(40);
        let text = format!("{id}\trefs/heads/main\n{}\trefs/tags/v1\n", "b".repeat(40));
        assert_eq!(ref_in(&text, "refs/heads/main"), Some(id));
        assert_eq!(ref_in(&text, "refs/heads/x"), None);
        assert_eq!(pkt("done\n"), "0009done\n");
    }
}
