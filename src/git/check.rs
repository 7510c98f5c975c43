//! A cheap look for damage in a repository on disk, for `forgelet doctor` (every repository)
//! and `forgelet maintain` (before it touches one): every pack has its index and every index
//! its pack, each pair agreeing on the pack's checksum (its last 20 bytes, which the index
//! repeats), and every ref (up to [`MAX_REFS`]) reads and names an object that reads, down to
//! the tip commit's tree. It reads no history: the cost is a few small reads per ref and pack,
//! whatever the repository's size. What it cannot see (an old object overwritten deep in a
//! pack) `git fsck` finds, which maintenance runs too.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, SystemTime};

use git2::{ObjectType, Repository, RepositoryOpenFlags};

/// Refs looked at per repository, at most.
pub(crate) const MAX_REFS: usize = 1000;

/// A pack younger than this may still be getting its index (git writes the pack first).
const PACK_GRACE: Duration = Duration::from_secs(600);

/// What is wrong with the repository at `path`, one sentence each (empty when nothing is).
pub(crate) fn damage(path: &Path) -> Vec<String> {
    let mut found = packs(path);
    let repo = match Repository::open_ext(
        path,
        RepositoryOpenFlags::NO_SEARCH | RepositoryOpenFlags::NO_DOTGIT | RepositoryOpenFlags::BARE,
        std::iter::empty::<&std::ffi::OsStr>(),
    ) {
        Ok(r) => r,
        Err(e) => {
            found.push(format!("cannot be opened: {}", e.message()));
            return found;
        }
    };
    let garbage = loose_refs(path, &mut found);
    refs(&repo, &garbage, &mut found);
    found
}

/// Loose ref files that hold neither an object id nor a symbolic ref (git and libgit2 skip
/// them when they list refs, so a branch would silently vanish); their names.
fn loose_refs(repo: &Path, found: &mut Vec<String>) -> Vec<String> {
    let mut garbage = Vec::new();
    let packed = fs::read_to_string(repo.join("packed-refs")).unwrap_or_default();
    let mut stack = vec![repo.join("refs")];
    let mut seen = 0;
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
                continue;
            }
            if name.ends_with(".lock") {
                continue;
            }
            seen += 1;
            if seen > MAX_REFS {
                return garbage;
            }
            let mut head = [0u8; 41];
            let n = fs::File::open(&p)
                .and_then(|mut f| f.read(&mut head))
                .unwrap_or(0);
            let text = &head[..n];
            let id = n >= 40 && text[..40].iter().all(u8::is_ascii_hexdigit);
            if !(id || text.starts_with(b"ref: ")) {
                let rel = p.strip_prefix(repo).unwrap_or(&p);
                let rel = rel.to_string_lossy().into_owned();
                // The file hides the value packed-refs may keep for the same ref.
                let kept = packed.lines().find_map(|l| {
                    let (id, name) = l.split_once(' ')?;
                    (name == rel && id.len() >= 40).then_some(id)
                });
                found.push(match kept {
                    Some(id) => format!(
                        "{rel} holds neither an object id nor a ref name: git ignores it, and with it the value packed-refs keeps for that ref ({id}, perhaps older than the one lost): removing the file brings that value back"
                    ),
                    None => format!(
                        "{rel} holds neither an object id nor a ref name: git ignores it, so that ref is lost"
                    ),
                });
                garbage.push(rel);
            }
        }
    }
    garbage
}

/// The last `n` bytes of the file at `path`.
fn tail(path: &Path, n: usize) -> std::io::Result<Vec<u8>> {
    let mut f = fs::File::open(path)?;
    f.seek(SeekFrom::End(-(n as i64)))?;
    let mut b = vec![0u8; n];
    f.read_exact(&mut b)?;
    Ok(b)
}

/// Packs without their index, indexes without their pack, and pairs that disagree.
fn packs(repo: &Path) -> Vec<String> {
    let dir = repo.join("objects/pack");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in &names {
        if let Some(stem) = name.strip_suffix(".idx") {
            let pack = format!("{stem}.pack");
            if !names.contains(&pack) {
                found.push(format!(
                    "objects/pack/{pack} is missing (its index {name} is there): the objects it held cannot be read"
                ));
                continue;
            }
            // The index's trailer: the pack's checksum, then its own.
            match (tail(&dir.join(&pack), 20), tail(&dir.join(name), 40)) {
                (Ok(p), Ok(i)) if p[..] == i[..20] => {}
                (Ok(_), Ok(_)) => found.push(format!(
                    "objects/pack/{pack} does not end with the checksum its index {name} records: the pack was cut short or changed"
                )),
                (Err(e), _) => found.push(format!("objects/pack/{pack} cannot be read: {e}")),
                (_, Err(e)) => found.push(format!("objects/pack/{name} cannot be read: {e}")),
            }
        } else if let Some(stem) = name.strip_suffix(".pack") {
            let idx = format!("{stem}.idx");
            let old = fs::metadata(dir.join(name))
                .and_then(|m| m.modified())
                .is_ok_and(|t| t + PACK_GRACE < SystemTime::now());
            if !names.contains(&idx) && old && !name.starts_with("tmp_") {
                found.push(format!(
                    "objects/pack/{name} has no index ({idx} is missing): git cannot find the objects in it"
                ));
            }
        }
    }
    found
}

