//! Caches of opened repositories (per thread), of their parsed settings and of the dashboard's
//! "last update" dates (shared).
//!
//! A FastCGI worker serves request after request, and most of them touch the same few
//! repositories. Opening one with libgit2 (its config parsed, its packs' indexes mapped) and
//! freeing it again (the maps torn down, which interrupts every core) used to be most of a page's
//! cost, so each worker thread keeps the last few it opened.
//!
//! Correctness does not depend on the cache:
//! - a cached entry is used only while the repository folder, and for settings the `config`
//!   file, are the very same files (device, inode, and for the config size and modification
//!   time): a rename, a delete and recreate, a settings change (libgit2 writes the config to a
//!   new file and renames it into place) each start afresh; a date is used only while `HEAD`
//!   says the same and the ref files it depends on are the same files (looked at again at most
//!   once a second);
//! - libgit2 reads refs from disk on every lookup and looks for new packs when an object is not in
//!   the ones it knows, so pushes are seen at once;
//! - an opened repository is opened afresh once its pack folder changed (a push of a pack, a
//!   repack, a purge), so packs that were deleted are let go of at once (libgit2 would read on
//!   from the ones it had mapped), and after [`MAX_AGE`] in any case.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use git2::Repository;

use super::store::Settings;

/// Repositories kept per thread.
const SLOTS: usize = 8;
/// How long an opened repository is reused before it is opened afresh.
const MAX_AGE: Duration = Duration::from_secs(30);

/// Identifies one version of a file or folder: replaced files get a new inode, edited ones a new
/// size or modification time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    pub(super) fn of(path: &Path) -> Option<Stamp> {
        Some(Stamp::from_metadata(&fs::metadata(path).ok()?))
    }

    /// The stamp of the file `file` is open on.
    pub(super) fn of_open(file: &fs::File) -> Option<Stamp> {
        Some(Stamp::from_metadata(&file.metadata().ok()?))
    }

    fn from_metadata(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }

    /// The stamp of `rel`, a path relative to the folder `dir` is open on: what [`Stamp::of`]
    /// says of `dir`'s path joined with `rel`, for the cost of looking up `rel` alone (a
    /// path's every folder is looked up on each call, and lists of repositories look at a file
    /// of each one they show, on every request).
    #[allow(clippy::unnecessary_cast)]
    pub(super) fn at(dir: &fs::File, rel: &std::ffi::CStr) -> Option<Stamp> {
        use std::os::unix::io::AsRawFd;
        // SAFETY: an all-zero `stat` is a valid value of that plain C struct.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a descriptor `dir` owns, a NUL-terminated path, and a buffer of the right type
        // this function owns; fstatat writes nothing else.
        let rc = unsafe { libc::fstatat(dir.as_raw_fd(), rel.as_ptr(), &mut st, 0) };
        (rc == 0).then_some(Stamp {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime: st.st_mtime as i64,
            mtime_nsec: st.st_mtime_nsec as i64,
        })
    }

    /// The stamp as text (`dev:ino:size:mtime:nsec`), for the listing file (`git::listing`).
    pub(super) fn to_text(self) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }

    /// A stamp from [`Stamp::to_text`]'s form; `None` for anything else.
    pub(super) fn from_text(text: &str) -> Option<Stamp> {
        let mut parts = text.split(':');
        let stamp = Stamp {
            dev: parts.next()?.parse().ok()?,
            ino: parts.next()?.parse().ok()?,
            size: parts.next()?.parse().ok()?,
            mtime: parts.next()?.parse().ok()?,
            mtime_nsec: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(stamp)
    }

    /// Whether the file changed within `window` before `t`, or after it.
    pub(super) fn recent_at(&self, t: std::time::SystemTime, window: Duration) -> bool {
        let changed = u64::try_from(self.mtime)
            .ok()
            .zip(u32::try_from(self.mtime_nsec).ok())
            .and_then(|(secs, nanos)| {
                std::time::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
            });
        !changed
            .and_then(|c| t.duration_since(c).ok())
            .is_some_and(|age| age > window)
    }

    /// Whether the file changed within `window` of now (or its time is in the future): a second
    /// change within the clock's granularity could then leave the stamp as it is.
    pub(super) fn recent(&self, window: Duration) -> bool {
        let changed = u64::try_from(self.mtime)
            .ok()
            .zip(u32::try_from(self.mtime_nsec).ok())
            .and_then(|(secs, nanos)| {
                std::time::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
            });
        !changed
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > window)
    }

    /// The identity of a folder, whose size and modification time change as entries come and
    /// go: device, inode and creation time (a removed folder's inode may be reused at once),
    /// or the modification time where the file system keeps no creation time.
    fn identity(path: &Path) -> Option<Stamp> {
        let m = fs::metadata(path).ok()?;
        let (mtime, mtime_nsec) = match m.created() {
            Ok(t) => {
                let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                (d.as_secs() as i64, i64::from(d.subsec_nanos()))
            }
            Err(_) => (m.mtime(), m.mtime_nsec()),
        };
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: 0,
            mtime,
            mtime_nsec,
        })
    }
}

