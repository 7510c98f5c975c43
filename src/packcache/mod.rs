//! The pack cache: git's answer to a fetch, kept so that the same request on the same
//! repository state is answered from a file (by the web server, with the sendfile header)
//! instead of by git again. A clone storm then costs one pack.
//!
//! Any transport that runs `git upload-pack` uses it the same way: read the request into its
//! canonical form and make its key ([`key`]), then [`Cache::lookup`]:
//! - [`Lookup::Hit`]: a complete entry; send it.
//! - [`Lookup::Lead`]: nobody is making this answer: run git, write its output to the
//!   [`Lead`] as well as to the client, and [`Lead::finish`] it with whether git succeeded.
//!   The entry becomes visible whole, and only when git succeeded, the request has been seen
//!   `min_hits` times (identical requests arriving meanwhile count) and it fits.
//! - [`Lookup::Follow`]: another process or thread is running git for this very request:
//!   [`Follow::wait`] for its entry without holding a git slot, then send it; if it takes
//!   longer than `follow_wait` (a web server would give up on a silent answer), read the
//!   entry as it grows instead.
//! - [`Lookup::Pass`]: answer with git alone (not cacheable, seen too rarely, little space).
//!
//! Processes coordinate with file locks only (CGI, SSH and several frontends are separate
//! processes). [`identity`] keeps repositories apart; [`store`] holds the entries.
//! Public, so fuzz targets and benchmarks can feed it requests: the request reader faces whatever
//! a client sends.

pub mod identity;
pub mod key;
pub mod store;

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::fsfile::{self, FileLock};
use store::{Entry, Growing, Store, Writer};

/// How the cache is bounded.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Entries together hold at most this much; 0 turns the cache off.
    pub max_bytes: u64,
    /// Sightings of a request before its answer is kept.
    pub min_hits: u64,
    /// Free space the cache leaves on its disk (which pushes share).
    pub free_bytes: u64,
    /// How long a follower waits for the entry before it reads the entry as it grows.
    pub follow_wait: Duration,
    /// Entries unused for this long are taken out by maintenance ([`store::Store::expire`]).
    pub max_age: Duration,
}

/// How long an evicted entry is kept aside before maintenance deletes it ([`store::Store::sweep`]):
/// a web server told to send it opens it well within.
pub const SWEEP_GRACE: Duration = Duration::from_secs(600);

