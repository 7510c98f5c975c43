//! Snapshots: `archive/{ref}.tar.gz` and `.zip`, made by `git archive` from the commit the ref
//! resolves to (never from a name the client typed), streamed as git produces them. At most
//! [`MAX_AT_ONCE`] run at a time; more get 503 with `Retry-After`.

use std::io::{self, Read, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::smart::{ChildGuard, GitRunner};
use crate::git::RepoDir;
use crate::response::Response;

/// Archives made at once by one process.
pub(crate) const MAX_AT_ONCE: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    TarGz,
    Zip,
}

impl Format {
    /// Splits `name.tar.gz` / `name.zip` into the ref name and the format.
    pub(crate) fn split(file: &str) -> Option<(&str, Format)> {
        if let Some(r) = file.strip_suffix(".tar.gz") {
            return Some((r, Format::TarGz));
        }
        file.strip_suffix(".zip").map(|r| (r, Format::Zip))
    }
}

/// One archive to make.
pub(crate) struct Archive {
    pub(crate) repo: RepoDir,
    pub(crate) commit: git2::Oid,
    /// The ref as the client named it, for the file name.
    pub(crate) rev: String,
    pub(crate) format: Format,
}

/// Counts archives in progress.
#[derive(Default)]
pub(crate) struct Running(AtomicUsize);

struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `{name}-{ref}` with anything but letters, digits, `.`, `_` and `-` made `-`.
fn stem(name: &str, rev: &str) -> String {
    let clean: String = rev
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{name}-{clean}")
}

impl Archive {
    pub(crate) fn run(
        self,
        runner: &GitRunner,
        running: &Running,
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        let prev = running.0.fetch_add(1, Ordering::SeqCst);
        let _slot = Slot(&running.0);
        if prev >= MAX_AT_ONCE {
            let mut r = Response::text(
                503,
                "Other snapshots are being made right now; try again in a few seconds.\n".into(),
            );
            r.header("Retry-After", "5");
            r.no_cache();
            return r.write_cgi(out, false);
        }
        let stem = stem(&self.repo.name, &self.rev);
        let (format, ext, content_type) = match self.format {
            Format::TarGz => ("tar.gz", "tar.gz", "application/gzip"),
            Format::Zip => ("zip", "zip", "application/zip"),
        };
        let mut c = runner.git();
        c.arg("--git-dir")
            .arg(&self.repo.path)
            .arg("archive")
            .arg(format!("--format={format}"))
            .arg(format!("--prefix={stem}/"))
            .arg("--end-of-options")
            .arg(self.commit.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let label = format!("{}/{}", self.repo.owner, self.repo.name);
        let child = match c.spawn() {
            Ok(c) => c,
            Err(e) => {
                log::error!("{label}: cannot run git archive: {e}");
                return Response::text(500, "Internal server error.\n".into())
                    .write_cgi(out, false);
            }
        };
        let mut guard = ChildGuard::new(child);
        let Some(mut from) = guard.child.stdout.take() else {
            return Err(io::Error::other("git archive without stdout"));
        };
        let mut head = Response::new(200);
        head.header("Content-Type", content_type);
        head.header(
            "Content-Disposition",
            format!("attachment; filename=\"{stem}.{ext}\""),
        );
        head.header("X-Accel-Buffering", "no");
        head.no_cache();
        head.write_cgi(out, false)?;
        let mut buf = vec![0u8; 65_535];
        let result = loop {
            let n = match from.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            if let Err(e) = out.write_all(&buf[..n]).and_then(|_| out.flush()) {
                break Err(e);
            }
        };
        drop(from);
        let status = guard.wait();
        if result.is_ok() && !status.as_ref().is_ok_and(|s| s.success()) {
            log::warn!("{label}: git archive failed ({status:?})");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Format::split("main.tar.gz"), Some(("main", Format::TarGz)));
        assert_eq!(Format::split("v1.0.zip"), Some(("v1.0", Format::Zip)));
        assert_eq!(Format::split("main.tar"), None);
        assert_eq!(stem("proj", "feature/x"), "proj-feature-x");
        assert_eq!(stem("proj", "a\"b;c"), "proj-a-b-c");
    }
}
