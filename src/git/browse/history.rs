//! History: a page of the commit log of a ref (and a path), walked by date with a cap on the
//! commits looked through.

use super::*;

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogPage {
    /// Newest first (git's default order: by commit date, never walking all history first).
    pub(crate) commits: Vec<CommitSummary>,
    /// More commits follow this page.
    pub(crate) has_more: bool,
    /// The walk gave up after [`LOG_SCAN_LIMIT`] commits (a path that changed rarely in a long
    /// history): older matching commits may exist.
    pub(crate) stopped: bool,
}

/// Commits a history page (or a folder's "last change") looks through at most: one request must
/// not tie up a worker for the whole history of a huge repository.
pub(crate) const LOG_SCAN_LIMIT: usize = 50_000;

/// History reachable from `start`: `limit` commits after skipping `skip` ([`LOG_PAGE_SIZE`]
/// a page). With a non-empty `path`, only commits whose entry at that path (a file or a
/// folder: id or mode) differs from their first parent's, or that add it (root commits); an
/// empty path means no filter. A path that never existed gives an empty page. The cost is one
/// step per commit walked, and comparing trees stops at the first folder both sides share.
/// `NotFound` when `start` is not a commit.
pub(crate) fn log(
    repo: &Repository,
    start: Oid,
    path: impl AsRef<[u8]>,
    skip: usize,
    limit: usize,
) -> Result<LogPage> {
    log_within(repo, start, path.as_ref(), skip, limit, LOG_SCAN_LIMIT)
}

/// [`log`], looking through at most `scan_limit` commits.
fn log_within(
    repo: &Repository,
    start: Oid,
    path: &[u8],
    skip: usize,
    limit: usize,
    scan_limit: usize,
) -> Result<LogPage> {
    let start = find_commit(repo, start)?;
    let comps = components(path);
    let mut walk = DateWalk::new(start);
    let mut skipped = 0;
    let mut commits = Vec::new();
    let mut has_more = false;
    let mut scanned = 0;
    let mut stopped = false;
    while let Some(commit) = walk.next(repo)? {
        scanned += 1;
        if scanned > scan_limit {
            stopped = true;
            break;
        }
        if !comps.is_empty() && !touches(repo, &commit, &comps)? {
            continue;
        }
        if skipped < skip {
            skipped += 1;
            continue;
        }
        if commits.len() == limit {
            has_more = true;
            break;
        }
        commits.push(CommitSummary::of(&commit));
    }
    Ok(LogPage {
        commits,
        has_more,
        stopped,
    })
}

/// The commits reachable from one commit, newest commit time first (ties in the order they were
/// met), each once: `git log`'s default order. Its own walk rather than libgit2's revwalk, which
/// reads every commit raw from the object database even when the repository's cache (kept
/// between requests, see `git::cache`) holds it parsed.
struct DateWalk<'r> {
    queue: std::collections::BinaryHeap<(i64, std::cmp::Reverse<u64>, Oid)>,
    seen: std::collections::HashSet<Oid>,
    met: u64,
    first: Option<Commit<'r>>,
}

