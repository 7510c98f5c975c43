//! Every repository with its settings and description, for what lists repositories (the front
//! page, the dashboard, owners' pages, `forgelet repo list`). Reading every repository's folder
//! and config for each of those made their cost grow with the site; the listing is read once,
//! kept by the process and written to the listing file ([`FILE`]) for the processes that come
//! after (CGI runs one per request, the command line one per command), and used again while
//! nothing it was read from can have changed.
//!
//! A listing is used again only while
//! - the settings marker ([`MARKER`], in the repositories folder) is the same file: forgelet
//!   replaces it after each change it makes to the set of repositories or to one's settings or
//!   description (create, import, rename, delete, give to another owner, visibility,
//!   collaborators, description), after making the change, so every process sees it at once.
//!   The marker holds a token of its own; when it had just been replaced as the listing was
//!   read, its text is compared too, since a file replaced twice within the clock's
//!   granularity can keep its stamp;
//! - the repositories folder is the same folder with the same modification time (a new owner's
//!   folder changes it), checked on every use;
//! - each owner's folder is the same folder with the same modification time: a repository
//!   put there, renamed or removed by hand changes it. A process that keeps the listing checks
//!   these at most every [`DIRS_EVERY`] (a stat per owner would otherwise be most of a page's
//!   cost on a large site); a process that loads the listing file checks all of them;
//! - it is younger than [`MAX_AGE`] (configs and descriptions edited by hand rather than
//!   through forgelet), or [`SETTLE`] when a folder it was read from had just changed (two
//!   changes within the clock's granularity can leave a folder's time as it was).
//!
//! Each stamp is taken before what it covers is read, so a change made while reading gives a
//! stamp that no longer matches. A listing read again takes from the one before the
//! repositories of each owner whose folder is unchanged (and the settings and descriptions of
//! files unchanged), so after a settings change or once it has aged it costs a stat or two per
//! repository; a repository folder emptied by hand inside an unchanged owner's folder stays
//! listed until that folder changes (the pages leave it out once its config is gone). The pages still check, against its config as it is at that
//! moment, each repository they show, and leave out one whose config is gone: a listing that is
//! out of date can at worst leave a repository out (for the times above), never show one to
//! someone who may not read it. `forgelet repo list` looks at each repository's config and
//! description and reads again those that changed, so it is never out of date for them.
//!
//! The listing file (`{repos}/.listing/listing`, mode 0600) is a cache: a missing, unreadable,
//! truncated or corrupt one (its last line counts the repositories and sums the text before it)
//! is ignored and written again, and deleting it is always safe.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cache::Stamp;
use super::names::{valid_name, valid_owner};
use super::store::{is_repo_dir, real_dirs, Perm, RepoDir, RepoStore, Settings, Visibility};

/// The file in the repositories folder replaced after each change forgelet makes to the
/// repositories or their settings.
pub(crate) const MARKER: &str = ".settings-changed";
/// The folder in the repositories folder holding the listing file (a folder of its own, so
/// writing the file leaves the repositories folder's time alone).
pub(crate) const FILE_DIR: &str = ".listing";
/// The listing file, in [`FILE_DIR`].
pub(crate) const FILE: &str = "listing";
/// How long a listing is used at most.
const MAX_AGE: Duration = Duration::from_secs(30);
/// A stamp younger than this may not see a second change made within the clock's granularity.
const SETTLE: Duration = Duration::from_secs(2);
/// How often a process that keeps a listing looks at every owner's folder.
const DIRS_EVERY: Duration = Duration::from_secs(1);
/// The listing file's first line.
const HEADER: &str = "forgelet repository listing 1";

/// A repository, its settings and its description, as they were when the listing was read.
pub(crate) struct Listed {
    pub(crate) dir: RepoDir,
    pub(crate) settings: Arc<Settings>,
    /// The config's stamp the settings were read after (`None`: it had just changed).
    config: Option<Stamp>,
    /// The first line of `description` (see `RepoDir::description`).
    pub(crate) description: Arc<str>,
    described: Option<Stamp>,
}

