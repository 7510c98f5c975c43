//! Repository operations, the same for the command line and the pages: create (empty, or with a
//! first commit adding a README), import an existing bare repository, rename, delete to the
//! trash, visibility, description, collaborators, and giving a repository to another owner.
//! Each refusal or failure is a [`RepoError`], whose message is written here once, in the command
//! line's lower-case style; the command line adds its own hints, the pages make a sentence of it.
//!
//! A new repository is built in a temporary folder inside the repositories folder, then renamed
//! into place under the users lock, its owner checked once more: a crash or a failure never
//! leaves a half-made repository behind, nor one whose owner was deleted meanwhile.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::auth::Accounts;
use crate::config::Config;
use crate::git::names::{valid_name, valid_owner, RESERVED_OWNERS};
use crate::git::{maintenance, Perm, RepoDir, RepoStore, Visibility};

/// Longest description, in characters.
pub(crate) const MAX_DESCRIPTION_CHARS: usize = 300;

/// Why a repository operation was refused, or failed.
#[derive(Debug)]
pub(crate) enum RepoError {
    /// Not `OWNER/NAME` (as typed on the command line).
    NotFullName(String),
    InvalidOwner(String),
    /// A name the first segment of forgelet's own URLs takes.
    ReservedOwner(String),
    InvalidName(String),
    /// The owner named is not a user: repositories belong to users.
    NoSuchOwner(String),
    /// A repository of that name exists (names are unique ignoring case): as spelled on disk.
    Exists {
        owner: String,
        name: String,
    },
    NotFound {
        owner: String,
        name: String,
    },
    /// The user to be made a collaborator does not exist.
    NoSuchUser(String),
    /// The owner cannot be a collaborator of their own repository.
    OwnerHasAccess {
        user: String,
        owner: String,
        name: String,
    },
    NotCollaborator {
        user: String,
        owner: String,
        name: String,
    },
    /// Not one line of at most [`MAX_DESCRIPTION_CHARS`] characters.
    BadDescription,
    /// An import's source cannot be opened.
    CannotOpen {
        path: PathBuf,
        why: String,
    },
    NotAFolder(PathBuf),
    NotBare {
        path: PathBuf,
        /// It has a `.git` entry: a work tree was given.
        work_tree: bool,
    },
    /// The source is inside the repositories folder, or holds it.
    InsideRepos(PathBuf),
    ObjectFormat {
        path: PathBuf,
        format: String,
    },
    RefStorage {
        path: PathBuf,
        backend: String,
    },
    PartialClone(PathBuf),
    BadHead(PathBuf),
    /// A symlink in the source, by its path inside the source.
    Symlink(PathBuf),
    /// A device, socket or fifo in the source, by its path inside the source.
    NotRegularFile(PathBuf),
    /// git's check found objects missing; what git said.
    Incomplete(String),
    /// A purge of this repository (`OWNER/NAME`) is queued or running.
    PurgeRunning(String),
    /// Pushes to this repository (`OWNER/NAME`) were still running when it was to be moved.
    PushRunning(String),
    /// A repository could not be moved to its new owner's folder.
    MoveFailed {
        from: String,
        to: PathBuf,
        why: String,
    },
    /// Something broke that is not the caller's doing (a file that cannot be written, git that
    /// cannot run); the detail.
    Failed(String),
}

