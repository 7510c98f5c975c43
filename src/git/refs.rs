//! Every ref of a repository as one snapshot: read from `packed-refs` and the loose ref files by
//! forgelet itself, shared by all workers, and kept while nothing under `refs/` changes.
//!
//! libgit2 copies and re-sorts its whole packed-refs cache for every ref iteration (3 ms for
//! 12,000 refs, 90 ms when they are loose), so a page that lists some refs would cost what the
//! repository holds. A snapshot costs that once per change of the refs; checking that it is
//! still current costs a `stat` of `packed-refs` and of each folder under `refs/`. What pages
//! derive from a snapshot (the newest tags, branches by date, the dumb protocol's `info/refs`)
//! is computed once per snapshot too.
//!
//! A snapshot is current while `packed-refs` is the same file (git replaces it whole) and no
//! folder under `refs/` has changed (git updates a loose ref by renaming a lock file over it,
//! which changes its folder). Only refs still for two seconds are kept, so two changes within one
//! tick of the file system's clock cannot look like none; and a snapshot is read afresh after
//! [`MAX_AGE`] whatever its stamps say.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use git2::Oid;

/// How long a snapshot is used at most.
const MAX_AGE: Duration = Duration::from_secs(60);
/// Snapshots kept; past it the cache starts again empty.
const ENTRIES: usize = 64;
/// Refs whose files changed this recently are read afresh on every request.
const SETTLE: Duration = Duration::from_secs(2);
/// Levels of symbolic refs followed.
const MAX_SYMBOLIC: usize = 5;

/// One ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ref {
    /// The full name, `refs/...`, as stored (not always UTF-8).
    pub(crate) name: Vec<u8>,
    /// What it points at (symbolic refs resolved).
    pub(crate) target: Oid,
    /// For an annotated tag in `packed-refs`, the object it finally tags, when git recorded it.
    pub(crate) peeled: Option<Oid>,
}

/// Every ref under `refs/` at one moment, sorted by name.
pub(crate) struct RefSnapshot {
    pub(crate) refs: Vec<Ref>,
    /// Derived once per snapshot by [`RefSnapshot::derived`].
    derived: Mutex<HashMap<&'static str, Arc<dyn std::any::Any + Send + Sync>>>,
    info_refs: OnceLock<Vec<u8>>,
}

impl RefSnapshot {
    /// The refs whose names start with `prefix` (`refs/heads/`, `refs/tags/`), in name order.
    pub(crate) fn under(&self, prefix: &[u8]) -> &[Ref] {
        let start = self.refs.partition_point(|r| r.name.as_slice() < prefix);
        let len = self.refs[start..].partition_point(|r| r.name.starts_with(prefix));
        &self.refs[start..start + len]
    }

    /// A value computed from this snapshot once, by `compute`, and kept with it under `key`
    /// (each key always with the same type).
    pub(crate) fn derived<T: Send + Sync + 'static, E>(
        &self,
        key: &'static str,
        compute: impl FnOnce(&RefSnapshot) -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        let hit = self
            .derived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned();
        if let Some(v) = hit.and_then(|v| v.downcast::<T>().ok()) {
            return Ok(v);
        }
        let v = Arc::new(compute(self)?);
        self.derived
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, Arc::clone(&v) as Arc<dyn std::any::Any + Send + Sync>);
        Ok(v)
    }

    /// The dumb protocol's `info/refs`, made once by `make`.
    pub(crate) fn info_refs<E>(
        &self,
        make: impl FnOnce(&RefSnapshot) -> Result<Vec<u8>, E>,
    ) -> Result<&[u8], E> {
        if let Some(v) = self.info_refs.get() {
            return Ok(v);
        }
        let made = make(self)?;
        Ok(self.info_refs.get_or_init(|| made))
    }
}

/// A folder as it was: device, inode, modification time (`None` when missing).
type FolderStamp = Option<(u64, u64, i64, i64)>;
/// `packed-refs` as it was: device, inode, size, modification time.
type FileStamp = Option<(u64, u64, u64, i64, i64)>;
/// Refs of `packed-refs`: name, target, peeled target.
type Packed = Vec<(Vec<u8>, Oid, Option<Oid>)>;

