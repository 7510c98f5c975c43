//! The repositories folder: `{data_dir}/repos/{owner}/{name}.git`. Resolving a name never follows a
//! symlink and never searches upward; opening a repository reads only its own config.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use git2::{Repository, RepositoryOpenFlags};

use super::names::{valid_name, valid_owner};

/// forgelet's own lock for changes to a repository's config (`flock`, never stale).
const CONFIG_WRITERS_LOCK: &str = "forgelet-config.lock";
/// How old a `config.lock` found by a config change must be to be taken for a dead writer's.
const STALE_CONFIG_LOCK: std::time::Duration = std::time::Duration::from_secs(2);

/// The multi-valued config key holding one `NAME read|write` per collaborator (git's variable
/// names cannot hold every user name, so the name is in the value).
const COLLABORATOR_KEY: &str = "forgelet.collaborator";

/// A collaborator's permission, as written in the repository's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perm {
    Read,
    Write,
}

impl Perm {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
        }
    }

    /// `read` or `write`, ignoring ASCII case.
    pub(crate) fn parse(s: &str) -> Option<Perm> {
        if s.eq_ignore_ascii_case("read") {
            Some(Perm::Read)
        } else if s.eq_ignore_ascii_case("write") {
            Some(Perm::Write)
        } else {
            None
        }
    }
}

