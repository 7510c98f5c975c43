//! Browsing a repository as plain data: refs named in URLs, trees, blobs, history, one commit
//! with its diff, branch and tag lists, the README, and git's blame and grep output read back
//! (`blame`, `grep`: git runs them, the pages start it). Pure functions over a `git2::Repository`
//! that return owned structs; the pages turn them into HTML and never call git2 themselves.
//!
//! Paths inside a repository are bytes (`impl AsRef<[u8]>`, so `&str` works too) because git
//! file names need not be UTF-8. A path is split on `/` and empty components are ignored, so
//! `""` and `"/"` are the root and `"a//b/"` is `"a/b"`. Every limit named in ARCHITECTURE.md's
//! "Limits" that applies here is a parameter with the documented default as a constant.

use std::cell::RefCell;
use std::fmt;

use git2::{
    Commit, Delta, DiffFindOptions, DiffOptions, ErrorCode, ObjectType, Oid, Reference, Repository,
    Signature, Tree,
};

use super::refs::RefSnapshot;

pub(crate) mod blame;
mod diff;
pub(crate) mod grep;
mod history;
mod refs;
mod tree;

pub(crate) use diff::*;
pub(crate) use history::*;
pub(crate) use refs::*;
pub(crate) use tree::*;

/// Bytes of a blob shown on a blob page (ARCHITECTURE.md "blob shown").
pub(crate) const BLOB_SHOWN_LIMIT: usize = 1 << 20;
/// Bytes of a README read for rendering (ARCHITECTURE.md "README rendered").
pub(crate) const README_LIMIT: usize = 512 << 10;
/// Commits on one page of history.
pub(crate) const LOG_PAGE_SIZE: usize = 50;
/// Like git, a blob with a NUL byte in its first 8000 bytes is binary.
const BINARY_PROBE: usize = 8000;
/// libgit2 refuses longer ref names (`GIT_REFNAME_MAX`), so longer candidates are skipped.
const REFNAME_MAX: usize = 1024;
/// Hex digits of a commit id shown for display (links always use the full id).
const SHORT_ID_LEN: usize = 7;

const MODE_TYPE_MASK: i32 = 0o170000;
const MODE_TREE: i32 = 0o040000;
const MODE_BLOB: i32 = 0o100000;
const MODE_SYMLINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// Why browsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BrowseError {
    /// No such ref, commit or path, or the path names the wrong kind of object (a file where a
    /// folder was asked for, or the other way round): the page answers 404.
    NotFound,
    /// The repository could not be read (missing objects, I/O, corruption): the page answers 500
    /// and logs this text, which is never shown to the user.
    Git(String),
}

impl fmt::Display for BrowseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrowseError::NotFound => f.write_str("not found"),
            BrowseError::Git(msg) => write!(f, "reading the repository failed: {msg}"),
        }
    }
}

impl std::error::Error for BrowseError {}

impl From<git2::Error> for BrowseError {
    /// A libgit2 error while reading what a ref or tree says exists means the repository is
    /// damaged, not that the user asked for something missing; user input is mapped to
    /// [`BrowseError::NotFound`] where it is looked up.
    fn from(e: git2::Error) -> BrowseError {
        BrowseError::Git(e.message().to_string())
    }
}

type Result<T, E = BrowseError> = std::result::Result<T, E>;

