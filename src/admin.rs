//! Admin commands on the same files the server reads: `user`, `token`, `repo` and `check`.
//! They write atomically (a repository is built in a temporary folder inside the repositories
//! folder, then renamed; users.toml and repository configs are replaced whole), so a crash or a
//! failed command never leaves a half-made repository or a half-written file behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::auth::{self, password, token, Accounts, User};
use crate::config::Config;
use crate::git::names::{parse_full_name, valid_name, valid_owner};
use crate::git::{Perm, RepoDir, RepoStore, Visibility};

/// An admin command's failure, as the message printed for the sysadmin.
pub(crate) type AdminResult = Result<(), String>;

/// Refuses to write data owned by another user: files made by root in a folder the server reads as
/// `forgelet` would later be unreadable or unwritable to it.
fn check_owner(config: &Config) -> AdminResult {
    let euid = unsafe { libc::geteuid() };
    match fs::metadata(&config.data_dir) {
        Ok(m) if m.uid() != euid => Err(format!(
            "{} belongs to uid {}, but this command runs as uid {euid}; run it as the data directory's owner (e.g. sudo -u forgelet forgelet ...)",
            config.data_dir.display(),
            m.uid()
        )),
        _ => Ok(()),
    }
}

/// Makes `{data_dir}/repos` (and `data_dir`) when missing.
fn ensure_repos_dir(config: &Config) -> Result<PathBuf, String> {
    let root = config.repos_dir();
    fs::create_dir_all(&root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    Ok(root)
}

/// A uniquely named temporary folder inside the repositories folder (dot-named: never a repo name).
fn temp_dir(root: &Path, what: &str) -> Result<TempDir, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = root.join(format!(".tmp-{what}-{}-{nanos}", std::process::id()));
    fs::create_dir(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
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
fn write_file(path: &Path, text: &str) -> Result<(), String> {
    let mut f =
        fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Moves a finished temporary repository to its place, making the owner's folder if needed.
fn install(mut tmp: TempDir, dest: &Path) -> AdminResult {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if fs::symlink_metadata(dest).is_ok() {
        return Err(format!("{} already exists", dest.display()));
    }
    fs::rename(tmp.path(), dest)
        .map_err(|e| format!("cannot move the new repository to {}: {e}", dest.display()))?;
    tmp.kept = true;
    Ok(())
}

/// `owner/name` as spelled on disk, from `{root}/{owner}/{name}.git`.
fn full_name_of(dest: &Path) -> String {
    let part = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let name = part(Some(dest));
    let owner = part(dest.parent());
    format!("{owner}/{}", name.strip_suffix(".git").unwrap_or(&name))
}

fn refuse_existing(store: &RepoStore, owner: &str, name: &str) -> AdminResult {
    match store.locate(owner, name) {
        Ok(Some(r)) => Err(format!(
            "a repository named {}/{} already exists (names are unique ignoring case)",
            r.owner, r.name
        )),
        Ok(None) => Ok(()),
        Err(e) => Err(format!("cannot look in {}: {e}", store.root().display())),
    }
}

/// `forgelet repo create OWNER/NAME [--private] [--description TEXT]`: an empty bare repository
/// on `main`, owned by an existing user.
pub(crate) fn repo_create(
    config: &Config,
    full: &str,
    description: Option<&str>,
    private: bool,
) -> AdminResult {
    let (owner, name) = parse_full_name(full)?;
    check_owner(config)?;
    let accounts = open_accounts(config)?;
    let dest = create_repo(
        config,
        &accounts,
        &owner,
        &name,
        description,
        private,
        false,
    )?;
    let vis = if private { " (private)" } else { "" };
    println!("created {}{vis} at {}", full_name_of(&dest), dest.display());
    Ok(())
}

/// Creates `owner/name` (the owner must be a user): an empty bare repository on `main`, or, with
/// `readme`, one whose first commit adds a README.md. Shared by `repo create` and the web's
/// "New repository" page; returns where it was installed.
pub(crate) fn create_repo(
    config: &Config,
    accounts: &Accounts,
    owner: &str,
    name: &str,
    description: Option<&str>,
    private: bool,
    readme: bool,
) -> Result<PathBuf, String> {
    let owner = existing_owner(accounts, owner)?;
    let desc = description.unwrap_or("").trim();
    if desc.chars().any(char::is_control) {
        return Err("the description must be one line of text".into());
    }
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
    let repo = git2::Repository::init_opts(tmp.path(), &opts)
        .map_err(|e| format!("cannot initialise the repository: {}", e.message()))?;
    // libgit2's built-in template may add sample hooks; forgelet repositories run no hooks.
    let _ = fs::remove_dir_all(tmp.path().join("hooks"));
    let visibility = if private {
        Visibility::Private
    } else {
        Visibility::Public
    };
    write_file(&tmp.path().join("config"), &base_config(visibility))?;
    write_file(&tmp.path().join("description"), &format!("{desc}\n"))?;
    if readme {
        first_commit(&repo, &owner, name, desc)
            .map_err(|e| format!("cannot write the first commit: {}", e.message()))?;
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

/// The user `owner` names (as spelled in users.toml), or why there is none.
fn existing_owner(accounts: &Accounts, owner: &str) -> Result<String, String> {
    let users = accounts.users()?;
    match users.get(owner) {
        Some(u) => Ok(u.name.clone()),
        None => Err(no_owner_message(owner)),
    }
}

fn no_owner_message(owner: &str) -> String {
    format!("there is no user named {owner}: repositories belong to users; add one first with `forgelet user add {owner}`")
}

/// Installs a finished repository for `owner` while holding the users lock, checking once more
/// that the owner exists: a `user del` running meanwhile cannot leave an ownerless repository.
fn install_for_owner(
    accounts: &Accounts,
    store: &RepoStore,
    tmp: TempDir,
    owner: &str,
    name: &str,
) -> Result<PathBuf, String> {
    let locked = accounts.lock()?;
    if locked.users.get(owner).is_none() {
        return Err(no_owner_message(owner));
    }
    refuse_existing(store, owner, name)?;
    let dest = store
        .path_for_new(owner, name)
        .map_err(|e| format!("cannot look in {}: {e}", store.root().display()))?;
    install(tmp, &dest)?;
    Ok(dest)
}

/// `forgelet repo list`: one line per repository: `owner/name<TAB>visibility<TAB>description`.
pub(crate) fn repo_list(config: &Config) -> AdminResult {
    let store = RepoStore::new(config.repos_dir());
    let repos = store
        .list()
        .map_err(|e| format!("cannot list {}: {e}", store.root().display()))?;
    let mut out = io::stdout().lock();
    for r in repos {
        let vis = match r.settings().visibility {
            Visibility::Public => "public",
            Visibility::Private => "private",
        };
        let _ = writeln!(out, "{}/{}\t{vis}\t{}", r.owner, r.name, r.description());
    }
    Ok(())
}

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

/// `forgelet repo import OWNER/NAME PATH [--move]`: adopts an existing bare repository as untrusted
/// data: no symlinks or special files, config rebuilt, no hooks, alternates dissolved.
pub(crate) fn repo_import(config: &Config, full: &str, src: &Path, move_src: bool) -> AdminResult {
    let (owner, name) = parse_full_name(full)?;
    check_owner(config)?;
    let accounts = open_accounts(config)?;
    let owner = existing_owner(&accounts, &owner)?;
    let src = fs::canonicalize(src).map_err(|e| format!("cannot open {}: {e}", src.display()))?;
    if !src.is_dir() {
        return Err(format!("{} is not a folder", src.display()));
    }
    let is = |p: &str, dir: bool| {
        fs::symlink_metadata(src.join(p))
            .map(|m| if dir { m.is_dir() } else { m.is_file() })
            .unwrap_or(false)
    };
    if !(is("HEAD", false) && is("objects", true) && is("refs", true)) {
        let hint = if src.join(".git").exists() {
            " (it looks like a work tree: give its .git folder, or a `git clone --bare` of it)"
        } else {
            ""
        };
        return Err(format!(
            "{} is not a bare git repository{hint}",
            src.display()
        ));
    }
    let root = ensure_repos_dir(config)?;
    if src.starts_with(&root) || root.starts_with(&src) {
        return Err(format!(
            "{} is inside the repositories folder (or holds it); import from elsewhere",
            src.display()
        ));
    }
    let store = RepoStore::new(root.clone());
    refuse_existing(&store, &owner, &name)?;

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
        let alt_file = tmp.path().join("objects/info/alternates");
        fs::create_dir_all(tmp.path().join("objects/info")).map_err(|e| e.to_string())?;
        write_file(&alt_file, &list)?;
        let mut c = git(Some(tmp.path()));
        c.args(["repack", "-a", "-d", "-q", "-n"]);
        run_git(c, "copy the objects borrowed from alternates")?;
        fs::remove_file(&alt_file)
            .map_err(|e| format!("cannot remove {}: {e}", alt_file.display()))?;
    }

    let mut c = git(Some(tmp.path()));
    c.args([
        "fsck",
        "--connectivity-only",
        "--no-dangling",
        "--no-progress",
    ]);
    run_git(c, "check the imported repository is complete").map_err(|e| {
        format!("{e}\nthe source repository is missing objects; nothing was imported")
    })?;

    let dest = install_for_owner(&accounts, &store, tmp, &owner, &name)?;
    if move_src {
        fs::remove_dir_all(&src).map_err(|e| {
            format!(
                "imported {owner}/{name}, but could not remove the source {}: {e}",
                src.display()
            )
        })?;
    }
    println!("imported {} at {}", full_name_of(&dest), dest.display());
    Ok(())
}

struct SourceSettings {
    visibility: Visibility,
}

/// Reads the source's config with git itself (includes off) and refuses what forgelet cannot serve.
fn read_source_config(src: &Path) -> Result<SourceSettings, String> {
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
    let out = run_git(c, &format!("read {}", file.display()))?;
    for item in out.split(|&b| b == 0).filter(|i| !i.is_empty()) {
        let item = String::from_utf8_lossy(item);
        let (key, value) = item.split_once('\n').unwrap_or((&item, ""));
        let value = value.trim();
        match key {
            "extensions.objectformat" if !value.eq_ignore_ascii_case("sha1") => {
                return Err(format!(
                    "{} uses the {value} object format; forgelet can only serve SHA-1 repositories (libgit2 cannot open others yet)",
                    src.display()
                ))
            }
            "extensions.refstorage" if !value.eq_ignore_ascii_case("files") => {
                return Err(format!(
                    "{} stores refs as {value}; forgelet needs the files backend (convert with `git refs migrate --ref-format=files`)",
                    src.display()
                ))
            }
            "extensions.partialclone" => {
                return Err(format!(
                    "{} is a partial clone and lacks objects; import a full clone",
                    src.display()
                ))
            }
            "forgelet.visibility" if value.eq_ignore_ascii_case("private") => {
                settings.visibility = Visibility::Private
            }
            _ => {}
        }
    }
    Ok(settings)
}

/// The source's HEAD, checked: a symbolic ref under `refs/` or an object id.
fn read_head(src: &Path) -> Result<String, String> {
    let text = fs::read_to_string(src.join("HEAD"))
        .map_err(|e| format!("cannot read {}/HEAD: {e}", src.display()))?;
    let line = text.trim_end_matches('\n');
    let ok = match line.strip_prefix("ref: ") {
        Some(target) => target.starts_with("refs/") && git2::Reference::is_valid_name(target),
        None => crate::git_http::dumb::is_hex(line, 40),
    };
    if !ok || line.contains('\n') {
        return Err(format!("{}/HEAD is not a valid HEAD file", src.display()));
    }
    Ok(format!("{line}\n"))
}

/// Copies a file or folder, refusing symlinks met on the way (the source may change under us),
/// leaving out alternates files and lock files.
fn copy_tree(from: &Path, to: &Path, src: &Path) -> AdminResult {
    let meta =
        fs::symlink_metadata(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
    let rel = from.strip_prefix(src).unwrap_or(from);
    if meta.file_type().is_symlink() {
        return Err(format!(
            "refusing to import: {} is a symlink",
            rel.display()
        ));
    }
    if meta.is_dir() {
        fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
        let entries =
            fs::read_dir(from).map_err(|e| format!("cannot read {}: {e}", from.display()))?;
        for e in entries {
            let e = e.map_err(|e| format!("cannot read {}: {e}", from.display()))?;
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
        return Err(format!(
            "refusing to import: {} is not a regular file",
            rel.display()
        ));
    }
    fs::copy(from, to).map_err(|e| format!("cannot copy {}: {e}", rel.display()))?;
    Ok(())
}

/// The absolute object folders listed in the source's `objects/info/alternates`.
fn read_alternates(src: &Path) -> Result<Vec<PathBuf>, String> {
    let file = src.join("objects/info/alternates");
    let text = match fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let p = src.join("objects").join(line);
        let p = fs::canonicalize(&p).map_err(|e| {
            format!(
                "{} lists {line}, which cannot be opened: {e}",
                file.display()
            )
        })?;
        out.push(p);
    }
    Ok(out)
}

/// `forgelet check`: the config (already loaded by the caller) and the data directory.
pub(crate) fn check(config: &Config) -> AdminResult {
    let mut problems = Vec::new();
    match fs::metadata(&config.data_dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => problems.push(format!(
            "data_dir {} is not a folder",
            config.data_dir.display()
        )),
        Err(e) => problems.push(format!(
            "data_dir {}: {e} (create it, owned by the user forgelet runs as)",
            config.data_dir.display()
        )),
    }
    let users = check_users_files(config, &mut problems);
    let mut warnings = Vec::new();
    let store = RepoStore::new(config.repos_dir());
    let mut count = 0;
    match store.list() {
        Ok(repos) => {
            for r in repos {
                count += 1;
                if users.as_ref().is_some_and(|u| u.get(&r.owner).is_none()) {
                    warnings.push(format!(
                        "{}/{}: its owner {} is not a user, so nobody may manage it or push to it (add the user with `forgelet user add {}`)",
                        r.owner, r.name, r.owner, r.owner
                    ));
                }
                let settings = r.settings();
                if let Some(p) = settings.problem {
                    problems.push(format!("{}/{}: {p}", r.owner, r.name));
                }
                if let Some(f) = settings.unsupported_format {
                    problems.push(format!(
                        "{}/{}: uses the {f} object format; only SHA-1 repositories are served",
                        r.owner, r.name
                    ));
                } else if let Err(e) = r.open() {
                    problems.push(format!(
                        "{}/{}: cannot be opened: {}",
                        r.owner,
                        r.name,
                        e.message()
                    ));
                }
            }
        }
        Err(e) => problems.push(format!("cannot list {}: {e}", store.root().display())),
    }
    if let Some(group) = &config.server.socket_group {
        if crate::fcgi::group_id(group).is_err() {
            problems.push(format!(
                "server.socket_group: there is no group named {group:?} on this system"
            ));
        }
    }
    if let Some(path) = config.server.listen.strip_prefix("unix:") {
        if let Some(dir) = Path::new(path).parent() {
            if !dir.is_dir() {
                // Not fatal: systemd's RuntimeDirectory= makes it when the service starts.
                println!(
                    "note: server.listen: the folder {} for the socket does not exist yet",
                    dir.display()
                );
            }
        }
    }
    if let Err(e) = run_git(
        {
            let mut c = git(None);
            c.arg("--version");
            c
        },
        "print its version",
    ) {
        problems.push(e);
    }
    for w in &warnings {
        println!("warning: {w}");
    }
    if problems.is_empty() {
        let noun = if count == 1 {
            "repository"
        } else {
            "repositories"
        };
        println!(
            "{}: ok ({count} {noun} in {})",
            config.file.display(),
            store.root().display()
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The users file parses and, like the secret, is private to its owner. Returns the users when
/// they could be read (none when there is no file yet).
fn check_users_files(config: &Config, problems: &mut Vec<String>) -> Option<auth::Users> {
    for name in ["users.toml", "secret"] {
        let path = config.data_dir.join(name);
        if let Ok(m) = fs::metadata(&path) {
            if m.mode() & 0o077 != 0 {
                problems.push(format!(
                    "{} can be read by other users (mode {:o}); make it private with `chmod 600 {}`",
                    path.display(),
                    m.mode() & 0o7777,
                    path.display()
                ));
            }
        }
    }
    let path = config.data_dir.join("users.toml");
    match fs::read(&path) {
        Ok(bytes) => {
            let parsed = String::from_utf8(bytes)
                .map_err(|_| format!("{}: the file is not UTF-8 text", path.display()))
                .and_then(|text| auth::Users::parse(&path, &text));
            match parsed {
                Ok(u) => Some(u),
                Err(e) => {
                    problems.push(e);
                    None
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(auth::Users::default()),
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Command-line arguments of the admin commands

/// A subcommand's arguments: positional words, flags given, and option values.
#[derive(Debug, Default)]
pub(crate) struct Args {
    pub(crate) positional: Vec<String>,
    flags: Vec<&'static str>,
    options: Vec<(&'static str, String)>,
}

impl Args {
    /// Splits `words` into positional words, the `flags` (`--x`) and `options` (`--x VALUE` or
    /// `--x=VALUE`) this command takes; anything else starting with `--` is refused.
    pub(crate) fn parse(
        words: &[String],
        flags: &[&'static str],
        options: &[&'static str],
        command: &str,
    ) -> Result<Args, String> {
        let mut out = Args::default();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            i += 1;
            if !w.starts_with("--") || w == "--" {
                out.positional.push(w.clone());
                continue;
            }
            let (key, inline) = match w.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (w.as_str(), None),
            };
            if let Some(f) = flags.iter().find(|f| **f == key) {
                if inline.is_some() {
                    return Err(format!("{f} takes no value"));
                }
                if !out.flags.contains(f) {
                    out.flags.push(f);
                }
            } else if let Some(o) = options.iter().find(|o| **o == key) {
                let value = match inline {
                    Some(v) => v,
                    None if i < words.len() => {
                        i += 1;
                        words[i - 1].clone()
                    }
                    None => return Err(format!("{o} needs a value")),
                };
                if out.options.iter().any(|(k, _)| k == o) {
                    return Err(format!("{o} is given twice"));
                }
                out.options.push((o, value));
            } else {
                return Err(format!("unknown option {key} for {command}"));
            }
        }
        Ok(out)
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    pub(crate) fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Users and tokens

/// The data directory's accounts, for a command run as the data directory's owner.
fn open_accounts(config: &Config) -> Result<Accounts, String> {
    check_owner(config)?;
    fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    Accounts::open(&config.data_dir)
}

fn no_user_message(name: &str) -> String {
    format!("there is no user named {name} (see `forgelet user list`)")
}

/// Sets the terminal back as it was when dropped, and when the process is interrupted.
struct EchoOff {
    saved: libc::termios,
}

/// The terminal settings to restore if a signal ends the process while echo is off.
static SAVED_TERMIOS: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

extern "C" fn restore_and_die(sig: libc::c_int) {
    // Only async-signal-safe calls here.
    if let Some(t) = SAVED_TERMIOS.get() {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

impl EchoOff {
    fn new() -> Result<EchoOff, String> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return Err(format!(
                "cannot read the terminal's settings: {}",
                io::Error::last_os_error()
            ));
        }
        let _ = SAVED_TERMIOS.set(saved);
        let handler = restore_and_die as extern "C" fn(libc::c_int);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            unsafe { libc::signal(sig, handler as libc::sighandler_t) };
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        if unsafe { libc::tcsetattr(0, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(format!(
                "cannot turn off the terminal's echo: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// One line from standard input, without its line ending; `None` at end of input.
fn read_line_stdin() -> Result<Option<String>, String> {
    use io::BufRead;
    let mut line = Vec::new();
    let n = io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| "the password is not UTF-8 text".to_string())
}

fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    let echo = EchoOff::new()?;
    let line = read_line_stdin();
    drop(echo);
    line?.ok_or_else(|| "no password given".to_string())
}

/// A new password for `name`: one line of standard input with `--password-stdin`, else asked
/// twice on the terminal without echo.
fn read_new_password(name: &str, from_stdin: bool) -> Result<String, String> {
    let password = if from_stdin {
        read_line_stdin()?
            .ok_or("no password on standard input (--password-stdin reads one line)")?
    } else {
        if unsafe { libc::isatty(0) } != 1 {
            return Err("standard input is not a terminal, so forgelet cannot ask for the password; give it on standard input with --password-stdin (one line)".into());
        }
        let first = prompt_hidden(&format!("New password for {name}: "))?;
        password::check_new(&first)?;
        let again = prompt_hidden("Type it again: ")?;
        if again != first {
            return Err("the two passwords differ; nothing was changed".into());
        }
        first
    };
    password::check_new(&password)?;
    Ok(password)
}

/// `forgelet user add NAME [--admin] [--password-stdin]`.
pub(crate) fn user_add(
    config: &Config,
    name: &str,
    admin: bool,
    password_stdin: bool,
) -> AdminResult {
    if valid_name(name) && !valid_owner(name) {
        return Err(format!(
            "{name:?} cannot be a user name: it is reserved for forgelet's own pages (a user's name is the first part of their repositories' URLs)"
        ));
    }
    if !valid_owner(name) {
        return Err(format!(
            "invalid user name {name:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock"
        ));
    }
    let accounts = open_accounts(config)?;
    if let Some(u) = accounts.users()?.get(name) {
        return Err(format!(
            "there is already a user named {} (names are unique ignoring case)",
            u.name
        ));
    }
    let password = read_new_password(name, password_stdin)?;
    // Hashing is slow: done before the lock is taken, so others do not wait for it.
    let hash = password::hash(&password)?;
    let user = User {
        name: name.to_string(),
        admin,
        stamp: auth::users::new_stamp()?,
        password_hash: hash,
        tokens: Vec::new(),
    };
    accounts.update(|users| users.add(user))?;
    let role = if admin { " (site admin)" } else { "" };
    println!("added user {name}{role}");
    Ok(())
}

/// `forgelet user passwd NAME [--password-stdin]`: a new password and a new stamp, which ends
/// the user's sessions.
pub(crate) fn user_passwd(config: &Config, name: &str, password_stdin: bool) -> AdminResult {
    let accounts = open_accounts(config)?;
    let shown = match accounts.users()?.get(name) {
        Some(u) => u.name.clone(),
        None => return Err(no_user_message(name)),
    };
    let password = read_new_password(&shown, password_stdin)?;
    let hash = password::hash(&password)?;
    let stamp = auth::users::new_stamp()?;
    accounts.update(|users| {
        let u = users.get_mut(name).ok_or_else(|| no_user_message(name))?;
        u.password_hash = hash;
        u.stamp = stamp;
        Ok(())
    })?;
    println!("changed the password of {shown}; their web sessions have ended");
    Ok(())
}

/// `forgelet user list`: `name<TAB>admin|user<TAB>N tokens`.
pub(crate) fn user_list(config: &Config) -> AdminResult {
    let accounts = open_accounts(config)?;
    let users = accounts.users()?;
    let mut out = io::stdout().lock();
    for u in users.iter() {
        let role = if u.admin { "admin" } else { "user" };
        let n = u.tokens.len();
        let noun = if n == 1 { "token" } else { "tokens" };
        let _ = writeln!(out, "{}\t{role}\t{n} {noun}", u.name);
    }
    Ok(())
}

/// `forgelet user del NAME [--reassign USER]`: refused while NAME owns repositories, unless they
/// move to USER; NAME leaves every collaborator list, so a later user of that name inherits
/// nothing. The users lock is held throughout, so no grant or repository for NAME slips in.
pub(crate) fn user_del(config: &Config, name: &str, reassign: Option<&str>) -> AdminResult {
    let accounts = open_accounts(config)?;
    let mut locked = accounts.lock()?;
    let user = locked
        .users
        .get(name)
        .ok_or_else(|| no_user_message(name))?
        .name
        .clone();
    let store = RepoStore::new(config.repos_dir());
    let list = |store: &RepoStore| {
        store
            .list()
            .map_err(|e| format!("cannot list {}: {e}", store.root().display()))
    };
    let owned: Vec<RepoDir> = list(&store)?
        .into_iter()
        .filter(|r| r.owner.eq_ignore_ascii_case(&user))
        .collect();
    if !owned.is_empty() {
        let names: Vec<String> = owned
            .iter()
            .map(|r| format!("{}/{}", r.owner, r.name))
            .collect();
        let Some(target) = reassign else {
            return Err(format!(
                "{user} owns {} ({}); give them to another user with --reassign USER, or delete them first",
                plural(owned.len(), "repository", "repositories"),
                names.join(", ")
            ));
        };
        let target = match locked.users.get(target) {
            Some(t) if t.name.eq_ignore_ascii_case(&user) => {
                return Err(format!(
                    "--reassign names {user}, the user being deleted; name another user"
                ))
            }
            Some(t) => t.name.clone(),
            None => return Err(format!("--reassign: {}", no_user_message(target))),
        };
        let mut clashes = Vec::new();
        for r in &owned {
            match store.locate(&target, &r.name) {
                Ok(Some(c)) => clashes.push(format!("{}/{}", c.owner, c.name)),
                Ok(None) => {}
                Err(e) => return Err(format!("cannot look in {}: {e}", store.root().display())),
            }
        }
        if !clashes.is_empty() {
            return Err(format!(
                "cannot move the repositories of {user} to {target}: {target} already has {} of the same name ({}); rename or delete those first. Nothing was changed",
                if clashes.len() == 1 { "one" } else { "some" },
                clashes.join(", ")
            ));
        }
        for r in &owned {
            let dest = store
                .path_for_new(&target, &r.name)
                .map_err(|e| format!("cannot look in {}: {e}", store.root().display()))?;
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            fs::rename(&r.path, &dest).map_err(|e| {
                format!(
                    "cannot move {}/{} to {}: {e}; run the command again to finish",
                    r.owner,
                    r.name,
                    dest.display()
                )
            })?;
            let moved = RepoDir {
                owner: target.clone(),
                name: r.name.clone(),
                path: dest.clone(),
            };
            // The new owner needs no collaborator entry of its own.
            moved.set_collaborator(&target, None)?;
            println!("moved {}/{} to {}", r.owner, r.name, full_name_of(&dest));
        }
        if let Some(old) = owned[0].path.parent() {
            let _ = fs::remove_dir(old);
        }
    }
    let mut failures = Vec::new();
    let mut removed = 0;
    for r in list(&store)? {
        match r.set_collaborator(&user, None) {
            Ok(true) => removed += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "{}\n{user} was not deleted, because they could not be removed from every collaborator list; fix the above and run the command again",
            failures.join("\n")
        ));
    }
    locked.users.remove(&user);
    locked.save()?;
    if removed > 0 {
        println!(
            "removed {user} from the collaborators of {}",
            plural(removed, "repository", "repositories")
        );
    }
    println!("deleted user {user}");
    Ok(())
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Longest a token may live, in days (about 100 years).
const MAX_TOKEN_DAYS: u64 = 36_500;

/// `forgelet token create USER --name N [--expires DAYS]`: the token is printed once, alone on
/// the last line, so a script can take it with `tail -n 1`.
pub(crate) fn token_create(
    config: &Config,
    user: &str,
    name: &str,
    expires_days: Option<&str>,
) -> AdminResult {
    if !token::valid_name(name) {
        return Err(format!(
            "invalid token name {name:?}: use 1-64 letters, digits, '.', '_' or '-'"
        ));
    }
    let days = match expires_days {
        None => None,
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (1..=MAX_TOKEN_DAYS).contains(&n) => Some(n),
            _ => {
                return Err(format!(
                    "--expires takes a number of days from 1 to {MAX_TOKEN_DAYS}, not {d:?}"
                ))
            }
        },
    };
    let accounts = open_accounts(config)?;
    let plaintext = token::generate()?;
    let hash = accounts.token_hash(&plaintext);
    let now = auth::now();
    let expires = days.map(|d| now + d * 86_400);
    let owner = accounts.update(|users| {
        let u = users.get_mut(user).ok_or_else(|| no_user_message(user))?;
        if let Some(t) = u.token(name) {
            return Err(format!(
                "{} already has a token named {}; choose another name, or revoke it first with `forgelet token revoke {} {}`",
                u.name, t.name, u.name, t.name
            ));
        }
        u.tokens.push(auth::Token {
            name: name.to_string(),
            hash,
            created: now,
            expires,
            last_used: None,
        });
        Ok(u.name.clone())
    })?;
    let until = match expires {
        Some(t) => format!("valid until {}", format_time(t)),
        None => "valid until revoked".to_string(),
    };
    println!("created token {name} for {owner}, {until}.");
    println!("Copy it now: only a hash of it is kept, so it cannot be shown again.");
    println!("{plaintext}");
    Ok(())
}

/// `forgelet token list USER`: `name<TAB>created ...<TAB>expires ...<TAB>last used ...`.
pub(crate) fn token_list(config: &Config, user: &str) -> AdminResult {
    let accounts = open_accounts(config)?;
    let users = accounts.users()?;
    let u = users.get(user).ok_or_else(|| no_user_message(user))?;
    let now = auth::now();
    let mut out = io::stdout().lock();
    for t in &u.tokens {
        let expires = match t.expires {
            Some(e) if t.expired(now) => format!("expired {}", format_time(e)),
            Some(e) => format!("expires {}", format_time(e)),
            None => "never expires".to_string(),
        };
        let used = match t.last_used {
            Some(l) => format!("last used {}", format_time(l)),
            None => "never used".to_string(),
        };
        let _ = writeln!(
            out,
            "{}\tcreated {}\t{expires}\t{used}",
            t.name,
            format_time(t.created)
        );
    }
    Ok(())
}

/// `forgelet token revoke USER NAME`: effective at the server's next request.
pub(crate) fn token_revoke(config: &Config, user: &str, name: &str) -> AdminResult {
    let accounts = open_accounts(config)?;
    let (owner, token) = accounts.update(|users| {
        let u = users.get_mut(user).ok_or_else(|| no_user_message(user))?;
        let Some(i) = u.tokens.iter().position(|t| t.name == name).or_else(|| {
            u.tokens
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(name))
        }) else {
            return Err(format!(
                "{} has no token named {name} (see `forgelet token list {}`)",
                u.name, u.name
            ));
        };
        let t = u.tokens.remove(i);
        Ok((u.name.clone(), t.name))
    })?;
    println!("revoked token {token} of {owner}");
    Ok(())
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn format_time(secs: u64) -> String {
    format!("{} UTC", crate::time::date(secs as i64, 0))
}

// ---------------------------------------------------------------------------------------------
// Repository settings: visibility and collaborators

fn locate_repo(config: &Config, full: &str) -> Result<RepoDir, String> {
    let (owner, name) = parse_full_name(full)?;
    let store = RepoStore::new(config.repos_dir());
    match store.locate(&owner, &name) {
        Ok(Some(r)) => Ok(r),
        Ok(None) => Err(format!(
            "there is no repository named {owner}/{name} (see `forgelet repo list`)"
        )),
        Err(e) => Err(format!("cannot look in {}: {e}", store.root().display())),
    }
}

/// `forgelet repo set OWNER/NAME --visibility public|private`.
pub(crate) fn repo_set_visibility(config: &Config, full: &str, visibility: &str) -> AdminResult {
    let vis = if visibility.eq_ignore_ascii_case("public") {
        Visibility::Public
    } else if visibility.eq_ignore_ascii_case("private") {
        Visibility::Private
    } else {
        return Err(format!(
            "--visibility takes public or private, not {visibility:?}"
        ));
    };
    check_owner(config)?;
    let repo = locate_repo(config, full)?;
    repo.set_visibility(vis)?;
    let word = match vis {
        Visibility::Public => "public",
        Visibility::Private => "private",
    };
    println!("{}/{} is now {word}", repo.owner, repo.name);
    Ok(())
}

/// `forgelet repo purge OWNER/NAME`: drops the objects nothing reaches any more (see
/// `git::maintenance`), saying each step as it starts.
pub(crate) fn repo_purge(config: &Config, full: &str) -> AdminResult {
    check_owner(config)?;
    let repo = locate_repo(config, full)?;
    let runner = crate::gitrun::GitRunner::new(config);
    crate::git::maintenance::purge(
        &config.data_dir,
        &repo.path,
        || runner.git(),
        |step| println!("{}/{}: {step}", repo.owner, repo.name),
    )
}

/// `forgelet repo grant OWNER/NAME USER read|write`.
pub(crate) fn repo_grant(config: &Config, full: &str, user: &str, perm: &str) -> AdminResult {
    let perm = Perm::parse(perm)
        .ok_or_else(|| format!("the permission is read or write, not {perm:?}"))?;
    let accounts = open_accounts(config)?;
    // Held while the config changes, so a `user del` cannot run between the check and the grant.
    let locked = accounts.lock()?;
    let repo = locate_repo(config, full)?;
    let u = locked
        .users
        .get(user)
        .ok_or_else(|| no_user_message(user))?;
    if u.name.eq_ignore_ascii_case(&repo.owner) {
        return Err(format!(
            "{} owns {}/{} and may already do everything with it",
            u.name, repo.owner, repo.name
        ));
    }
    let had = repo.set_collaborator(&u.name, Some(perm))?;
    let what = match perm {
        Perm::Read => "read",
        Perm::Write => "read and write",
    };
    let verb = if had { "now may" } else { "may now" };
    println!("{} {verb} {what} {}/{}", u.name, repo.owner, repo.name);
    Ok(())
}

/// `forgelet repo revoke OWNER/NAME USER`: the user need not exist any more (a stale entry goes too).
pub(crate) fn repo_revoke(config: &Config, full: &str, user: &str) -> AdminResult {
    let accounts = open_accounts(config)?;
    let _locked = accounts.lock()?;
    let repo = locate_repo(config, full)?;
    if !repo.set_collaborator(user, None)? {
        return Err(format!(
            "{user} is not a collaborator of {}/{}",
            repo.owner, repo.name
        ));
    }
    println!(
        "{user} is no longer a collaborator of {}/{}",
        repo.owner, repo.name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59 UTC");
    }

    #[test]
    fn args_split_into_positional_flags_and_options() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let a = Args::parse(
            &w("bob --admin --name=x --expires 3 more"),
            &["--admin"],
            &["--name", "--expires"],
            "t",
        )
        .unwrap();
        assert_eq!(a.positional, ["bob", "more"]);
        assert!(a.flag("--admin") && !a.flag("--password-stdin"));
        assert_eq!(
            (a.option("--name"), a.option("--expires")),
            (Some("x"), Some("3"))
        );
        assert!(Args::parse(&w("--bogus"), &[], &[], "t")
            .unwrap_err()
            .contains("unknown option --bogus for t"));
        assert!(Args::parse(&w("--name"), &[], &["--name"], "t")
            .unwrap_err()
            .contains("needs a value"));
        assert!(Args::parse(&w("--name a --name b"), &[], &["--name"], "t")
            .unwrap_err()
            .contains("twice"));
    }
}