const NAME_RULE: &str = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock";

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RepoError::*;
        match self {
            NotFullName(s) => write!(f, "expected OWNER/NAME, found {s:?}"),
            InvalidOwner(o) => write!(f, "the name {o:?} cannot be used for an owner: {NAME_RULE}"),
            ReservedOwner(o) => write!(
                f,
                "the name {o:?} cannot be used for an owner: it is reserved for forgelet's own pages (reserved: {})",
                RESERVED_OWNERS.join(", ")
            ),
            InvalidName(n) => {
                write!(f, "the name {n:?} cannot be used for a repository: {NAME_RULE}")
            }
            NoSuchOwner(o) => write!(f, "there is no user named {o}: repositories belong to users"),
            Exists { owner, name } => write!(
                f,
                "a repository named {owner}/{name} already exists (names are unique ignoring case)"
            ),
            NotFound { owner, name } => write!(f, "there is no repository named {owner}/{name}"),
            NoSuchUser(u) => write!(f, "there is no user named {u}"),
            OwnerHasAccess { user, owner, name } => write!(
                f,
                "nothing to grant: {user} owns {owner}/{name} and may already do everything with it"
            ),
            NotCollaborator { user, owner, name } => {
                write!(f, "{user} is not a collaborator of {owner}/{name}")
            }
            BadDescription => write!(
                f,
                "the description must be one line of at most {MAX_DESCRIPTION_CHARS} characters"
            ),
            CannotOpen { path, why } => write!(f, "cannot open {}: {why}", path.display()),
            NotAFolder(p) => write!(f, "{} is not a folder", p.display()),
            NotBare { path, work_tree } => {
                write!(f, "{} is not a bare git repository", path.display())?;
                if *work_tree {
                    f.write_str(" (it looks like a work tree: give its .git folder, or a `git clone --bare` of it)")?;
                }
                Ok(())
            }
            InsideRepos(p) => write!(
                f,
                "{} is inside the repositories folder (or holds it); import from elsewhere",
                p.display()
            ),
            ObjectFormat { path, format } => write!(
                f,
                "{} uses the {format} object format; forgelet can only serve SHA-1 repositories (libgit2 cannot open others yet)",
                path.display()
            ),
            RefStorage { path, backend } => write!(
                f,
                "{} stores refs as {backend}; forgelet needs the files backend (convert with `git refs migrate --ref-format=files`)",
                path.display()
            ),
            PartialClone(p) => write!(
                f,
                "{} is a partial clone and lacks objects; import a full clone",
                p.display()
            ),
            BadHead(p) => write!(f, "{}/HEAD is not a valid HEAD file", p.display()),
            Symlink(rel) => write!(f, "refusing to import: {} is a symlink", rel.display()),
            NotRegularFile(rel) => write!(
                f,
                "refusing to import: {} is not a regular file",
                rel.display()
            ),
            Incomplete(git_said) => write!(
                f,
                "{git_said}\nthe source repository is missing objects; nothing was imported"
            ),
            PurgeRunning(repo) => write!(f, "a purge of {repo} is running already"),
            PushRunning(repo) => write!(
                f,
                "a push to {repo} is still running; try again when it has finished"
            ),
            MoveFailed { from, to, why } => {
                write!(f, "cannot move {from} to {}: {why}", to.display())
            }
            Failed(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for RepoError {}

// ---------------------------------------------------------------------------------------------
// Names, descriptions, finding repositories

/// Splits `OWNER/NAME` (as typed on the command line; a `.git` suffix is dropped) and checks
/// both parts.
pub(crate) fn parse_full_name(s: &str) -> Result<(String, String), RepoError> {
    let s = s.strip_suffix(".git").unwrap_or(s);
    let Some((owner, name)) = s.split_once('/') else {
        return Err(RepoError::NotFullName(s.to_string()));
    };
    if valid_name(owner) && !valid_owner(owner) {
        return Err(RepoError::ReservedOwner(owner.to_string()));
    }
    if !valid_owner(owner) {
        return Err(RepoError::InvalidOwner(owner.to_string()));
    }
    check_name(name)?;
    Ok((owner.to_string(), name.to_string()))
}

/// Refuses a name a repository cannot have.
pub(crate) fn check_name(name: &str) -> Result<(), RepoError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(RepoError::InvalidName(name.to_string()))
    }
}

/// A description as it is kept: trimmed, one line of at most [`MAX_DESCRIPTION_CHARS`]
/// characters.
pub(crate) fn check_description(text: &str) -> Result<&str, RepoError> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control) {
        return Err(RepoError::BadDescription);
    }
    Ok(text)
}

fn cannot_look(store: &RepoStore, e: io::Error) -> RepoError {
    RepoError::Failed(format!("cannot look in {}: {e}", store.root().display()))
}

/// The repository `owner/name` (names as spelled on disk).
pub(crate) fn locate(store: &RepoStore, owner: &str, name: &str) -> Result<RepoDir, RepoError> {
    match store.locate(owner, name) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(RepoError::NotFound {
            owner: owner.to_string(),
            name: name.to_string(),
        }),
        Err(e) => Err(cannot_look(store, e)),
    }
}

/// Every repository, sorted by owner then name.
pub(crate) fn list(store: &RepoStore) -> Result<Vec<RepoDir>, RepoError> {
    store
        .list()
        .map_err(|e| RepoError::Failed(format!("cannot list {}: {e}", store.root().display())))
}

/// Every repository with its settings and description (see `git::listing`).
pub(crate) fn listing(
    store: &RepoStore,
) -> Result<std::sync::Arc<crate::git::listing::Listing>, RepoError> {
    store
        .listing()
        .map_err(|e| RepoError::Failed(format!("cannot list {}: {e}", store.root().display())))
}

/// The repositories `owner` owns.
pub(crate) fn owned_by(store: &RepoStore, owner: &str) -> Result<Vec<RepoDir>, RepoError> {
    Ok(list(store)?
        .into_iter()
        .filter(|r| r.owner.eq_ignore_ascii_case(owner))
        .collect())
}

fn refuse_existing(store: &RepoStore, owner: &str, name: &str) -> Result<(), RepoError> {
    match store.locate(owner, name) {
        Ok(Some(r)) => Err(RepoError::Exists {
            owner: r.owner,
            name: r.name,
        }),
        Ok(None) => Ok(()),
        Err(e) => Err(cannot_look(store, e)),
    }
}

