//! `raw/` for files too large to read into forgelet's memory: streamed by
//! `git cat-file blob`, which streams a loose object and a packed one stored whole (with
//! `core.bigFileThreshold` below the file's size), and otherwise (a file stored as a delta
//! against another) rebuilds it in memory. So such a delta is sent only up to
//! `[limits] raw_delta_mib`, one at a time per process, under git's memory limit; a larger one is
//! refused with 413 and a message. Each download holds a git slot while git runs.

use std::io::{self, Write};
use std::process::Stdio;
use std::time::Duration;

use git2::Oid;

use crate::config::Limits;
use crate::error::Error;
use crate::git::RepoDir;
use crate::gitrun::child::{self, ChildGuard};
use crate::gitrun::{busy_response, DeltaGate, GitRunner};
use crate::response::{Answer, Response, Stream};
use crate::site::Site;

/// Files at most this large are read by libgit2 and sent from memory; larger ones are streamed.
pub(crate) const INLINE_LIMIT: u64 = 1 << 20;

/// Makes a response's headers from the first bytes of its content.
pub(crate) type HeadFor = Box<dyn FnOnce(&[u8]) -> Response + Send>;

/// One large file to send.
pub(crate) struct BlobStream {
    pub(crate) repo: RepoDir,
    pub(crate) id: Oid,
    pub(crate) size: u64,
    /// The headers to send before the content (disposition, policy, caching), given its first
    /// bytes (to tell text from binary, as git does).
    pub(crate) head: HeadFor,
    /// The client's address and whether it is signed in, for its share of git slots.
    pub(crate) client: String,
    pub(crate) anonymous: bool,
}

/// Whether git keeps `id` as a delta against another object (so reading it means rebuilding it
/// whole in memory), as `git cat-file --batch-check` says.
fn stored_as_delta(runner: &GitRunner, repo: &RepoDir, id: Oid) -> Result<bool, String> {
    let mut c = runner.git();
    c.arg("--git-dir")
        .arg(&repo.path)
        .arg("cat-file")
        .arg("--batch-check=%(objecttype) %(deltabase)")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = runner
        .spawn(&mut c)
        .map_err(|e| format!("cannot run git cat-file: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{id}").map_err(|e| format!("git cat-file: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("git cat-file: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some("blob"), Some(base)) => Ok(base.bytes().any(|b| b != b'0')),
        _ => Err(format!(
            "git cat-file --batch-check said {:?} ({}): {}",
            text.trim(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    }
}

impl BlobStream {
    /// The file as an answer: git runs when it is written.
    pub(crate) fn answer(self, site: &Site) -> Answer<'_> {
        Answer::Stream(Box::new(Sending { blob: self, site }))
    }

    pub(crate) fn run(
        self,
        runner: &GitRunner,
        gate: &DeltaGate,
        limits: &Limits,
        head_only: bool,
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        let label = format!("{}/{}", self.repo.owner, self.repo.name);
        let size = self.size;
        let mut head = Some(move |first: &[u8]| {
            let mut h = (self.head)(first);
            h.header("Content-Length", size.to_string());
            h
        });
        if head_only {
            // What a HEAD can tell without reading the file.
            return match head.take() {
                Some(h) => h(&[]).write_cgi(out, true),
                None => Ok(()),
            };
        }
        let slot = match runner.slot(&self.client, self.anonymous) {
            Ok(s) => s,
            Err(busy) => return busy_response(busy).write_cgi(out, false),
        };
        let delta = match stored_as_delta(runner, &self.repo, self.id) {
            Ok(d) => d,
            Err(e) => {
                return Error::Internal(format!("{label}: {e}"))
                    .into_response()
                    .write_cgi(out, false)
            }
        };
        let turn = if delta {
            if self.size > limits.raw_delta_bytes {
                return Error::TooLarge(format!(
                    "This file ({} MiB) is stored compressed against another version, and the server unpacks such files only up to {} MiB; clone the repository to get it.",
                    self.size >> 20,
                    limits.raw_delta_bytes >> 20
                ))
                .into_response()
                .write_cgi(out, false);
            }
            match gate.enter() {
                Some(t) => Some(t),
                None => {
                    let mut r = Response::text(
                        503,
                        "Another large file is being unpacked right now; try again in a few seconds.\n"
                            .into(),
                    );
                    r.header("Retry-After", "5");
                    r.no_cache();
                    return r.write_cgi(out, false);
                }
            }
        } else {
            None
        };
        let mut c = runner.git();
        c.arg("-c")
            // Stream packed files stored whole (the default threshold is 512 MiB).
            .arg("core.bigFileThreshold=1m")
            .arg("--git-dir")
            .arg(&self.repo.path)
            .arg("cat-file")
            .arg("blob")
            .arg(self.id.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = match runner.spawn(&mut c) {
            Ok(c) => c,
            Err(e) => {
                return Error::internal(&format!("{label}: cannot run git cat-file"), e)
                    .into_response()
                    .write_cgi(out, false)
            }
        };
        let ended = child::run(
            ChildGuard::new(child),
            (slot, turn),
            None,
            limits.git_deadline.max(Duration::from_secs(60)),
            &runner.spool,
            out,
            &mut |out, first| match head.take() {
                Some(h) => h(first).write_cgi(out, true),
                None => Ok(()),
            },
            None,
        );
        let stderr = String::from_utf8_lossy(&ended.stderr);
        match ended.sent {
            Ok(true) => {
                if !ended.status.as_ref().is_ok_and(|s| s.success()) {
                    log::warn!(
                        "{label}: git cat-file blob {} failed ({}): {}",
                        self.id,
                        child::status_text(&ended.status),
                        stderr.trim()
                    );
                }
                Ok(())
            }
            Ok(false) => Error::Internal(format!(
                "{label}: git cat-file blob {} wrote nothing ({}): {}",
                self.id,
                child::status_text(&ended.status),
                stderr.trim()
            ))
            .into_response()
            .write_cgi(out, false),
            Err(e) => Err(e),
        }
    }
}

/// A file and the site whose git sends it.
struct Sending<'s> {
    blob: BlobStream,
    site: &'s Site,
}

impl Stream for Sending<'_> {
    fn run(
        self: Box<Self>,
        _input: &mut (dyn io::Read + Send),
        out: &mut (dyn Write + Send),
        head_only: bool,
    ) -> io::Result<()> {
        let site = self.site;
        self.blob.run(
            &site.git,
            &site.raw_deltas,
            &site.config.limits,
            head_only,
            out,
        )
    }
}