/// What to do with a request.
pub enum Lookup<'c> {
    Hit(Entry),
    Lead(Lead<'c>),
    Follow(Follow<'c>),
    /// Why it is not cached this time.
    Pass(&'static str),
}

/// The cache of one site.
pub struct Cache {
    store: Store,
    settings: Settings,
    /// Entries being made visible (see [`Lead::finish`]).
    pending: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Counted events, kept in `counters` in the cache's folder for every process that uses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Answered from an entry (by a follower too).
    Hit,
    /// Answered by git, the answer written for the cache.
    Miss,
    /// Answered by git alone.
    Pass,
    /// An entry made.
    Stored,
}

const EVENTS: [Event; 4] = [Event::Hit, Event::Miss, Event::Pass, Event::Stored];

/// The counts, in [`Event`] order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub hits: u64,
    pub misses: u64,
    pub passes: u64,
    pub stored: u64,
}

impl Cache {
    /// The cache whose entries are in `dir` (the config's `pack_cache.dir`); `None` when
    /// turned off.
    pub fn new(dir: &Path, settings: Settings) -> Option<Cache> {
        (settings.max_bytes > 0).then(|| Cache {
            store: Store::new(dir),
            settings,
            pending: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What to do with the request of `key` in `group`. `full` says it has no `have`s (a
    /// clone): only those are written for the cache on their first sighting, since a clone
    /// storm's first requests arrive together; a fetch's answer is written once it was seen
    /// `min_hits` times.
    pub fn lookup(&self, group: &str, key: &str, full: bool) -> Lookup<'_> {
        if let Some(e) = self.store.get(group, key) {
            self.store.touch(&e);
            return Lookup::Hit(e);
        }
        let seen = match self.store.sighting(group, key) {
            Ok(n) => n,
            Err(e) => {
                log::warn!(
                    "pack cache: cannot count a request in {}: {e}",
                    self.store.dir().display()
                );
                return Lookup::Pass("the cache's folder cannot be written");
            }
        };
        if !full && seen < self.settings.min_hits {
            return Lookup::Pass("seen too rarely");
        }
        let lock = match self
            .store
            .lock_path(group, key)
            .map_err(|e| e.to_string())
            .and_then(|p| fsfile::try_lock(&p))
        {
            Ok(Some(l)) => l,
            Ok(None) => {
                return Lookup::Follow(Follow {
                    cache: self,
                    group: group.to_string(),
                    key: key.to_string(),
                    since: Instant::now(),
                })
            }
            Err(e) => {
                log::warn!("pack cache: {e}");
                return Lookup::Pass("the cache's lock cannot be taken");
            }
        };
        // Made while the lock was being taken.
        if let Some(e) = self.store.get(group, key) {
            return Lookup::Hit(e);
        }
        if free_space(self.store.dir()).is_some_and(|free| free < self.settings.free_bytes) {
            return Lookup::Pass("little free space");
        }
        match self.store.writer(group, key) {
            Ok(writer) => Lookup::Lead(Lead {
                cache: self,
                group: group.to_string(),
                key: key.to_string(),
                writer: Some(writer),
                written: 0,
                lock: Some(lock),
            }),
            Err(e) => {
                log::warn!(
                    "pack cache: cannot write in {}: {e}",
                    self.store.dir().display()
                );
                Lookup::Pass("the cache's folder cannot be written")
            }
        }
    }

    /// Waits until the entries this process is making visible are (or were given up); the
    /// finished ones are let go of on the way.
    pub fn settle(&self) {
        let handles = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for h in handles {
            let _ = h.join();
        }
    }

    /// Counts an event.
    pub fn count(&self, event: Event) {
        if let Err(e) = count(self.store.dir(), event) {
            log::debug!("pack cache: cannot count: {e}");
        }
    }
}

/// Free bytes for an unprivileged writer on the disk of `dir`.
fn free_space(dir: &Path) -> Option<u64> {
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: statvfs fills the struct it is given; it is read only when the call succeeded.
    let rc = unsafe { libc::statvfs(path.as_ptr(), s.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: initialized by the successful call above.
    let s = unsafe { s.assume_init() };
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

fn counters_file(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(dir.join("counters"))
}

fn count(dir: &Path, event: Event) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let f = counters_file(dir)?;
    store::flock(&f, libc::LOCK_EX)?;
    let at = EVENTS.iter().position(|e| *e == event).unwrap_or(0) as u64 * 8;
    let mut n = [0u8; 8];
    let have = f.read_at(&mut n, at)?;
    let value = if have == 8 { u64::from_le_bytes(n) } else { 0 };
    f.write_all_at(&value.saturating_add(1).to_le_bytes(), at)
}

/// The counts of the cache whose entries are in `dir`.
pub fn counts(dir: &Path) -> Counts {
    let mut c = [0u64; 4];
    if let Ok(f) = File::open(dir.join("counters")) {
        let _ = store::flock(&f, libc::LOCK_SH);
        for (i, v) in c.iter_mut().enumerate() {
            let mut n = [0u8; 8];
            if f.read_at(&mut n, i as u64 * 8).ok() == Some(8) {
                *v = u64::from_le_bytes(n);
            }
        }
    }
    Counts {
        hits: c[0],
        misses: c[1],
        passes: c[2],
        stored: c[3],
    }
}

/// The one run of git whose answer is being written for the cache. Write git's output to it
/// (it never fails: a cache that cannot be written is given up, the answer goes on).
pub struct Lead<'c> {
    cache: &'c Cache,
    group: String,
    key: String,
    writer: Option<Writer>,
    written: u64,
    /// Held until the entry is visible or given up.
    lock: Option<FileLock>,
}

impl Write for Lead<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(w) = &mut self.writer {
            self.written += buf.len() as u64;
            if self.written > self.cache.settings.max_bytes {
                log::info!(
                    "pack cache: an answer of more than {} bytes is not kept ([pack_cache] max_mib)",
                    self.cache.settings.max_bytes
                );
                self.writer = None;
            } else if let Err(e) = w.write_all(buf) {
                log::warn!(
                    "pack cache: cannot write an entry in {}: {e}",
                    self.cache.store.dir().display()
                );
                self.writer = None;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lead<'_> {
    /// Ends the run: `ok` says git answered in full and succeeded. The entry is kept when the
    /// request was seen often enough (counting those that arrived meanwhile) and it fits. The
    /// sync and rename happen on a thread of their own, so the client's answer ends without
    /// waiting for the disk; identical requests waiting for the entry get it when it is visible.
    /// A process that ends after its one request (CGI) calls [`Cache::settle`] before it exits.
    pub fn finish(mut self, ok: bool) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        let cache = self.cache;
        if !ok || cache.store.sightings(&self.group, &self.key) < cache.settings.min_hits {
            return;
        }
        // Past the floor now: give the space back to pushes.
        if free_space(cache.store.dir()).is_some_and(|f| f < cache.settings.free_bytes) {
            return;
        }
        let store = cache.store.clone();
        let max_bytes = cache.settings.max_bytes;
        // Held until the entry is visible (or given up): followers wait on it.
        let lock = self.lock.take();
        let keep = move || {
            let _lock = lock;
            match writer.commit() {
                Ok(_) => {
                    if let Err(e) = count(store.dir(), Event::Stored) {
                        log::debug!("pack cache: cannot count: {e}");
                    }
                    let (used, _) = store.usage();
                    if used > max_bytes {
                        store.trim(max_bytes);
                    }
                }
                Err(e) => log::warn!(
                    "pack cache: cannot keep an entry in {}: {e}",
                    store.dir().display()
                ),
            }
        };
        match std::thread::Builder::new()
            .name("pack-cache-commit".into())
            .spawn(keep)
        {
            Ok(handle) => {
                let mut pending = cache
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                pending.retain(|h| !h.is_finished());
                pending.push(handle);
            }
            // No thread to be had: the entry is given up (the writer's drop removes it).
            Err(e) => log::warn!("pack cache: cannot start a thread to keep an entry: {e}"),
        }
    }
}

/// A request whose answer another run of git is making.
pub struct Follow<'c> {
    cache: &'c Cache,
    group: String,
    key: String,
    since: Instant,
}

/// What a follower gets.
pub enum Followed {
    /// The entry, complete.
    Hit(Entry),
    /// The entry as it is written (the wait was long): read it to its end.
    Growing(Growing),
    /// The other run ended without an entry (it failed, or gave up the cache): run git.
    Gone,
}

impl Follow<'_> {
    /// Waits for the entry without holding anything git needs.
    pub fn wait(&self) -> Followed {
        let store = &self.cache.store;
        let mut pause = Duration::from_millis(5);
        loop {
            if let Some(e) = store.get(&self.group, &self.key) {
                return Followed::Hit(e);
            }
            // The lock free again: the other run has ended.
            let ended = store
                .lock_path(&self.group, &self.key)
                .map_err(|e| e.to_string())
                .and_then(|p| fsfile::try_lock(&p))
                .map(|l| l.is_some())
                .unwrap_or(true);
            if ended {
                return match store.get(&self.group, &self.key) {
                    Some(e) => Followed::Hit(e),
                    None => Followed::Gone,
                };
            }
            if self.since.elapsed() >= self.cache.settings.follow_wait {
                match store.growing(&self.group, &self.key) {
                    Ok(Some(g)) => return Followed::Growing(g),
                    Ok(None) => {}
                    Err(_) => return Followed::Gone,
                }
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