/// Maps "no such object/ref" (and its cousins for user-typed names) to `NotFound`.
fn not_found_or_git(e: git2::Error) -> BrowseError {
    match e.code() {
        ErrorCode::NotFound | ErrorCode::Ambiguous | ErrorCode::InvalidSpec | ErrorCode::Peel => {
            BrowseError::NotFound
        }
        _ => BrowseError::from(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared structs
// ---------------------------------------------------------------------------------------------

/// An author, committer or tagger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) email: String,
    /// Seconds since the Unix epoch.
    pub(crate) time: i64,
    /// The person's offset from UTC, in minutes (`+0100` is 60).
    pub(crate) offset_minutes: i32,
}

impl Person {
    fn from_signature(sig: &Signature<'_>) -> Person {
        let when = sig.when();
        Person {
            name: lossy(sig.name_bytes()),
            email: lossy(sig.email_bytes()),
            time: when.seconds(),
            offset_minutes: when.offset_minutes(),
        }
    }
}

/// One commit as a line of history (log entries, branch and tag targets, a tree's last change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitSummary {
    pub(crate) id: Oid,
    /// The first [`SHORT_ID_LEN`] hex digits, for display only.
    pub(crate) short_id: String,
    /// The first paragraph of the message on one line.
    pub(crate) summary: String,
    pub(crate) author: Person,
    /// When the commit was made (what "latest" means for branches).
    pub(crate) committer_time: i64,
    pub(crate) parents: Vec<Oid>,
}

impl CommitSummary {
    fn of(commit: &Commit<'_>) -> CommitSummary {
        CommitSummary {
            id: commit.id(),
            short_id: short_id(commit.id()),
            summary: commit.summary_bytes().map(lossy).unwrap_or_default(),
            author: Person::from_signature(&commit.author()),
            committer_time: commit.committer().when().seconds(),
            parents: commit.parent_ids().collect(),
        }
    }
}

fn short_id(id: Oid) -> String {
    let mut hex = id.to_string();
    hex.truncate(SHORT_ID_LEN);
    hex
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What the submodules' tests share: a repository built with the `git` command.
#[cfg(test)]
mod fixture {
    use super::*;
    pub(crate) use std::cell::Cell;
    pub(crate) use std::os::unix::ffi::OsStrExt;
    pub(crate) use std::path::{Path, PathBuf};
    pub(crate) use std::process::Command;
    pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};

    /// A folder removed with its contents on drop.
    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("forgelet-browse-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A repository with a work tree, built with the `git` command, isolated from the host's
    /// configuration; every commit is one minute after the previous one.
    pub(crate) struct Fixture {
        pub(crate) dir: TempDir,
        pub(crate) clock: Cell<i64>,
    }

    pub(crate) const EPOCH: i64 = 1_700_000_000;

    impl Fixture {
        pub(crate) fn new() -> Fixture {
            let f = Fixture {
                dir: TempDir::new(),
                clock: Cell::new(EPOCH),
            };
            f.git(&["init", "-q", "-b", "main", "."]);
            f
        }

        pub(crate) fn path(&self) -> &Path {
            &self.dir.0
        }

        pub(crate) fn git_output(&self, args: &[&str]) -> String {
            let date = format!("@{} +0100", self.clock.get());
            let out = Command::new("git")
                .args(args)
                .current_dir(self.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "Ann Author")
                .env("GIT_AUTHOR_EMAIL", "ann@example.org")
                .env("GIT_COMMITTER_NAME", "Cid Committer")
                .env("GIT_COMMITTER_EMAIL", "cid@example.org")
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }

        pub(crate) fn git(&self, args: &[&str]) {
            self.git_output(args);
        }

        pub(crate) fn write(&self, path: impl AsRef<[u8]>, content: impl AsRef<[u8]>) {
            let path = self.path().join(std::ffi::OsStr::from_bytes(path.as_ref()));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }

        /// Stages everything and commits it one minute later; returns the new commit's id.
        pub(crate) fn commit(&self, message: &str) -> Oid {
            self.git(&["add", "-A"]);
            self.commit_staged(message)
        }

        /// Commits the index as it is, one minute later.
        pub(crate) fn commit_staged(&self, message: &str) -> Oid {
            self.clock.set(self.clock.get() + 60);
            self.git(&["commit", "-q", "--allow-empty", "-m", message]);
            self.head()
        }

        pub(crate) fn head(&self) -> Oid {
            self.rev("HEAD")
        }

        pub(crate) fn rev(&self, rev: &str) -> Oid {
            Oid::from_str(&self.git_output(&["rev-parse", rev])).unwrap()
        }

        pub(crate) fn repo(&self) -> Repository {
            Repository::open(self.path()).unwrap()
        }

        /// The refs as they are now.
        pub(crate) fn refs(&self) -> std::sync::Arc<RefSnapshot> {
            crate::git::refs::snapshot(&self.path().join(".git")).unwrap()
        }
    }

    pub(crate) fn make_executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub(crate) fn segs(url: &str) -> Vec<&str> {
        url.split('/').collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_of_errors() {
        assert_eq!(BrowseError::NotFound.to_string(), "not found");
        assert_eq!(
            BrowseError::Git("bad object".into()).to_string(),
            "reading the repository failed: bad object"
        );
    }
}
