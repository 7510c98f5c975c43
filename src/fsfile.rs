//! Small files that must never be half-written: an exclusive lock file (flock), atomic replace
//! (temp file in the same folder, fsync, rename, fsync the folder) keeping mode and owner, and
//! create-once files (a complete temp file hard-linked into place, so racers agree on one).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// An exclusive `flock` on a lock file, released when dropped (closing the file releases it).
#[derive(Debug)]
pub(crate) struct FileLock {
    _file: File,
}

impl FileLock {
    /// Makes the child that `c` starts inherit this lock's descriptor, so the lock is held as
    /// long as that child, and whatever it starts in turn, runs, even if this process dies
    /// first (a `flock` lasts while any descriptor of the open file does). Only that child
    /// gets it: the descriptor stays close-on-exec for every other process started here.
    pub(crate) fn hand_down(&self, c: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let fd = self._file.as_raw_fd();
        // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls
        // are allowed: fcntl(2) is one, on a descriptor the parent keeps open until the spawn
        // returns (the lock outlives the command), and nothing is allocated.
        unsafe {
            c.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Waits for the exclusive lock on `path` (made with mode 0600 when missing).
pub(crate) fn lock(path: &Path) -> Result<FileLock, String> {
    lock_with(path, libc::LOCK_EX)?.ok_or_else(|| format!("cannot lock {}", path.display()))
}

/// Takes the lock only if nobody holds it: `Ok(None)` when it is busy.
pub(crate) fn try_lock(path: &Path) -> Result<Option<FileLock>, String> {
    lock_with(path, libc::LOCK_EX | libc::LOCK_NB)
}

/// Takes a shared lock (many holders at once, none while someone holds it exclusively) only if
/// it is free of an exclusive holder: `Ok(None)` when it is not.
pub(crate) fn try_lock_shared(path: &Path) -> Result<Option<FileLock>, String> {
    lock_with(path, libc::LOCK_SH | libc::LOCK_NB)
}

/// A `flock` on a folder, shared or exclusive, taken only if free (`Ok(None)` when not). The
/// folder is opened read-only, so anyone who may read it may lock it (`flock(1)` on the same
/// folder takes the same lock).
pub(crate) fn try_lock_folder(path: &Path, shared: bool) -> Result<Option<FileLock>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_DIRECTORY)
        .open(path)
        .map_err(|e| format!("cannot open the folder {}: {e}", path.display()))?;
    let op = if shared { libc::LOCK_SH } else { libc::LOCK_EX } | libc::LOCK_NB;
    flock(file, op, path)
}

fn lock_with(path: &Path, op: libc::c_int) -> Result<Option<FileLock>, String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    flock(file, op, path)
}

fn flock(file: File, op: libc::c_int, path: &Path) -> Result<Option<FileLock>, String> {
    loop {
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(Some(FileLock { _file: file }));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if op & libc::LOCK_NB != 0 => return Ok(None),
            _ => return Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

/// The whole file, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, String> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Whether `e` says the disk (or the user's quota on it) is full.
fn disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// Why `target` could not be written through its temporary copy: the io error, and when the
/// disk is full, what that means for the file and what to do.
fn write_failure(target: &Path, e: &io::Error) -> String {
    if disk_full(e) {
        format!(
            "cannot write {}: {e}: the disk holding it is full, so it was left as it was; free some space there and try again",
            target.display()
        )
    } else {
        format!("cannot write {}: {e}", target.display())
    }
}

/// A temporary file next to `path`, removed when dropped unless it was renamed or linked away.
struct TempFile {
    /// The file it is written for.
    target: PathBuf,
    path: PathBuf,
    file: Option<File>,
    done: bool,
}

impl TempFile {
    fn new(target: &Path, mode: u32) -> Result<TempFile, String> {
        let dir = parent_of(target);
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut attempt = 0u32;
        loop {
            let mut r = [0u8; 6];
            getrandom::getrandom(&mut r).map_err(|e| format!("no randomness: {e}"))?;
            let path = dir.join(format!(".{base}.tmp-{}-{}", std::process::id(), hex(&r)));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        target: target.to_path_buf(),
                        path,
                        file: Some(file),
                        done: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => attempt += 1,
                Err(e) if disk_full(&e) => return Err(write_failure(target, &e)),
                Err(e) => return Err(format!("cannot create a file in {}: {e}", dir.display())),
            }
        }
    }

    /// Writes `bytes`, sets mode (and owner, as far as this process may), syncs and closes.
    fn fill(&mut self, bytes: &[u8], mode: u32, owner: Option<(u32, u32)>) -> Result<(), String> {
        let what = |e: io::Error| {
            if disk_full(&e) {
                write_failure(&self.target, &e)
            } else {
                format!("cannot write {}: {e}", self.path.display())
            }
        };
        let mut file = self.file.take().ok_or("temporary file already closed")?;
        file.write_all(bytes).map_err(what)?;
        // The umask may have taken bits away at creation; set exactly what is wanted.
        // SAFETY: fchmod/fchown on a descriptor this function owns.
        if unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) } != 0 {
            return Err(what(io::Error::last_os_error()));
        }
        if let Some((uid, gid)) = owner {
            let m = file.metadata().map_err(what)?;
            if (m.uid(), m.gid()) != (uid, gid)
                && unsafe { libc::fchown(file.as_raw_fd(), uid, gid) } != 0
            {
                return Err(what(io::Error::last_os_error()));
            }
        }
        file.sync_all().map_err(what)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Syncs a folder, so a rename or link in it survives a crash.
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync the folder {}: {e}", dir.display()))
}

