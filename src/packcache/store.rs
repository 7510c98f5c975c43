//! Where cached answers live: `{dir}/{group}/{key}.pack`. `dir` is `{repos}/.cache` by default,
//! under the repositories folder so the web server's internal location for them sends the
//! entries too, in a folder no owner can name (owner names begin with a letter or digit); or a
//! folder outside the data directory (`[pack_cache] dir`, each machine's own when several share
//! the data directory) with an internal location of its own. A group holds one repository's entries (its
//! cache identity, see `identity`), so a purge or a delete clears them at once.
//!
//! An entry is written to a temporary file beside its place and renamed into it when complete,
//! so a reader sees a whole answer or none; a writer dropped before [`Writer::commit`] (a git
//! that failed, a process killed) leaves no entry, and a temporary file a killed process left
//! is removed by [`Store::sweep`]. An entry is evicted by renaming it aside and deleting it after
//! a grace period, never unlinked where it stood: between forgelet's answer naming the file and
//! the web server opening it, the name must still lead to the file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Prefixes of the files that are not entries.
const TMP: &str = ".tmp-";
const EVICTED: &str = ".evicted-";

/// The cache of one site.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
}

/// A complete entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub len: u64,
}

/// Keys are 64 lowercase hex digits (see `key::key`), groups 32; anything else names nothing.
fn valid(name: &str, len: usize) -> bool {
    name.len() == len && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn bad_key() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "not a pack cache group and key",
    )
}

fn check(group: &str, key: &str) -> io::Result<()> {
    if valid(group, 32) && valid(key, 64) {
        Ok(())
    } else {
        Err(bad_key())
    }
}

fn nanos() -> u128 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// `flock(fd, op)`, retried on EINTR: `Ok(false)` when a non-blocking lock is taken already.
pub(crate) fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor the caller owns.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(e),
        }
    }
}