impl<'r> DateWalk<'r> {
    fn new(start: Commit<'r>) -> DateWalk<'r> {
        DateWalk {
            queue: std::collections::BinaryHeap::new(),
            seen: std::collections::HashSet::from([start.id()]),
            met: 0,
            first: Some(start),
        }
    }

    fn next(&mut self, repo: &'r Repository) -> Result<Option<Commit<'r>>> {
        let commit = match self.first.take() {
            Some(c) => c,
            None => match self.queue.pop() {
                Some((_, _, id)) => repo.find_commit(id)?,
                None => return Ok(None),
            },
        };
        for parent in commit.parent_ids() {
            if !self.seen.insert(parent) {
                continue;
            }
            let time = match repo.find_commit(parent) {
                Ok(p) => p.time().seconds(),
                Err(e) if e.code() == git2::ErrorCode::NotFound => {
                    // A parent a shallow repository does not have ends that line of history.
                    missing_parent(repo, &commit, parent, e)?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            self.met += 1;
            self.queue.push((time, std::cmp::Reverse(self.met), parent));
        }
        Ok(Some(commit))
    }
}

/// A parent commit the object database does not have: the end of the history a shallow
/// repository keeps, and damage anywhere else (a pack or an object gone), which a history
/// page must not pass off as the first commit.
fn missing_parent(
    repo: &Repository,
    commit: &Commit<'_>,
    parent: Oid,
    e: git2::Error,
) -> Result<()> {
    if repo.is_shallow() {
        return Ok(());
    }
    Err(BrowseError::Git(format!(
        "commit {parent}, a parent of {}, cannot be read: {}",
        commit.id(),
        e.message()
    )))
}

/// What two commits share and where they part: the compare page's view of `base...head`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Divergence {
    /// The newest commit both reach; `None` when their histories are unrelated.
    pub(crate) merge_base: Option<Oid>,
    /// The commits `head` reaches and `base` does not (`git log base..head`), newest commit
    /// time first, at most the limit asked for.
    pub(crate) ahead: Vec<CommitSummary>,
    /// More such commits follow.
    pub(crate) has_more: bool,
}

/// How `head` departs from `base`: their merge base and the first `limit` commits on `head` that
/// are not on `base`. `NotFound` when either is not a commit.
pub(crate) fn divergence(
    repo: &Repository,
    base: Oid,
    head: Oid,
    limit: usize,
) -> Result<Divergence> {
    find_commit(repo, base)?;
    find_commit(repo, head)?;
    let merge_base = match repo.merge_base(base, head) {
        Ok(id) => Some(id),
        Err(e) if e.code() == ErrorCode::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TIME)?;
    walk.push(head)?;
    walk.hide(base)?;
    let mut ahead = Vec::new();
    let mut has_more = false;
    for id in walk {
        if ahead.len() == limit {
            has_more = true;
            break;
        }
        ahead.push(CommitSummary::of(&repo.find_commit(id?)?));
    }
    Ok(Divergence {
        merge_base,
        ahead,
        has_more,
    })
}

/// A commit's whole message, invalid UTF-8 replaced. `NotFound` when `id` is not a commit.
pub(crate) fn message(repo: &Repository, id: Oid) -> Result<String> {
    Ok(lossy(find_commit(repo, id)?.message_bytes()))
}

/// The commits `ids` name, in that order (a list another reader of history found, such as
/// `git log`); `NotFound` when one is not a commit of the repository.
pub(crate) fn summaries(repo: &Repository, ids: &[Oid]) -> Result<Vec<CommitSummary>> {
    ids.iter()
        .map(|&id| Ok(CommitSummary::of(&find_commit(repo, id)?)))
        .collect()
}

/// The newest commit reachable from `start` that changed `path` (see [`log`]); for an empty
/// path, the newest commit. `None` when nothing did.
pub(crate) fn last_change(
    repo: &Repository,
    start: Oid,
    path: impl AsRef<[u8]>,
) -> Result<Option<CommitSummary>> {
    Ok(log(repo, start, path, 0, 1)?.commits.into_iter().next())
}

/// Entries of a folder whose last change is looked for at most: a larger folder's page lists
/// its entries without them (the walk's cost grows with the entries still open).
pub(crate) const LAST_CHANGES_MAX_ENTRIES: usize = 1_000;

/// The last change of each entry of one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LastChanges {
    /// The commits found, newest first, each once.
    pub(crate) commits: Vec<CommitSummary>,
    /// For each name asked for, in order: its commit in `commits`, or `None` when none was found
    /// (the walk stopped first, or nothing reachable changed it).
    pub(crate) of: Vec<Option<usize>>,
    /// The walk gave up after [`LOG_SCAN_LIMIT`] commits with entries still open.
    pub(crate) stopped: bool,
}

/// For each of `names` in the folder at `path`, the newest commit reachable from `start` that
/// changed it: what [`last_change`] gives for `path/name`, for all of them in one walk of the
/// history, which ends once every entry has its commit. A commit whose folder is the same as its
/// first parent's costs one step; one that changed the folder costs a lookup per open entry.
pub(crate) fn last_changes(
    repo: &Repository,
    start: Oid,
    path: impl AsRef<[u8]>,
    names: &[&[u8]],
) -> Result<LastChanges> {
    last_changes_within(repo, start, path.as_ref(), names, LOG_SCAN_LIMIT)
}

fn last_changes_within(
    repo: &Repository,
    start: Oid,
    path: &[u8],
    names: &[&[u8]],
    scan_limit: usize,
) -> Result<LastChanges> {
    let start = find_commit(repo, start)?;
    let comps = components(path);
    let mut changes = LastChanges {
        commits: Vec::new(),
        of: vec![None; names.len()],
        stopped: false,
    };
    let mut open: Vec<usize> = (0..names.len()).collect();
    let mut walk = DateWalk::new(start);
    let mut scanned = 0;
    while !open.is_empty() {
        let Some(commit) = walk.next(repo)? else {
            break;
        };
        scanned += 1;
        if scanned > scan_limit {
            changes.stopped = true;
            break;
        }
        let Some((mine, theirs)) = changed_folder(repo, &commit, &comps)? else {
            continue;
        };
        let tree = |id: Option<Oid>| id.map(|id| repo.find_tree(id)).transpose();
        let (mine, theirs) = (tree(mine)?, tree(theirs)?);
        let entry = |t: &Option<Tree<'_>>, name: &[u8]| {
            t.as_ref()
                .and_then(|t| t.get_name_bytes(name).map(|e| (e.id(), e.filemode())))
        };
        let mut found = None;
        open.retain(|&i| {
            if entry(&mine, names[i]) == entry(&theirs, names[i]) {
                return true;
            }
            let at = *found.get_or_insert_with(|| {
                changes.commits.push(CommitSummary::of(&commit));
                changes.commits.len() - 1
            });
            changes.of[i] = Some(at);
            false
        });
    }
    Ok(changes)
}

/// The folder at `comps` in `commit` and in its first parent (each `None` where it is missing
/// or not a folder), or `None` when they are the same folder.
fn changed_folder(
    repo: &Repository,
    commit: &Commit<'_>,
    comps: &[&[u8]],
) -> Result<Option<(Option<Oid>, Option<Oid>)>> {
    let mut mine = Some((commit.tree_id(), MODE_TREE));
    let mut theirs = match commit.parent_id(0) {
        Ok(parent) => match repo.find_commit(parent) {
            Ok(p) => Some((p.tree_id(), MODE_TREE)),
            // A parent a shallow repository does not have: as for a root commit.
            Err(e) if e.code() == ErrorCode::NotFound => {
                missing_parent(repo, commit, parent, e)?;
                None
            }
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    for comp in comps {
        if mine == theirs {
            return Ok(None);
        }
        mine = child(repo, mine, comp)?;
        theirs = child(repo, theirs, comp)?;
    }
    if mine == theirs {
        return Ok(None);
    }
    let folder = |e: Option<(Oid, i32)>| {
        e.and_then(|(id, mode)| (mode & MODE_TYPE_MASK == MODE_TREE).then_some(id))
    };
    Ok(Some((folder(mine), folder(theirs))))
}

/// Whether `commit` changed the entry at `comps` compared with its first parent.
fn touches(repo: &Repository, commit: &Commit<'_>, comps: &[&[u8]]) -> Result<bool> {
    let mut mine = Some((commit.tree_id(), MODE_TREE));
    let mut theirs = match commit.parent_id(0) {
        Ok(parent) => Some((repo.find_commit(parent)?.tree_id(), MODE_TREE)),
        Err(_) => None,
    };
    for comp in comps {
        if mine == theirs {
            // The same folder on both sides: nothing below it changed.
            return Ok(false);
        }
        mine = child(repo, mine, comp)?;
        theirs = child(repo, theirs, comp)?;
    }
    Ok(mine != theirs)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    /// A parent commit whose object is gone was taken for the end of a shallow history: the
    /// history page of a repository that lost a pack listed the commits it could read as if
    /// they were all, with 200.
    #[test]
    fn a_commit_gone_from_the_history_is_damage_and_only_a_shallow_history_ends_there() {
        let f = Fixture::new();
        let mut ids = Vec::new();
        f.write("b.txt", "made by the first commit alone");
        for i in 0..3 {
            f.write("a.txt", format!("{i}"));
            ids.push(f.commit(&format!("commit {i}")));
        }
        let hex = ids[0].to_string();
        let object = f
            .path()
            .join(".git/objects")
            .join(&hex[..2])
            .join(&hex[2..]);
        std::fs::remove_file(&object).unwrap();
        let repo = f.repo();
        for path in ["", "a.txt"] {
            match log(&repo, ids[2], path, 0, 10) {
                Err(BrowseError::Git(detail)) => assert!(
                    detail.contains(&format!(
                        "commit {hex}, a parent of {}, cannot be read",
                        ids[1]
                    )),
                    "{detail}"
                ),
                other => panic!("the history of {path:?} without its first commit: {other:?}"),
            }
        }
        assert!(matches!(
            last_changes(&repo, ids[2], "", &[b"b.txt".as_slice()]),
            Err(BrowseError::Git(_))
        ));
        // The same history, shallow at its second commit: it ends there.
        std::fs::write(f.path().join(".git/shallow"), format!("{}\n", ids[1])).unwrap();
        let repo = f.repo();
        let page = log(&repo, ids[2], "", 0, 10).unwrap();
        let got: Vec<Oid> = page.commits.iter().map(|c| c.id).collect();
        assert_eq!(got, vec![ids[2], ids[1]]);
        let changes = last_changes(&repo, ids[2], "", &[b"b.txt".as_slice()]).unwrap();
        assert_eq!(changes.commits.first().map(|c| c.id), Some(ids[1]));
    }

    #[test]
    fn log_pages_and_path_filter() {
        let f = Fixture::new();
        let mut ids = Vec::new();
        for i in 0..7 {
            // a.txt changes in commits 1 and 4, src/ in 2, 4 and 5; 3 only touches b.txt.
            match i {
                1 => f.write("a.txt", "a1"),
                2 => f.write("src/lib.rs", "1"),
                4 => {
                    f.write("a.txt", "a4");
                    f.write("src/deep/mod.rs", "4");
                }
                5 => f.write("src/lib.rs", "5"),
                _ => f.write("b.txt", format!("{i}")),
            }
            ids.push(f.commit(&format!("commit {i}")));
        }
        // 7: a mode change only; 8: deleted; 9: an empty commit.
        make_executable(&f.path().join("a.txt"));
        ids.push(f.commit("commit 7"));
        f.git(&["rm", "-q", "a.txt"]);
        ids.push(f.commit("commit 8"));
        ids.push(f.commit("commit 9"));
        let tip = f.head();
        let repo = f.repo();
        let page = |path: &str, skip, limit| {
            let p = log(&repo, tip, path, skip, limit).unwrap();
            let got: Vec<usize> = p
                .commits
                .iter()
                .map(|c| ids.iter().position(|i| *i == c.id).unwrap())
                .collect();
            (got, p.has_more)
        };
        assert_eq!(page("", 0, 3), (vec![9, 8, 7], true));
        assert_eq!(page("", 3, 3), (vec![6, 5, 4], true));
        assert_eq!(page("", 9, 3), (vec![0], false));
        assert_eq!(page("", 7, 3), (vec![2, 1, 0], false));
        assert_eq!(page("", 10, 3), (vec![], false));
        assert_eq!(page("", 0, LOG_PAGE_SIZE), ((0..10).rev().collect(), false));
        assert_eq!(page("a.txt", 0, 50), (vec![8, 7, 4, 1], false));
        assert_eq!(page("a.txt", 1, 2), (vec![7, 4], true));
        assert_eq!(page("src", 0, 50), (vec![5, 4, 2], false));
        assert_eq!(page("src/deep/mod.rs", 0, 50), (vec![4], false));
        assert_eq!(page("src/lib.rs/", 0, 50), (vec![5, 2], false));
        assert_eq!(page("nope", 0, 50), (vec![], false));

        let entry = &log(&repo, tip, "", 2, 1).unwrap().commits[0];
        assert_eq!(entry.summary, "commit 7");
        assert_eq!(entry.parents, [ids[6]]);
        assert_eq!(entry.author.offset_minutes, 60);
        assert_eq!(log(&repo, ids[0], "", 0, 5).unwrap().commits[0].parents, []);
        assert_eq!(
            last_change(&repo, tip, "src").unwrap().map(|c| c.id),
            Some(ids[5])
        );
        assert_eq!(last_change(&repo, tip, "nope").unwrap(), None);

        // The walk looks through at most so many commits, and says when it stopped.
        let p = log_within(&repo, tip, b"src", 0, 50, 6).unwrap();
        let got: Vec<_> = p.commits.iter().map(|c| c.id).collect();
        assert_eq!(got, [ids[5], ids[4]]);
        assert!(p.stopped && !p.has_more);
        let p = log_within(&repo, tip, b"src", 0, 50, 10).unwrap();
        assert_eq!((p.commits.len(), p.stopped), (3, false));
    }

    #[test]
    fn log_follows_merges() {
        let f = Fixture::new();
        f.write("a", "1");
        let base = f.commit("base");
        f.git(&["checkout", "-q", "-b", "side"]);
        f.write("side.txt", "s");
        let side = f.commit("side");
        f.git(&["checkout", "-q", "main"]);
        f.write("a", "2");
        let main = f.commit("main");
        f.clock.set(f.clock.get() + 60);
        f.git(&["merge", "-q", "--no-ff", "-m", "merge", "side"]);
        let merge = f.head();
        let repo = f.repo();
        let all: Vec<_> = log(&repo, merge, "", 0, 10)
            .unwrap()
            .commits
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(all, [merge, main, side, base]);
        // The merge brought side.txt to main's line: it changed it for the first parent.
        let side_log: Vec<_> = log(&repo, merge, "side.txt", 0, 10)
            .unwrap()
            .commits
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(side_log, [merge, side]);
    }

    #[test]
    fn last_changes_are_each_entrys_last_change() {
        let f = Fixture::new();
        let mut ids = Vec::new();
        // Root: a.txt (0, 3), b.txt (1), src/ (2, 4); src: lib.rs (2), deep/ (4), x (0).
        f.write("a.txt", "0");
        f.write("src/x", "0");
        ids.push(f.commit("c0"));
        f.write("b.txt", "1");
        ids.push(f.commit("c1"));
        f.write("src/lib.rs", "2");
        ids.push(f.commit("c2"));
        f.write("a.txt", "3");
        ids.push(f.commit("c3"));
        f.write("src/deep/m.rs", "4");
        ids.push(f.commit("c4"));
        ids.push(f.commit("c5 (empty)"));
        let tip = f.head();
        let repo = f.repo();
        for (dir, names) in [
            ("", vec!["a.txt", "b.txt", "src", "gone"]),
            ("src", vec!["deep", "lib.rs", "x"]),
        ] {
            let raw: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
            let got = last_changes(&repo, tip, dir, &raw).unwrap();
            assert!(!got.stopped);
            for (i, name) in names.iter().enumerate() {
                let path = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                let want = last_change(&repo, tip, &path).unwrap().map(|c| c.id);
                let have = got.of[i].map(|at| got.commits[at].id);
                assert_eq!(have, want, "{path}");
            }
        }
        let root = last_changes(&repo, tip, "", &[b"a.txt", b"b.txt", b"src"]).unwrap();
        let id = |i: usize| root.of[i].map(|at| root.commits[at].id);
        assert_eq!(
            [id(0), id(1), id(2)],
            [Some(ids[3]), Some(ids[1]), Some(ids[4])]
        );
        // Each commit once, newest first.
        let listed: Vec<_> = root.commits.iter().map(|c| c.id).collect();
        assert_eq!(listed, [ids[4], ids[3], ids[1]]);
        // Stopped early: the newest ones are known, the rest are not.
        let cut = last_changes_within(&repo, tip, b"", &[b"a.txt", b"b.txt"], 3).unwrap();
        assert!(cut.stopped);
        assert_eq!(cut.of[0].map(|at| cut.commits[at].id), Some(ids[3]));
        assert_eq!(cut.of[1], None);
    }
}
