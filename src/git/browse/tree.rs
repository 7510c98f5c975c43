//! Trees and blobs: a folder's entries with their last commits, a file's content up to a limit
//! (never read whole when larger), and the README of a folder.

use super::*;

/// What a tree entry is, from its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File,
    Executable,
    Symlink,
    /// A gitlink: a commit of another repository, whose objects are not here.
    Submodule,
}

impl EntryKind {
    fn from_mode(mode: i32) -> EntryKind {
        match mode & MODE_TYPE_MASK {
            MODE_TREE => EntryKind::Dir,
            MODE_SYMLINK => EntryKind::Symlink,
            MODE_GITLINK => EntryKind::Submodule,
            MODE_BLOB if mode & 0o111 != 0 => EntryKind::Executable,
            _ => EntryKind::File,
        }
    }

    fn is_blob(self) -> bool {
        matches!(
            self,
            EntryKind::File | EntryKind::Executable | EntryKind::Symlink
        )
    }
}

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeEntry {
    /// The name for display, invalid UTF-8 replaced by U+FFFD.
    pub(crate) name: String,
    /// The name exactly as stored, for building links and paths.
    pub(crate) raw_name: Vec<u8>,
    /// False when `raw_name` is not UTF-8 (so `name` is not the real name).
    pub(crate) utf8: bool,
    pub(crate) kind: EntryKind,
    /// Bytes, for files, executables and symlinks; `None` for folders and submodules.
    pub(crate) size: Option<u64>,
    /// The blob, tree, or (for a submodule) the other repository's commit.
    pub(crate) id: Oid,
}

/// A folder at a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeListing {
    /// The tree's id.
    pub(crate) id: Oid,
    /// Folders and submodules first, then everything else, each group by name (bytes, as git
    /// orders them).
    pub(crate) entries: Vec<TreeEntry>,
    /// The newest commit that changed this folder (see [`last_change`]); for the root, the
    /// commit itself.
    pub(crate) last_commit: Option<CommitSummary>,
}

/// The folder at `path` in `commit`. `NotFound` when the commit does not exist or the path is
/// missing or not a folder.
pub(crate) fn list_tree(
    repo: &Repository,
    commit: Oid,
    path: impl AsRef<[u8]>,
) -> Result<TreeListing> {
    let commit = find_commit(repo, commit)?;
    let comps = components(path.as_ref());
    let root = commit.tree()?;
    let Some((id, mode)) = entry_at(repo, &root, &comps)? else {
        return Err(BrowseError::NotFound);
    };
    if EntryKind::from_mode(mode) != EntryKind::Dir {
        return Err(BrowseError::NotFound);
    }
    let tree = repo.find_tree(id)?;
    let odb = repo.odb()?;
    let mut entries = Vec::with_capacity(tree.len());
    for entry in tree.iter() {
        let raw_name = entry.name_bytes().to_vec();
        let kind = EntryKind::from_mode(entry.filemode());
        let size = if kind.is_blob() {
            // The header alone: the size without inflating the blob.
            Some(odb.read_header(entry.id())?.0 as u64)
        } else {
            None
        };
        entries.push(TreeEntry {
            name: lossy(&raw_name),
            utf8: std::str::from_utf8(&raw_name).is_ok(),
            raw_name,
            kind,
            size,
            id: entry.id(),
        });
    }
    entries.sort_by(|a, b| {
        let folder = |e: &TreeEntry| matches!(e.kind, EntryKind::Dir | EntryKind::Submodule);
        folder(b)
            .cmp(&folder(a))
            .then_with(|| a.raw_name.cmp(&b.raw_name))
    });
    let last_commit = if comps.is_empty() {
        Some(CommitSummary::of(&commit))
    } else {
        last_change(repo, commit.id(), path.as_ref())?
    };
    Ok(TreeListing {
        id,
        entries,
        last_commit,
    })
}

