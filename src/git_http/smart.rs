//! Smart HTTP: the ref advertisement and the `git-upload-pack` / `git-receive-pack` exchanges, run
//! by spawning git with `--stateless-rpc` in an environment forgelet builds from nothing.
//!
//! Fetch bodies (wants and haves) are read whole before git starts, as git's own http-backend does,
//! because upload-pack may answer before it has read every `have`; push bodies stream. The child's
//! input and output are pumped at the same time on two threads; its whole process group is killed
//! and reaped when the client goes away, a cap is hit, or the deadline passes.

use std::fs::{self, File};
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::response::Response;

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

    /// The git subcommand, `upload-pack` / `receive-pack`.
    fn command(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
        }
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

/// The protocol version a client asks for in its `Git-Protocol` header, if the header is well
/// formed (`key=value` pairs of letters and digits joined by `:`) and names version 1 or 2.
/// Only `version=N` ever reaches git: the rest of a client's header is never passed on.
pub(crate) fn protocol_version(header: Option<&str>) -> Option<u8> {
    let header = header?.trim();
    let ok_part = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let mut version = None;
    for pair in header.split(':') {
        let (k, v) = pair.split_once('=')?;
        if !ok_part(k) || !ok_part(v) {
            return None;
        }
        if k == "version" {
            version = match v {
                "1" => Some(1),
                "2" => Some(2),
                _ => version,
            };
        }
    }
    version
}

/// Who is asking, for git's hooks and the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identity {
    pub(crate) user: Option<String>,
}

/// How forgelet runs git: the binary, and the empty home and temp folders it gives children.
pub(crate) struct GitRunner {
    git: PathBuf,
    path_var: std::ffi::OsString,
    home: PathBuf,
    tmp: PathBuf,
}

/// Request bodies up to this size stay in memory; larger fetch requests spill to a temp file.
const SPILL_AT: usize = 4 << 20;