/// Every repository, sorted by owner then name (ignoring case), with what the pages ask of it
/// often worked out once: who owns which, which are public, who collaborates on which.
pub(crate) struct Listing {
    pub(crate) repos: Vec<Listed>,
    /// The owners' names in ASCII lower case, one per repository, in the same order.
    owner_keys: Vec<String>,
    /// The repositories whose settings say public and were read without a problem.
    pub(crate) public: Vec<usize>,
    /// By collaborator (ASCII lower case): the repositories whose settings, read without a
    /// problem, name them.
    collaborations: HashMap<String, Vec<usize>>,
    root: Option<Stamp>,
    marker: Option<Stamp>,
    /// The marker's text, compared when `marker_text` says so.
    token: Vec<u8>,
    marker_text: bool,
    /// Each owner's folder (its name in the repositories folder) and its stamp.
    owners: Vec<(String, Option<Stamp>)>,
    /// When its stamps were taken, and until when it may be used.
    built: SystemTime,
    until: SystemTime,
    /// When this process last found every owner's folder unchanged.
    dirs_checked: Mutex<Option<Instant>>,
    /// The listing file's stamp once this listing was written to it or read from it.
    file: Option<Stamp>,
    /// The repositories folder, open (its stamp is checked on every use).
    root_dir: Option<fs::File>,
}

impl Listing {
    /// The positions of `owner`'s repositories (names compared ignoring ASCII case).
    pub(crate) fn owned_by(&self, owner: &str) -> std::ops::Range<usize> {
        let key = owner.to_ascii_lowercase();
        let start = self.owner_keys.partition_point(|k| *k < key);
        let end = start + self.owner_keys[start..].partition_point(|k| *k == key);
        start..end
    }