/// The folder in a repository for files forgelet makes from it for the web server to send (the
/// dumb protocol's ref list); a purge removes it.
pub(crate) const CACHE_DIR: &str = "forgelet-cache";

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
    /// Why the settings could not be read as written (the repository is then treated as
    /// private, and left to its owner and the admins).
    pub(crate) problem: Option<String>,
    /// `forgelet.collaborator = NAME read|write` entries, in file order.
    pub(crate) collaborators: Vec<(String, Perm)>,
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
    /// The settings from `config` (parsed again whenever the file changes). Anything
    /// unreadable counts as private, so a broken file never exposes a repository.
    pub(crate) fn settings(&self) -> Settings {
        self.shared_settings().as_ref().clone()
    }

    /// The same, shared with the cache rather than copied.
    pub(crate) fn shared_settings(&self) -> std::sync::Arc<Settings> {
        let config = self.path.join("config");
        super::cache::settings(&config, || self.parse_settings(&config))
    }

    fn parse_settings(&self, config: &Path) -> Settings {
        let private = |problem: String| Settings {
            visibility: Visibility::Private,
            unsupported_format: None,
            problem: Some(problem),
            collaborators: Vec::new(),
        };
        let cfg = match git2::Config::open(config) {
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
        let mut collaborators: Vec<(String, Perm)> = Vec::new();
        let mut bad = Vec::new();
        match collaborator_values(&cfg) {
            Ok(values) => {
                for value in values {
                    match parse_collaborator(&value) {
                        Some((name, _))
                            if collaborators
                                .iter()
                                .any(|(n, _)| n.eq_ignore_ascii_case(&name)) =>
                        {
                            bad.push(format!("{COLLABORATOR_KEY} names {name} twice"))
                        }
                        Some(entry) => collaborators.push(entry),
                        None => bad.push(format!(
                            "{COLLABORATOR_KEY} {value:?} is not \"NAME read\" or \"NAME write\""
                        )),
                    }
                }
            }
            Err(e) => bad.push(format!("cannot read {COLLABORATOR_KEY} ({e})")),
        }
        if !bad.is_empty() {
            let p = format!(
                "{}; only the owner and admins may use it until this is fixed",
                bad.join("; ")
            );
            problem = Some(match problem {
                Some(before) => format!("{before}; {p}"),
                None => p,
            });
        }
        Settings {
            visibility,
            unsupported_format,
            problem,
            collaborators,
        }
    }

    /// Held by every change forgelet makes to the repository's config, for its whole length.
    /// libgit2 writes each change to `config.lock` (made with O_EXCL) and renames it into
    /// place: a writer killed in between leaves `config.lock` behind, and libgit2 would then
    /// refuse every later change ("failed to lock file"); two changes at once would make one of
    /// them fail the same way. forgelet's writers take this `flock` first (the kernel lets go
    /// of it when a process dies), so a `config.lock` found while holding it is a dead
    /// writer's, or, for the milliseconds of a write, that of a git someone runs by hand: one
    /// that stays [`STALE_CONFIG_LOCK`] old is removed.
    fn config_writers_lock(&self) -> Result<crate::fsfile::FileLock, String> {
        let held = crate::fsfile::lock(&self.path.join(CONFIG_WRITERS_LOCK))?;
        let lock = self.path.join("config.lock");
        let until = std::time::Instant::now() + 2 * STALE_CONFIG_LOCK;
        while let Ok(meta) = fs::symlink_metadata(&lock) {
            let age = meta
                .modified()
                .ok()
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            if age >= STALE_CONFIG_LOCK || std::time::Instant::now() >= until {
                match fs::remove_file(&lock) {
                    Ok(()) => log::warn!(
                        "{}/{}: removed config.lock, left by a config change that was stopped",
                        self.owner,
                        self.name
                    ),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot remove {}: {e}", lock.display())),
                }
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Ok(held)
    }

    /// The repository's own config file, opened for a change (with [`Self::config_writers_lock`]
    /// held). libgit2 writes it whole to `config.lock` and renames it into place, so a crash
    /// never leaves half a file.
    fn config_for_change(&self) -> Result<git2::Config, String> {
        git2::Config::open(&self.path.join("config")).map_err(|e| {
            format!(
                "cannot open the config of {}/{}: {}",
                self.owner,
                self.name,
                e.message()
            )
        })
    }

    fn change_failed(&self, e: git2::Error) -> String {
        format!(
            "cannot change the config of {}/{}: {}",
            self.owner,
            self.name,
            e.message()
        )
    }

    /// Sets `forgelet.visibility` (one atomic write).
    pub(crate) fn set_visibility(&self, visibility: Visibility) -> Result<(), String> {
        let value = match visibility {
            Visibility::Public => "public",
            Visibility::Private => "private",
        };
        let _writers = self.config_writers_lock()?;
        self.config_for_change()?
            .set_str("forgelet.visibility", value)
            .map_err(|e| self.change_failed(e))?;
        super::listing::changed(&self.path);
        Ok(())
    }

    /// Gives `name` the permission `perm` (replacing an entry of any spelling), or with `None`
    /// removes every entry naming `name` (ignoring case). Each is one atomic write of the
    /// config. Returns whether an entry for `name` was there before.
    pub(crate) fn set_collaborator(&self, name: &str, perm: Option<Perm>) -> Result<bool, String> {
        let changed = self.change_collaborator(name, perm);
        // Granting writes the config even when the entry was there; revoking only when it was.
        if matches!(changed, Ok(true)) || (perm.is_some() && changed.is_ok()) {
            super::listing::changed(&self.path);
        }
        changed
    }

    fn change_collaborator(&self, name: &str, perm: Option<Perm>) -> Result<bool, String> {
        let _writers = self.config_writers_lock()?;
        let mut cfg = self.config_for_change()?;
        let values = collaborator_values(&cfg).map_err(|e| {
            format!(
                "cannot read {COLLABORATOR_KEY} of {}/{}: {e}",
                self.owner, self.name
            )
        })?;
        let matching: Vec<&String> = values
            .iter()
            .filter(|v| {
                v.split_whitespace()
                    .next()
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
            .collect();
        let any = |vs: &[&String]| {
            let alts: Vec<String> = vs.iter().map(|v| regex_escape(v)).collect();
            format!("^({})$", alts.join("|"))
        };
        match (perm, matching.as_slice()) {
            (None, []) => Ok(false),
            (None, all) => {
                cfg.remove_multivar(COLLABORATOR_KEY, &any(all))
                    .map_err(|e| self.change_failed(e))?;
                Ok(true)
            }
            (Some(p), found) => {
                if found.len() > 1 {
                    // A hand-edited file may name someone twice: keep one entry to replace.
                    cfg.remove_multivar(COLLABORATOR_KEY, &any(&found[1..]))
                        .map_err(|e| self.change_failed(e))?;
                }
                // A pattern that matches nothing makes libgit2 add a new entry.
                let pattern = match found.first() {
                    Some(v) => any(&[v]),
                    None => "^$.".to_string(),
                };
                cfg.set_multivar(
                    COLLABORATOR_KEY,
                    &pattern,
                    &format!("{name} {}", p.as_str()),
                )
                .map_err(|e| self.change_failed(e))?;
                Ok(!found.is_empty())
            }
        }
    }

    /// Opens the repository with no upward search and no `.git` appended, or takes it from
    /// this thread's cache of recently opened ones (see `git::cache`).
    pub(crate) fn open(&self) -> Result<Rc<Repository>, git2::Error> {
        super::cache::repository(&self.path, || self.open_uncached())
    }

    /// Opens the repository afresh, leaving this thread's cache as it is (for a pass over many
    /// repositories that would only push the busy ones out of it).
    pub(crate) fn open_uncached(&self) -> Result<Repository, git2::Error> {
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
        let file = self.path.join("description");
        super::cache::description(&file, || Self::read_description(&file)).to_string()
    }

    fn read_description(file: &Path) -> String {
        let text = fs::read(file).unwrap_or_default();
        let text = String::from_utf8_lossy(&text[..text.len().min(4096)]).into_owned();
        let line = text.lines().next().unwrap_or("").trim();
        if line.starts_with("Unnamed repository;") {
            String::new()
        } else {
            line.to_string()
        }
    }
}

/// The raw values of every `forgelet.collaborator` line.
fn collaborator_values(cfg: &git2::Config) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut entries = match cfg.multivar(COLLABORATOR_KEY, None) {
        Ok(e) => e,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(out),
        Err(e) => return Err(e.message().to_string()),
    };
    while let Some(entry) = entries.next() {
        let entry = entry.map_err(|e| e.message().to_string())?;
        match entry.value() {
            Some(v) => out.push(v.to_string()),
            None if entry.value_bytes().is_empty() => out.push(String::new()),
            None => return Err("a value is not UTF-8".into()),
        }
    }
    Ok(out)
}

/// `NAME read|write` (words separated by blanks, permission ignoring case).
fn parse_collaborator(value: &str) -> Option<(String, Perm)> {
    let mut words = value.split_whitespace();
    let (Some(name), Some(perm), None) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    let perm = Perm::parse(perm)?;
    valid_owner(name).then(|| (name.to_string(), perm))
}

/// `s` as a POSIX extended regular expression matching exactly `s` (libgit2's value patterns).
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if "\\.^$|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A bare repository's folder: `HEAD` a regular file, `objects` and `refs` real folders.
pub(super) fn is_repo_dir(path: &Path) -> bool {
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
pub(super) fn real_dirs(dir: &Path) -> io::Result<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(test: &str) -> (PathBuf, RepoDir) {
        let root =
            std::env::temp_dir().join(format!("forgelet-store-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let path = root.join("alice/r.git");
        git2::Repository::init_bare(&path).unwrap();
        let dir = RepoDir {
            owner: "alice".into(),
            name: "r".into(),
            path,
        };
        (root, dir)
    }

    fn append_config(dir: &RepoDir, text: &str) {
        use std::io::Write;
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(dir.path.join("config"))
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn collaborators_are_granted_changed_and_revoked() {
        let (root, dir) = repo("collab");
        let s = dir.settings();
        assert!(s.collaborators.is_empty() && s.problem.is_none());
        assert!(!dir.set_collaborator("bob", Some(Perm::Read)).unwrap());
        assert!(!dir.set_collaborator("carol.x", Some(Perm::Write)).unwrap());
        assert_eq!(
            dir.settings().collaborators,
            [
                ("bob".to_string(), Perm::Read),
                ("carol.x".to_string(), Perm::Write)
            ]
        );
        // Changing a permission replaces the entry, whatever its spelling.
        assert!(dir.set_collaborator("BOB", Some(Perm::Write)).unwrap());
        let s = dir.settings();
        assert_eq!(s.collaborators.len(), 2, "{:?}", s.collaborators);
        assert!(s.collaborators.contains(&("BOB".to_string(), Perm::Write)));
        // A name that is a regex pattern matches only itself.
        assert!(!dir.set_collaborator("carolxx", None).unwrap());
        assert!(dir.set_collaborator("Carol.X", None).unwrap());
        assert_eq!(
            dir.settings().collaborators,
            [("BOB".to_string(), Perm::Write)]
        );
        dir.set_visibility(Visibility::Private).unwrap();
        let s = dir.settings();
        assert_eq!(s.visibility, Visibility::Private);
        assert!(s.problem.is_none());
        fs::remove_dir_all(&root).unwrap();
    }

    /// A change killed between libgit2's `config.lock` and its rename left the lock behind,
    /// and every later change of the repository's settings failed ("failed to lock file").
    #[test]
    fn a_config_lock_left_by_a_killed_change_does_not_block_the_next() {
        let (root, dir) = repo("stale-config-lock");
        let lock = dir.path.join("config.lock");
        fs::write(&lock, "[core]\n").unwrap();
        fs::File::options()
            .write(true)
            .open(&lock)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - 10 * STALE_CONFIG_LOCK)
            .unwrap();
        dir.set_visibility(Visibility::Private).unwrap();
        assert!(!lock.exists());
        assert_eq!(dir.settings().visibility, Visibility::Private);
        // One made just now (the process died at once): the change waits until it is stale.
        fs::write(&lock, "[core]\n").unwrap();
        let started = std::time::Instant::now();
        assert!(!dir.set_collaborator("bob", Some(Perm::Read)).unwrap());
        assert!(started.elapsed() >= STALE_CONFIG_LOCK);
        assert_eq!(
            dir.settings().collaborators,
            [("bob".to_string(), Perm::Read)]
        );
        assert_eq!(dir.settings().visibility, Visibility::Private);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn bad_collaborator_lines_are_a_problem() {
        for (line, words) in [
            ("bob admin", "is not"),
            ("bob", "is not"),
            ("a/b read", "is not"),
            ("bob read extra", "is not"),
            ("bob read\n\tcollaborator = BOB write", "twice"),
        ] {
            let (root, dir) = repo("bad");
            append_config(&dir, &format!("[forgelet]\n\tcollaborator = {line}\n"));
            let s = dir.settings();
            let p = s.problem.unwrap_or_default();
            assert!(
                p.contains(words) && p.contains("owner and admins"),
                "{line}: {p}"
            );
            // Removing the name clears even a malformed entry.
            dir.set_collaborator("bob", None).unwrap();
            if line.starts_with("bob") {
                assert!(dir.settings().problem.is_none(), "{line}");
            }
            fs::remove_dir_all(&root).unwrap();
        }
    }
}