impl GitRunner {
    /// `data_dir/home` (an empty folder for `HOME`) and `data_dir/tmp` are made if missing.
    pub(crate) fn new(data_dir: &Path) -> GitRunner {
        let home = data_dir.join("home");
        let tmp = data_dir.join("tmp");
        for dir in [&home, &tmp] {
            if let Err(e) = fs::create_dir_all(dir) {
                log::warn!("cannot create {}: {e}", dir.display());
            }
        }
        GitRunner {
            git: PathBuf::from("git"),
            path_var: std::env::var_os("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            home,
            tmp,
        }
    }

    /// `git` from an empty environment plus an allowlist, shut off from the host's config, in
    /// its own process group; `-c` settings and the subcommand are the caller's.
    pub(crate) fn git(&self) -> Command {
        let mut c = Command::new(&self.git);
        c.env_clear()
            .env("PATH", &self.path_var)
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .arg("-c")
            .arg("safe.directory=*")
            .process_group(0);
        c
    }

    /// `git <service> --stateless-rpc ...` for `repo`, from an empty environment plus an allowlist.
    fn command(
        &self,
        service: Service,
        repo: &RepoDir,
        who: &Identity,
        version: Option<u8>,
        limits: &Limits,
    ) -> Command {
        let mut c = self.git();
        c.env("FORGELET_REPO", format!("{}/{}", repo.owner, repo.name));
        if let Some(user) = &who.user {
            c.env("REMOTE_USER", user).env("FORGELET_USER", user);
        }
        // receive-pack speaks v0 only; upload-pack gets the version the client asked for.
        if let (Service::UploadPack, Some(v)) = (service, version) {
            c.env("GIT_PROTOCOL", format!("version={v}"));
        }
        // Settings on the command line are "protected" configuration, like the system file, so
        // safe.directory is honoured there; the host's own files are shut out above.
        for setting in [
            "uploadpack.allowFilter=true".to_string(),
            "uploadpack.keepAlive=5".to_string(),
            "receive.fsckObjects=true".to_string(),
            "receive.autogc=false".to_string(),
            "receive.keepAlive=5".to_string(),
            format!("receive.maxInputSize={}", limits.push_bytes),
            "core.logAllRefUpdates=true".to_string(),
        ] {
            c.arg("-c").arg(setting);
        }
        c.arg(service.command()).arg("--stateless-rpc");
        if service == Service::UploadPack {
            c.arg("--strict");
        }
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        c
    }

    /// `GET info/refs?service=...`: the ref advertisement, with the `# service=` preamble unless
    /// the client speaks protocol v2 (which receive-pack never does).
    pub(crate) fn advertise(
        &self,
        service: Service,
        repo: &RepoDir,
        who: &Identity,
        version: Option<u8>,
        limits: &Limits,
    ) -> Result<Response> {
        let mut c = self.command(service, repo, who, version, limits);
        c.arg("--http-backend-info-refs").arg(&repo.path);
        c.stdin(Stdio::null());
        let label = format!("{}/{}", repo.owner, repo.name);
        let out = c
            .output()
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
}

/// One `POST git-upload-pack|git-receive-pack`, everything checked, ready to run.
pub(crate) struct Rpc {
    pub(crate) service: Service,
    pub(crate) repo: RepoDir,
    pub(crate) who: Identity,
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
        runner: &GitRunner,
        limits: &Limits,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
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
                let body = match read_body(input, self.gzip, cap, &runner.tmp) {
                    Ok(b) => b,
                    Err(BodyError::TooLarge(cap)) => {
                        return too_large(self.service, cap).write_cgi(out, false)
                    }
                    Err(BodyError::Io(e)) => return Err(e),
                };
                self.exchange(runner, limits, body, out, &label)
            }
            Service::ReceivePack => {
                let body = CappedReader::new(decoded(input, self.gzip), cap);
                self.exchange(runner, limits, body, out, &label)
            }
        }
    }

    /// Starts git, feeds it `body` while its output is streamed to `out`.
    fn exchange(
        &self,
        runner: &GitRunner,
        limits: &Limits,
        mut body: impl Read + Send,
        out: &mut (dyn Write + Send),
        label: &str,
    ) -> io::Result<()> {
        let mut c = runner.command(self.service, &self.repo, &self.who, self.version, limits);
        c.arg(&self.repo.path);
        let child = match c.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Error::internal(&format!("{label}: cannot run git"), e)
                    .into_response()
                    .write_cgi(out, false)
            }
        };
        let mut guard = ChildGuard::new(child);
        let (Some(mut child_in), Some(child_out), Some(mut child_err)) = (
            guard.child.stdin.take(),
            guard.child.stdout.take(),
            guard.child.stderr.take(),
        ) else {
            return Err(io::Error::other("child pipes missing"));
        };
        let pgid = guard.pgid;
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let timed_out = AtomicBool::new(false);
        let deadline = limits.git_deadline;

        let (feed, sent, stderr) = std::thread::scope(|s| {
            // The body goes in on its own thread, so a child that writes while it reads never
            // waits on us.
            let feeder = s.spawn(move || {
                let r = io::copy(&mut body, &mut child_in);
                if let Err(e) = &r {
                    // Over the cap, or the client went away mid-upload: stop git before it
                    // answers a half-received request. (A git that stopped reading early
                    // shows up here as a broken pipe; it has already said what it had to.)
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        stop_group(pgid);
                    }
                }
                drop(child_in);
                r
            });
            let errors = s.spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut child_err).take(64 * 1024).read_to_end(&mut buf);
                // Drain the rest so the child never blocks on a full stderr pipe.
                let _ = io::copy(&mut child_err, &mut io::sink());
                buf
            });
            let timed_out = &timed_out;
            s.spawn(move || {
                if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(deadline) {
                    timed_out.store(true, Ordering::SeqCst);
                    stop_group(pgid);
                }
            });
            let sent = pump(self.service, child_out, out);
            if sent.is_err() {
                // The client went away (or the web server did): stop git now.
                stop_group(pgid);
            }
            let feed = feeder
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("feeder panicked")));
            let _ = done_tx.send(());
            let stderr = errors.join().unwrap_or_default();
            (feed, sent, stderr)
        });
        let status = guard.wait();
        let stderr = String::from_utf8_lossy(&stderr);
        let stderr = stderr.trim();
        let timed_out = timed_out.load(Ordering::SeqCst);

        match sent {
            // Headers went out: the status is said; whatever else happened is for the log.
            Ok(true) => {
                if timed_out {
                    log::warn!(
                        "{label}: git {} stopped at the deadline of {deadline:?}",
                        self.service.command()
                    );
                } else if !status.as_ref().is_ok_and(|s| s.success()) && feed.is_ok() {
                    log::warn!(
                        "{label}: git {} failed ({status:?}): {stderr}",
                        self.service.command()
                    );
                }
                Ok(())
            }
            // git said nothing at all: answer from what we know.
            Ok(false) => {
                let r = match (&feed, status) {
                    (Err(e), _) if is_too_large(e) => too_large(self.service, cap_of(e)),
                    (Err(e), _) => return Err(io::Error::new(e.kind(), e.to_string())),
                    (Ok(_), _) if timed_out => {
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
                    (Ok(_), s) => {
                        log::warn!(
                            "{label}: git {} failed ({s:?}): {stderr}",
                            self.service.command()
                        );
                        Error::Internal(format!(
                            "{label}: git {} produced nothing",
                            self.service.command()
                        ))
                        .into_response()
                    }
                };
                r.write_cgi(out, false)
            }
            Err(e) => {
                log::debug!(
                    "{label}: client went away during {}: {e}",
                    self.service.command()
                );
                Err(e)
            }
        }
    }
}