/// The user `owner` names, as spelled in users.toml.
fn existing_owner(accounts: &Accounts, owner: &str) -> Result<String, RepoError> {
    let users = accounts.users().map_err(RepoError::Failed)?;
    match users.get(owner) {
        Some(u) => Ok(u.name.clone()),
        None => Err(RepoError::NoSuchOwner(owner.to_string())),
    }
}

/// The repository installed at `{root}/{owner}/{name}.git`, named as spelled on disk.
fn repo_at(path: PathBuf) -> RepoDir {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let name = part(Some(&path));
    let owner = part(path.parent());
    RepoDir {
        owner,
        name: name.strip_suffix(".git").unwrap_or(&name).to_string(),
        path,
    }
}

// ---------------------------------------------------------------------------------------------
// Building a repository in a temporary folder, and installing it

/// Makes `{data_dir}/repos` (and `data_dir`) when missing.
fn ensure_repos_dir(config: &Config) -> Result<PathBuf, RepoError> {
    let root = config.repos_dir();
    fs::create_dir_all(&root).map_err(|e| cannot_create(&root, e))?;
    Ok(root)
}

fn cannot_create(path: &Path, e: io::Error) -> RepoError {
    RepoError::Failed(format!("cannot create {}: {e}", path.display()))
}

/// A uniquely named temporary folder inside the repositories folder (dot-named: never a repo name).
fn temp_dir(root: &Path, what: &str) -> Result<TempDir, RepoError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = root.join(format!(".tmp-{what}-{}-{nanos}", std::process::id()));
    fs::create_dir(&path).map_err(|e| cannot_create(&path, e))?;
    Ok(TempDir { path, kept: false })
}

/// Removes its folder when dropped (on any failure), unless it was installed.
struct TempDir {
    path: PathBuf,
    kept: bool,
}

impl TempDir {
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The `config` every forgelet repository has: isolated, fsck on receive, no automatic gc, reflogs.
fn base_config(visibility: Visibility) -> String {
    let v = match visibility {
        Visibility::Public => "public",
        Visibility::Private => "private",
    };
    format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\tlogallrefupdates = true\n\
         [receive]\n\tfsckObjects = true\n\tautogc = false\n\
         [forgelet]\n\tvisibility = {v}\n"
    )
}

/// Writes a file and syncs it.
fn write_file(path: &Path, text: &str) -> Result<(), RepoError> {
    let failed = |e: io::Error| RepoError::Failed(format!("cannot write {}: {e}", path.display()));
    let mut f = fs::File::create(path).map_err(failed)?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(failed)
}

/// Moves a finished temporary repository to its place, making the owner's folder if needed.
fn install(mut tmp: TempDir, dest: &Path) -> Result<(), RepoError> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| cannot_create(parent, e))?;
    }
    if fs::symlink_metadata(dest).is_ok() {
        return Err(RepoError::Failed(format!(
            "{} already exists",
            dest.display()
        )));
    }
    fs::rename(tmp.path(), dest).map_err(|e| {
        RepoError::Failed(format!(
            "cannot move the new repository to {}: {e}",
            dest.display()
        ))
    })?;
    tmp.kept = true;
    Ok(())
}

/// Installs a finished repository for `owner` while holding the users lock, checking once more
/// that the owner exists: a user deletion running meanwhile cannot leave an ownerless
/// repository.
fn install_for_owner(
    accounts: &Accounts,
    store: &RepoStore,
    tmp: TempDir,
    owner: &str,
    name: &str,
) -> Result<RepoDir, RepoError> {
    let locked = accounts.lock().map_err(RepoError::Failed)?;
    if locked.users.get(owner).is_none() {
        return Err(RepoError::NoSuchOwner(owner.to_string()));
    }
    refuse_existing(store, owner, name)?;
    let dest = store
        .path_for_new(owner, name)
        .map_err(|e| cannot_look(store, e))?;
    install(tmp, &dest)?;
    crate::git::listing::changed(&dest);
    Ok(repo_at(dest))
}

// ---------------------------------------------------------------------------------------------
// Create

/// What a new repository is to be.
pub(crate) struct NewRepo<'a> {
    /// A user's name.
    pub(crate) owner: &'a str,
    pub(crate) name: &'a str,
    pub(crate) description: &'a str,
    pub(crate) private: bool,
    /// A first commit on `main` adding a README.md, so the repository is not empty.
    pub(crate) readme: bool,
}