struct Opened {
    path: PathBuf,
    stamp: Stamp,
    /// The pack folder as it was: a repack (`git gc`, a purge) changes it, and libgit2 would
    /// otherwise go on reading objects from the packs it had mapped, deleted or not.
    packs: Option<Stamp>,
    at: Instant,
    repo: Rc<Repository>,
}

thread_local! {
    static OPENED: RefCell<Vec<Opened>> = const { RefCell::new(Vec::new()) };
}

/// A cache shared by all threads: a value by path, with the stamp it is valid for.
type Shared<S, V> = Mutex<Option<HashMap<PathBuf, (S, Arc<V>)>>>;

/// Settings by config file, shared by all threads: the dashboard reads every repository's.
static PARSED: Shared<Stamp, Settings> = Mutex::new(None);
/// The default branch's latest commit date by repository folder, for the dashboard, with when
/// its stamp was last found unchanged.
static DATES: Shared<(HeadStamp, Instant), str> = Mutex::new(None);
/// How long a date is shown without looking at the refs again: pages that list repositories
/// would otherwise look at three files for each repository they show, on every request.
const DATE_RECHECK: Duration = Duration::from_secs(1);
/// Repositories' descriptions by file, for the pages that list repositories.
static DESCRIPTIONS: Shared<Stamp, str> = Mutex::new(None);
/// What `HEAD` holds, by file: the dates' stamps start from it.
static HEADS: Shared<Stamp, [u8]> = Mutex::new(None);
/// Entries kept in each shared map; past it the map starts again empty.
const SHARED_ENTRIES: usize = 16_384;

/// Takes `key`'s value from a shared map while `still` holds for its stamp.
fn shared_get<S, V: ?Sized>(
    map: &Shared<S, V>,
    key: &Path,
    still: impl FnOnce(&S) -> bool,
) -> Option<Arc<V>> {
    let guard = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let (stamp, value) = guard.as_ref()?.get(key)?;
    still(stamp).then(|| Arc::clone(value))
}

fn shared_put<S, V: ?Sized>(map: &Shared<S, V>, key: &Path, stamp: S, value: Arc<V>) {
    let mut guard = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let entries = guard.get_or_insert_with(HashMap::new);
    if entries.len() >= SHARED_ENTRIES {
        entries.clear();
    }
    entries.insert(key.to_path_buf(), (stamp, value));
}