/// What a snapshot was made from: `packed-refs` as a file, and every folder under `refs/`.
#[derive(Clone, PartialEq, Eq)]
struct RefStamp {
    packed: FileStamp,
    folders: Vec<(PathBuf, FolderStamp)>,
}

impl RefStamp {
    /// The newest change time it holds.
    fn newest(&self) -> Option<SystemTime> {
        let at = |(s, ns): (i64, i64)| {
            let secs = u64::try_from(s).ok()?;
            let nanos = u32::try_from(ns).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        };
        let mut times = Vec::new();
        if let Some(p) = self.packed {
            times.push(at((p.3, p.4))?);
        }
        for (_, f) in &self.folders {
            if let Some(f) = f {
                times.push(at((f.2, f.3))?);
            }
        }
        times.into_iter().max()
    }

    /// Whether the files it was made from look the same now.
    fn still(&self, repo: &Path) -> bool {
        packed_stamp(repo) == self.packed
            && self
                .folders
                .iter()
                .all(|(rel, was)| folder_stamp(&repo.join(rel)) == *was)
    }
}

fn packed_stamp(repo: &Path) -> FileStamp {
    let m = fs::metadata(repo.join("packed-refs")).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

fn folder_stamp(dir: &Path) -> FolderStamp {
    let m = fs::symlink_metadata(dir).ok()?;
    m.is_dir()
        .then(|| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec()))
}

struct Cached {
    stamp: RefStamp,
    at: Instant,
    snapshot: Arc<RefSnapshot>,
}

static CACHE: Mutex<Option<HashMap<PathBuf, Cached>>> = Mutex::new(None);

/// The refs of the repository at `repo`, from the shared cache while they are unchanged.
pub(crate) fn snapshot(repo: &Path) -> io::Result<Arc<RefSnapshot>> {
    let now = Instant::now();
    {
        let cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = cache.as_ref().and_then(|m| m.get(repo)) {
            if now.duration_since(c.at) < MAX_AGE && c.stamp.still(repo) {
                return Ok(Arc::clone(&c.snapshot));
            }
        }
    }
    // The stamp is taken before reading, so a change while reading makes it stale at once.
    let mut folders = Vec::new();
    let packed = packed_stamp(repo);
    let loose = read_loose(repo, &mut folders)?;
    let stamp = RefStamp { packed, folders };
    let snapshot = Arc::new(build(read_packed(repo)?, loose));
    let settled = stamp
        .newest()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > SETTLE);
    if settled {
        let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
        let map = cache.get_or_insert_with(HashMap::new);
        if map.len() >= ENTRIES && !map.contains_key(repo) {
            map.clear();
        }
        map.insert(
            repo.to_path_buf(),
            Cached {
                stamp,
                at: now,
                snapshot: Arc::clone(&snapshot),
            },
        );
    }
    Ok(snapshot)
}

/// A loose ref file's content.
enum Loose {
    Direct(Oid),
    Symbolic(Vec<u8>),
}

/// `packed-refs`: `(name, target, peeled)` in file order.
fn read_packed(repo: &Path) -> io::Result<Packed> {
    let text = match fs::read(repo.join("packed-refs")) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out: Vec<(Vec<u8>, Oid, Option<Oid>)> = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        if let Some(hex) = line.strip_prefix(b"^") {
            if let (Some(last), Some(id)) = (out.last_mut(), oid(hex)) {
                last.2 = Some(id);
            }
            continue;
        }
        if line.len() < 42 || line[40] != b' ' {
            continue;
        }
        if let Some(id) = oid(&line[..40]) {
            let name = &line[41..];
            if name.starts_with(b"refs/") && usable_name(name) {
                out.push((name.to_vec(), id, None));
            }
        }
    }
    Ok(out)
}

fn oid(hex: &[u8]) -> Option<Oid> {
    let hex = std::str::from_utf8(hex).ok()?.trim_end();
    (hex.len() == 40).then(|| Oid::from_str(hex).ok()).flatten()
}

