//! Snapshots: `archive/{ref}.tar.gz` and `.zip`, made by `git archive` from the commit the ref
//! resolves to (never from a name the client typed), streamed as git produces them. What a
//! snapshot would hold is added up from the object headers first (files counted every time they
//! appear, as the archive repeats them), and one over `[limits] archive_mib` is refused before
//! git starts. At most `gitrun::SNAPSHOTS_AT_ONCE` are made at a time, each also holding a git slot; more get
//! 503 with `Retry-After`. Both are given back when git is done, not when a slow client is.

use std::collections::HashMap;
use std::io::{self, Write};
use std::process::Stdio;

use git2::{ObjectType, Oid, Repository};

use crate::git::RepoDir;
use crate::gitrun::child::{self, ChildGuard};
use crate::gitrun::{busy_response, GitRunner, Snapshots};
use crate::response::{Answer, Response, Stream};
use crate::site::Site;

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
    /// The client's address and whether it is signed in, for its share of git slots.
    pub(crate) client: String,
    pub(crate) anonymous: bool,
}

/// Bytes a tar archive of `tree` holds before compression: a 512-byte header per entry and each
/// file's content rounded up to 512 bytes, files counted every time they appear. Stops early
/// (and says so with `None`) once past `cap`. Each tree is added up once, so a tree that names
/// the same subtree a thousand times, at every level, costs its size, not its paths.
pub(crate) fn size_of_tree(
    repo: &Repository,
    tree: Oid,
    cap: u64,
) -> Result<Option<u64>, git2::Error> {
    let odb = repo.odb()?;
    let mut known: HashMap<Oid, u64> = HashMap::new();
    size_of(repo, &odb, tree, cap, &mut known, 0)
}

/// How deep trees may nest here; git itself refuses deeper ones (`core.maxTreeDepth`, 2048
/// in recent versions) and a deeper tree is no snapshot anyone needs.
const MAX_DEPTH: usize = 4096;

fn size_of(
    repo: &Repository,
    odb: &git2::Odb<'_>,
    tree: Oid,
    cap: u64,
    known: &mut HashMap<Oid, u64>,
    depth: usize,
) -> Result<Option<u64>, git2::Error> {
    if let Some(n) = known.get(&tree) {
        return Ok(Some(*n));
    }
    if depth > MAX_DEPTH {
        return Ok(None);
    }
    let t = repo.find_tree(tree)?;
    let mut total: u64 = 0;
    for entry in t.iter() {
        let add = match entry.kind() {
            Some(ObjectType::Tree) => {
                match size_of(repo, odb, entry.id(), cap, known, depth + 1)? {
                    Some(n) => 512 + n,
                    None => return Ok(None),
                }
            }
            Some(ObjectType::Blob) => {
                let (size, _) = odb.read_header(entry.id())?;
                512 + (size as u64).div_ceil(512) * 512
            }
            // Submodules (commits of other repositories) are an empty folder in an archive.
            _ => 512,
        };
        total = total.saturating_add(add);
        if total > cap {
            return Ok(None);
        }
    }
    known.insert(tree, total);
    Ok(Some(total))
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
    /// The snapshot as an answer: git runs when it is written.
    pub(crate) fn answer(self, site: &Site) -> Answer<'_> {
        Answer::Stream(Box::new(Making {
            archive: self,
            site,
        }))
    }

    pub(crate) fn run(
        self,
        runner: &GitRunner,
        running: &Snapshots,
        deadline: std::time::Duration,
        out: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        let Some(making) = running.enter() else {
            let mut r = Response::text(
                503,
                "Other snapshots are being made right now; try again in a few seconds.\n".into(),
            );
            r.header("Retry-After", "5");
            r.no_cache();
            return r.write_cgi(out, false);
        };
        let slot = match runner.slot(&self.client, self.anonymous) {
            Ok(s) => s,
            Err(busy) => return busy_response(busy).write_cgi(out, false),
        };
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
            .stderr(Stdio::piped());
        let label = format!("{}/{}", self.repo.owner, self.repo.name);
        let child = match runner.spawn(&mut c) {
            Ok(c) => c,
            Err(e) => {
                log::error!("{label}: cannot run git archive: {e}");
                return Response::text(500, "Internal server error.\n".into())
                    .write_cgi(out, false);
            }
        };
        let ended = child::run(
            ChildGuard::new(child),
            (slot, making),
            None,
            deadline,
            &runner.spool,
            out,
            &mut |out, _| {
                let mut head = Response::new(200);
                head.header("Content-Type", content_type);
                head.header(
                    "Content-Disposition",
                    format!("attachment; filename=\"{stem}.{ext}\""),
                );
                head.header("X-Accel-Buffering", "no");
                head.no_cache();
                head.write_cgi(out, false)
            },
            None,
        );
        let failed = !ended.status.as_ref().is_ok_and(|s| s.success());
        match ended.sent {
            Ok(true) => {
                if failed {
                    log::warn!(
                        "{label}: git archive failed ({}): {}",
                        child::status_text(&ended.status),
                        String::from_utf8_lossy(&ended.stderr).trim()
                    );
                }
                Ok(())
            }
            Ok(false) => {
                log::error!(
                    "{label}: git archive wrote nothing ({}): {}",
                    child::status_text(&ended.status),
                    String::from_utf8_lossy(&ended.stderr).trim()
                );
                crate::error::Error::Internal(format!("{label}: git archive failed"))
                    .into_response()
                    .write_cgi(out, false)
            }
            Err(e) => Err(e),
        }
    }
}

