//! Every repository with its settings, for the pages that list repositories (the front page, the
//! dashboard, owners' pages). Reading every repository's folder and config for each of those
//! pages made their cost grow with the site; the listing is built once per process and used
//! again while nothing it was read from can have changed, which costs a `stat` per owner.
//!
//! A listing is used again only while
//! - the repositories folder and each owner's folder are the same folders with the same
//!   modification times: creating, renaming, deleting or giving away a repository (or putting one
//!   there by hand) changes its owner's folder, a new owner changes the repositories folder;
//! - the settings marker ([`MARKER`], in the repositories folder) is the same file: forgelet
//!   replaces it after each change of a repository's visibility or collaborators, so every
//!   process (FastCGI, CGI, the command line) sees the change at once;
//! - it is younger than [`MAX_AGE`], for configs edited by hand rather than through forgelet;
//! - and none of those changed within [`SETTLE`] before it was read (file times are coarser than
//!   two changes can be close), else it is not kept at all.
//!
//! The pages still check, against its config as it is at that moment, each repository they
//! show; a listing that is out of date can at worst leave a repository out, never show one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cache::Stamp;
use super::names::{valid_name, valid_owner};
use super::store::{is_repo_dir, real_dirs, RepoDir, RepoStore, Settings, Visibility};

/// The file in the repositories folder replaced after each change of a repository's settings.
pub(crate) const MARKER: &str = ".settings-changed";
/// How long a listing is used at most.
const MAX_AGE: Duration = Duration::from_secs(30);
/// A listing read within this time of a change to what it depends on is not kept.
const SETTLE: Duration = Duration::from_secs(2);

/// A repository and its settings, as they were when the listing was read.
pub(crate) struct Listed {
    pub(crate) dir: RepoDir,
    pub(crate) settings: Arc<Settings>,
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
    owners: Vec<(PathBuf, Option<Stamp>)>,
    at: Instant,
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

    fn still_valid(&self, root: &Path) -> bool {
        self.at.elapsed() < MAX_AGE
            && Stamp::of(root) == self.root
            && Stamp::of(&root.join(MARKER)) == self.marker
            && self.owners.iter().all(|(p, s)| Stamp::of(p) == *s)
    }

    fn settled(&self) -> bool {
        std::iter::once(&self.root)
            .chain(std::iter::once(&self.marker))
            .chain(self.owners.iter().map(|(_, s)| s))
            .flatten()
            .all(|s| !s.recent(SETTLE))
    }
}

/// The listings of this process, by repositories folder.
static LISTINGS: Mutex<Option<HashMap<PathBuf, Arc<Listing>>>> = Mutex::new(None);

impl RepoStore {
    /// Every repository with its settings (see the module's notes for how fresh it is).
    pub(crate) fn listing(&self) -> std::io::Result<Arc<Listing>> {
        let root = self.root();
        let kept = {
            let guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().and_then(|m| m.get(root)).map(Arc::clone)
        };
        if let Some(l) = kept.filter(|l| l.still_valid(root)) {
            return Ok(l);
        }
        let listing = Arc::new(read(root)?);
        if listing.settled() {
            let mut guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
            let map = guard.get_or_insert_with(HashMap::new);
            if map.len() >= 16 {
                map.clear();
            }
            map.insert(root.to_path_buf(), Arc::clone(&listing));
        }
        Ok(listing)
    }
}

/// Reads the listing afresh: each stamp is taken before what it covers is read, so a change
/// made while reading gives a stamp that no longer matches.
fn read(root: &Path) -> std::io::Result<Listing> {
    let at = Instant::now();
    let root_stamp = Stamp::of(root);
    let marker = Stamp::of(&root.join(MARKER));
    let mut owners = Vec::new();
    let mut repos = Vec::new();
    for owner in real_dirs(root)? {
        if !valid_owner(&owner) {
            continue;
        }
        let owner_dir = root.join(&owner);
        owners.push((owner_dir.clone(), Stamp::of(&owner_dir)));
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
                let settings = dir.shared_settings();
                repos.push(Listed { dir, settings });
            }
        }
    }
    repos.sort_by_key(|r| {
        (
            r.dir.owner.to_ascii_lowercase(),
            r.dir.name.to_ascii_lowercase(),
        )
    });
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
    Ok(Listing {
        repos,
        owner_keys,
        public,
        collaborations,
        root: root_stamp,
        marker,
        owners,
        at,
    })
}

/// Replaces the settings marker of the repositories folder holding `repo` (see the module's
/// notes). A marker that cannot be written delays what other processes list by at most
/// [`MAX_AGE`], and never lists a repository to someone who may not read it: the pages check
/// the settings of each one they show.
pub(crate) fn settings_changed(repo: &Path) {
    if let Some(root) = repo.parent().and_then(Path::parent) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let _ = crate::fsfile::replace(
            &root.join(MARKER),
            format!("{}.{:09}\n", now.as_secs(), now.subsec_nanos()).as_bytes(),
            0o644,
        );
        let mut guard = LISTINGS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(map) = guard.as_mut() {
            map.remove(root);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Perm;
    use std::fs;

    fn settle(path: &Path) {
        let old = std::time::SystemTime::now() - Duration::from_secs(10);
        fs::File::open(path).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn listings_follow_new_repositories_and_settings_changes() {
        let root = std::env::temp_dir().join(format!("forgelet-listing-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        git2::Repository::init_bare(root.join("alice/one.git")).unwrap();
        let store = RepoStore::new(root.clone());
        let names = |l: &Listing| -> Vec<String> {
            l.repos
                .iter()
                .map(|r| format!("{}/{}", r.dir.owner, r.dir.name))
                .collect()
        };
        settle(&root);
        settle(&root.join("alice"));
        settle(&root.join("alice/one.git/config"));
        let first = store.listing().unwrap();
        assert_eq!(names(&first), ["alice/one"]);
        assert!(
            Arc::ptr_eq(&first, &store.listing().unwrap()),
            "an unchanged folder is read once"
        );
        // A repository added by hand.
        git2::Repository::init_bare(root.join("alice/two.git")).unwrap();
        assert_eq!(names(&store.listing().unwrap()), ["alice/one", "alice/two"]);
        // A new owner.
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
        fs::remove_dir_all(&root).unwrap();
    }
}