/// Names git would ignore as refs: a component starting with `.` or ending in `.lock`.
fn usable_name(name: &[u8]) -> bool {
    name.split(|&b| b == b'/')
        .all(|c| !c.is_empty() && c[0] != b'.' && !c.ends_with(b".lock"))
}

/// Walks `refs/`, recording each folder's stamp in `folders`; the loose refs by name.
fn read_loose(
    repo: &Path,
    folders: &mut Vec<(PathBuf, FolderStamp)>,
) -> io::Result<BTreeMap<Vec<u8>, Loose>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = BTreeMap::new();
    let mut pending = vec![PathBuf::from("refs")];
    while let Some(rel) = pending.pop() {
        let dir = repo.join(&rel);
        folders.push((rel.clone(), folder_stamp(&dir)));
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let bytes = name.as_bytes();
            if bytes.first() == Some(&b'.') || bytes.ends_with(b".lock") {
                continue;
            }
            let kind = entry.file_type()?;
            let child = rel.join(&name);
            if kind.is_dir() {
                pending.push(child);
            } else if kind.is_file() {
                let mut content = Vec::with_capacity(64);
                let read = fs::File::open(repo.join(&child))
                    .and_then(|f| f.take(4096).read_to_end(&mut content));
                if read.is_err() {
                    // Removed while we looked: it is no ref any more.
                    continue;
                }
                let full = child.as_os_str().as_bytes().to_vec();
                if let Some(target) = content.strip_prefix(b"ref: ") {
                    let target = target.trim_ascii_end();
                    out.insert(full, Loose::Symbolic(target.to_vec()));
                } else if let Some(id) = oid(content.trim_ascii_end()) {
                    out.insert(full, Loose::Direct(id));
                }
            }
        }
    }
    Ok(out)
}

