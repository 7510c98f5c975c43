//! A repository's identity for the cache: a random name made the first time its answers are
//! cached (`forgelet-cache-id` in the repository folder), and a purge generation.
//!
//! Two repositories never share entries, even with equal refs (a protocol v2 fetch may want
//! objects only one of them has): the key holds the random name and the repository folder's
//! device and inode, so neither a copy of a repository folder nor a repository deleted and made
//! again under the same name reads another's entries. The name is also the repository's group
//! of entries (see `store`), which a purge and a delete clear at once; a purge also raises the
//! generation, so no key made before it is ever made again.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::store::Store;
use crate::fsfile;

/// The file in the repository folder.
pub const FILE: &str = "forgelet-cache-id";

/// What the cache knows a repository by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// 32 hex digits: the folder of the repository's entries.
    pub group: String,
    /// Raised by every purge.
    pub generation: u64,
    /// Everything that tells this repository from every other, for the key.
    pub key: String,
}

fn parse(text: &[u8]) -> Option<(String, u64)> {
    let text = std::str::from_utf8(text).ok()?;
    let (group, generation) = text.trim().split_once(' ')?;
    let ok = group.len() == 32
        && group
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then(|| Some((group.to_string(), generation.parse().ok()?)))?
}

fn fresh(generation: u64) -> Result<Vec<u8>, String> {
    let mut r = [0u8; 16];
    getrandom::getrandom(&mut r).map_err(|e| format!("no randomness: {e}"))?;
    Ok(format!("{} {generation}\n", fsfile::hex(&r)).into_bytes())
}

/// The identity of the repository at `repo`, made the first time it is asked for.
pub fn of(repo: &Path) -> Result<Identity, String> {
    let meta = fs::metadata(repo).map_err(|e| format!("{}: {e}", repo.display()))?;
    let path = repo.join(FILE);
    let text = match fsfile::read_optional(&path)? {
        Some(t) => t,
        None => fsfile::create_once(&path, &fresh(0)?, 0o640)?,
    };
    let (group, generation) =
        parse(&text).ok_or_else(|| format!("{} is not a cache identity", path.display()))?;
    Ok(Identity {
        key: format!("{group} {generation} {} {}", meta.dev(), meta.ino()),
        group,
        generation,
    })
}

/// Forgets every cached answer of the repository at `repo` (after a purge: what they hold may
/// be gone for good): the generation raised, then its entries cleared. Nothing to do for a
/// repository that never had any.
pub fn forget(repo: &Path, store: &Store) -> Result<(), String> {
    let path = repo.join(FILE);
    let Some(text) = fsfile::read_optional(&path)? else {
        return Ok(());
    };
    let (group, generation) =
        parse(&text).ok_or_else(|| format!("{} is not a cache identity", path.display()))?;
    let next = format!("{group} {}\n", generation.saturating_add(1));
    fsfile::replace(&path, next.as_bytes(), 0o640)?;
    clear(store, &group)
}

/// Removes the entries of the repository at `repo` (when it is deleted), keeping its identity.
pub fn clear_entries(repo: &Path, store: &Store) -> Result<(), String> {
    let Some(text) = fsfile::read_optional(&repo.join(FILE))? else {
        return Ok(());
    };
    match parse(&text) {
        Some((group, _)) => clear(store, &group),
        None => Ok(()),
    }
}

fn clear(store: &Store, group: &str) -> Result<(), String> {
    match store.clear(group) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "cannot clear the pack cache's entries in {}: {e}",
            store.dir().display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp(name: &str) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("forgelet-identity-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("repos/alice/x.git")).unwrap();
        p
    }

    #[test]
    fn an_identity_is_made_once_and_kept() {
        let t = tmp("once");
        let repo = t.join("repos/alice/x.git");
        let a = of(&repo).unwrap();
        let b = of(&repo).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.group.len(), 32);
        assert_eq!(a.generation, 0);
        let _ = fs::remove_dir_all(t);
    }

    #[test]
    fn a_repository_made_again_under_the_same_name_is_another() {
        let t = tmp("again");
        let repo = t.join("repos/alice/x.git");
        let a = of(&repo).unwrap();
        fs::rename(&repo, t.join("trash")).unwrap();
        fs::create_dir_all(&repo).unwrap();
        let b = of(&repo).unwrap();
        assert_ne!(a.group, b.group);
        assert_ne!(a.key, b.key);
        // A copy of the folder, identity file and all, is still another repository.
        let copy = t.join("repos/alice/copy.git");
        fs::create_dir_all(&copy).unwrap();
        fs::copy(repo.join(FILE), copy.join(FILE)).unwrap();
        assert_ne!(of(&copy).unwrap().key, b.key);
        let _ = fs::remove_dir_all(t);
    }

    #[test]
    fn a_purge_raises_the_generation_and_clears_the_entries() {
        let t = tmp("purge");
        let repo = t.join("repos/alice/x.git");
        let store = Store::new(&t.join("repos"));
        forget(&repo, &store).unwrap();
        let a = of(&repo).unwrap();
        let key = "a".repeat(64);
        let mut w = store.writer(&a.group, &key).unwrap();
        w.write_all(b"PACK").unwrap();
        w.commit().unwrap();
        forget(&repo, &store).unwrap();
        let b = of(&repo).unwrap();
        assert_eq!(b.generation, 1);
        assert_ne!(a.key, b.key);
        assert!(store.get(&a.group, &key).is_none());
        let _ = fs::remove_dir_all(t);
    }
}