/// Creates a repository: bare, on `main`, empty or with a first commit adding README.md.
pub(crate) fn create(
    config: &Config,
    accounts: &Accounts,
    new: &NewRepo<'_>,
) -> Result<RepoDir, RepoError> {
    let name = new.name;
    check_name(name)?;
    let desc = check_description(new.description)?;
    let owner = existing_owner(accounts, new.owner)?;
    let root = ensure_repos_dir(config)?;
    let store = RepoStore::new(root.clone());
    refuse_existing(&store, &owner, name)?;
    let tmp = temp_dir(&root, "create")?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true)
        .no_reinit(true)
        .mkdir(false)
        .external_template(false)
        .initial_head("main");
    let repo = git2::Repository::init_opts(tmp.path(), &opts).map_err(|e| {
        RepoError::Failed(format!("cannot initialise the repository: {}", e.message()))
    })?;
    // libgit2's built-in template may add sample hooks; forgelet repositories run no hooks.
    let _ = fs::remove_dir_all(tmp.path().join("hooks"));
    let visibility = if new.private {
        Visibility::Private
    } else {
        Visibility::Public
    };
    write_file(&tmp.path().join("config"), &base_config(visibility))?;
    write_file(&tmp.path().join("description"), &format!("{desc}\n"))?;
    if new.readme {
        first_commit(&repo, &owner, name, desc).map_err(|e| {
            RepoError::Failed(format!("cannot write the first commit: {}", e.message()))
        })?;
    }
    drop(repo);
    install_for_owner(accounts, &store, tmp, &owner, name)
}