    /// The positions of the repositories naming `user` a collaborator, in order.
    pub(crate) fn collaborations(&self, user: &str) -> &[usize] {
        self.collaborations
            .get(&user.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }

    /// The settings of the repository at `i` as its config says now: those of the listing
    /// while the config is the same file, else read again (see `RepoDir::shared_settings`).
    /// `None` when its config is gone (the repository was deleted or moved since).
    pub(crate) fn current_settings(&self, i: usize) -> Option<Arc<Settings>> {
        let r = self.repos.get(i)?;
        let now = match &self.root_dir {
            Some(dir) => {
                let rel = format!("{}/{}.git/config", r.dir.owner, r.dir.name);
                Stamp::at(dir, &std::ffi::CString::new(rel).ok()?)?
            }
            None => Stamp::of(&r.dir.path.join("config"))?,
        };
        if r.config == Some(now) {
            return Some(Arc::clone(&r.settings));
        }
        Some(r.dir.shared_settings())
    }

    /// The description of the repository at `i` as its file says now (see
    /// [`Listing::current_settings`]).
    pub(crate) fn current_description(&self, i: usize) -> Option<Arc<str>> {
        let r = self.repos.get(i)?;
        let now = Stamp::of(&r.dir.path.join("description"));
        if now.is_some() && r.described == now {
            return Some(Arc::clone(&r.description));
        }
        Some(Arc::from(r.dir.description()))
    }

    /// Whether it may be used still (see the module's notes); with `trust_recent`, the owners'
    /// folders are looked at only when they were not found unchanged within [`DIRS_EVERY`].
    fn still_valid(&self, root: &Path, trust_recent: bool) -> bool {
        let now = SystemTime::now();
        if now >= self.until || now < self.built || Stamp::of(root) != self.root {
            return false;
        }
        let marker = root.join(MARKER);
        if Stamp::of(&marker) != self.marker
            || (self.marker_text && fs::read(&marker).unwrap_or_default() != self.token)
        {
            return false;
        }
        let mut checked = self.dirs_checked.lock().unwrap_or_else(|p| p.into_inner());
        if trust_recent && checked.is_some_and(|t| t.elapsed() < DIRS_EVERY) {
            return true;
        }
        let same = self
            .owners
            .iter()
            .all(|(owner, stamp)| Stamp::of(&root.join(owner)) == *stamp);
        if same {
            *checked = Some(Instant::now());
        }
        same
    }
}

/// The listings of this process, by repositories folder.
static LISTINGS: Mutex<Option<HashMap<PathBuf, Arc<Listing>>>> = Mutex::new(None);
/// Held while a listing is read afresh, so requests arriving together read it once.
static READING: Mutex<()> = Mutex::new(());

fn kept(root: &Path) -> Option<Arc<Listing>> {
    let guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().and_then(|m| m.get(root)).map(Arc::clone)
}

fn keep(root: &Path, listing: &Arc<Listing>) {
    let mut guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
    let map = guard.get_or_insert_with(HashMap::new);
    if map.len() >= 16 {
        map.clear();
    }
    map.insert(root.to_path_buf(), Arc::clone(listing));
}

impl RepoStore {
    /// Every repository with its settings (see the module's notes for how fresh it is): the one
    /// this process keeps, else the listing file, else read afresh (and written to the file).
    pub(crate) fn listing(&self) -> std::io::Result<Arc<Listing>> {
        let root = self.root();
        if let Some(l) = kept(root).filter(|l| l.still_valid(root, true)) {
            return Ok(l);
        }
        let _reading = READING.lock().unwrap_or_else(|p| p.into_inner());
        let before = kept(root);
        if let Some(l) = before.as_ref().filter(|l| l.still_valid(root, true)) {
            return Ok(Arc::clone(l));
        }
        let file = root.join(FILE_DIR).join(FILE);
        let file_stamp = Stamp::of(&file);
        // The file is read unless it is the one this process already had.
        let loaded = match &before {
            Some(b) if b.file.is_some() && b.file == file_stamp => None,
            _ => file_stamp.and_then(|_| load(root, &file)),
        };
        let listing = match loaded {
            Some(l) if l.still_valid(root, false) => l,
            loaded => {
                let prev = before.as_deref().or(loaded.as_ref());
                let mut l = read(root, prev)?;
                if fsfile_replace(&file, &l.to_text()) {
                    l.file = Stamp::of(&file);
                }
                l
            }
        };
        let listing = Arc::new(listing);
        keep(root, &listing);
        Ok(listing)
    }
}

fn fsfile_replace(file: &Path, text: &str) -> bool {
    crate::fsfile::replace(file, text.as_bytes(), 0o600).is_ok()
}

/// Reads the listing afresh, taking from `prev` (a listing kept or loaded, even one out of date)
/// what cannot have changed since: the repositories of an owner whose folder is as it was when
/// `prev` was read (and had not just changed then, so its stamp can be trusted: see the
/// module's notes), and settings and descriptions whose files are the same files. A listing out
/// of date by its age, or by a change of settings, costs a stat or two per repository, not a
/// read of every folder; a new repository, the reading of its owner's folder.
fn read(root: &Path, prev: Option<&Listing>) -> std::io::Result<Listing> {
    // The file's folder first: making it changes the repositories folder. Its mode is that of
    // every folder there (the umask's), which the web server's group may need to walk through;
    // the file itself is the owner's alone.
    let dir = root.join(FILE_DIR);
    if !dir.is_dir() && root.is_dir() {
        let _ = fs::create_dir(&dir);
    }
    let built = SystemTime::now();
    let root_dir = fs::File::open(root).ok();
    // The folder's stamp from the descriptor: a folder put in its place afterwards is a change.
    let root_stamp = root_dir.as_ref().and_then(Stamp::of_open);
    let marker_path = root.join(MARKER);
    let marker = Stamp::of(&marker_path);
    let token = fs::read(&marker_path).unwrap_or_default();
    let mut recent = root_stamp.is_some_and(|s| s.recent(SETTLE));
    let before: HashMap<&Path, &Listed> = prev
        .map(|p| p.repos.iter().map(|r| (r.dir.path.as_path(), r)).collect())
        .unwrap_or_default();
    let prev_owners: HashMap<&str, Stamp> = prev
        .map(|p| {
            p.owners
                .iter()
                .filter_map(|(o, s)| Some((o.as_str(), (*s)?)))
                .filter(|(_, s)| !s.recent_at(p.built, SETTLE))
                .collect()
        })
        .unwrap_or_default();
    let mut owners = Vec::new();
    let mut repos = Vec::new();
    for owner in real_dirs(root)? {
        if !valid_owner(&owner) {
            continue;
        }
        let owner_dir = root.join(&owner);
        let stamp = Stamp::of(&owner_dir);
        recent |= stamp.is_some_and(|s| s.recent(SETTLE));
        owners.push((owner.clone(), stamp));
        if let Some(p) =
            prev.filter(|_| stamp.is_some() && prev_owners.get(owner.as_str()) == stamp.as_ref())
        {
            // The same folder as when `prev` was read: the same repositories.
            let theirs = p.owned_by(&owner);
            for r in p.repos[theirs].iter().filter(|r| r.dir.owner == owner) {
                repos.push(read_one(r.dir.clone(), Some(r)));
            }
            continue;
        }
        for entry in real_dirs(&owner_dir)? {
            let Some(name) = entry.strip_suffix(".git") else {
                continue;
            };
            let path = owner_dir.join(&entry);
            if valid_name(name) && is_repo_dir(&path) {
                let dir = RepoDir {
                    owner: owner.clone(),
                    name: name.to_string(),
                    path,
                };
                let prev = before.get(dir.path.as_path()).copied();
                repos.push(read_one(dir, prev));
            }
        }
    }
    repos.sort_by_key(|r| {
        (
            r.dir.owner.to_ascii_lowercase(),
            r.dir.name.to_ascii_lowercase(),
        )
    });
    let until = built + if recent { SETTLE } else { MAX_AGE };
    Ok(assemble(
        repos,
        Head {
            root: root_stamp,
            marker,
            marker_text: marker.is_some_and(|s| s.recent(SETTLE)),
            token,
            owners,
            built,
            until,
            root_dir,
        },
    ))
}

/// One repository's entry: each file's stamp is taken before the file is read, and a stamp
/// that is too recent to be trusted is not kept (the file is then read again when used).
fn read_one(dir: RepoDir, prev: Option<&Listed>) -> Listed {
    let trusted = |p: &Path| Stamp::of(p).filter(|s| !s.recent(SETTLE));
    let config = trusted(&dir.path.join("config"));
    let described = trusted(&dir.path.join("description"));
    let settings = match prev {
        Some(p) if config.is_some() && p.config == config => Arc::clone(&p.settings),
        _ => dir.shared_settings(),
    };
    let description = match prev {
        Some(p) if described.is_some() && p.described == described => Arc::clone(&p.description),
        _ => Arc::from(dir.description()),
    };
    Listed {
        dir,
        settings,
        config,
        description,
        described,
    }
}

/// What a listing was read from.
struct Head {
    root: Option<Stamp>,
    marker: Option<Stamp>,
    marker_text: bool,
    token: Vec<u8>,
    owners: Vec<(String, Option<Stamp>)>,
    built: SystemTime,
    until: SystemTime,
    root_dir: Option<fs::File>,
}

/// A listing from its sorted repositories.
fn assemble(repos: Vec<Listed>, head: Head) -> Listing {
    let owner_keys: Vec<String> = repos
        .iter()
        .map(|r| r.dir.owner.to_ascii_lowercase())
        .collect();
    let mut public = Vec::new();
    let mut collaborations: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in repos.iter().enumerate() {
        if r.settings.problem.is_some() {
            continue;
        }
        if r.settings.visibility == Visibility::Public {
            public.push(i);
        }
        for (name, _) in &r.settings.collaborators {
            let at = collaborations.entry(name.to_ascii_lowercase()).or_default();
            if at.last() != Some(&i) {
                at.push(i);
            }
        }
    }
    Listing {
        repos,
        owner_keys,
        public,
        collaborations,
        root: head.root,
        marker: head.marker,
        token: head.token,
        marker_text: head.marker_text,
        owners: head.owners,
        built: head.built,
        until: head.until,
        dirs_checked: Mutex::new(None),
        file: None,
        root_dir: head.root_dir,
    }
}

// ---------------------------------------------------------------------------------------------
// The listing file: lines of tab-separated fields; texts in hex, stamps as `Stamp::to_text`
// or `-`; the last line counts the repositories and holds a checksum of the lines before it.

fn stamp_text(s: Option<Stamp>) -> String {
    s.map_or_else(|| "-".to_string(), Stamp::to_text)
}

fn stamp_from(text: &str) -> Option<Option<Stamp>> {
    if text == "-" {
        Some(None)
    } else {
        Stamp::from_text(text).map(Some)
    }
}

fn hex_of(text: &[u8]) -> String {
    crate::fsfile::hex(text)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn opt_hex(text: Option<&str>) -> String {
    text.map_or_else(|| "-".to_string(), |t| hex_of(t.as_bytes()))
}

fn opt_unhex(text: &str) -> Option<Option<String>> {
    if text == "-" {
        return Some(None);
    }
    String::from_utf8(unhex(text)?).ok().map(Some)
}

fn time_text(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn time_from(text: &str) -> Option<SystemTime> {
    let (secs, nanos) = text.split_once('.')?;
    UNIX_EPOCH.checked_add(Duration::new(secs.parse().ok()?, nanos.parse().ok()?))
}

/// FNV-1a, 64 bits: enough to tell a damaged file from a whole one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Listing {
    fn to_text(&self) -> String {
        let mut out = String::with_capacity(64 + self.repos.len() * 160);
        let _ = writeln!(out, "{HEADER}");
        let _ = writeln!(out, "built\t{}", time_text(self.built));
        let _ = writeln!(out, "until\t{}", time_text(self.until));
        let _ = writeln!(out, "root\t{}", stamp_text(self.root));
        let _ = writeln!(
            out,
            "marker\t{}\t{}\t{}",
            stamp_text(self.marker),
            hex_of(&self.token),
            u8::from(self.marker_text)
        );
        for (owner, stamp) in &self.owners {
            let _ = writeln!(out, "owner\t{owner}\t{}", stamp_text(*stamp));
        }
        for r in &self.repos {
            let s = &r.settings;
            let collaborators: Vec<String> = s
                .collaborators
                .iter()
                .map(|(n, p)| format!("{n}={}", p.as_str()))
                .collect();
            let _ = writeln!(
                out,
                "repo\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                r.dir.owner,
                r.dir.name,
                stamp_text(r.config),
                stamp_text(r.described),
                match s.visibility {
                    Visibility::Public => "public",
                    Visibility::Private => "private",
                },
                opt_hex(s.problem.as_deref()),
                opt_hex(s.unsupported_format.as_deref()),
                if collaborators.is_empty() {
                    "-".to_string()
                } else {
                    collaborators.join(",")
                },
                hex_of(r.description.as_bytes()),
            );
        }
        let sum = checksum(out.as_bytes());
        let _ = writeln!(out, "end\t{}\t{sum:016x}", self.repos.len());
        out
    }
}

/// The listing in the file at `file`, or `None` when it cannot be read or is not one whole
/// listing in this version's form.
fn load(root: &Path, file: &Path) -> Option<Listing> {
    let stamp = Stamp::of(file);
    let bytes = fs::read(file).ok()?;
    let mut listing = parse(root, &bytes)?;
    // Read after its stamp: a file replaced meanwhile is only read again later.
    listing.file = stamp;
    Some(listing)
}

fn parse(root: &Path, bytes: &[u8]) -> Option<Listing> {
    let root_dir = fs::File::open(root).ok();
    let text = std::str::from_utf8(bytes).ok()?;
    let body_end = text.trim_end_matches('\n').rfind('\n')? + 1;
    let (body, end) = text.split_at(body_end);
    let mut end = end.strip_suffix('\n')?.split('\t');
    if end.next()? != "end" {
        return None;
    }
    let count: usize = end.next()?.parse().ok()?;
    if u64::from_str_radix(end.next()?, 16).ok()? != checksum(body.as_bytes())
        || end.next().is_some()
    {
        return None;
    }
    let mut lines = body.lines();
    if lines.next()? != HEADER {
        return None;
    }
    let field = |line: Option<&'_ str>, key: &str| -> Option<Vec<String>> {
        let mut parts = line?.split('\t');
        (parts.next()? == key).then(|| parts.map(str::to_string).collect())
    };
    let built = time_from(field(lines.next(), "built")?.first()?)?;
    let until = time_from(field(lines.next(), "until")?.first()?)?;
    let root_stamp = stamp_from(field(lines.next(), "root")?.first()?)?;
    // Stamps are looked up through the folder opened here only if it is the one listed.
    let root_dir = root_dir.filter(|d| Stamp::of_open(d) == root_stamp);
    let m = field(lines.next(), "marker")?;
    let [marker, token, marker_text] = m.as_slice() else {
        return None;
    };
    let marker = stamp_from(marker)?;
    let token = unhex(token)?;
    let marker_text = match marker_text.as_str() {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    let mut owners = Vec::new();
    let mut repos = Vec::with_capacity(count.min(1 << 20));
    for line in lines {
        let parts: Vec<&str> = line.split('\t').collect();
        match parts.as_slice() {
            ["owner", owner, stamp] if repos.is_empty() && valid_owner(owner) => {
                owners.push((owner.to_string(), stamp_from(stamp)?));
            }
            ["repo", owner, name, config, described, visibility, problem, format, collaborators, description] =>
            {
                repos.push(parse_repo(
                    root,
                    &owners,
                    [
                        owner,
                        name,
                        config,
                        described,
                        visibility,
                        problem,
                        format,
                        collaborators,
                        description,
                    ],
                )?);
            }
            _ => return None,
        }
    }
    let key = |r: &Listed| {
        (
            r.dir.owner.to_ascii_lowercase(),
            r.dir.name.to_ascii_lowercase(),
        )
    };
    if repos.len() != count || !repos.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
        return None;
    }
    Some(assemble(
        repos,
        Head {
            root: root_stamp,
            marker,
            marker_text,
            token,
            owners,
            built,
            until,
            root_dir,
        },
    ))
}

fn parse_repo(root: &Path, owners: &[(String, Option<Stamp>)], f: [&str; 9]) -> Option<Listed> {
    let [owner, name, config, described, visibility, problem, format, collaborators, description] =
        f;
    // Only repositories in the owners' folders the listing depends on.
    if !valid_name(name) || !owners.iter().any(|(o, _)| o == owner) {
        return None;
    }
    let visibility = match visibility {
        "public" => Visibility::Public,
        "private" => Visibility::Private,
        _ => return None,
    };
    let mut collab = Vec::new();
    if collaborators != "-" {
        for c in collaborators.split(',') {
            let (n, p) = c.split_once('=')?;
            if !valid_owner(n) {
                return None;
            }
            collab.push((n.to_string(), Perm::parse(p)?));
        }
    }
    let description = String::from_utf8(unhex(description)?).ok()?;
    Some(Listed {
        dir: RepoDir {
            owner: owner.to_string(),
            name: name.to_string(),
            path: root.join(owner).join(format!("{name}.git")),
        },
        settings: Arc::new(Settings {
            visibility,
            unsupported_format: opt_unhex(format)?,
            problem: opt_unhex(problem)?,
            collaborators: collab,
        }),
        config: stamp_from(config)?,
        description: Arc::from(description),
        described: stamp_from(described)?,
    })
}

/// Replaces the settings marker of the repositories folder holding the repository folder
/// `repo` (see the module's notes): called after each change forgelet makes to a repository's
/// existence, place, settings or description. A marker that cannot be written delays what
/// other processes list by at most [`MAX_AGE`] (a new or renamed repository by at most
/// [`DIRS_EVERY`]), and never lists a repository to someone who may not read it: the pages
/// check the settings of each one they show.
pub(crate) fn changed(repo: &Path) {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    if let Some(root) = repo.parent().and_then(Path::parent) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let token = format!(
            "{}.{:09} {} {}\n",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        // The listing kept stays, for the next read to take from: the marker's new stamp tells
        // this process too. If it cannot be written, this process at least drops its listing.
        if crate::fsfile::replace(&root.join(MARKER), token.as_bytes(), 0o644).is_err() {
            let mut guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(map) = guard.as_mut() {
                map.remove(root);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Perm;

    fn settle(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(100);
        fs::File::open(path).unwrap().set_modified(old).unwrap();
    }

    fn names(l: &Listing) -> Vec<String> {
        l.repos
            .iter()
            .map(|r| format!("{}/{}", r.dir.owner, r.dir.name))
            .collect()
    }

    fn temp(test: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("forgelet-listing-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        root
    }

    fn forget(root: &Path) {
        let mut guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = guard.as_mut() {
            map.remove(root);
        }
    }

    #[test]
    fn listings_follow_new_repositories_and_settings_changes() {
        let root = temp("follow");
        git2::Repository::init_bare(root.join("alice/one.git")).unwrap();
        let store = RepoStore::new(root.clone());
        fs::create_dir_all(root.join(FILE_DIR)).unwrap();
        settle(&root);
        settle(&root.join("alice"));
        settle(&root.join("alice/one.git/config"));
        let first = store.listing().unwrap();
        assert_eq!(names(&first), ["alice/one"]);
        assert!(
            Arc::ptr_eq(&first, &store.listing().unwrap()),
            "an unchanged folder is read once"
        );
        // A repository added by hand: seen once the owners' folders are looked at again.
        git2::Repository::init_bare(root.join("alice/two.git")).unwrap();
        std::thread::sleep(DIRS_EVERY);
        assert_eq!(names(&store.listing().unwrap()), ["alice/one", "alice/two"]);
        // A new owner: seen at once.
        git2::Repository::init_bare(root.join("bob/three.git")).unwrap();
        let l = store.listing().unwrap();
        assert_eq!(names(&l), ["alice/one", "alice/two", "bob/three"]);
        assert_eq!(l.repos[0].settings.visibility, Visibility::Public);
        // Settings changed through forgelet are seen at once.
        let one = store.locate("alice", "one").unwrap().unwrap();
        one.set_visibility(Visibility::Private).unwrap();
        one.set_collaborator("bob", Some(Perm::Read)).unwrap();
        let l = store.listing().unwrap();
        assert_eq!(l.repos[0].settings.visibility, Visibility::Private);
        assert_eq!(l.repos[0].settings.collaborators.len(), 1);
        assert_eq!(l.public, [1, 2]);
        assert_eq!(l.collaborations("BOB"), [0]);
        assert_eq!(l.owned_by("ALICE"), 0..2);
        assert_eq!(l.owned_by("bob"), 2..3);
        assert_eq!(l.owned_by("carol"), 3..3);
        // Another process's change, the marker replaced just after the listing was read, is
        // seen at once even if the marker's stamp could not tell (same size, same time).
        forget(&root);
        let l = store.listing().unwrap();
        assert!(l.still_valid(&root, true));
        let marker = root.join(MARKER);
        let (time, root_time) = (
            fs::metadata(&marker).unwrap().modified().unwrap(),
            fs::metadata(&root).unwrap().modified().unwrap(),
        );
        let mut text = fs::read(&marker).unwrap();
        text[0] = if text[0] == b'1' { b'2' } else { b'1' };
        fs::write(&marker, &text).unwrap();
        fs::File::open(&marker).unwrap().set_modified(time).unwrap();
        fs::File::open(&root)
            .unwrap()
            .set_modified(root_time)
            .unwrap();
        assert!(!l.still_valid(&root, true), "a marker with other text");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_listing_file_is_used_and_a_damaged_one_is_read_again() {
        let root = temp("file");
        git2::Repository::init_bare(root.join("alice/one.git")).unwrap();
        git2::Repository::init_bare(root.join("bob/two.git")).unwrap();
        let store = RepoStore::new(root.clone());
        let two = store.locate("bob", "two").unwrap().unwrap();
        two.set_visibility(Visibility::Private).unwrap();
        two.set_collaborator("alice", Some(Perm::Write)).unwrap();
        fs::write(two.path.join("description"), "tab\tand \u{e9}\n").unwrap();
        fs::create_dir_all(root.join(FILE_DIR)).unwrap();
        for p in [
            root.clone(),
            root.join("alice"),
            root.join("bob"),
            root.join(MARKER),
            root.join("alice/one.git/config"),
            two.path.join("config"),
            two.path.join("description"),
        ] {
            settle(&p);
        }
        let first = store.listing().unwrap();
        let file = root.join(FILE_DIR).join(FILE);
        let text = fs::read(&file).unwrap();
        let parsed = parse(&root, &text).expect("the file written reads back");
        assert_eq!(names(&parsed), names(&first));
        assert!(parsed.still_valid(&root, false));
        assert_eq!(parsed.repos[1].settings.visibility, Visibility::Private);
        assert_eq!(
            parsed.repos[1].settings.collaborators,
            [("alice".to_string(), Perm::Write)]
        );
        assert_eq!(&*parsed.repos[1].description, "tab\tand \u{e9}");
        assert_eq!(parsed.public, [0]);
        // Truncated anywhere, or one byte changed: not a listing.
        for cut in [0, 1, text.len() / 2, text.len() - 1] {
            assert!(parse(&root, &text[..cut]).is_none(), "cut at {cut}");
        }
        let mut flipped = text.clone();
        let at = text.len() / 2;
        flipped[at] ^= 1;
        assert!(parse(&root, &flipped).is_none());
        // Aged but otherwise unchanged: made young again without reading the folders, and a
        // config changed by hand meanwhile is read again.
        let aged = Listing {
            until: parsed.built - Duration::from_secs(1),
            built: parsed.built - Duration::from_secs(1) - MAX_AGE,
            ..parse(&root, &text).unwrap()
        };
        assert!(!aged.still_valid(&root, false), "too old");
        let one = root.join("alice/one.git/config");
        let mut cfg = fs::read_to_string(&one).unwrap();
        cfg.push_str("[forgelet]\n\tvisibility = private\n");
        fs::write(&one, cfg).unwrap();
        settle(&one);
        // (A repository folder that stops being one by hand, its owner's folder unchanged, is
        // not looked at again: that shows the folders were not read.)
        fs::remove_dir_all(two.path.join("refs")).unwrap();
        let young = read(&root, Some(&aged)).unwrap();
        assert!(young.still_valid(&root, false));
        assert_eq!(names(&young), names(&first), "the folders were not read");
        assert_eq!(young.repos[0].settings.visibility, Visibility::Private);
        assert!(young.public.is_empty());
        fs::create_dir_all(two.path.join("refs")).unwrap();
        // An owner's folder changed: read again.
        git2::Repository::init_bare(root.join("alice/three.git")).unwrap();
        let l = read(&root, Some(&aged)).unwrap();
        assert_eq!(names(&l), ["alice/one", "alice/three", "bob/two"]);
        // A damaged file is read again and written whole.
        forget(&root);
        fs::write(&file, &text[..text.len() / 2]).unwrap();
        let again = store.listing().unwrap();
        assert_eq!(names(&again), ["alice/one", "alice/three", "bob/two"]);
        assert!(parse(&root, &fs::read(&file).unwrap()).is_some());
        fs::remove_dir_all(&root).unwrap();
    }
}
