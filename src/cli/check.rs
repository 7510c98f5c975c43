//! `forgelet check`: the config (loaded before), the data directory, the users file and the
//! secret (private, and parseable), every repository (its owner a user, its settings readable,
//! its object format served, openable), the socket's group and folder, and git itself.
//! Problems make it fail; orphaned repositories are only warned about.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Outcome;
use crate::auth;
use crate::config::Config;
use crate::git::RepoStore;
use crate::repos;

/// `forgelet check`: the config (already loaded by the caller) and the data directory.
pub(super) fn run(config: &Config) -> Outcome {
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
    if let Err(e) = repos::check_git() {
        problems.push(e.to_string());
    }
    if let Some(w) = pack_cache_folder(config) {
        warnings.push(w);
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

/// A pack cache folder of its own (`[pack_cache] dir`) this process cannot write to: the site
/// works without it (git answers every clone), so a warning, naming the fix. Under systemd it
/// is seen by the `forgelet check` the unit runs before each start, inside the unit's sandbox,
/// where a folder missing from `ReadWritePaths=` is read-only.
fn pack_cache_folder(config: &Config) -> Option<String> {
    let c = &config.pack_cache;
    if c.max_bytes == 0 || c.dir.starts_with(&config.data_dir) {
        return None;
    }
    let dir = c.dir.display();
    let probe = c.dir.join(format!(".check-{}", std::process::id()));
    let made = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe);
    match made {
        Ok(_) => {
            let _ = fs::remove_file(&probe);
            None
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Some(format!(
            "[pack_cache] dir {dir} does not exist, so clones are never answered from the cache: create it with `install -d -o forgelet -g www-data -m 2750 {dir}` (the user forgelet runs as, the web server's group)"
        )),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Some(format!(
            "[pack_cache] dir {dir} is read-only here ({e}), so clones are never answered from the cache: under systemd, add it to ReadWritePaths= of forgelet.service and forgelet-maintain.service (`systemctl edit forgelet`, then `[Service]` and `ReadWritePaths={dir}`)"
        )),
        Err(e) => Some(format!(
            "[pack_cache] dir {dir}: cannot write in it ({e}), so clones are never answered from the cache: it should belong to the user forgelet runs as (`chown forgelet {dir}`)"
        )),
    }
}