/// A first commit on `main` adding README.md.
fn first_commit(
    repo: &git2::Repository,
    owner: &str,
    name: &str,
    desc: &str,
) -> Result<(), git2::Error> {
    let text = if desc.is_empty() {
        format!("# {name}\n")
    } else {
        format!("# {name}\n\n{desc}\n")
    };
    let blob = repo.blob(text.as_bytes())?;
    let mut tb = repo.treebuilder(None)?;
    tb.insert("README.md", blob, 0o100644)?;
    let tree = repo.find_tree(tb.write()?)?;
    let sig = git2::Signature::now(owner, &format!("{owner}@forgelet.invalid"))?;
    repo.commit(
        Some("refs/heads/main"),
        &sig,
        &sig,
        "Initial commit",
        &tree,
        &[],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Import

/// A `git` command run with an empty environment (plus `PATH`), shut off from the host's config.
fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    c.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("HOME", "/nonexistent")
        .env("LC_ALL", "C");
    if let Some(d) = dir {
        c.arg("-C").arg(d);
    }
    c
}

/// Runs `c`, returning its output; `what` says what it was for in a failure's message.
fn run_git(mut c: Command, what: &str) -> Result<Vec<u8>, String> {
    let out = c
        .output()
        .map_err(|e| format!("cannot run git to {what}: {e} (is git installed and on PATH?)"))?;
    if !out.status.success() {
        return Err(format!(
            "git failed to {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// Whether git, which imports need, runs.
pub(crate) fn check_git() -> Result<(), RepoError> {
    let mut c = git(None);
    c.arg("--version");
    run_git(c, "print its version")
        .map(|_| ())
        .map_err(RepoError::Failed)
}

/// What an imported repository keeps; everything else (hooks, config, remotes, info, worktrees...) is dropped.
const IMPORT_KEEP: &[&str] = &[
    "HEAD",
    "objects",
    "refs",
    "packed-refs",
    "logs",
    "shallow",
    "description",
];

/// A repository imported, and its source (resolved).
pub(crate) struct Imported {
    pub(crate) repo: RepoDir,
    pub(crate) source: PathBuf,
}

/// Adopts the existing bare repository `src` as `owner/name`, treating it as untrusted data:
/// no symlinks or special files, config rebuilt, no hooks, alternates dissolved. The source is
/// only read.
pub(crate) fn import(
    config: &Config,
    accounts: &Accounts,
    owner: &str,
    name: &str,
    src: &Path,
) -> Result<Imported, RepoError> {
    check_name(name)?;
    let owner = existing_owner(accounts, owner)?;
    let src = fs::canonicalize(src).map_err(|e| RepoError::CannotOpen {
        path: src.to_path_buf(),
        why: e.to_string(),
    })?;
    if !src.is_dir() {
        return Err(RepoError::NotAFolder(src));
    }
    let is = |p: &str, dir: bool| {
        fs::symlink_metadata(src.join(p))
            .map(|m| if dir { m.is_dir() } else { m.is_file() })
            .unwrap_or(false)
    };
    if !(is("HEAD", false) && is("objects", true) && is("refs", true)) {
        let work_tree = src.join(".git").exists();
        return Err(RepoError::NotBare {
            path: src,
            work_tree,
        });
    }
    let root = ensure_repos_dir(config)?;
    if src.starts_with(&root) || root.starts_with(&src) {
        return Err(RepoError::InsideRepos(src));
    }
    let store = RepoStore::new(root.clone());
    refuse_existing(&store, &owner, name)?;

    let settings = read_source_config(&src)?;
    let head = read_head(&src)?;

    let tmp = temp_dir(&root, "import")?;
    for entry in IMPORT_KEEP {
        let from = src.join(entry);
        if fs::symlink_metadata(&from).is_ok() && *entry != "HEAD" {
            copy_tree(&from, &tmp.path().join(entry), &src)?;
        }
    }
    write_file(&tmp.path().join("HEAD"), &head)?;
    write_file(
        &tmp.path().join("config"),
        &base_config(settings.visibility),
    )?;
    if fs::symlink_metadata(tmp.path().join("description")).is_err() {
        write_file(&tmp.path().join("description"), "\n")?;
    }
    // Files the dumb protocol and git itself regenerate; copies could be stale.
    for stale in ["objects/info/packs", "info/refs"] {
        let _ = fs::remove_file(tmp.path().join(stale));
    }

    let alternates = read_alternates(&src)?;
    if !alternates.is_empty() {
        // Borrow the source's alternates just long enough to copy every object into our own pack.
        let list: String = alternates
            .iter()
            .map(|p| format!("{}\n", p.display()))
            .collect();
        let info = tmp.path().join("objects/info");
        fs::create_dir_all(&info).map_err(|e| cannot_create(&info, e))?;
        let alt_file = info.join("alternates");
        write_file(&alt_file, &list)?;
        let mut c = git(Some(tmp.path()));
        c.args(["repack", "-a", "-d", "-q", "-n"]);
        run_git(c, "copy the objects borrowed from alternates").map_err(RepoError::Failed)?;
        fs::remove_file(&alt_file)
            .map_err(|e| RepoError::Failed(format!("cannot remove {}: {e}", alt_file.display())))?;
    }

    let mut c = git(Some(tmp.path()));
    c.args([
        "fsck",
        "--connectivity-only",
        "--no-dangling",
        "--no-progress",
    ]);
    run_git(c, "check the imported repository is complete").map_err(RepoError::Incomplete)?;

    let repo = install_for_owner(accounts, &store, tmp, &owner, name)?;
    Ok(Imported { repo, source: src })
}

struct SourceSettings {
    visibility: Visibility,
}

/// Reads the source's config with git itself (includes off) and refuses what forgelet cannot serve.
fn read_source_config(src: &Path) -> Result<SourceSettings, RepoError> {
    let mut settings = SourceSettings {
        visibility: Visibility::Public,
    };
    let file = src.join("config");
    if fs::symlink_metadata(&file).is_err() {
        return Ok(settings);
    }
    let mut c = git(None);
    c.arg("config")
        .arg("--file")
        .arg(&file)
        .args(["--no-includes", "--null", "--list"]);
    let out = run_git(c, &format!("read {}", file.display())).map_err(RepoError::Failed)?;
    for item in out.split(|&b| b == 0).filter(|i| !i.is_empty()) {
        let item = String::from_utf8_lossy(item);
        let (key, value) = item.split_once('\n').unwrap_or((&item, ""));
        let value = value.trim();
        match key {
            "extensions.objectformat" if !value.eq_ignore_ascii_case("sha1") => {
                return Err(RepoError::ObjectFormat {
                    path: src.to_path_buf(),
                    format: value.to_string(),
                })
            }
            "extensions.refstorage" if !value.eq_ignore_ascii_case("files") => {
                return Err(RepoError::RefStorage {
                    path: src.to_path_buf(),
                    backend: value.to_string(),
                })
            }
            "extensions.partialclone" => return Err(RepoError::PartialClone(src.to_path_buf())),
            "forgelet.visibility" if value.eq_ignore_ascii_case("private") => {
                settings.visibility = Visibility::Private
            }
            _ => {}
        }
    }
    Ok(settings)
}

/// The source's HEAD, checked: a symbolic ref under `refs/` or an object id.
fn read_head(src: &Path) -> Result<String, RepoError> {
    let text = fs::read_to_string(src.join("HEAD"))
        .map_err(|e| RepoError::Failed(format!("cannot read {}/HEAD: {e}", src.display())))?;
    let line = text.trim_end_matches('\n');
    let ok = match line.strip_prefix("ref: ") {
        Some(target) => target.starts_with("refs/") && git2::Reference::is_valid_name(target),
        None => {
            line.len() == 40
                && line
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
    };
    if !ok || line.contains('\n') {
        return Err(RepoError::BadHead(src.to_path_buf()));
    }
    Ok(format!("{line}\n"))
}

/// Copies a file or folder, refusing symlinks met on the way (the source may change under us),
/// leaving out alternates files and lock files.
fn copy_tree(from: &Path, to: &Path, src: &Path) -> Result<(), RepoError> {
    let cannot_read =
        |e: io::Error| RepoError::Failed(format!("cannot read {}: {e}", from.display()));
    let meta = fs::symlink_metadata(from).map_err(cannot_read)?;
    let rel = from.strip_prefix(src).unwrap_or(from);
    if meta.file_type().is_symlink() {
        return Err(RepoError::Symlink(rel.to_path_buf()));
    }
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(|e| cannot_create(to, e))?;
        for e in fs::read_dir(from).map_err(cannot_read)? {
            let e = e.map_err(cannot_read)?;
            let fname = e.file_name();
            let skip = rel == Path::new("objects/info")
                && (fname == "alternates" || fname == "http-alternates");
            if skip || fname.to_string_lossy().ends_with(".lock") {
                continue;
            }
            copy_tree(&e.path(), &to.join(&fname), src)?;
        }
        return Ok(());
    }
    if !meta.is_file() {
        return Err(RepoError::NotRegularFile(rel.to_path_buf()));
    }
    fs::copy(from, to)
        .map_err(|e| RepoError::Failed(format!("cannot copy {}: {e}", rel.display())))?;
    Ok(())
}

/// The absolute object folders listed in the source's `objects/info/alternates`.
fn read_alternates(src: &Path) -> Result<Vec<PathBuf>, RepoError> {
    let file = src.join("objects/info/alternates");
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RepoError::Failed(format!(
                "cannot read {}: {e}",
                file.display()
            )))
        }
    };
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let p = src.join("objects").join(line);
        let p = fs::canonicalize(&p).map_err(|e| {
            RepoError::Failed(format!(
                "{} lists {line}, which cannot be opened: {e}",
                file.display()
            ))
        })?;
        out.push(p);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Rename, delete, settings

/// Waits for running pushes to `repo` to finish and holds new ones off while its folder is
/// moved (see [`maintenance::hold_off_pushes`]).
fn hold_off_pushes(repo: &RepoDir) -> Result<crate::fsfile::FileLock, RepoError> {
    match maintenance::hold_off_pushes(&repo.path, maintenance::WAIT_FOR_PUSHES_TO_MOVE) {
        Ok(Some(lock)) => Ok(lock),
        Ok(None) => Err(RepoError::PushRunning(full_name(repo))),
        Err(e) => Err(RepoError::Failed(format!("{}: {e}", full_name(repo)))),
    }
}

/// Renames `repo` to `new` under the same owner (another spelling of its own name is allowed).
pub(crate) fn rename(store: &RepoStore, repo: &RepoDir, new: &str) -> Result<RepoDir, RepoError> {
    check_name(new)?;
    match store.locate(&repo.owner, new) {
        Ok(Some(other)) if other.path != repo.path => {
            return Err(RepoError::Exists {
                owner: other.owner,
                name: other.name,
            })
        }
        Ok(_) => {}
        Err(e) => return Err(cannot_look(store, e)),
    }
    let dest = repo.path.with_file_name(format!("{new}.git"));
    let _pushes = hold_off_pushes(repo)?;
    fs::rename(&repo.path, &dest).map_err(|e| {
        RepoError::Failed(format!(
            "cannot rename {}/{} to {new}: {e}",
            repo.owner, repo.name
        ))
    })?;
    crate::git::listing::changed(&dest);
    Ok(RepoDir {
        owner: repo.owner.clone(),
        name: new.to_string(),
        path: dest,
    })
}

/// Moves `repo` to `{data_dir}/trash/{owner}-{name}-{unix time}.git`, from where the sysadmin
/// can bring it back; returns that path.
pub(crate) fn delete_to_trash(config: &Config, repo: &RepoDir) -> Result<PathBuf, RepoError> {
    let trash = config.data_dir.join("trash");
    let dest = trash.join(format!(
        "{}-{}-{}.git",
        repo.owner,
        repo.name,
        crate::time::now()
    ));
    let _pushes = hold_off_pushes(repo)?;
    fs::create_dir_all(&trash)
        .and_then(|_| fs::rename(&repo.path, &dest))
        .map_err(|e| {
            RepoError::Failed(format!(
                "cannot move {}/{} to {}: {e}",
                repo.owner,
                repo.name,
                dest.display()
            ))
        })?;
    crate::git::listing::changed(&repo.path);
    // Its cached answers go with it (the identity is kept, in the trash).
    let store = crate::packcache::store::Store::new(&config.pack_cache.dir);
    if let Err(e) = crate::packcache::identity::clear_entries(&dest, &store) {
        log::warn!("{}/{}: {e}", repo.owner, repo.name);
    }
    Ok(dest)
}

/// Sets who may read `repo`.
pub(crate) fn set_visibility(repo: &RepoDir, visibility: Visibility) -> Result<(), RepoError> {
    repo.set_visibility(visibility).map_err(RepoError::Failed)
}

/// Replaces `repo`'s description (see [`check_description`]).
pub(crate) fn set_description(repo: &RepoDir, text: &str) -> Result<(), RepoError> {
    let text = check_description(text)?;
    crate::fsfile::replace(
        &repo.path.join("description"),
        format!("{text}\n").as_bytes(),
        0o644,
    )
    .map_err(RepoError::Failed)?;
    crate::git::listing::changed(&repo.path);
    Ok(())
}

/// A collaborator granted a permission.
pub(crate) struct Granted {
    /// The user's name as spelled in users.toml.
    pub(crate) user: String,
    pub(crate) repo: RepoDir,
    /// The user was a collaborator already (the permission is replaced).
    pub(crate) before: bool,
}

/// Makes `user` (who must exist, and not own the repository) a collaborator of `owner/name`
/// with `perm`. The users lock is held throughout, so the user cannot be deleted between the
/// check and the grant.
pub(crate) fn grant(
    accounts: &Accounts,
    store: &RepoStore,
    owner: &str,
    name: &str,
    user: &str,
    perm: Perm,
) -> Result<Granted, RepoError> {
    let locked = accounts.lock().map_err(RepoError::Failed)?;
    let repo = locate(store, owner, name)?;
    let Some(u) = locked.users.get(user) else {
        return Err(RepoError::NoSuchUser(user.to_string()));
    };
    if u.name.eq_ignore_ascii_case(&repo.owner) {
        return Err(RepoError::OwnerHasAccess {
            user: u.name.clone(),
            owner: repo.owner,
            name: repo.name,
        });
    }
    let before = repo
        .set_collaborator(&u.name, Some(perm))
        .map_err(RepoError::Failed)?;
    Ok(Granted {
        user: u.name.clone(),
        repo,
        before,
    })
}

/// Removes `user` (who need not exist any more: a stale entry goes too) from the collaborators
/// of `owner/name`, under the users lock.
pub(crate) fn revoke(
    accounts: &Accounts,
    store: &RepoStore,
    owner: &str,
    name: &str,
    user: &str,
) -> Result<RepoDir, RepoError> {
    let _locked = accounts.lock().map_err(RepoError::Failed)?;
    let repo = locate(store, owner, name)?;
    if !repo
        .set_collaborator(user, None)
        .map_err(RepoError::Failed)?
    {
        return Err(RepoError::NotCollaborator {
            user: user.to_string(),
            owner: repo.owner,
            name: repo.name,
        });
    }
    Ok(repo)
}

// ---------------------------------------------------------------------------------------------
// Another owner

/// The repositories of `heir` that have the name of one of `repos` (what would stop giving them
/// to `heir`), as `owner/name`.
pub(crate) fn name_clashes(
    store: &RepoStore,
    repos: &[RepoDir],
    heir: &str,
) -> Result<Vec<String>, RepoError> {
    let mut clashes = Vec::new();
    for r in repos {
        if let Some(c) = store
            .locate(heir, &r.name)
            .map_err(|e| cannot_look(store, e))?
        {
            clashes.push(format!("{}/{}", c.owner, c.name));
        }
    }
    Ok(clashes)
}

/// Gives `repo` to the user `heir` (its name kept), who then needs no collaborator entry of
/// their own in it. The caller holds the users lock and has checked [`name_clashes`].
pub(crate) fn give(store: &RepoStore, repo: &RepoDir, heir: &str) -> Result<RepoDir, RepoError> {
    let dest = store
        .path_for_new(heir, &repo.name)
        .map_err(|e| cannot_look(store, e))?;
    let moved = |e: io::Error| RepoError::MoveFailed {
        from: format!("{}/{}", repo.owner, repo.name),
        to: dest.clone(),
        why: e.to_string(),
    };
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(moved)?;
    }
    let _pushes = hold_off_pushes(repo)?;
    fs::rename(&repo.path, &dest).map_err(moved)?;
    crate::git::listing::changed(&dest);
    let given = repo_at(dest);
    given
        .set_collaborator(heir, None)
        .map_err(RepoError::Failed)?;
    Ok(given)
}

/// Starts `forgelet repo purge` for `repo` in a process of its own, which outlives the request
/// that asked (and, under CGI, its process) and writes its progress where
/// `git::maintenance::status` reads it. Refused while a purge of it is queued or running.
pub(crate) fn start_purge(config: &Config, repo: &RepoDir) -> Result<(), RepoError> {
    if matches!(
        maintenance::status(&repo.path),
        maintenance::Status::Running { .. } | maintenance::Status::Queued { .. }
    ) {
        return Err(RepoError::PurgeRunning(full_name(repo)));
    }
    start_forgelet(
        config,
        &["repo", "purge", &full_name(repo)],
        true,
        "a purge",
    )
}

/// Starts `forgelet maintain --auto OWNER/NAME` in the background when a push left `repo`
/// worth maintaining (`[maintenance] auto_packs` packs or `auto_loose` loose objects) and no
/// maintenance of it runs; true when it started one. Quick (a look at the object folders and
/// a process started, not waited for): a push calls it once its answer is written. The run
/// writes nothing where a request's output goes (under CGI the web server waits for those
/// to close); its outcome is in the repository's `forgelet-maintain.status`.
pub(crate) fn start_maintenance(config: &Config, repo: &RepoDir) -> Result<bool, RepoError> {
    let m = &config.maintenance;
    if !m.auto || !maintenance::worth_maintaining(&repo.path, m.auto_packs, m.auto_loose) {
        return Ok(false);
    }
    start_forgelet(
        config,
        &["maintain", "--auto", &full_name(repo)],
        false,
        "maintenance",
    )?;
    Ok(true)
}

/// Starts forgelet itself with `args` in a process group of its own, from an empty
/// environment but `PATH`, not waited for (a thread reaps it). Its output goes to forgelet's
/// log when `log` (stderr: the journal, or the web server's error log under CGI, whose stdout
/// is the answer and must not be written to), else nowhere.
fn start_forgelet(config: &Config, args: &[&str], log: bool, what: &str) -> Result<(), RepoError> {
    let failed = |why: &str, e: io::Error| RepoError::Failed(format!("{why}: {e}"));
    let exe = std::env::current_exe().map_err(|e| failed("cannot find forgelet's binary", e))?;
    let mut c = std::process::Command::new(exe);
    c.arg("--config")
        .arg(&config.file)
        .args(args)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .stdin(std::process::Stdio::null());
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) if log => {
            let copy = fd
                .try_clone()
                .map_err(|e| failed(&format!("cannot pass the log to {what}"), e))?;
            c.stdout(std::process::Stdio::from(fd))
                .stderr(std::process::Stdio::from(copy));
        }
        _ => {
            c.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
    }
    std::os::unix::process::CommandExt::process_group(&mut c, 0);
    let mut child = c
        .spawn()
        .map_err(|e| failed(&format!("cannot start {what}"), e))?;
    // Reaped when it ends, so no zombie is left behind.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// Removes the temporary copies of the users file (and of anything else forgelet writes in the
/// data directory) that writes killed in their middle left behind, an hour or more ago (a write
/// takes milliseconds); their paths.
pub(crate) fn remove_stale_temps(config: &Config) -> Result<Vec<PathBuf>, RepoError> {
    crate::fsfile::remove_stale_temps(&config.data_dir, std::time::Duration::from_secs(3600))
        .map_err(RepoError::Failed)
}

/// Removes the repositories in `{data_dir}/trash` deleted more than `days` days ago (by the
/// time in their names, else their folder's; `days` 0 keeps them all); the paths removed.
pub(crate) fn empty_trash(config: &Config, days: u32) -> Result<Vec<PathBuf>, RepoError> {
    let trash = config.data_dir.join("trash");
    if days == 0 {
        return Ok(Vec::new());
    }
    let entries = match fs::read_dir(&trash) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RepoError::Failed(format!(
                "cannot read {}: {e}",
                trash.display()
            )))
        }
    };
    let cutoff = crate::time::now().saturating_sub(u64::from(days) * 86_400);
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `{owner}-{name}-{unix time}.git`, as `delete_to_trash` names it.
        let named = name
            .strip_suffix(".git")
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, t)| t.parse::<u64>().ok());
        let modified = || {
            e.metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
        };
        let Some(deleted) = named.or_else(modified) else {
            continue;
        };
        if deleted >= cutoff {
            continue;
        }
        let path = e.path();
        let gone = if e.file_type().is_ok_and(|t| t.is_dir()) {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        gone.map_err(|e| RepoError::Failed(format!("cannot remove {}: {e}", path.display())))?;
        removed.push(path);
    }
    Ok(removed)
}

