//! Admin commands on the same files the server reads: `repo create|list|import` and `check`.
//! They write atomically (build in a temporary folder inside the repositories folder, then rename),
//! so a crash or a failed import never leaves a half-made repository behind.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::config::Config;
use crate::git::names::parse_full_name;
use crate::git::{RepoStore, Visibility};

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

/// `forgelet repo create OWNER/NAME [--description TEXT]`: an empty bare repository on `main`.
pub(crate) fn repo_create(config: &Config, full: &str, description: Option<&str>) -> AdminResult {
    let (owner, name) = parse_full_name(full)?;
    check_owner(config)?;
    let root = ensure_repos_dir(config)?;
    let store = RepoStore::new(root.clone());
    refuse_existing(&store, &owner, &name)?;
    let tmp = temp_dir(&root, "create")?;
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true)
        .no_reinit(true)
        .mkdir(false)
        .external_template(false)
        .initial_head("main");
    git2::Repository::init_opts(tmp.path(), &opts)
        .map_err(|e| format!("cannot initialise the repository: {}", e.message()))?;
    // libgit2's built-in template may add sample hooks; forgelet repositories run no hooks.
    let _ = fs::remove_dir_all(tmp.path().join("hooks"));
    write_file(&tmp.path().join("config"), &base_config(Visibility::Public))?;
    let desc = description.unwrap_or("").trim();
    if desc.chars().any(char::is_control) {
        return Err("the description must be one line of text".into());
    }
    write_file(&tmp.path().join("description"), &format!("{desc}\n"))?;
    let dest = store
        .path_for_new(&owner, &name)
        .map_err(|e| format!("cannot look in {}: {e}", store.root().display()))?;
    install(tmp, &dest)?;
    println!("created {} at {}", full_name_of(&dest), dest.display());
    Ok(())
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

    let dest = store
        .path_for_new(&owner, &name)
        .map_err(|e| format!("cannot look in {}: {e}", store.root().display()))?;
    install(tmp, &dest)?;
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
    let store = RepoStore::new(config.repos_dir());
    let mut count = 0;
    match store.list() {
        Ok(repos) => {
            for r in repos {
                count += 1;
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
