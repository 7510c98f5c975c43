//! The repositories folder: `{data_dir}/repos/{owner}/{name}.git`. Resolving a name never follows a
//! symlink and never searches upward; opening a repository reads only its own config.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use git2::{Repository, RepositoryOpenFlags};

use super::names::{valid_name, valid_owner};

/// The folder holding every repository.
pub(crate) struct RepoStore {
    root: PathBuf,
}

/// A repository found on disk, with the names as they are spelled there.
#[derive(Debug, Clone)]
pub(crate) struct RepoDir {
    pub(crate) owner: String,
    pub(crate) name: String,
    /// `{root}/{owner}/{name}.git`, every component checked not to be a symlink.
    pub(crate) path: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    Public,
    Private,
}

/// Per-repository settings, read from the repository's own `config` file.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) visibility: Visibility,
    /// `extensions.objectFormat`, when it is set to something other than sha1.
    pub(crate) unsupported_format: Option<String>,
    /// Why the settings could not be read as written (the repository is then treated as private).
    pub(crate) problem: Option<String>,
}

impl RepoStore {
    pub(crate) fn new(root: PathBuf) -> RepoStore {
        RepoStore { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Where a new repository `owner/name` goes: inside the owner's existing folder when there is
    /// one, whatever its case, so one owner never gets two folders (`alice` and `ALICE`).
    pub(crate) fn path_for_new(&self, owner: &str, name: &str) -> io::Result<PathBuf> {
        let owner_real = find_entry(&self.root, owner)?.unwrap_or_else(|| owner.to_string());
        Ok(self.root.join(owner_real).join(format!("{name}.git")))
    }

    /// Finds `owner/name`, matching names without regard to case as names are unique that way.
    /// `Ok(None)` when there is no such repository, or when anything on the way is a symlink or
    /// not a directory: a repository must be a real folder inside the repositories folder.
    pub(crate) fn locate(&self, owner: &str, name: &str) -> io::Result<Option<RepoDir>> {
        if !valid_owner(owner) || !valid_name(name) {
            return Ok(None);
        }
        let Some(owner_real) = find_entry(&self.root, owner)? else {
            return Ok(None);
        };
        let owner_dir = self.root.join(&owner_real);
        let Some(repo_real) = find_entry(&owner_dir, &format!("{name}.git"))? else {
            return Ok(None);
        };
        let path = owner_dir.join(&repo_real);
        if !is_repo_dir(&path) {
            return Ok(None);
        }
        let name_real = repo_real
            .strip_suffix(".git")
            .unwrap_or(&repo_real)
            .to_string();
        Ok(Some(RepoDir {
            owner: owner_real,
            name: name_real,
            path,
        }))
    }

    /// Every repository, sorted by owner then name (ignoring case). Entries that are not valid
    /// names or not real repository folders are skipped.
    pub(crate) fn list(&self) -> io::Result<Vec<RepoDir>> {
        let mut out = Vec::new();
        for owner in real_dirs(&self.root)? {
            if !valid_owner(&owner) {
                continue;
            }
            let owner_dir = self.root.join(&owner);
            for entry in real_dirs(&owner_dir)? {
                let Some(name) = entry.strip_suffix(".git") else {
                    continue;
                };
                let path = owner_dir.join(&entry);
                if valid_name(name) && is_repo_dir(&path) {
                    out.push(RepoDir {
                        owner: owner.clone(),
                        name: name.to_string(),
                        path,
                    });
                }
            }
        }
        out.sort_by_key(|r| (r.owner.to_ascii_lowercase(), r.name.to_ascii_lowercase()));
        Ok(out)
    }
}

impl RepoDir {
    /// Reads the settings from `config`. Anything unreadable counts as private, so a broken
    /// file never exposes a repository.
    pub(crate) fn settings(&self) -> Settings {
        let private = |problem: String| Settings {
            visibility: Visibility::Private,
            unsupported_format: None,
            problem: Some(problem),
        };
        let cfg = match git2::Config::open(&self.path.join("config")) {
            Ok(c) => c,
            Err(e) => {
                return private(format!(
                    "cannot read its config ({}); treated as private",
                    e.message()
                ))
            }
        };
        let mut problem = None;
        let visibility = match cfg.get_string("forgelet.visibility") {
            Ok(v) if v.eq_ignore_ascii_case("public") => Visibility::Public,
            Ok(v) if v.eq_ignore_ascii_case("private") => Visibility::Private,
            Err(e) if e.code() == git2::ErrorCode::NotFound => Visibility::Public,
            Ok(v) => {
                problem = Some(format!(
                    "forgelet.visibility is {v:?}, expected public or private; treated as private"
                ));
                Visibility::Private
            }
            Err(e) => {
                problem = Some(format!(
                    "cannot read forgelet.visibility ({}); treated as private",
                    e.message()
                ));
                Visibility::Private
            }
        };
        let unsupported_format = cfg
            .get_string("extensions.objectformat")
            .ok()
            .filter(|f| !f.eq_ignore_ascii_case("sha1"));
        Settings {
            visibility,
            unsupported_format,
            problem,
        }
    }

    /// Opens the repository with no upward search and no `.git` appended.
    pub(crate) fn open(&self) -> Result<Repository, git2::Error> {
        Repository::open_ext(
            &self.path,
            RepositoryOpenFlags::NO_SEARCH
                | RepositoryOpenFlags::NO_DOTGIT
                | RepositoryOpenFlags::BARE,
            std::iter::empty::<&std::ffi::OsStr>(),
        )
    }

    /// The first line of git's `description` file, unless it is git's placeholder.
    pub(crate) fn description(&self) -> String {
        let text = fs::read(self.path.join("description")).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
        let line = text.lines().next().unwrap_or("").trim();
        if line.starts_with("Unnamed repository;") {
            String::new()
        } else {
            line.to_string()
        }
    }
}

/// A bare repository's folder: `HEAD` a regular file, `objects` and `refs` real folders.
fn is_repo_dir(path: &Path) -> bool {
    let is = |p: &str, dir: bool| {
        fs::symlink_metadata(path.join(p))
            .map(|m| if dir { m.is_dir() } else { m.is_file() })
            .unwrap_or(false)
    };
    is("HEAD", false) && is("objects", true) && is("refs", true)
}

/// The entry of `dir` named `want` (exactly, else ignoring ASCII case) that is a real folder.
fn find_entry(dir: &Path, want: &str) -> io::Result<Option<String>> {
    match fs::symlink_metadata(dir.join(want)) {
        Ok(m) if m.is_dir() => return Ok(Some(want.to_string())),
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(real_dirs(dir)?
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(want)))
}

/// Names of the real (not symlinked) folders in `dir`; an absent `dir` has none.
fn real_dirs(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            if let Ok(name) = entry.file_name().into_string() {
                out.push(name);
            }
        }
    }
    Ok(out)
}
