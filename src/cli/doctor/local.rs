//! doctor's checks on this host, from the config: the data directory and who owns it, the
//! private files, the repositories' modes for the web server (by the `sendfile` setting), git
//! and its "dubious ownership" trap, and forgelet's FastCGI socket.

use std::ffi::CStr;
use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::Report;
use crate::config::{Config, Handoff};
use crate::git::RepoStore;
use crate::repos;

/// The oldest git forgelet runs: it asks upload-pack and receive-pack for their ref
/// advertisement with `--http-backend-info-refs`, which git 2.34 introduced.
pub(super) const MIN_GIT: (u32, u32) = (2, 34);

/// Entries of the repositories folder looked at, at most (a stat each).
const MAX_WALK: usize = 200_000;

/// Runs the local checks; whether doctor may write in the data directory (it exists and
/// belongs to the user doctor runs as).
pub(super) fn check(config: &Config, r: &mut Report) -> bool {
    let owner = data_dir(config, r);
    if let Some(uid) = owner {
        for (name, what) in [
            ("users.toml", "the users' password and token hashes"),
            ("secret", "the key that signs sessions and hashes tokens"),
        ] {
            private_file(&config.data_dir.join(name), name, what, uid, r);
        }
        repo_modes(config, r);
        ownership(config, uid, r);
        damage(config, r);
    }
    git_version(r);
    socket(config, r);
    owner.is_some_and(|uid| uid == euid())
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// `1 file`, `2 files`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `name (uid N)`, or `uid N` when the system has no name for it.
pub(super) fn who(uid: u32) -> String {
    match user_name(uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// The name of user `uid`, if the system has one.
pub(super) fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers and zero ids).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: getpwuid_r writes into `pwd` and `buf`, whose sizes we pass, and sets `result`.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        // SAFETY: on success pw_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        return Some(name.to_string_lossy().into_owned());
    }
}

/// The name of group `gid`, else its number.
fn group_name(gid: u32) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers and zero ids).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: getgrgid_r writes into `grp` and `buf`, whose sizes we pass, and sets `result`.
        let rc = unsafe {
            libc::getgrgid_r(
                gid,
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || grp.gr_name.is_null() {
            return gid.to_string();
        }
        // SAFETY: on success gr_name points to a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        return name.to_string_lossy().into_owned();
    }
}

/// The data directory exists and belongs to the user doctor runs as; its owner's uid.
fn data_dir(config: &Config, r: &mut Report) -> Option<u32> {
    let d = config.data_dir.display();
    let m = match fs::metadata(&config.data_dir) {
        Ok(m) if m.is_dir() => m,
        Ok(_) => {
            r.fail(
                "data_dir",
                format!(
                    "{d} is not a folder: set data_dir in {} to forgelet's data folder",
                    config.file.display()
                ),
            );
            return None;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            r.fail(
                "data_dir",
                format!(
                    "{d} does not exist: create it, owned by the user forgelet runs as (install -d -o forgelet -g www-data -m 0750 {d}), or set data_dir in {}",
                    config.file.display()
                ),
            );
            return None;
        }
        Err(e) => {
            r.fail(
                "data_dir",
                format!(
                    "cannot read {d}: {}: run doctor as the user forgelet runs as",
                    super::super::plain(&e.to_string())
                ),
            );
            return None;
        }
    };
    let me = euid();
    if m.uid() == me {
        r.ok(
            "data_dir",
            format!("{d} belongs to {}, the user doctor runs as", who(me)),
        );
    } else {
        let name = user_name(m.uid()).unwrap_or_else(|| "forgelet".into());
        r.fail(
            "data_dir",
            format!(
                "{d} belongs to {}, but doctor runs as {}: run doctor as forgelet's user, like the admin commands (sudo -u {name} forgelet doctor); the checks that write (a temporary repository and a token) are skipped",
                who(m.uid()),
                who(me)
            ),
        );
    }
    Some(m.uid())
}