/// Loose refs over packed ones, symbolic refs resolved (dangling ones dropped), by name.
fn build(packed: Packed, loose: BTreeMap<Vec<u8>, Loose>) -> RefSnapshot {
    let mut direct: BTreeMap<Vec<u8>, (Oid, Option<Oid>)> = packed
        .into_iter()
        .map(|(name, target, peeled)| (name, (target, peeled)))
        .collect();
    let mut symbolic = Vec::new();
    for (name, l) in loose {
        match l {
            Loose::Direct(id) => {
                direct.insert(name, (id, None));
            }
            Loose::Symbolic(target) => {
                direct.remove(&name);
                symbolic.push((name, target));
            }
        }
    }
    let targets: HashMap<Vec<u8>, Vec<u8>> = symbolic.iter().cloned().collect();
    let mut resolved = Vec::new();
    for (name, first) in &symbolic {
        let mut at = first.clone();
        for _ in 0..MAX_SYMBOLIC {
            if let Some(&(id, _)) = direct.get(&at) {
                resolved.push((name.clone(), id));
                break;
            }
            match targets.get(&at) {
                Some(next) => at = next.clone(),
                None => break,
            }
        }
    }
    for (name, id) in resolved {
        direct.insert(name, (id, None));
    }
    RefSnapshot {
        refs: direct
            .into_iter()
            .map(|(name, (target, peeled))| Ref {
                name,
                target,
                peeled,
            })
            .collect(),
        derived: Mutex::new(HashMap::new()),
        info_refs: OnceLock::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.org")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.org")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// What `git for-each-ref` says, as (name, object) pairs.
    fn git_refs(dir: &Path) -> Vec<(Vec<u8>, Oid)> {
        git(dir, &["for-each-ref", "--format=%(objectname) %(refname)"])
            .lines()
            .map(|l| {
                let (id, name) = l.split_once(' ').unwrap();
                (name.as_bytes().to_vec(), Oid::from_str(id).unwrap())
            })
            .collect()
    }

    fn ours(dir: &Path) -> Vec<(Vec<u8>, Oid)> {
        let mut folders = Vec::new();
        let loose = read_loose(dir, &mut folders).unwrap();
        build(read_packed(dir).unwrap(), loose)
            .refs
            .into_iter()
            .map(|r| (r.name, r.target))
            .collect()
    }

    #[test]
    fn the_same_refs_as_git_packed_loose_and_symbolic() {
        let dir = std::env::temp_dir().join(format!("forgelet-refs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "one"]);
        git(&dir, &["tag", "-a", "-m", "t", "v1"]);
        git(&dir, &["branch", "feature/x"]);
        git(&dir, &["pack-refs", "--all"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(&dir, &["branch", "later"]);
        git(&dir, &["tag", "light"]);
        git(
            &dir,
            &["symbolic-ref", "refs/heads/alias", "refs/heads/later"],
        );
        let repo = dir.join(".git");
        let mine = ours(&repo);
        let mut theirs = git_refs(&dir);
        theirs.sort();
        assert_eq!(mine, theirs);
        // Annotated packed tags carry what they tag.
        let mut folders = Vec::new();
        let snap = build(
            read_packed(&repo).unwrap(),
            read_loose(&repo, &mut folders).unwrap(),
        );
        let v1 = snap
            .under(b"refs/tags/")
            .iter()
            .find(|r| r.name == b"refs/tags/v1")
            .unwrap();
        let first = git(&dir, &["rev-parse", "main~1"]);
        assert_eq!(v1.peeled, Some(Oid::from_str(first.trim()).unwrap()));
        assert_eq!(snap.under(b"refs/heads/").len(), 4);
        assert_eq!(snap.under(b"refs/tags/").len(), 2);
        assert!(snap.under(b"refs/nothing/").is_empty());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_snapshot_is_kept_until_the_refs_change() {
        let dir = std::env::temp_dir().join(format!("forgelet-refs2-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "-b", "main"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let repo = dir.join(".git");
        // Just made: read afresh each time.
        let a = snapshot(&repo).unwrap();
        let b = snapshot(&repo).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        // Make the files look settled, as two seconds later.
        let old = SystemTime::now() - Duration::from_secs(10);
        for rel in ["refs", "refs/heads", "refs/tags"] {
            fs::File::open(repo.join(rel))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let a = snapshot(&repo).unwrap();
        let b = snapshot(&repo).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.under(b"refs/heads/").len(), 1);
        // A new branch changes refs/heads.
        git(&dir, &["branch", "new"]);
        let c = snapshot(&repo).unwrap();
        assert_eq!(c.under(b"refs/heads/").len(), 2);
        // A branch that moves in a folder of its own, after everything settled; then the refs
        // packed (a new packed-refs, the loose files gone).
        git(&dir, &["branch", "feature/x"]);
        git(&dir, &["commit", "-q", "--allow-empty", "-m", "two"]);
        // (Each time to another moment in the past: a clock never shows one twice.)
        let moments = std::cell::Cell::new(0u64);
        let settle = |repo: &Path| {
            moments.set(moments.get() + 1);
            let at = old + Duration::from_secs(moments.get());
            for rel in ["refs", "refs/heads", "refs/heads/feature", "refs/tags"] {
                if let Ok(f) = fs::File::open(repo.join(rel)) {
                    f.set_modified(at).unwrap();
                }
            }
        };
        settle(&repo);
        let before = snapshot(&repo).unwrap();
        assert!(Arc::ptr_eq(&before, &snapshot(&repo).unwrap()));
        let x = |s: &RefSnapshot| {
            s.refs
                .iter()
                .find(|r| r.name == b"refs/heads/feature/x")
                .unwrap()
                .target
        };
        git(&dir, &["branch", "-f", "feature/x", "main"]);
        let head = Oid::from_str(git(&dir, &["rev-parse", "main"]).trim()).unwrap();
        assert_ne!(x(&before), head);
        assert_eq!(x(&snapshot(&repo).unwrap()), head);
        settle(&repo);
        git(&dir, &["pack-refs", "--all"]);
        settle(&repo);
        let packed = snapshot(&repo).unwrap();
        assert_eq!(x(&packed), head);
        assert_eq!(packed.under(b"refs/heads/").len(), 3);
        fs::remove_dir_all(dir).unwrap();
    }
}