/// A snapshot and the site whose git makes it.
struct Making<'s> {
    archive: Archive,
    site: &'s Site,
}

impl Stream for Making<'_> {
    fn run(
        self: Box<Self>,
        _input: &mut (dyn io::Read + Send),
        out: &mut (dyn Write + Send),
        _head_only: bool,
    ) -> io::Result<()> {
        let site = self.site;
        self.archive.run(
            &site.git,
            &site.archives,
            site.config.limits.git_deadline,
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bare repository in a temporary folder, removed on drop.
    struct Bare(std::path::PathBuf);

    impl Drop for Bare {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl Bare {
        fn new() -> Bare {
            let dir = std::env::temp_dir().join(format!(
                "forgelet-archive-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let ok = std::process::Command::new("git")
                .args(["init", "-q", "--bare"])
                .arg(&dir)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .status()
                .unwrap()
                .success();
            assert!(ok);
            Bare(dir)
        }

        fn git(&self, args: &[&str], input: &[u8]) -> String {
            use std::io::Write as _;
            let mut child = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(&self.0)
                .args(args)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "git {args:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }

        /// A tree of `n` entries naming the same object.
        fn fan(&self, mode: &str, kind: &str, id: &str, n: usize) -> String {
            let listing: String = (0..n)
                .map(|i| format!("{mode} {kind} {id}\tf{i}\n"))
                .collect();
            self.git(&["mktree"], listing.as_bytes())
        }
    }

    #[test]
    fn snapshot_size_counts_every_repeat_and_adds_each_tree_once() {
        let b = Bare::new();
        let repo = Repository::open_bare(&b.0).unwrap();
        let blob = b.git(&["hash-object", "-w", "--stdin"], &vec![b'x'; 1 << 20]);
        // One 1 MiB file named 1,000 times: a gigabyte of tar.
        let wide = b.fan("100644", "blob", &blob, 1000);
        let wide_id = Oid::from_str(&wide).unwrap();
        let size = size_of_tree(&repo, wide_id, u64::MAX).unwrap().unwrap();
        assert_eq!(size, 1000 * (512 + (1 << 20)));
        assert_eq!(size_of_tree(&repo, wide_id, 100 << 20).unwrap(), None);
        // That tree named 1,000 times, and that one 1,000 times again: a petabyte of paths,
        // added up in a moment, since each tree is added up once.
        let deeper = b.fan("040000", "tree", &wide, 1000);
        let deepest = b.fan("040000", "tree", &deeper, 1000);
        let start = std::time::Instant::now();
        let id = Oid::from_str(&deepest).unwrap();
        assert_eq!(size_of_tree(&repo, id, 1 << 40).unwrap(), None);
        assert!(size_of_tree(&repo, id, u64::MAX).unwrap().unwrap() > 1 << 49);
        assert!(start.elapsed() < std::time::Duration::from_secs(10));
    }

    #[test]
    fn names() {
        assert_eq!(Format::split("main.tar.gz"), Some(("main", Format::TarGz)));
        assert_eq!(Format::split("v1.0.zip"), Some(("v1.0", Format::Zip)));
        assert_eq!(Format::split("main.tar"), None);
        assert_eq!(stem("proj", "feature/x"), "proj-feature-x");
        assert_eq!(stem("proj", "a\"b;c"), "proj-a-b-c");
    }
}