/// A file only forgelet's user may read: mode 0600 (or stricter), owned by that user.
fn private_file(path: &Path, name: &str, what: &str, owner: u32, r: &mut Report) {
    let p = path.display();
    let m = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let note = if name == "users.toml" {
                "none yet: there are no users (add one with `forgelet user add NAME --admin`)"
            } else {
                "none yet: forgelet makes it, mode 0600, when it first starts"
            };
            r.ok(name, format!("{p}: {note}"));
            return;
        }
        Err(e) => {
            r.fail(
                name,
                format!(
                    "cannot read {p}: {}: run doctor as forgelet's user",
                    super::super::plain(&e.to_string())
                ),
            );
            return;
        }
    };
    let mode = m.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        r.fail(
            name,
            format!(
                "{p} has mode {mode:04o}: other users on this host can read {what}; make it private with `chmod 600 {p}`"
            ),
        );
    } else if m.uid() != owner {
        let user = user_name(owner).unwrap_or_else(|| owner.to_string());
        r.fail(
            name,
            format!(
                "{p} belongs to {}, not to {} who owns data_dir: forgelet cannot read or update it; `chown {user} {p}`",
                who(m.uid()),
                who(owner)
            ),
        );
    } else {
        r.ok(
            name,
            format!("{p}: mode {mode:04o}, owner {}", who(m.uid())),
        );
    }
}

/// What the web server reads of the repositories: with a sendfile header, the files under
/// `objects/` and `forgelet-cache/` and every folder down to them must be readable by its
/// group; with `sendfile = "none"`, nobody but forgelet needs them.
fn repo_modes(config: &Config, r: &mut Report) {
    let repos_dir = config.repos_dir();
    let rd = repos_dir.display();
    let repos_meta = match fs::metadata(&repos_dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            r.ok(
                "repos modes",
                format!("{rd} does not exist yet (forgelet makes it with the first repository)"),
            );
            return;
        }
        Err(e) => {
            r.fail(
                "repos modes",
                format!("cannot read {rd}: {}", super::super::plain(&e.to_string())),
            );
            return;
        }
    };
    let mut entries = Vec::new();
    let complete = walk(&repos_dir, &mut entries);
    let counted = if complete {
        String::new()
    } else {
        format!(" (the first {MAX_WALK} entries looked at)")
    };
    match config.sendfile {
        Handoff::XAccelRedirect | Handoff::XSendfile => {
            let setting = if config.sendfile == Handoff::XAccelRedirect {
                "x-accel-redirect"
            } else {
                "x-sendfile"
            };
            // The web server's group: the socket's, when forgelet gives the socket one (the
            // web server connects through it), else the repositories folder's.
            let gid = config
                .server
                .socket_group
                .as_deref()
                .and_then(|g| crate::fcgi::group_id(g).ok())
                .unwrap_or(repos_meta.gid());
            let group = group_name(gid);
            let mut path_down: Vec<(PathBuf, Metadata)> = Vec::new();
            if let Ok(m) = fs::metadata(&config.data_dir) {
                path_down.push((config.data_dir.clone(), m));
            }
            let bad: Vec<&(PathBuf, Metadata)> = path_down
                .iter()
                .chain(
                    entries
                        .iter()
                        .filter(|(p, m)| m.is_dir() || served(&repos_dir, p)),
                )
                .filter(|(_, m)| !readable_by(m, gid))
                .collect();
            match bad.first() {
                None => r.ok(
                    "repos modes",
                    format!(
                        "the web server's group ({group}) can read what it sends from {rd} (sendfile = \"{setting}\"){counted}"
                    ),
                ),
                Some((p, m)) => {
                    let dd = config.data_dir.display();
                    let fix = if *p == config.data_dir {
                        format!("`chgrp {group} {dd} && chmod g+x {dd}`")
                    } else {
                        format!("`chgrp -R {group} {rd} && chmod -R g+rX {rd} && find {rd} -type d -exec chmod g+s {{}} +`, and run forgelet with umask 0027 (the systemd unit sets it) so new files stay readable")
                    };
                    let message = format!(
                        "{} the web server must read (sendfile = \"{setting}\") closed to its group {group}, e.g. {} (mode {:04o}, group {}){counted}: {fix}",
                        count(bad.len(), "file or folder", "files or folders"),
                        p.display(),
                        m.permissions().mode() & 0o7777,
                        group_name(m.gid()),
                    );
                    if config.server.socket_group.is_some() {
                        r.fail("repos modes", message);
                    } else {
                        // Without socket_group the web server's group is a guess: one running
                        // as forgelet's own user (the quickstart's nginx) reads them anyway,
                        // and the "object files" check below fetches one through it.
                        r.warn(
                            "repos modes",
                            format!("{message}; nothing to change if the web server runs as the owner of {dd}", dd = config.data_dir.display()),
                        )
                    }
                }
            }
        }
        Handoff::None => {
            let closed = |m: &Metadata| m.permissions().mode() & 0o001 == 0;
            let data_closed = fs::metadata(&config.data_dir).is_ok_and(|m| closed(&m));
            if data_closed || closed(&repos_meta) {
                r.ok(
                    "repos modes",
                    format!(
                        "only forgelet's user and group reach {rd} (sendfile = \"none\": forgelet sends git's files itself)"
                    ),
                );
                return;
            }
            let open: Vec<&(PathBuf, Metadata)> = entries
                .iter()
                .filter(|(_, m)| m.is_file() && m.permissions().mode() & 0o004 != 0)
                .collect();
            match open.first() {
                None => r.ok(
                    "repos modes",
                    format!("no file in {rd} is readable by other users{counted}"),
                ),
                Some((p, m)) => r.warn(
                    "repos modes",
                    format!(
                        "{} in {rd} readable by every user on this host, private repositories included, e.g. {} (mode {:04o}){counted}; with sendfile = \"none\" nobody but forgelet needs them: `chmod -R o-rwx {rd}`",
                        count(open.len(), "file", "files"),
                        p.display(),
                        m.permissions().mode() & 0o7777
                    ),
                ),
            }
        }
    }
}

