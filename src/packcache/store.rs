//! Where cached answers live: `{repos}/.cache/{k[0..2]}/{key}.pack`, under the repositories
//! folder so the web server's internal location can send them, in a folder no owner can name
//! (owner names begin with a letter or digit).
//!
//! An entry is written to a temporary file beside its place and renamed into it when complete,
//! so a reader sees a whole answer or none; a writer dropped before [`Writer::commit`] (a git
//! that failed, a process killed) leaves no entry, and a temporary file a killed process left
//! is removed by [`Store::sweep`]. An entry is evicted by renaming it aside and deleting it after
//! a grace period, never unlinked where it stood: between forgelet's answer naming the file and
//! the web server opening it, the name must still lead to the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The cache's folder name inside the repositories folder.
pub const DIR: &str = ".cache";

/// Prefixes of the files that are not entries.
const TMP: &str = ".tmp-";
const EVICTED: &str = ".evicted-";

/// The cache of one site.
pub struct Store {
    dir: PathBuf,
}

/// A complete entry.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub len: u64,
}

/// A key is 64 lowercase hex digits (see `key::key`); anything else names no entry.
fn valid_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn bad_key() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a pack cache key")
}

impl Store {
    /// The cache of the site whose repositories are in `repos_dir`.
    pub fn new(repos_dir: &Path) -> Store {
        Store {
            dir: repos_dir.join(DIR),
        }
    }

    /// Where the entry of `key` is (whether or not it exists).
    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.pack"))
    }

    /// The complete entry of `key`, if there is one.
    pub fn get(&self, key: &str) -> Option<Entry> {
        if !valid_key(key) {
            return None;
        }
        let path = self.path(key);
        let meta = fs::metadata(&path).ok()?;
        meta.is_file().then_some(Entry {
            path,
            len: meta.len(),
        })
    }

    /// A writer for the entry of `key`: a temporary file beside its place.
    pub fn writer(&self, key: &str) -> io::Result<Writer> {
        if !valid_key(key) {
            return Err(bad_key());
        }
        let place = self.path(key);
        let folder = place.parent().ok_or_else(bad_key)?;
        fs::create_dir_all(folder)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = folder.join(format!("{TMP}{key}-{}-{nanos}", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        Ok(Writer {
            file,
            tmp,
            place,
            committed: false,
        })
    }

    /// Takes the entry of `key` out of the cache: renamed aside, deleted by a later
    /// [`Store::sweep`] once no web server can still be about to open it. False when there
    /// was none.
    pub fn evict(&self, key: &str) -> io::Result<bool> {
        if !valid_key(key) {
            return Err(bad_key());
        }
        let place = self.path(key);
        let folder = place.parent().ok_or_else(bad_key)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let aside = folder.join(format!("{EVICTED}{key}-{nanos}"));
        match fs::rename(&place, &aside) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes evicted entries and abandoned temporary files older than `grace`; how many.
    pub fn sweep(&self, grace: Duration) -> io::Result<usize> {
        let mut removed = 0;
        let now = SystemTime::now();
        let folders = match fs::read_dir(&self.dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for folder in folders.flatten() {
            let Ok(files) = fs::read_dir(folder.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name();
                let name = name.to_string_lossy();
                if !(name.starts_with(TMP) || name.starts_with(EVICTED)) {
                    continue;
                }
                let old = f
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|age| age >= grace);
                if old && fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// An entry being written; it becomes visible only when committed.
pub struct Writer {
    file: File,
    tmp: PathBuf,
    place: PathBuf,
    committed: bool,
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Writer {
    /// Makes the entry visible, whole: synced, then renamed into its place.
    pub fn commit(mut self) -> io::Result<Entry> {
        self.file.sync_all()?;
        let len = self.file.metadata()?.len();
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
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
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
        assert_eq!(store.get(K), None);
        let mut w = store.writer(K).unwrap();
        w.write_all(b"PACK half").unwrap();
        assert_eq!(store.get(K), None, "visible before it was committed");
        w.write_all(b" and the rest").unwrap();
        let e = w.commit().unwrap();
        assert_eq!(e.len, 22);
        assert_eq!(store.get(K), Some(e));
        assert!(store
            .get(K)
            .unwrap()
            .path
            .starts_with(t.0.join(".cache/01")));
    }

    #[test]
    fn a_writer_dropped_before_commit_leaves_nothing() {
        let t = tmp("dropped");
        let store = Store::new(&t.0);
        let mut w = store.writer(K).unwrap();
        w.write_all(b"PACK a git that failed").unwrap();
        drop(w);
        assert_eq!(store.get(K), None);
        assert!(files_under(&t.0).is_empty(), "{:?}", files_under(&t.0));
    }

    #[test]
    fn an_evicted_entry_stays_readable_by_whoever_opened_it() {
        let t = tmp("evict");
        let store = Store::new(&t.0);
        let mut w = store.writer(K).unwrap();
        w.write_all(b"PACK answer").unwrap();
        let e = w.commit().unwrap();
        let mut opened = File::open(&e.path).unwrap();
        assert!(store.evict(K).unwrap());
        assert_eq!(store.get(K), None);
        assert!(!store.evict(K).unwrap(), "evicted twice");
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
    fn a_temporary_file_a_killed_writer_left_is_swept() {
        let t = tmp("killed");
        let store = Store::new(&t.0);
        let w = store.writer(K).unwrap();
        // A process killed before it could drop its writer.
        std::mem::forget(w);
        assert_eq!(store.get(K), None);
        assert_eq!(store.sweep(Duration::ZERO).unwrap(), 1);
        assert!(files_under(&t.0).is_empty());
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
            assert_eq!(store.get(bad), None, "{bad}");
            assert!(store.writer(bad).is_err(), "{bad}");
            assert!(store.evict(bad).is_err(), "{bad}");
        }
    }
}