/// A file's content at a commit, when it is within a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlobView {
    pub(crate) id: Oid,
    /// `File`, `Executable` or `Symlink` (whose content is the link's target).
    pub(crate) kind: EntryKind,
    /// The whole blob's size in bytes, from its header.
    pub(crate) size: u64,
    /// The whole content, or nothing when the blob is larger than the limit.
    pub(crate) data: Vec<u8>,
    /// The blob is larger than the limit: it was not read at all.
    pub(crate) truncated: bool,
    /// A NUL byte in the first 8000 bytes, as git decides (false when not read).
    pub(crate) is_binary: bool,
}

/// The file at `path` in `commit`, read whole when it is at most `limit` bytes
/// ([`BLOB_SHOWN_LIMIT`] for a blob page), else only its size is known. `NotFound` when the
/// commit does not exist or the path is missing, a folder or a submodule.
pub(crate) fn blob(
    repo: &Repository,
    commit: Oid,
    path: impl AsRef<[u8]>,
    limit: usize,
) -> Result<BlobView> {
    let commit = find_commit(repo, commit)?;
    let comps = components(path.as_ref());
    let Some((id, mode)) = entry_at(repo, &commit.tree()?, &comps)? else {
        return Err(BrowseError::NotFound);
    };
    let kind = EntryKind::from_mode(mode);
    if !kind.is_blob() {
        return Err(BrowseError::NotFound);
    }
    read_blob(repo, id, kind, limit)
}

/// Reads a blob whole if its header says it is at most `limit` bytes; a larger one is never
/// inflated (libgit2 cannot stream a packed object, and one crafted blob of zeros can be a
/// gigabyte in a pack of a megabyte).
fn read_blob(repo: &Repository, id: Oid, kind: EntryKind, limit: usize) -> Result<BlobView> {
    let (size, otype) = repo.odb()?.read_header(id)?;
    if otype != ObjectType::Blob {
        return Err(BrowseError::Git(format!("{id} is a {otype}, not a blob")));
    }
    if size > limit {
        return Ok(BlobView {
            id,
            kind,
            size: size as u64,
            data: Vec::new(),
            truncated: true,
            is_binary: false,
        });
    }
    let data = repo.find_blob(id)?.content().to_vec();
    let is_binary = data[..data.len().min(BINARY_PROBE)].contains(&0);
    Ok(BlobView {
        id,
        kind,
        size: data.len() as u64,
        data,
        truncated: false,
        is_binary,
    })
}

/// A README found in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readme {
    /// The path from the repository's root, for links (lossy if not UTF-8).
    pub(crate) path: String,
    /// The file name as stored (`readme.md`, `README`, ...).
    pub(crate) name: String,
    /// Named `.md` or `.markdown`: render as Markdown, else show as text.
    pub(crate) markdown: bool,
    pub(crate) blob: BlobView,
}

/// The README of the folder `dir` in `commit`: the first of `README.md`, `README.markdown`,
/// `README`, `README.txt`, names compared without regard to ASCII case (when two spellings
/// of one name exist, the first in git's order wins). At most `limit` bytes are read
/// ([`README_LIMIT`]). `Ok(None)` when the folder has none (symlinks and folders named README
/// are not READMEs); `NotFound` when `dir` is missing or not a folder.
pub(crate) fn readme(
    repo: &Repository,
    commit: Oid,
    dir: impl AsRef<[u8]>,
    limit: usize,
) -> Result<Option<Readme>> {
    const NAMES: [&[u8]; 4] = [b"readme.md", b"readme.markdown", b"readme", b"readme.txt"];
    let commit = find_commit(repo, commit)?;
    let comps = components(dir.as_ref());
    let Some((id, mode)) = entry_at(repo, &commit.tree()?, &comps)? else {
        return Err(BrowseError::NotFound);
    };
    if EntryKind::from_mode(mode) != EntryKind::Dir {
        return Err(BrowseError::NotFound);
    }
    let tree = repo.find_tree(id)?;
    let mut best: Option<(usize, Oid, EntryKind, Vec<u8>)> = None;
    for entry in tree.iter() {
        let kind = EntryKind::from_mode(entry.filemode());
        if !matches!(kind, EntryKind::File | EntryKind::Executable) {
            continue;
        }
        let name = entry.name_bytes();
        let Some(rank) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) else {
            continue;
        };
        if best.as_ref().map_or(true, |(r, ..)| rank < *r) {
            best = Some((rank, entry.id(), kind, name.to_vec()));
        }
    }
    let Some((rank, id, kind, name)) = best else {
        return Ok(None);
    };
    let mut path = comps.join(&b'/');
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(&name);
    Ok(Some(Readme {
        path: lossy(&path),
        name: lossy(&name),
        markdown: rank < 2,
        blob: read_blob(repo, id, kind, limit)?,
    }))
}