/// Everything below `dir` (symbolic links not followed), with their metadata; false when the
/// walk stopped at [`MAX_WALK`] entries.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, Metadata)>) -> bool {
    let Ok(m) = fs::symlink_metadata(dir) else {
        return true;
    };
    out.push((dir.to_path_buf(), m));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if out.len() >= MAX_WALK {
                return false;
            }
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p.clone());
            }
            if !m.file_type().is_symlink() {
                out.push((p, m));
            }
        }
    }
    true
}

/// Whether the web server sends `path`: a file under a repository's `objects/` or
/// `forgelet-cache/`.
fn served(repos_dir: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(repos_dir) else {
        return false;
    };
    // owner/repo.git/objects/... or owner/repo.git/forgelet-cache/...
    rel.components()
        .nth(2)
        .is_some_and(|c| c.as_os_str() == "objects" || c.as_os_str() == "forgelet-cache")
}

/// Whether group `gid` (or anyone) may read a file, or pass through a folder.
fn readable_by(m: &Metadata, gid: u32) -> bool {
    let mode = m.permissions().mode();
    let (g, o) = if m.is_dir() {
        (0o010, 0o001)
    } else {
        (0o040, 0o004)
    };
    mode & o != 0 || (m.gid() == gid && mode & g != 0)
}

/// git's `safe.directory` trap: a repository owned by another user than forgelet's.
fn ownership(config: &Config, owner: u32, r: &mut Report) {
    let store = RepoStore::new(config.repos_dir());
    let list = match repos::list(&store) {
        Ok(l) => l,
        Err(e) => {
            r.fail(
                "safe.directory",
                format!("cannot list the repositories: {e}"),
            );
            return;
        }
    };
    let others: Vec<(String, u32, PathBuf)> = list
        .iter()
        .filter_map(|repo| {
            let m = fs::metadata(&repo.path).ok()?;
            (m.uid() != owner).then(|| {
                (
                    format!("{}/{}", repo.owner, repo.name),
                    m.uid(),
                    repo.path.clone(),
                )
            })
        })
        .collect();
    let user = user_name(owner).unwrap_or_else(|| owner.to_string());
    match others.first() {
        None => r.ok(
            "safe.directory",
            format!(
                "every repository ({}) belongs to {}, forgelet's user",
                list.len(),
                who(owner)
            ),
        ),
        Some((name, uid, path)) => r.warn(
            "safe.directory",
            format!(
                "{} of another user than forgelet's {}, e.g. {name} ({}): forgelet passes safe.directory=* to its own git, but git commands you run there as {user} fail with \"detected dubious ownership\"; give them to forgelet's user: `chown -R {user}: {}`",
                count(others.len(), "repository", "repositories"),
                who(owner),
                who(*uid),
                path.display()
            ),
        ),
    }
}