/// The identity of a repository folder as bytes (device, inode, and creation time, or the
/// modification time where the file system keeps none): the same while it is the same folder,
/// another for a folder deleted (or moved to the trash) and made again under the same name,
/// even at the same inode. `None` when the folder cannot be looked at. Pages cached in memory
/// are keyed by it, so one repository's pages are never served for another.
pub(crate) fn folder_identity(path: &Path) -> Option<[u8; 32]> {
    let s = Stamp::identity(path)?;
    let mut out = [0u8; 32];
    for (i, v) in [s.dev, s.ino, s.mtime as u64, s.mtime_nsec as u64]
        .into_iter()
        .enumerate()
    {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    Some(out)
}

/// The repository at `path`, from this thread's cache when it is still the same folder, else
/// opened with `open` (and cached). Most recently used first; the least recently used is dropped.
pub(crate) fn repository(
    path: &Path,
    open: impl FnOnce() -> Result<Repository, git2::Error>,
) -> Result<Rc<Repository>, git2::Error> {
    let Some(stamp) = Stamp::identity(path) else {
        // Gone, or unreadable: let libgit2 say why.
        return open().map(Rc::new);
    };
    let packs = Stamp::of(&path.join("objects").join("pack"));
    let now = Instant::now();
    let hit = OPENED.with_borrow_mut(|cache| {
        let i = cache.iter().position(|e| e.path == path)?;
        let entry = cache.remove(i);
        if entry.stamp != stamp || entry.packs != packs || now.duration_since(entry.at) > MAX_AGE {
            return None;
        }
        let repo = Rc::clone(&entry.repo);
        cache.insert(0, entry);
        Some(repo)
    });
    if let Some(repo) = hit {
        return Ok(repo);
    }
    let repo = Rc::new(open()?);
    OPENED.with_borrow_mut(|cache| {
        cache.truncate(SLOTS - 1);
        cache.insert(
            0,
            Opened {
                path: path.to_path_buf(),
                stamp,
                packs,
                at: now,
                repo: Rc::clone(&repo),
            },
        );
    });
    Ok(repo)
}

/// The settings parsed from the config file at `config`, from the shared cache while the file
/// is unchanged, else from `parse` (and cached, unless the file could not be looked at).
pub(crate) fn settings(config: &Path, parse: impl FnOnce() -> Settings) -> Arc<Settings> {
    let Some(stamp) = Stamp::of(config) else {
        return Arc::new(parse());
    };
    if let Some(hit) = shared_get(&PARSED, config, |s| *s == stamp) {
        return hit;
    }
    let settings = Arc::new(parse());
    // A file changed within the clock's granularity of its last parse could look unchanged
    // after a second change of the same size: cache only what has been still for a moment.
    // (A change while parsing gives the file a new stamp, so this entry would never match.)
    let settled = u64::try_from(stamp.mtime)
        .ok()
        .zip(u32::try_from(stamp.mtime_nsec).ok())
        .and_then(|(secs, nanos)| std::time::UNIX_EPOCH.checked_add(Duration::new(secs, nanos)))
        .and_then(|changed| changed.elapsed().ok())
        .is_some_and(|age| age > Duration::from_secs(2));
    if settled {
        shared_put(&PARSED, config, stamp, Arc::clone(&settings));
    }
    settings
}

/// A file's text made into a value by `make`, from `map` while the file is the same file with
/// the same size and time (and has been for a moment: see `settings`), else made afresh.
fn by_file<V: ?Sized>(
    map: &Shared<Stamp, V>,
    path: &Path,
    make: impl FnOnce() -> Arc<V>,
) -> Arc<V> {
    let Some(stamp) = Stamp::of(path) else {
        return make();
    };
    if let Some(hit) = shared_get(map, path, |s| *s == stamp) {
        return hit;
    }
    let value = make();
    if !stamp.recent(Duration::from_secs(2)) {
        shared_put(map, path, stamp, Arc::clone(&value));
    }
    value
}

/// A repository's description (the file at `path`), read with `read` when it changed.
pub(crate) fn description(path: &Path, read: impl FnOnce() -> String) -> Arc<str> {
    by_file(&DESCRIPTIONS, path, || Arc::from(read()))
}

/// The bytes of the `HEAD` file at `path` (at most 128), read again when it changed; `None`
/// when it cannot be read or is longer (no ref git writes there is).
fn head_bytes(path: &Path) -> Option<Arc<[u8]>> {
    let bytes = by_file(&HEADS, path, || {
        use std::io::Read;
        let mut out = Vec::new();
        let read = fs::File::open(path).and_then(|f| f.take(129).read_to_end(&mut out));
        match read {
            Ok(_) if out.len() < 128 => Arc::from(out),
            // Not a value any HEAD has: the caller does not cache.
            _ => Arc::from(vec![0u8; 129]),
        }
    });
    (bytes.len() < 128).then_some(bytes)
}

/// What the default branch's tip depends on: `HEAD`'s text, and the loose ref it names and
/// `packed-refs` as files. git writes each of them to a new file renamed into place.
#[derive(Clone, PartialEq, Eq)]
struct HeadStamp {
    head: [u8; 128],
    head_len: usize,
    loose: Option<Stamp>,
    packed: Option<Stamp>,
}

impl HeadStamp {
    fn of(repo: &Path) -> Option<HeadStamp> {
        let bytes = head_bytes(&repo.join("HEAD"))?;
        let mut head = [0u8; 128];
        let head_len = bytes.len();
        head.get_mut(..head_len)?.copy_from_slice(&bytes);
        let text = std::str::from_utf8(&head[..head_len]).ok()?;
        let loose = match text.trim_end().strip_prefix("ref: ") {
            Some(name) if name.starts_with("refs/") && !name.contains("..") => {
                Stamp::of(&repo.join(name))
            }
            Some(_) => return None,
            None => None,
        };
        Some(HeadStamp {
            head,
            head_len,
            loose,
            packed: Stamp::of(&repo.join("packed-refs")),
        })
    }
}

/// The date of the default branch's latest commit in the repository at `repo`, from the shared
/// cache while `HEAD` and the refs it depends on are unchanged, else from `compute`. The refs
/// are looked at again at most every [`DATE_RECHECK`]: a push shows on the lists of
/// repositories within that time.
pub(crate) fn head_date(repo: &Path, compute: impl FnOnce() -> String) -> Arc<str> {
    let now = Instant::now();
    if let Some(hit) = shared_get(&DATES, repo, |(_, checked)| {
        now.checked_duration_since(*checked)
            .is_some_and(|age| age < DATE_RECHECK)
    }) {
        return hit;
    }
    let Some(stamp) = HeadStamp::of(repo) else {
        return Arc::from(compute());
    };
    if let Some(hit) = shared_get(&DATES, repo, |(s, _)| *s == stamp) {
        shared_put(&DATES, repo, (stamp, now), Arc::clone(&hit));
        return hit;
    }
    // Refs that move while computing give a new stamp, so this entry would never match.
    let date: Arc<str> = Arc::from(compute());
    shared_put(&DATES, repo, (stamp, now), Arc::clone(&date));
    date
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::store::Visibility;

    fn temp(test: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("forgelet-cache-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        root
    }

    fn parse_count(path: &Path, count: &mut u32) -> Arc<Settings> {
        settings(path, || {
            *count += 1;
            Settings {
                visibility: Visibility::Public,
                unsupported_format: None,
                problem: None,
                collaborators: Vec::new(),
            }
        })
    }

    #[test]
    fn settings_are_parsed_again_when_the_file_changes() {
        let root = temp("settings");
        let config = root.join("config");
        fs::write(&config, "a").unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(10);
        let f = fs::File::options().write(true).open(&config).unwrap();
        f.set_modified(old).unwrap();
        let mut n = 0;
        parse_count(&config, &mut n);
        parse_count(&config, &mut n);
        assert_eq!(n, 1, "an unchanged, settled file is parsed once");
        // Replaced by rename, as libgit2 writes it: same size, same time, new inode.
        let new = root.join("config.lock");
        fs::write(&new, "b").unwrap();
        fs::File::options()
            .write(true)
            .open(&new)
            .unwrap()
            .set_modified(old)
            .unwrap();
        fs::rename(&new, &config).unwrap();
        parse_count(&config, &mut n);
        assert_eq!(n, 2, "a replaced file is parsed again");
        // Edited in place and just now: parsed every time until it has settled.
        fs::write(&config, "cc").unwrap();
        parse_count(&config, &mut n);
        parse_count(&config, &mut n);
        assert_eq!(n, 4, "a file changed just now is not cached");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn stamps_by_path_and_by_open_folder_agree() {
        let root = temp("stamps");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/config"), "x").unwrap();
        let dir = fs::File::open(&root).unwrap();
        let by_path = Stamp::of(&root.join("a/b/config"));
        assert!(by_path.is_some());
        assert_eq!(Stamp::at(&dir, c"a/b/config"), by_path);
        assert_eq!(Stamp::at(&dir, c"a/b/missing"), None);
        assert_eq!(Stamp::of_open(&dir), Stamp::of(&root));
        let text = by_path.unwrap().to_text();
        assert_eq!(Stamp::from_text(&text), by_path);
        assert_eq!(Stamp::from_text(&format!("{text}:1")), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_recreated_repository_is_opened_afresh() {
        let root = temp("repo");
        let path = root.join("r.git");
        let first = Repository::init_bare(&path).unwrap();
        let sig = git2::Signature::now("a", "a@example.com").unwrap();
        let tree = first.treebuilder(None).unwrap().write().unwrap();
        let tree = first.find_tree(tree).unwrap();
        first
            .commit(Some("refs/heads/main"), &sig, &sig, "one", &tree, &[])
            .unwrap();
        let a = repository(&path, || Repository::open_bare(&path)).unwrap();
        let b = repository(&path, || Repository::open_bare(&path)).unwrap();
        assert!(Rc::ptr_eq(&a, &b), "the same folder is opened once");
        assert!(a.find_reference("refs/heads/main").is_ok());
        drop((a, b));
        // Deleted as forgelet deletes (moved away), or removed outright, then made anew.
        fs::rename(&path, root.join("trash.git")).unwrap();
        Repository::init_bare(&path).unwrap();
        let c = repository(&path, || Repository::open_bare(&path)).unwrap();
        assert!(
            c.find_reference("refs/heads/main").is_err(),
            "a repository made where one was moved away is not the old one"
        );
        drop(c);
        fs::remove_dir_all(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        fs::rename(root.join("trash.git"), &path).unwrap();
        let d = repository(&path, || Repository::open_bare(&path)).unwrap();
        assert!(d.find_reference("refs/heads/main").is_ok(), "moved back");
        drop(d);
        fs::remove_dir_all(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        Repository::init_bare(&path).unwrap();
        let e = repository(&path, || Repository::open_bare(&path)).unwrap();
        assert!(
            e.find_reference("refs/heads/main").is_err(),
            "a repository made where one was removed is not the old one"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_folder_made_again_has_another_identity() {
        let root = temp("identity");
        let path = root.join("r.git");
        fs::create_dir(&path).unwrap();
        let first = folder_identity(&path).unwrap();
        fs::write(path.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(
            folder_identity(&path),
            Some(first),
            "the same folder, written to"
        );
        fs::rename(&path, root.join("trash.git")).unwrap();
        fs::create_dir(&path).unwrap();
        assert_ne!(
            folder_identity(&path),
            Some(first),
            "moved away, made again"
        );
        fs::remove_dir_all(root.join("trash.git")).unwrap();
        let second = folder_identity(&path).unwrap();
        fs::remove_dir_all(&path).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        fs::create_dir(&path).unwrap();
        assert_ne!(folder_identity(&path), Some(second), "removed, made again");
        assert_eq!(folder_identity(&root.join("missing")), None);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn head_dates_are_computed_again_when_the_branch_moves() {
        let root = temp("dates");
        let path = root.join("r.git");
        let repo = Repository::init_bare(&path).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        let sig = git2::Signature::now("a", "a@example.com").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let one = repo
            .commit(Some("refs/heads/main"), &sig, &sig, "one", &tree, &[])
            .unwrap();
        let mut n = 0;
        let date = |n: &mut u32| {
            head_date(&path, || {
                *n += 1;
                format!("date {n}")
            })
        };
        assert_eq!(&*date(&mut n), "date 1");
        assert_eq!(
            &*date(&mut n),
            "date 1",
            "unchanged refs are not looked at again"
        );
        let one = repo.find_commit(one).unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "two", &tree, &[&one])
            .unwrap();
        assert_eq!(
            &*date(&mut n),
            "date 1",
            "refs are looked at again only after a moment"
        );
        std::thread::sleep(DATE_RECHECK);
        assert_eq!(&*date(&mut n), "date 2", "a moved branch");
        repo.set_head("refs/heads/other").unwrap();
        std::thread::sleep(DATE_RECHECK);
        assert_eq!(&*date(&mut n), "date 3", "another default branch");
        fs::remove_dir_all(&root).unwrap();
    }
}