pub(super) fn find_commit<'r>(repo: &'r Repository, id: Oid) -> Result<Commit<'r>> {
    repo.find_commit(id).map_err(not_found_or_git)
}

/// A path's components, empty ones (from leading, trailing or doubled slashes) dropped.
pub(super) fn components(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

/// The id and mode of what `comps` names below `root` (the root itself for no components);
/// `None` when it does not exist.
fn entry_at(repo: &Repository, root: &Tree<'_>, comps: &[&[u8]]) -> Result<Option<(Oid, i32)>> {
    let mut found = (root.id(), MODE_TREE);
    for comp in comps {
        if found.1 & MODE_TYPE_MASK != MODE_TREE {
            return Ok(None);
        }
        let tree = repo.find_tree(found.0)?;
        let Some(entry) = tree.get_name_bytes(comp) else {
            return Ok(None);
        };
        found = (entry.id(), entry.filemode());
    }
    Ok(Some(found))
}

/// The entry `comp` of the tree `tree`, when `tree` is one.
pub(super) fn child(
    repo: &Repository,
    tree: Option<(Oid, i32)>,
    comp: &[u8],
) -> Result<Option<(Oid, i32)>> {
    let Some((id, mode)) = tree else {
        return Ok(None);
    };
    if mode & MODE_TYPE_MASK != MODE_TREE {
        return Ok(None);
    }
    let tree = repo.find_tree(id)?;
    Ok(tree.get_name_bytes(comp).map(|e| (e.id(), e.filemode())))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn tree_listing_kinds_order_and_sizes() {
        let f = Fixture::new();
        f.write("b.txt", "hello\n");
        f.write("A.txt", "");
        f.write("zdir/inner.txt", "x");
        f.write("adir/deeper/f", "y");
        f.write("run.sh", "#!/bin/sh\n");
        make_executable(&f.path().join("run.sh"));
        std::os::unix::fs::symlink("b.txt", f.path().join("link")).unwrap();
        f.git(&["add", "-A"]);
        let sub = "1234567890123456789012345678901234567890";
        f.git(&[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{sub},mod"),
        ]);
        // Committed without `add -A`, which would drop the submodule (it has no folder).
        let c1 = f.commit_staged("first");
        f.write("zdir/inner.txt", "changed");
        f.git(&["add", "zdir"]);
        let c2 = f.commit_staged("second");
        f.write("b.txt", "again\n");
        f.git(&["add", "b.txt"]);
        let c3 = f.commit_staged("third");
        let repo = f.repo();

        let root = list_tree(&repo, c3, "").unwrap();
        let got: Vec<_> = root
            .entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, e.size))
            .collect();
        assert_eq!(
            got,
            [
                ("adir", EntryKind::Dir, None),
                ("mod", EntryKind::Submodule, None),
                ("zdir", EntryKind::Dir, None),
                ("A.txt", EntryKind::File, Some(0)),
                ("b.txt", EntryKind::File, Some(6)),
                ("link", EntryKind::Symlink, Some(5)),
                ("run.sh", EntryKind::Executable, Some(10)),
            ]
        );
        assert_eq!(root.entries[1].id, Oid::from_str(sub).unwrap());
        assert!(root.entries.iter().all(|e| e.utf8));
        assert_eq!(root.id, f.rev(&format!("{c3}^{{tree}}")));
        let last = root.last_commit.unwrap();
        assert_eq!((last.id, last.summary.as_str()), (c3, "third"));
        assert_eq!(last.author.name, "Ann Author");
        assert_eq!(last.author.email, "ann@example.org");
        assert_eq!(last.author.time, EPOCH + 180);
        assert_eq!(last.short_id, c3.to_string()[..7]);

        // A folder's last change is the newest commit under it, not the tip.
        let zdir = list_tree(&repo, c3, "zdir").unwrap();
        assert_eq!(zdir.entries.len(), 1);
        assert_eq!(zdir.last_commit.unwrap().id, c2);
        let deeper = list_tree(&repo, c3, "/adir//deeper/").unwrap();
        assert_eq!(deeper.entries[0].name, "f");
        assert_eq!(deeper.last_commit.unwrap().id, c1);

        for missing in ["nope", "zdir/nope", "b.txt", "mod", "link", "b.txt/x"] {
            assert_eq!(
                list_tree(&repo, c3, missing),
                Err(BrowseError::NotFound),
                "{missing}"
            );
        }
    }

    #[test]
    fn blobs_binary_and_missing() {
        let f = Fixture::new();
        f.write("text.txt", "line 1\nline 2\n");
        let mut late_nul = vec![b'a'; BINARY_PROBE];
        late_nul.push(0);
        f.write("late-nul.dat", &late_nul);
        f.write("bin.dat", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        f.write("dir/x", "x");
        std::os::unix::fs::symlink("text.txt", f.path().join("link")).unwrap();
        let c = f.commit("c");
        let repo = f.repo();

        let b = blob(&repo, c, "text.txt", BLOB_SHOWN_LIMIT).unwrap();
        assert_eq!(b.data, b"line 1\nline 2\n");
        assert_eq!((b.size, b.truncated, b.is_binary), (14, false, false));
        assert_eq!(b.kind, EntryKind::File);
        assert_eq!(b.id, f.rev(&format!("{c}:text.txt")));

        let b = blob(&repo, c, "bin.dat", BLOB_SHOWN_LIMIT).unwrap();
        assert!(b.is_binary);
        // Only the first 8000 bytes count, as in git.
        let b = blob(&repo, c, "late-nul.dat", BLOB_SHOWN_LIMIT).unwrap();
        assert!(!b.is_binary);
        assert_eq!(b.size, 8001);
        // Over the limit: nothing is read, so nothing is known of the content.
        let b = blob(&repo, c, "bin.dat", 2).unwrap();
        assert_eq!(
            (b.data.as_slice(), b.truncated, b.is_binary),
            (&b""[..], true, false)
        );

        let b = blob(&repo, c, "link", BLOB_SHOWN_LIMIT).unwrap();
        assert_eq!(
            (b.kind, b.data.as_slice()),
            (EntryKind::Symlink, &b"text.txt"[..])
        );

        for missing in ["", "nope", "dir", "dir/nope", "text.txt/x"] {
            assert_eq!(
                blob(&repo, c, missing, BLOB_SHOWN_LIMIT),
                Err(BrowseError::NotFound),
                "{missing:?}"
            );
        }
    }

    #[test]
    fn blob_over_the_limit_is_not_read_loose_or_packed() {
        let f = Fixture::new();
        let mut exact = Vec::new();
        while exact.len() < BLOB_SHOWN_LIMIT {
            exact.extend_from_slice(format!("line {}\n", exact.len()).as_bytes());
        }
        exact.truncate(BLOB_SHOWN_LIMIT);
        let mut over = exact.clone();
        over.extend_from_slice(b"one more\n");
        f.write("exact.txt", &exact);
        f.write("over.txt", &over);
        let c = f.commit("big");
        let check = |repo: &Repository| {
            let b = blob(repo, c, "exact.txt", BLOB_SHOWN_LIMIT).unwrap();
            assert_eq!((b.size, b.truncated), (BLOB_SHOWN_LIMIT as u64, false));
            assert_eq!(b.data, exact);
            let b = blob(repo, c, "over.txt", BLOB_SHOWN_LIMIT).unwrap();
            assert_eq!((b.size, b.truncated), (over.len() as u64, true));
            assert!(b.data.is_empty());
            assert!(!b.is_binary);
            let b = blob(repo, c, "over.txt", 10).unwrap();
            assert_eq!((b.data.as_slice(), b.truncated), (&b""[..], true));
            let b = blob(repo, c, "over.txt", usize::MAX).unwrap();
            assert_eq!((b.data.len(), b.truncated), (over.len(), false));
        };
        let repo = f.repo();
        check(&repo);
        f.git(&["repack", "-adq"]);
        f.git(&["prune-packed"]);
        check(&f.repo());
    }

    #[test]
    fn non_utf8_file_names() {
        let f = Fixture::new();
        // As if made with: touch "$(printf 'caf\xff.txt')"
        f.write(b"caf\xff.txt", "bytes\n");
        f.write("ok.txt", "ok\n");
        let c = f.commit("odd name");
        let repo = f.repo();
        let list = list_tree(&repo, c, "").unwrap();
        let odd = &list.entries[0];
        assert_eq!(odd.raw_name, b"caf\xff.txt");
        assert_eq!(odd.name, "caf\u{fffd}.txt");
        assert!(!odd.utf8);
        assert!(list.entries[1].utf8);
        // Found by its real bytes, not by the lossy name.
        let b = blob(&repo, c, b"caf\xff.txt", 100).unwrap();
        assert_eq!(b.data, b"bytes\n");
        assert_eq!(
            blob(&repo, c, "caf\u{fffd}.txt", 100),
            Err(BrowseError::NotFound)
        );
        let diff = commit_diff(&repo, c, &DiffLimits::default()).unwrap();
        assert_eq!(diff.files[0].new_path.as_deref(), Some("caf\u{fffd}.txt"));
        assert_eq!(
            log(&repo, c, b"caf\xff.txt", 0, 10).unwrap().commits.len(),
            1
        );
    }

    #[test]
    fn readme_lookup() {
        let f = Fixture::new();
        f.write("README", "plain\n");
        f.write("readme.MD", "# Title\n");
        f.write("docs/Readme.txt", "text\n");
        f.write("docs/README.rst", "not one of ours\n");
        f.write("other/readme.markdown", "x".repeat(100));
        f.write("other/README.TXT", "later in the list\n");
        f.write("none/file", "x");
        std::fs::create_dir_all(f.path().join("links")).unwrap();
        std::os::unix::fs::symlink("../README", f.path().join("links/README.md")).unwrap();
        f.write("links/README/x", "a folder named README");
        let c = f.commit("c");
        let repo = f.repo();

        let r = readme(&repo, c, "", README_LIMIT).unwrap().unwrap();
        assert_eq!(
            (r.path.as_str(), r.name.as_str(), r.markdown),
            ("readme.MD", "readme.MD", true)
        );
        assert_eq!(r.blob.data, b"# Title\n");
        let r = readme(&repo, c, "docs/", README_LIMIT).unwrap().unwrap();
        assert_eq!((r.path.as_str(), r.markdown), ("docs/Readme.txt", false));
        let r = readme(&repo, c, "other", 10).unwrap().unwrap();
        assert_eq!(r.path, "other/readme.markdown");
        assert!(r.markdown && r.blob.truncated);
        assert_eq!((r.blob.size, r.blob.data.len()), (100, 0));
        assert_eq!(readme(&repo, c, "none", README_LIMIT).unwrap(), None);
        assert_eq!(readme(&repo, c, "links", README_LIMIT).unwrap(), None);
        assert_eq!(
            readme(&repo, c, "missing", README_LIMIT),
            Err(BrowseError::NotFound)
        );
        assert_eq!(
            readme(&repo, c, "README", README_LIMIT),
            Err(BrowseError::NotFound)
        );
    }
}