/// How long doctor looks at repositories for damage, at most.
const DAMAGE_BUDGET: Duration = Duration::from_secs(20);

/// Damaged repositories, by the cheap look of [`crate::git::check::damage`]: packs with their
/// indexes and every ref's object readable (no history is read, so a site of many repositories
/// is looked through in seconds; `forgelet maintain` adds git's connectivity check).
fn damage(config: &Config, r: &mut Report) {
    let store = RepoStore::new(config.repos_dir());
    let list = match repos::list(&store) {
        Ok(l) => l,
        Err(e) => {
            r.fail("repositories", format!("cannot list the repositories: {e}"));
            return;
        }
    };
    let started = std::time::Instant::now();
    let mut looked = 0;
    let mut damaged: Vec<String> = Vec::new();
    for repo in &list {
        if started.elapsed() > DAMAGE_BUDGET || super::interrupted() {
            break;
        }
        looked += 1;
        let found = crate::git::check::damage(&repo.path);
        if !found.is_empty() {
            damaged.push(format!(
                "{}/{}: {}",
                repo.owner,
                repo.name,
                found.join("; ")
            ));
        }
    }
    let counted = if looked < list.len() {
        format!(
            " (the first {looked} of {} in {} s; `forgelet maintain` checks them all)",
            list.len(),
            DAMAGE_BUDGET.as_secs()
        )
    } else {
        String::new()
    };
    if damaged.is_empty() {
        r.ok(
            "repositories",
            format!(
                "{} read: every pack has its index, every ref's object reads{counted}",
                count(looked, "repository", "repositories")
            ),
        );
    } else {
        r.fail(
            "repositories",
            format!(
                "{} damaged{counted}: {}. Run `forgelet maintain OWNER/NAME` for git's check of each, and restore a damaged repository from a backup (see the README, \"A full disk, and damaged repositories\")",
                count(damaged.len(), "repository", "repositories"),
                damaged.join(" | ")
            ),
        );
    }
}

/// `git version 2.47.3` (or `git version 2.39.5 (Apple Git-154)`) as (major, minor).
pub(super) fn parse_git_version(text: &str) -> Option<(u32, u32)> {
    let v = text.trim().strip_prefix("git version ")?;
    let mut parts = v.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// git is on `PATH` and at least [`MIN_GIT`].
fn git_version(r: &mut Report) {
    let path = std::env::var("PATH").unwrap_or_default();
    let out = Command::new("git")
        .arg("--version")
        .env("LC_ALL", "C")
        .output();
    let out = match out {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            r.fail(
                "git",
                format!(
                    "`git --version` failed: {}: reinstall git (apt-get install git)",
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            );
            return;
        }
        Err(e) => {
            r.fail(
                "git",
                format!(
                    "git cannot be run ({}; PATH is {path}): install git {}.{} or newer (apt-get install git), on the PATH forgelet's service has",
                    super::super::plain(&e.to_string()),
                    MIN_GIT.0,
                    MIN_GIT.1
                ),
            );
            return;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match parse_git_version(&text) {
        Some(v) if v >= MIN_GIT => r.ok(
            "git",
            format!(
                "{text} (forgelet needs {}.{} or newer)",
                MIN_GIT.0, MIN_GIT.1
            ),
        ),
        Some(_) => r.fail(
            "git",
            format!(
                "{text} is older than {}.{}, the oldest forgelet runs (it uses `upload-pack --http-backend-info-refs`): install a newer git (Debian 12 has 2.39; on Debian 11 use bullseye-backports)",
                MIN_GIT.0, MIN_GIT.1
            ),
        ),
        None => r.warn(
            "git",
            format!(
                "cannot tell the version from {text:?}: make sure it is git {}.{} or newer",
                MIN_GIT.0, MIN_GIT.1
            ),
        ),
    }
}

/// A FastCGI `GET_VALUES` management record asking for `FCGI_MAX_CONNS`.
fn get_values_record() -> Vec<u8> {
    let name = b"FCGI_MAX_CONNS";
    let mut content = vec![name.len() as u8, 0];
    content.extend_from_slice(name);
    let mut out = vec![1, 9, 0, 0, 0, content.len() as u8, 0, 0];
    out.extend_from_slice(&content);
    out
}

/// Asks the peer for `FCGI_MAX_CONNS`; its answer's value, if it gave one.
fn ask_values(stream: &mut (impl Read + Write)) -> io::Result<Option<String>> {
    stream.write_all(&get_values_record())?;
    let mut head = [0u8; 8];
    stream.read_exact(&mut head)?;
    if head[1] != 10 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "a FastCGI record of type {} instead of GET_VALUES_RESULT",
                head[1]
            ),
        ));
    }
    let len = usize::from(u16::from_be_bytes([head[4], head[5]]));
    let mut content = vec![0u8; len + usize::from(head[6])];
    stream.read_exact(&mut content)?;
    content.truncate(len);
    // Short name-value lengths (under 128) are all this pair can have.
    if content.len() >= 2 && content[0] < 128 && content[1] < 128 {
        let (n, v) = (usize::from(content[0]), usize::from(content[1]));
        if content.len() >= 2 + n + v {
            return Ok(Some(
                String::from_utf8_lossy(&content[2 + n..2 + n + v]).into_owned(),
            ));
        }
    }
    Ok(None)
}