/// `OWNER/NAME`.
fn full_name(repo: &RepoDir) -> String {
    format!("{}/{}", repo.owner, repo.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_names() {
        assert_eq!(
            parse_full_name("alice/proj.git").unwrap(),
            ("alice".into(), "proj".into())
        );
        assert!(matches!(
            parse_full_name("alice"),
            Err(RepoError::NotFullName(_))
        ));
        assert!(matches!(
            parse_full_name("alice/a/b"),
            Err(RepoError::InvalidName(n)) if n == "a/b"
        ));
        assert!(matches!(
            parse_full_name("login/x"),
            Err(RepoError::ReservedOwner(o)) if o == "login"
        ));
        assert!(matches!(
            parse_full_name("-x/y"),
            Err(RepoError::InvalidOwner(_))
        ));
    }

    #[test]
    fn descriptions_are_one_trimmed_line_of_at_most_300_characters() {
        assert_eq!(check_description("  fine  ").unwrap(), "fine");
        assert_eq!(check_description("").unwrap(), "");
        let most = "é".repeat(MAX_DESCRIPTION_CHARS);
        assert_eq!(check_description(&most).unwrap(), most);
        for bad in [
            format!("{most}x"),
            "two\nlines".to_string(),
            "a\ttab".to_string(),
        ] {
            assert!(
                matches!(check_description(&bad), Err(RepoError::BadDescription)),
                "{bad:?}"
            );
        }
    }
}