/// Refs that cannot be read, or whose object (down to a commit's tree) cannot be; the loose
/// refs of `garbage` are said already.
fn refs(repo: &Repository, garbage: &[String], found: &mut Vec<String>) {
    let names: Vec<String> = match repo.references() {
        Ok(it) => it
            .take(MAX_REFS)
            .filter_map(|r| match r {
                Ok(r) => r.name().map(str::to_string),
                Err(e) => {
                    found.push(format!("a ref cannot be read: {}", e.message()));
                    None
                }
            })
            .collect(),
        Err(e) => {
            found.push(format!("its refs cannot be listed: {}", e.message()));
            return;
        }
    };
    // A ref file git2's listing skipped as unreadable is still named by its file.
    for name in names {
        if garbage.contains(&name) {
            continue;
        }
        let target = match repo.find_reference(&name).and_then(|r| r.resolve()) {
            Ok(r) => r.target(),
            Err(e) => {
                found.push(format!("{name} cannot be read: {}", e.message()));
                continue;
            }
        };
        let Some(id) = target else { continue };
        let object = match repo.find_object(id, None) {
            Ok(o) => o,
            Err(e) => {
                found.push(format!(
                    "{name} points at {id}, which cannot be read: {}",
                    e.message()
                ));
                continue;
            }
        };
        let commit = match object.kind() {
            Some(ObjectType::Commit) => object.into_commit().ok(),
            Some(ObjectType::Tag) => object.peel_to_commit().ok(),
            _ => None,
        };
        if let Some(c) = commit {
            if let Err(e) = c.tree() {
                found.push(format!(
                    "{name}: the tree of commit {} cannot be read: {}",
                    c.id(),
                    e.message()
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "a")
            .env("GIT_AUTHOR_EMAIL", "a@test.invalid")
            .env("GIT_COMMITTER_NAME", "a")
            .env("GIT_COMMITTER_EMAIL", "a@test.invalid")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// A bare repository with two commits in one pack.
    fn packed(name: &str) -> std::path::PathBuf {
        let root =
            std::env::temp_dir().join(format!("forgelet-check-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let work = root.join("work");
        fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        for i in 0..2 {
            fs::write(work.join("f"), format!("{i}\n")).unwrap();
            git(&work, &["add", "f"]);
            git(&work, &["commit", "-q", "-m", "c"]);
        }
        let bare = root.join("r.git");
        git(&root, &["clone", "-q", "--bare", "work", "r.git"]);
        git(&bare, &["repack", "-a", "-d", "-q"]);
        bare
    }

    /// A loose ref file of garbage over a ref packed-refs keeps is named once, with the value
    /// removing the file brings back (git ignores the file and, with it, that value).
    #[test]
    fn a_garbage_ref_over_a_packed_one_is_named_once_with_the_packed_value() {
        let r = packed("garbage-over-packed");
        git(&r, &["pack-refs", "--all"]);
        let main = git(&r, &["rev-parse", "refs/heads/main"])
            .trim()
            .to_string();
        assert!(!r.join("refs/heads/main").exists());
        fs::write(r.join("refs/heads/main"), "not an id\n").unwrap();
        let d = damage(&r);
        assert_eq!(
            d.iter().filter(|l| l.contains("refs/heads/main")).count(),
            1,
            "{d:?}"
        );
        assert!(
            d[0].contains(&format!("packed-refs keeps for that ref ({main}"))
                && d[0].contains("removing the file brings that value back"),
            "{d:?}"
        );
        fs::remove_file(r.join("refs/heads/main")).unwrap();
        assert_eq!(damage(&r), Vec::<String>::new());
        let _ = fs::remove_dir_all(r.parent().unwrap());
    }

    #[test]
    fn a_sound_repository_has_no_damage_and_each_kind_is_named() {
        let r = packed("sound");
        assert_eq!(damage(&r), Vec::<String>::new());

        // A ref to a missing object, and one of garbage.
        fs::write(r.join("refs/heads/lost"), format!("{}\n", "12".repeat(20))).unwrap();
        fs::write(r.join("refs/heads/junk"), "not an id\n").unwrap();
        let d = damage(&r);
        assert!(
            d.iter()
                .any(|l| l.contains("refs/heads/lost") && l.contains("1212")),
            "{d:?}"
        );
        assert!(d.iter().any(|l| l.contains("junk")), "{d:?}");
        assert!(
            d.iter()
                .any(|l| l.contains("refs/heads/junk") && l.contains("so that ref is lost")),
            "{d:?}"
        );
        fs::remove_file(r.join("refs/heads/lost")).unwrap();
        fs::remove_file(r.join("refs/heads/junk")).unwrap();
        assert_eq!(damage(&r), Vec::<String>::new());

        // The pack gone, its index kept.
        let pack = fs::read_dir(r.join("objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .unwrap();
        let bytes = fs::read(&pack).unwrap();
        fs::remove_file(&pack).unwrap();
        let d = damage(&r);
        assert!(d.iter().any(|l| l.contains("is missing")), "{d:?}");
        // Back, but cut short.
        fs::write(&pack, &bytes[..bytes.len() - 7]).unwrap();
        let d = damage(&r);
        assert!(d.iter().any(|l| l.contains("checksum")), "{d:?}");
        let _ = fs::remove_dir_all(r.parent().unwrap());
    }
}