/// forgelet's socket (`[server] listen`) answers a FastCGI management record.
fn socket(config: &Config, r: &mut Report) {
    let listen = config.server.listen.as_str();
    let f = config.file.display();
    if listen.is_empty() {
        r.warn(
            "socket",
            format!(
                "no socket: [server] listen is empty in {f}, so forgelet serves only a socket handed to it (systemd, spawn-fcgi) or runs as CGI; doctor cannot check that socket"
            ),
        );
        return;
    }
    let timeout = Some(Duration::from_secs(5));
    let result = if let Some(path) = listen.strip_prefix("unix:") {
        match UnixStream::connect(path) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(timeout);
                let _ = s.set_write_timeout(timeout);
                ask_values(&mut s)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                r.warn(
                    "socket",
                    format!(
                        "no socket at {path}: CGI mode? If forgelet runs as FastCGI, start it (`systemctl start forgelet`, or `forgelet serve`); under socket activation the socket is forgelet.socket's ListenStream=, so set [server] listen in {f} to it"
                    ),
                );
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                r.fail(
                    "socket",
                    format!(
                        "{path} exists but nothing accepts connections on it: forgelet is not running; start it (`systemctl start forgelet`) and see why it stopped (`journalctl -u forgelet`)"
                    ),
                );
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                r.fail(
                    "socket",
                    format!(
                        "{path}: permission denied for {}: doctor runs as forgelet's user, which must own the socket; check [server] socket_group in {f} and the folder's modes",
                        who(euid())
                    ),
                );
                return;
            }
            Err(e) => Err(e),
        }
    } else {
        match TcpStream::connect(listen) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(timeout);
                let _ = s.set_write_timeout(timeout);
                ask_values(&mut s)
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(value) => r.ok(
            "socket",
            format!(
                "forgelet answers on {listen}{}",
                value.map_or(String::new(), |v| format!(" (FCGI_MAX_CONNS {v})"))
            ),
        ),
        Err(e) => r.fail(
            "socket",
            format!(
                "{listen} does not answer as forgelet's FastCGI socket ({}): start forgelet (`systemctl start forgelet`) and make sure nothing else listens there; see `journalctl -u forgelet`",
                super::super::plain(&e.to_string())
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions_are_read() {
        assert_eq!(parse_git_version("git version 2.47.3\n"), Some((2, 47)));
        assert_eq!(
            parse_git_version("git version 2.39.5 (Apple Git-154)"),
            Some((2, 39))
        );
        assert_eq!(parse_git_version("git version 2.34.0.rc1"), Some((2, 34)));
        assert_eq!(parse_git_version("hub version 2"), None);
        assert!(parse_git_version("git version 2.30.2").unwrap() < MIN_GIT);
    }

    #[test]
    fn the_management_record_is_well_formed() {
        let rec = get_values_record();
        assert_eq!(&rec[..8], &[1, 9, 0, 0, 0, 16, 0, 0]);
        assert_eq!(&rec[8..10], &[14, 0]);
        assert_eq!(&rec[10..], b"FCGI_MAX_CONNS");
    }
}