/// Whether someone writes `file` now (holds the exclusive lock a [`Writer`] takes).
fn being_written(file: &File) -> io::Result<bool> {
    if flock(file, libc::LOCK_SH | libc::LOCK_NB)? {
        flock(file, libc::LOCK_UN)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

fn age(meta: &fs::Metadata, now: SystemTime) -> Option<Duration> {
    meta.modified()
        .ok()
        .and_then(|m| now.duration_since(m).ok())
}

impl Store {
    /// The cache whose entries are in `dir` (the config's `pack_cache.dir`).
    pub fn new(dir: &Path) -> Store {
        Store {
            dir: dir.to_path_buf(),
        }
    }

    /// The cache's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry of `key` in `group` is (whether or not it exists).
    fn path(&self, group: &str, key: &str) -> PathBuf {
        self.dir.join(group).join(format!("{key}.pack"))
    }

    /// The file the one writer of an entry writes, while it writes.
    fn growing_path(&self, group: &str, key: &str) -> PathBuf {
        self.dir.join(group).join(format!("{TMP}{key}"))
    }

    /// The lock the one writer of an entry holds (the caller's: see `Cache`).
    pub fn lock_path(&self, group: &str, key: &str) -> io::Result<PathBuf> {
        check(group, key)?;
        let folder = self.dir.join(group);
        fs::create_dir_all(&folder)?;
        Ok(folder.join(format!("{key}.lock")))
    }

    /// The path the web server is told to send for an entry, relative to the cache's folder
    /// (the web server's internal location for it).
    pub fn relative(group: &str, key: &str) -> String {
        format!("{group}/{key}.pack")
    }

    /// The complete entry of `key` in `group`, if there is one.
    pub fn get(&self, group: &str, key: &str) -> Option<Entry> {
        check(group, key).ok()?;
        let path = self.path(group, key);
        let meta = fs::metadata(&path).ok()?;
        meta.is_file().then_some(Entry {
            path,
            len: meta.len(),
        })
    }

    /// Marks an entry used now (eviction takes the least recently used first); at most once a
    /// minute per entry, so hits cost no write.
    pub fn touch(&self, entry: &Entry) {
        let Ok(meta) = fs::metadata(&entry.path) else {
            return;
        };
        if age(&meta, SystemTime::now()).is_some_and(|a| a < Duration::from_secs(60)) {
            return;
        }
        if let Ok(f) = File::options().write(true).open(&entry.path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Counts one more sighting of a request (one byte appended to `{key}.seen`); how many
    /// there have been.
    pub fn sighting(&self, group: &str, key: &str) -> io::Result<u64> {
        check(group, key)?;
        let folder = self.dir.join(group);
        fs::create_dir_all(&folder)?;
        let mut f = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o640)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(folder.join(format!("{key}.seen")))?;
        f.write_all(b".")?;
        Ok(f.metadata()?.len())
    }

    /// How many sightings of a request there have been.
    pub fn sightings(&self, group: &str, key: &str) -> u64 {
        if check(group, key).is_err() {
            return 0;
        }
        fs::metadata(self.dir.join(group).join(format!("{key}.seen")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// A writer for the entry of `key` in `group`. The caller holds the entry's lock (see
    /// [`Store::lock_path`]), so this is the only writer: it writes `.tmp-{key}`, which
    /// followers may read while it grows ([`Store::growing`]), holding an exclusive lock on it
    /// until it commits or gives up.
    pub fn writer(&self, group: &str, key: &str) -> io::Result<Writer> {
        check(group, key)?;
        let place = self.path(group, key);
        let folder = place.parent().ok_or_else(bad_key)?;
        fs::create_dir_all(folder)?;
        let tmp = self.growing_path(group, key);
        // One a killed writer left (nobody holds its lock: the caller holds the entry's).
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Readable as git's own pack files are (the umask decides): the web server sends it.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&tmp)?;
        flock(&file, libc::LOCK_EX)?;
        let ino = file.metadata()?.ino();
        Ok(Writer {
            file,
            ino,
            written: 0,
            synced: 0,
            tmp,
            place,
            committed: false,
        })
    }

    /// The entry of `key` while its writer writes it: `None` when nobody is writing it.
    pub fn growing(&self, group: &str, key: &str) -> io::Result<Option<Growing>> {
        check(group, key)?;
        let file = match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(self.growing_path(group, key))
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !being_written(&file)? {
            return Ok(None);
        }
        let ino = file.metadata()?.ino();
        Ok(Some(Growing {
            file,
            ino,
            place: self.path(group, key),
        }))
    }

    /// Takes the entry of `key` out of the cache: renamed aside, deleted by a later
    /// [`Store::sweep`] once no web server can still be about to open it. False when there
    /// was none.
    pub fn evict(&self, group: &str, key: &str) -> io::Result<bool> {
        check(group, key)?;
        let place = self.path(group, key);
        let folder = place.parent().ok_or_else(bad_key)?;
        let aside = folder.join(format!("{EVICTED}{key}-{}", nanos()));
        match fs::rename(&place, &aside) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes every entry of `group` out of the cache at once (the folder renamed aside, deleted
    /// by a later sweep). False when there was none.
    pub fn clear(&self, group: &str) -> io::Result<bool> {
        if !valid(group, 32) {
            return Err(bad_key());
        }
        let aside = self.dir.join(format!("{EVICTED}{group}-{}", nanos()));
        match fs::rename(self.dir.join(group), &aside) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every entry: path, size, last use.
    fn entries(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        for folder in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let name = folder.file_name();
            if !valid(&name.to_string_lossy(), 32) {
                continue;
            }
            for f in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if !name.ends_with(".pack") || name.starts_with('.') {
                    continue;
                }
                if let Ok(m) = f.metadata() {
                    let used = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    out.push((f.path(), m.len(), used));
                }
            }
        }
        out
    }

    /// Bytes held by entries, and how many there are.
    pub fn usage(&self) -> (u64, usize) {
        let e = self.entries();
        (e.iter().map(|(_, len, _)| len).sum(), e.len())
    }

    /// Waits, up to `wait`, until no answer is being made (every entry's lock free: its leader
    /// has made it visible or given it up); how many were still being made when it gave up.
    pub fn wait_for_writers(&self, wait: Duration) -> usize {
        let until = std::time::Instant::now() + wait;
        let mut locks = Vec::new();
        for folder in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if !valid(&folder.file_name().to_string_lossy(), 32) {
                continue;
            }
            for f in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().ends_with(".lock") {
                    locks.push(f.path());
                }
            }
        }
        let mut busy = 0;
        for lock in locks {
            loop {
                let Ok(file) = File::open(&lock) else {
                    break;
                };
                if !being_written(&file).unwrap_or(false) {
                    break;
                }
                if std::time::Instant::now() >= until {
                    busy += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        busy
    }

    /// Evicts the least recently used entries until the entries hold at most `max_bytes`;
    /// how many were evicted.
    pub fn trim(&self, max_bytes: u64) -> usize {
        let mut entries = self.entries();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort_by_key(|(_, _, used)| *used);
        let mut evicted = 0;
        for (path, len, _) in entries {
            if total <= max_bytes {
                break;
            }
            if evict_path(&path).unwrap_or(false) {
                evicted += 1;
            }
            total = total.saturating_sub(len);
        }
        evicted
    }

    /// Evicts entries unused for `max_age`, and forgets sightings and locks as old; how many
    /// entries were evicted.
    pub fn expire(&self, max_age: Duration) -> usize {
        let now = SystemTime::now();
        let mut evicted = 0;
        for folder in fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if !valid(&folder.file_name().to_string_lossy(), 32) {
                continue;
            }
            for f in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') {
                    continue;
                }
                let old = f
                    .metadata()
                    .ok()
                    .and_then(|m| age(&m, now))
                    .is_some_and(|a| a >= max_age);
                if !old {
                    continue;
                }
                if name.ends_with(".pack") {
                    if evict_path(&f.path()).unwrap_or(false) {
                        evicted += 1;
                    }
                } else if name.ends_with(".seen") || name.ends_with(".lock") {
                    let _ = fs::remove_file(f.path());
                }
            }
        }
        evicted
    }

    /// Deletes evicted entries and groups, and temporary files nobody writes any more, older
    /// than `grace`; how many.
    pub fn sweep(&self, grace: Duration) -> io::Result<usize> {
        let mut removed = 0;
        let now = SystemTime::now();
        let folders = match fs::read_dir(&self.dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let old = |m: &fs::Metadata| age(m, now).is_some_and(|a| a >= grace);
        for folder in folders.flatten() {
            let name = folder.file_name();
            let name = name.to_string_lossy();
            let Ok(meta) = fs::symlink_metadata(folder.path()) else {
                continue;
            };
            if name.starts_with(EVICTED) {
                if old(&meta) {
                    let gone = if meta.is_dir() {
                        fs::remove_dir_all(folder.path())
                    } else {
                        fs::remove_file(folder.path())
                    };
                    if gone.is_ok() {
                        removed += 1;
                    }
                }
                continue;
            }
            if !meta.is_dir() || !valid(&name, 32) {
                continue;
            }
            for f in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                let Ok(m) = f.metadata() else {
                    continue;
                };
                if !old(&m) {
                    continue;
                }
                if name.starts_with(TMP) {
                    // A long generation writes on: only a file nobody holds goes.
                    let live = File::open(f.path())
                        .and_then(|file| being_written(&file))
                        .unwrap_or(false);
                    if !live && fs::remove_file(f.path()).is_ok() {
                        removed += 1;
                    }
                } else if name.starts_with(EVICTED) && fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// Renames an entry aside (see [`Store::evict`]).
fn evict_path(place: &Path) -> io::Result<bool> {
    let (Some(folder), Some(name)) = (place.parent(), place.file_name()) else {
        return Err(bad_key());
    };
    let aside = folder.join(format!(
        "{EVICTED}{}-{}",
        name.to_string_lossy().trim_end_matches(".pack"),
        nanos()
    ));
    match fs::rename(place, aside) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// An entry being written; it becomes visible only when committed.
pub struct Writer {
    file: File,
    ino: u64,
    written: u64,
    synced: u64,
    tmp: PathBuf,
    place: PathBuf,
    committed: bool,
}

/// Written bytes are handed to the disk every this many, so the sync before the entry is made
/// visible finds little left to write (the answer's last part waits for it).
const WRITEBACK_EVERY: u64 = 8 << 20;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.synced >= WRITEBACK_EVERY {
            // SAFETY: sync_file_range on this writer's own descriptor; it only starts writeback.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.synced as libc::off64_t,
                    (self.written - self.synced) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.synced = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Writer {
    /// Bytes written so far.
    pub fn written(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Makes the entry visible, whole: synced, then renamed into its place.
    pub fn commit(mut self) -> io::Result<Entry> {
        self.file.sync_data()?;
        let len = self.file.metadata()?.len();
        // Still the file this writer made (a sweep could have taken the lock file from under
        // two writers): never put someone else's half into place.
        if fs::symlink_metadata(&self.tmp)?.ino() != self.ino {
            self.committed = true;
            return Err(io::Error::other("the temporary file was replaced"));
        }
        fs::rename(&self.tmp, &self.place)?;
        self.committed = true;
        Ok(Entry {
            path: self.place.clone(),
            len,
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if !self.committed && fs::symlink_metadata(&self.tmp).is_ok_and(|m| m.ino() == self.ino) {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// An entry read while its writer writes it.
pub struct Growing {
    file: File,
    ino: u64,
    place: PathBuf,
}

/// What a read of a growing entry gave.
pub enum Grown {
    /// Bytes read.
    Bytes(usize),
    /// Nothing new yet: the writer writes on.
    Waiting,
    /// Everything was read, and the file is the committed entry.
    Complete,
    /// The writer gave up (or died): the entry will never be complete.
    Abandoned,
}

impl Growing {
    /// Reads what is there; at the end, says whether more may come.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Grown> {
        use std::io::Read;
        let n = self.file.read(buf)?;
        if n > 0 {
            return Ok(Grown::Bytes(n));
        }
        if being_written(&self.file)? {
            return Ok(Grown::Waiting);
        }
        // The writer is done: whatever it wrote last is readable now.
        let n = self.file.read(buf)?;
        if n > 0 {
            return Ok(Grown::Bytes(n));
        }
        let committed = fs::metadata(&self.place).is_ok_and(|m| m.ino() == self.ino);
        Ok(if committed {
            Grown::Complete
        } else {
            Grown::Abandoned
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(name: &str) -> Tmp {
        let p =
            std::env::temp_dir().join(format!("forgelet-packcache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }

    const K: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const G: &str = "00112233445566778899aabbccddeeff";

    fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for f in fs::read_dir(dir).into_iter().flatten().flatten() {
            if f.path().is_dir() {
                out.extend(files_under(&f.path()));
            } else {
                out.push(f.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }

    #[test]
    fn an_entry_is_seen_whole_or_not_at_all() {
        let t = tmp("whole");
        let store = Store::new(&t.0);
        assert_eq!(store.get(G, K), None);
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK half").unwrap();
        assert_eq!(store.get(G, K), None, "visible before it was committed");
        w.write_all(b" and the rest").unwrap();
        let e = w.commit().unwrap();
        assert_eq!(e.len, 22);
        assert_eq!(store.get(G, K), Some(e));
        assert!(store.get(G, K).unwrap().path.starts_with(t.0.join(G)));
    }

    #[test]
    fn a_writer_dropped_before_commit_leaves_nothing() {
        let t = tmp("dropped");
        let store = Store::new(&t.0);
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK a git that failed").unwrap();
        drop(w);
        assert_eq!(store.get(G, K), None);
        assert!(files_under(&t.0).is_empty(), "{:?}", files_under(&t.0));
    }

    #[test]
    fn an_evicted_entry_stays_readable_by_whoever_opened_it() {
        let t = tmp("evict");
        let store = Store::new(&t.0);
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK answer").unwrap();
        let e = w.commit().unwrap();
        let mut opened = File::open(&e.path).unwrap();
        assert!(store.evict(G, K).unwrap());
        assert_eq!(store.get(G, K), None);
        assert!(!store.evict(G, K).unwrap(), "evicted twice");
        let mut text = String::new();
        opened.read_to_string(&mut text).unwrap();
        assert_eq!(text, "PACK answer");
        // Kept aside until the grace period has passed.
        assert_eq!(store.sweep(Duration::from_secs(3600)).unwrap(), 0);
        assert_eq!(files_under(&t.0).len(), 1);
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 1);
        assert!(files_under(&t.0).is_empty());
    }

    #[test]
    fn a_temporary_file_a_killed_writer_left_is_swept_but_not_a_live_one() {
        let t = tmp("killed");
        let store = Store::new(&t.0);
        // What a process killed mid-write leaves: the file, its lock gone with the process.
        fs::create_dir_all(t.0.join(G)).unwrap();
        fs::write(t.0.join(G).join(format!(".tmp-{K}")), b"PACK half").unwrap();
        assert_eq!(store.get(G, K), None);
        assert!(
            store.growing(G, K).unwrap().is_none(),
            "a dead writer's file grows"
        );
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 1);
        assert!(files_under(&t.0).is_empty());
        // A writer at work keeps its file, however old.
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK").unwrap();
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 0);
        w.write_all(b" rest").unwrap();
        assert_eq!(w.commit().unwrap().len, 9);
    }

    #[test]
    fn a_new_writer_replaces_what_a_dead_one_left() {
        let t = tmp("replace");
        let store = Store::new(&t.0);
        fs::create_dir_all(t.0.join(G)).unwrap();
        fs::write(t.0.join(G).join(format!(".tmp-{K}")), b"junk junk").unwrap();
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK").unwrap();
        let e = w.commit().unwrap();
        assert_eq!(fs::read(e.path).unwrap(), b"PACK");
    }

    #[test]
    fn a_follower_reads_a_growing_entry_to_its_end() {
        let t = tmp("growing");
        let store = Store::new(&t.0);
        assert!(store.growing(G, K).unwrap().is_none());
        let mut w = store.writer(G, K).unwrap();
        w.write_all(b"PACK one").unwrap();
        let mut g = store.growing(G, K).unwrap().expect("a writer is at work");
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        let mut read = |g: &mut Growing, got: &mut Vec<u8>| match g.read(&mut buf).unwrap() {
            Grown::Bytes(n) => {
                got.extend_from_slice(&buf[..n]);
                "bytes"
            }
            Grown::Waiting => "waiting",
            Grown::Complete => "complete",
            Grown::Abandoned => "abandoned",
        };
        assert_eq!(read(&mut g, &mut got), "bytes");
        assert_eq!(read(&mut g, &mut got), "waiting");
        w.write_all(b" two").unwrap();
        w.commit().unwrap();
        assert_eq!(read(&mut g, &mut got), "bytes");
        assert_eq!(read(&mut g, &mut got), "complete");
        assert_eq!(got, b"PACK one two");

        // A writer that gives up leaves its readers an abandoned entry.
        let k2 = "1".repeat(64);
        let mut w = store.writer(G, &k2).unwrap();
        w.write_all(b"PACK").unwrap();
        let mut g = store.growing(G, &k2).unwrap().unwrap();
        drop(w);
        let mut got = Vec::new();
        assert_eq!(read(&mut g, &mut got), "bytes");
        assert_eq!(read(&mut g, &mut got), "abandoned");
        assert_eq!(store.get(G, &k2), None);
    }

    fn put(store: &Store, group: &str, key: &str, bytes: &[u8]) -> Entry {
        let mut w = store.writer(group, key).unwrap();
        w.write_all(bytes).unwrap();
        w.commit().unwrap()
    }

    #[test]
    fn a_group_is_cleared_at_once() {
        let t = tmp("clear");
        let store = Store::new(&t.0);
        let other = "f".repeat(32);
        put(&store, G, K, b"PACK a");
        put(&store, G, &"2".repeat(64), b"PACK b");
        put(&store, &other, K, b"PACK c");
        assert!(store.clear(G).unwrap());
        assert_eq!(store.get(G, K), None);
        assert_eq!(store.get(G, &"2".repeat(64)), None);
        assert!(
            store.get(&other, K).is_some(),
            "another repository's entries went too"
        );
        assert!(!store.clear(G).unwrap());
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 1);
        assert_eq!(store.usage(), (6, 1));
        assert!(store.clear("../x").is_err());
    }

    #[test]
    fn trimming_evicts_the_least_recently_used_first() {
        let t = tmp("trim");
        let store = Store::new(&t.0);
        let keys: Vec<String> = (1..=4).map(|i| i.to_string().repeat(64)).collect();
        for (i, k) in keys.iter().enumerate() {
            let e = put(&store, G, k, &[b'x'; 100]);
            let when = SystemTime::now() - Duration::from_secs(1000 - i as u64 * 100);
            File::options()
                .write(true)
                .open(&e.path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        // The oldest, used now, is kept.
        let e = store.get(G, &keys[0]).unwrap();
        store.touch(&e);
        assert_eq!(store.trim(250), 2);
        assert!(store.get(G, &keys[0]).is_some());
        assert!(store.get(G, &keys[1]).is_none());
        assert!(store.get(G, &keys[2]).is_none());
        assert!(store.get(G, &keys[3]).is_some());
        assert_eq!(store.usage(), (200, 2));
        assert_eq!(store.expire(Duration::from_secs(800)), 0);
        assert_eq!(store.expire(Duration::ZERO), 2);
        assert_eq!(store.usage(), (0, 0));
    }

    #[test]
    fn clearing_can_wait_for_answers_being_made() {
        let t = tmp("wait");
        let store = Store::new(&t.0);
        let lock = crate::fsfile::try_lock(&store.lock_path(G, K).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(store.wait_for_writers(Duration::from_millis(100)), 1);
        drop(lock);
        assert_eq!(store.wait_for_writers(Duration::from_millis(100)), 0);
    }

    #[test]
    fn sightings_are_counted() {
        let t = tmp("seen");
        let store = Store::new(&t.0);
        assert_eq!(store.sightings(G, K), 0);
        assert_eq!(store.sighting(G, K).unwrap(), 1);
        assert_eq!(store.sighting(G, K).unwrap(), 2);
        assert_eq!(store.sightings(G, K), 2);
        store.expire(Duration::ZERO);
        assert_eq!(store.sightings(G, K), 0);
    }

    #[test]
    fn only_keys_name_entries() {
        let t = tmp("keys");
        let store = Store::new(&t.0);
        for bad in [
            "",
            "../../etc/passwd",
            &K.to_uppercase(),
            &K[..63],
            &format!("{K}0"),
        ] {
            assert_eq!(store.get(G, bad), None, "{bad}");
            assert!(store.writer(G, bad).is_err(), "{bad}");
            assert!(store.evict(G, bad).is_err(), "{bad}");
        }
    }
}