/// Replaces `path` with `bytes` atomically: readers see the old or the new file, never a part,
/// and a crash at any point leaves one of the two. The new file gets `mode` and the old
/// file's owner (a root-run command keeps the file the server's).
pub(crate) fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let owner = match fs::metadata(path) {
        Ok(m) => Some((m.uid(), m.gid())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut tmp = TempFile::new(path, mode)?;
    tmp.fill(bytes, mode, owner)?;
    fs::rename(&tmp.path, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    tmp.done = true;
    sync_dir(parent_of(path))
}

/// Removes the temporary files of [`replace`] (`.NAME.tmp-PID-HEX`) in `dir` last changed more
/// than `older_than` ago: a process killed in the middle of a write leaves its one behind (the
/// file it was replacing stays whole). Returns the paths removed.
pub(crate) fn remove_stale_temps(
    dir: &Path,
    older_than: std::time::Duration,
) -> Result<Vec<PathBuf>, String> {
    let cutoff = std::time::SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
    let entries = match fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with('.') && name.contains(".tmp-")) {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.is_file() || meta.modified().map_or(true, |t| t >= cutoff) {
            continue;
        }
        match fs::remove_file(e.path()) {
            Ok(()) => removed.push(e.path()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("cannot remove {}: {err}", e.path().display())),
        }
    }
    Ok(removed)
}

/// Creates `path` holding `bytes` unless it exists; either way returns what the file holds
/// afterwards. The file appears complete or not at all (a full temp file is hard-linked into
/// place, which fails if another process got there first), so racing processes agree.
pub(crate) fn create_once(path: &Path, bytes: &[u8], mode: u32) -> Result<Vec<u8>, String> {
    if let Some(existing) = read_optional(path)? {
        return Ok(existing);
    }
    let mut tmp = TempFile::new(path, mode)?;
    tmp.fill(bytes, mode, None)?;
    let linked = fs::hard_link(&tmp.path, path);
    // The temp name goes either way (dropping `tmp` removes it).
    drop(tmp);
    match linked {
        Ok(()) => {
            sync_dir(parent_of(path))?;
            Ok(bytes.to_vec())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            read_optional(path)?.ok_or_else(|| format!("{} vanished", path.display()))
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "forgelet-fsfile-{name}-{}-{}",
            std::process::id(),
            hex(&{
                let mut r = [0u8; 4];
                getrandom::getrandom(&mut r).unwrap();
                r
            })
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn stale_temp_files_of_killed_writes_are_removed_and_fresh_ones_kept() {
        let d = scratch("stale-temps");
        let f = d.join("users.toml");
        replace(&f, b"kept", 0o600).unwrap();
        let old = d.join(".users.toml.tmp-4242-a1b2c3d4e5f6");
        let fresh = d.join(".users.toml.tmp-4243-a1b2c3d4e5f7");
        fs::write(&old, b"half").unwrap();
        fs::write(&fresh, b"half").unwrap();
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        let gone = remove_stale_temps(&d, std::time::Duration::from_secs(3600)).unwrap();
        assert_eq!(gone, vec![old.clone()]);
        assert!(!old.exists() && fresh.exists());
        assert_eq!(fs::read(&f).unwrap(), b"kept");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn replace_is_whole_and_keeps_mode() {
        let d = scratch("replace");
        let f = d.join("file");
        replace(&f, b"one", 0o600).unwrap();
        replace(&f, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // No temp files left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn create_once_keeps_the_first() {
        let d = scratch("once");
        let f = d.join("secret");
        assert_eq!(create_once(&f, b"first", 0o600).unwrap(), b"first");
        assert_eq!(create_once(&f, b"second", 0o600).unwrap(), b"first");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn try_lock_sees_a_held_lock() {
        let d = scratch("lock");
        let l = d.join("x.lock");
        let held = lock(&l).unwrap();
        assert!(try_lock(&l).unwrap().is_none());
        drop(held);
        assert!(try_lock(&l).unwrap().is_some());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn hex_digits() {
        assert_eq!(hex(&[0, 0xab, 0x7f]), "00ab7f");
    }
}