/// The headers of a result stream: never cached, never buffered by nginx.
fn result_head(service: Service) -> Response {
    let mut r = Response::new(200);
    r.header("Content-Type", service.result_type());
    r.no_cache();
    r.header("X-Accel-Buffering", "no");
    r
}

/// Streams the child's output. The headers go out with the first bytes, so a git that fails
/// before saying anything still gets a proper error status. `Ok(true)` when headers were sent.
fn pump(service: Service, mut from: ChildStdout, out: &mut (dyn Write + Send)) -> io::Result<bool> {
    // One read fills at most one FastCGI record (65,535 bytes), so a flush sends whole records.
    let mut buf = vec![0u8; 65_535];
    let mut started = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(started),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Our end of the pipe failed: treat as the end of output.
            Err(_) => return Ok(started),
        };
        if !started {
            write_head(service, out)?;
            started = true;
        }
        out.write_all(&buf[..n])?;
        // Progress and keepalives must reach the client as git produces them.
        out.flush()?;
    }
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

/// A file in `dir` that is gone from the folder as soon as it is open.
fn temp_file(dir: &Path) -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(".body-{}-{n}-{nanos:x}", std::process::id()));
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot make a temporary file"))
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

/// Asks a whole process group (git and everything it started) to stop. SIGTERM, not SIGKILL:
/// git's handlers then remove a push's quarantine folder and lock files on the way out.
fn stop_group(pgid: i32) {
    signal_group(pgid, libc::SIGTERM);
}

fn signal_group(pgid: i32, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// How long a stopped git may take to clean up before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Owns a child; however the request ends, the child is reaped and nothing of its group is left:
/// whatever still runs after a grace period is killed.
pub(crate) struct ChildGuard {
    pub(crate) child: Child,
    pgid: i32,
    reaped: bool,
}

impl ChildGuard {
    pub(crate) fn new(child: Child) -> ChildGuard {
        // process_group(0) made the child the leader of a group with its own pid.
        let pgid = i32::try_from(child.id()).unwrap_or(0);
        ChildGuard {
            child,
            pgid,
            reaped: false,
        }
    }

    /// Waits for the child. A child that was asked to stop gets STOP_GRACE, then SIGKILL.
    pub(crate) fn wait(&mut self) -> io::Result<std::process::ExitStatus> {
        let until = Instant::now() + STOP_GRACE;
        let status = loop {
            match self.child.try_wait()? {
                Some(status) => break status,
                None if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                None => {
                    signal_group(self.pgid, libc::SIGKILL);
                    break self.child.wait()?;
                }
            }
        };
        self.reaped = true;
        // Anything git left running in its group goes too (pack-objects, index-pack...).
        signal_group(self.pgid, libc::SIGKILL);
        Ok(status)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            stop_group(self.pgid);
            let _ = self.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_header_is_validated() {
        assert_eq!(protocol_version(Some("version=2")), Some(2));
        assert_eq!(protocol_version(Some("version=1")), Some(1));
        assert_eq!(protocol_version(Some("agent=x:version=2")), Some(2));
        assert_eq!(protocol_version(Some("object-format=sha1:version=2")), None);
        assert_eq!(protocol_version(Some("version=3")), None);
        assert_eq!(protocol_version(Some("version=2;rm -rf")), None);
        assert_eq!(protocol_version(Some("version=2:x")), None);
        assert_eq!(protocol_version(Some("version=2\nX=1")), None);
        assert_eq!(protocol_version(Some("")), None);
        assert_eq!(protocol_version(None), None);
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
