//! One commit and its diff: the files it changes, their hunks and lines, cut at the line and byte
//! limits a page shows.

use super::*;

/// How much of a diff is shown (ARCHITECTURE.md "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiffLimits {
    /// Files listed; the rest are counted in [`DiffCut::files_omitted`].
    pub(crate) max_files: usize,
    /// Context, added and removed lines over all files.
    pub(crate) max_lines: usize,
    /// Bytes of line content over all files: 20,000 lines of a minified file could otherwise
    /// be gigabytes.
    pub(crate) max_bytes: usize,
    /// Past what is shown, lines are still counted (for the per-file and total figures) up to
    /// this many lines and bytes in all; past that the figures are left out.
    pub(crate) count_lines: usize,
    pub(crate) count_bytes: usize,
    /// libgit2's rename detection limit (pairs of files it will compare).
    pub(crate) rename_limit: usize,
    /// A file larger than this on either side is "too large to show": neither side is read.
    pub(crate) max_file_bytes: u64,
    /// Changed paths looked for at most; past it the number of files is "more than".
    pub(crate) max_paths: usize,
}

impl Default for DiffLimits {
    fn default() -> DiffLimits {
        DiffLimits {
            max_files: 300,
            max_lines: 20_000,
            max_bytes: 4 << 20,
            count_lines: 1_000_000,
            count_bytes: 64 << 20,
            rename_limit: 1_000,
            max_file_bytes: 4 << 20,
            max_paths: 20_000,
        }
    }
}

/// How a file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileStatus {
    Added,
    Deleted,
    Modified,
    Renamed,
    Copied,
    /// A file became a symlink, a submodule, or the other way round.
    TypeChange,
}

/// What a diff line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Context,
    Added,
    Removed,
    /// Git's `\ No newline at end of file` after the line before it.
    NoNewline,
}

impl LineKind {
    /// The character git prints in front of the line.
    pub(crate) fn origin(self) -> char {
        match self {
            LineKind::Context => ' ',
            LineKind::Added => '+',
            LineKind::Removed => '-',
            LineKind::NoNewline => '\\',
        }
    }
}

/// One line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DiffLine {
    pub(crate) kind: LineKind,
    /// The line's number in the old file (`None` for added lines).
    pub(crate) old_line: Option<u32>,
    /// The line's number in the new file (`None` for removed lines).
    pub(crate) new_line: Option<u32>,
    /// Without its line ending; invalid UTF-8 replaced by U+FFFD.
    pub(crate) content: String,
}

/// One hunk of a file's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    /// `@@ -a,b +c,d @@ context`, without the line ending.
    pub(crate) header: String,
    pub(crate) old_start: u32,
    pub(crate) old_lines: u32,
    pub(crate) new_start: u32,
    pub(crate) new_lines: u32,
    pub(crate) lines: Vec<DiffLine>,
}

/// One file of a commit's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileDiff {
    pub(crate) status: FileStatus,
    /// `None` for an added file.
    pub(crate) old_path: Option<String>,
    /// `None` for a deleted file.
    pub(crate) new_path: Option<String>,
    /// Git's octal modes (`0o100644`, `0o100755`, `0o120000`, ...; 0 on the missing side).
    pub(crate) old_mode: u32,
    pub(crate) new_mode: u32,
    /// Lines added and removed in this file, also past what is shown, while `counted`.
    pub(crate) additions: usize,
    pub(crate) deletions: usize,
    /// False when the counting limit stopped the walk before this file's end (or before it
    /// began): `additions` and `deletions` are then not the file's.
    pub(crate) counted: bool,
    /// Git thinks either side is binary: no hunks.
    pub(crate) binary: bool,
    /// Either side is larger than [`DiffLimits::max_file_bytes`]: not read, no hunks.
    pub(crate) too_large: bool,
    pub(crate) hunks: Vec<Hunk>,
    /// False when the line or byte limit stopped this file's hunks partway (the hunks hold
    /// what is shown) or before they began (no hunks).
    pub(crate) complete: bool,
}

/// What a diff's limits left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiffCut {
    /// Files the commit changed in all (at least this many when `files_more`).
    pub(crate) files_total: usize,
    /// More files changed than [`DiffLimits::max_paths`]: `files_total` is a lower bound.
    pub(crate) files_more: bool,
    /// Files past [`DiffLimits::max_files`], not listed at all.
    pub(crate) files_omitted: usize,
    /// The line or byte limit was hit: some listed files are not `complete`.
    pub(crate) lines_cut: bool,
}

/// One commit with its diff against its first parent (the empty tree for a root commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitView {
    pub(crate) id: Oid,
    pub(crate) short_id: String,
    pub(crate) summary: String,
    /// The whole message, invalid UTF-8 replaced.
    pub(crate) message: String,
    pub(crate) author: Person,
    pub(crate) committer: Person,
    pub(crate) parents: Vec<Oid>,
    pub(crate) files: Vec<FileDiff>,
    /// Sums over `files`; `None` unless every changed file was listed and counted.
    pub(crate) additions: Option<usize>,
    pub(crate) deletions: Option<usize>,
    /// `Some` when the limits cut the diff.
    pub(crate) truncated: Option<DiffCut>,
}

/// The commit `id` and its diff, cut at `limits`: files past `max_files` are only counted, and
/// once `max_lines` lines or `max_bytes` bytes have been collected the file at hand keeps the
/// hunks so far and the remaining listed files have none (`complete == false`); their lines are
/// still counted up to `count_lines` and `count_bytes` (`counted`), and while the files read for
/// it stay under `count_bytes`. A file over `max_file_bytes` on either side is `too_large` and
/// never read. Renames and copies are detected (up to `rename_limit`; by id alone when a
/// candidate is too large to read). `NotFound` when `id` is not a commit.
///
/// The cost follows what the commit changed, not the repository: the changed paths are found by
/// comparing the two trees folder by folder, skipping every folder both sides share, and
/// libgit2's diff is given exactly those paths.
pub(crate) fn commit_diff(repo: &Repository, id: Oid, limits: &DiffLimits) -> Result<CommitView> {
    let commit = find_commit(repo, id)?;
    let new_tree = commit.tree()?;
    let old_tree = match commit.parent_id(0) {
        Ok(parent) => Some(repo.find_commit(parent)?.tree()?),
        Err(_) => None,
    };
    let diff = trees_diff(repo, old_tree.as_ref(), &new_tree, limits)?;
    let view = CommitView {
        id: commit.id(),
        short_id: short_id(commit.id()),
        summary: commit.summary_bytes().map(lossy).unwrap_or_default(),
        message: lossy(commit.message_bytes()),
        author: Person::from_signature(&commit.author()),
        committer: Person::from_signature(&commit.committer()),
        parents: commit.parent_ids().collect(),
        files: diff.files,
        additions: diff.additions,
        deletions: diff.deletions,
        truncated: diff.truncated,
    };
    Ok(view)
}

/// The diff from the commit `old` to the commit `new` (their trees), as [`trees_diff`] says.
/// `NotFound` when either is not a commit.
pub(crate) fn commits_diff(
    repo: &Repository,
    old: Oid,
    new: Oid,
    limits: &DiffLimits,
) -> Result<TreesDiff> {
    let old_tree = find_commit(repo, old)?.tree()?;
    let new_tree = find_commit(repo, new)?.tree()?;
    trees_diff(repo, Some(&old_tree), &new_tree, limits)
}

/// The diff between two trees, cut at limits: what [`commit_diff`] shows of a commit, and the
/// compare page of two commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreesDiff {
    pub(crate) files: Vec<FileDiff>,
    /// Sums over `files`; `None` unless every changed file was listed and counted.
    pub(crate) additions: Option<usize>,
    pub(crate) deletions: Option<usize>,
    /// `Some` when the limits cut the diff.
    pub(crate) truncated: Option<DiffCut>,
}

/// The diff from `old_tree` (the empty tree when `None`) to `new_tree`, as [`commit_diff`] says.
pub(crate) fn trees_diff(
    repo: &Repository,
    old_tree: Option<&Tree<'_>>,
    new_tree: &Tree<'_>,
    limits: &DiffLimits,
) -> Result<TreesDiff> {
    let mut changes = Changes {
        list: Vec::new(),
        max: limits.max_paths,
        more: false,
    };
    compare_trees(
        repo,
        old_tree.as_ref().map(|t| t.id()),
        Some(new_tree.id()),
        &mut Vec::new(),
        &mut changes,
    )?;
    let files_more = changes.more;
    let odb = repo.odb()?;
    let size_of = |id: Oid| -> Result<u64> {
        if id.is_zero() {
            return Ok(0);
        }
        Ok(odb.read_header(id)?.0 as u64)
    };
    // Rename and copy detection reads whole candidates (added, deleted and modified files);
    // when any is too large to read, ids alone must do.
    let mut candidates_large = false;
    let mut candidate_bytes: u64 = 0;
    for c in &changes.list {
        for side in [c.old, c.new].into_iter().flatten() {
            if side.1 & MODE_TYPE_MASK != MODE_BLOB {
                continue;
            }
            let n = size_of(side.0)?;
            candidate_bytes = candidate_bytes.saturating_add(n);
            candidates_large |= n > limits.max_file_bytes;
        }
        if candidates_large || candidate_bytes > limits.count_bytes as u64 {
            candidates_large = true;
            break;
        }
    }
    let mut opts = DiffOptions::new();
    opts.context_lines(3)
        .indent_heuristic(true)
        .include_typechange(true)
        .disable_pathspec_match(true)
        // Bigger files are taken as binary from their header, without being read.
        .max_size(i64::try_from(limits.max_file_bytes).unwrap_or(i64::MAX));
    for c in &changes.list {
        opts.pathspec(c.path.clone());
    }
    let mut diff = if changes.list.is_empty() {
        // No pathspec would mean "every path": an empty commit diffs nothing.
        repo.diff_tree_to_tree(Some(new_tree), Some(new_tree), Some(&mut opts))?
    } else {
        repo.diff_tree_to_tree(old_tree, Some(new_tree), Some(&mut opts))?
    };
    let mut find = DiffFindOptions::new();
    find.renames(true)
        .copies(true)
        .rename_limit(limits.rename_limit)
        .exact_match_only(candidates_large);
    diff.find_similar(Some(&mut find))?;

    let files_total = diff.deltas().len();
    let files: Vec<FileDiff> = diff
        .deltas()
        .take(limits.max_files)
        .map(|d| file_of_delta(&d))
        .collect();
    let state = RefCell::new(Collect {
        files,
        current: None,
        lines: 0,
        bytes: 0,
        read: 0,
        cut: false,
        counting_stopped: false,
        limits: *limits,
    });
    // The callbacks run one at a time on this thread, in file order; returning false stops
    // the walk (libgit2 then reports a "user" error, which is expected here).
    let mut on_file = |delta: git2::DiffDelta<'_>, _: f32| {
        let sizes = (
            size_of(delta.old_file().id()).unwrap_or(u64::MAX),
            size_of(delta.new_file().id()).unwrap_or(u64::MAX),
        );
        state.borrow_mut().file(&delta, sizes)
    };
    let mut on_binary = |_: git2::DiffDelta<'_>, _: git2::DiffBinary<'_>| {
        state.borrow_mut().binary();
        true
    };
    let mut on_hunk =
        |_: git2::DiffDelta<'_>, hunk: git2::DiffHunk<'_>| state.borrow_mut().hunk(&hunk);
    let mut on_line =
        |_: git2::DiffDelta<'_>, _: Option<git2::DiffHunk<'_>>, line: git2::DiffLine<'_>| {
            state.borrow_mut().line(&line)
        };
    let walked = diff.foreach(
        &mut on_file,
        Some(&mut on_binary),
        Some(&mut on_hunk),
        Some(&mut on_line),
    );
    match walked {
        Ok(()) => {}
        Err(e) if e.code() == ErrorCode::User => {}
        Err(e) => return Err(e.into()),
    }
    let Collect {
        mut files,
        current,
        cut,
        counting_stopped,
        ..
    } = state.into_inner();
    if counting_stopped {
        // The file where counting stopped, and those after it, were not counted whole.
        for file in files.iter_mut().skip(current.unwrap_or(0)) {
            file.counted = false;
            file.complete = false;
        }
    }
    let files_omitted = files_total - files.len();
    // Totals only when every changed file was counted.
    let all_counted = files_omitted == 0 && !files_more && files.iter().all(|f| f.counted);
    let additions = all_counted.then(|| files.iter().map(|f| f.additions).sum());
    let deletions = all_counted.then(|| files.iter().map(|f| f.deletions).sum());
    let truncated = (files_omitted > 0 || cut || files_more).then_some(DiffCut {
        files_total,
        files_more,
        files_omitted,
        lines_cut: cut,
    });
    Ok(TreesDiff {
        files,
        additions,
        deletions,
        truncated,
    })
}

/// The paths two trees differ at, as [`compare_trees`] finds them.
struct Changes {
    list: Vec<Change>,
    /// Paths kept at most.
    max: usize,
    /// More paths differ than were kept.
    more: bool,
}

/// One path whose entry differs between two trees: (id, mode) on each side that has it.
struct Change {
    path: Vec<u8>,
    old: Option<(Oid, i32)>,
    new: Option<(Oid, i32)>,
}

impl Changes {
    /// Records a path; false once the list is full.
    fn push(&mut self, path: &[u8], old: Option<(Oid, i32)>, new: Option<(Oid, i32)>) -> bool {
        if self.list.len() >= self.max {
            self.more = true;
            return false;
        }
        self.list.push(Change {
            path: path.to_vec(),
            old,
            new,
        });
        true
    }
}

/// The entries of a tree (none for `None`), by name.
fn entries_of(repo: &Repository, tree: Option<Oid>) -> Result<Vec<(Vec<u8>, Oid, i32)>> {
    let Some(id) = tree else {
        return Ok(Vec::new());
    };
    let tree = repo.find_tree(id)?;
    let mut out: Vec<(Vec<u8>, Oid, i32)> = tree
        .iter()
        .map(|e| (e.name_bytes().to_vec(), e.id(), e.filemode()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Collects every path below `prefix` whose file (or link, or submodule) differs between the
/// trees `old` and `new` (either may be absent: everything below the other is added or deleted).
/// Folders with the same id on both sides are skipped whole. False once `changes` is full.
fn compare_trees(
    repo: &Repository,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &mut Vec<u8>,
    changes: &mut Changes,
) -> Result<bool> {
    if old.is_some() && old == new {
        return Ok(true);
    }
    let olds = entries_of(repo, old)?;
    let news = entries_of(repo, new)?;
    let (mut i, mut j) = (0, 0);
    let is_tree = |mode: i32| mode & MODE_TYPE_MASK == MODE_TREE;
    while i < olds.len() || j < news.len() {
        let order = match (olds.get(i), news.get(j)) {
            (Some(o), Some(n)) => o.0.cmp(&n.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        let (o, n) = match order {
            std::cmp::Ordering::Less => {
                i += 1;
                (Some(&olds[i - 1]), None)
            }
            std::cmp::Ordering::Greater => {
                j += 1;
                (None, Some(&news[j - 1]))
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
                (Some(&olds[i - 1]), Some(&news[j - 1]))
            }
        };
        let name = &o.or(n).map(|e| e.0.clone()).unwrap_or_default();
        let mark = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(name);
        let o = o.map(|e| (e.1, e.2));
        let n = n.map(|e| (e.1, e.2));
        let go_on = if o == n {
            true
        } else {
            // A folder on either side is compared below; a file (link, submodule) on either
            // side is one changed path.
            let old_tree = o.filter(|e| is_tree(e.1)).map(|e| e.0);
            let new_tree = n.filter(|e| is_tree(e.1)).map(|e| e.0);
            let old_file = o.filter(|e| !is_tree(e.1));
            let new_file = n.filter(|e| !is_tree(e.1));
            let mut ok = true;
            if old_file.is_some() || new_file.is_some() {
                ok = changes.push(prefix, old_file, new_file);
            }
            if ok && (old_tree.is_some() || new_tree.is_some()) {
                ok = compare_trees(repo, old_tree, new_tree, prefix, changes)?;
            }
            ok
        };
        prefix.truncate(mark);
        if !go_on {
            return Ok(false);
        }
    }
    Ok(true)
}

fn file_of_delta(delta: &git2::DiffDelta<'_>) -> FileDiff {
    let status = match delta.status() {
        Delta::Added => FileStatus::Added,
        Delta::Deleted => FileStatus::Deleted,
        Delta::Renamed => FileStatus::Renamed,
        Delta::Copied => FileStatus::Copied,
        Delta::Typechange => FileStatus::TypeChange,
        _ => FileStatus::Modified,
    };
    let path = |f: git2::DiffFile<'_>| f.path_bytes().map(lossy);
    FileDiff {
        status,
        old_path: (status != FileStatus::Added)
            .then(|| path(delta.old_file()))
            .flatten(),
        new_path: (status != FileStatus::Deleted)
            .then(|| path(delta.new_file()))
            .flatten(),
        old_mode: if status == FileStatus::Added {
            0
        } else {
            u32::from(delta.old_file().mode())
        },
        new_mode: if status == FileStatus::Deleted {
            0
        } else {
            u32::from(delta.new_file().mode())
        },
        additions: 0,
        deletions: 0,
        binary: delta.flags().is_binary(),
        too_large: false,
        hunks: Vec::new(),
        complete: true,
        counted: true,
    }
}

/// The state shared by `commit_diff`'s callbacks.
struct Collect {
    files: Vec<FileDiff>,
    /// Index in `files` of the file the walk is in.
    current: Option<usize>,
    /// Lines and bytes walked so far (shown, then only counted).
    lines: usize,
    bytes: usize,
    /// Bytes of files read for the diff so far (both sides).
    read: u64,
    /// The shown limit was hit: later lines are only counted.
    cut: bool,
    /// The counting limit was hit: the walk stopped.
    counting_stopped: bool,
    limits: DiffLimits,
}

impl Collect {
    /// A new file, with the sizes of its two sides (0 for a missing side).
    fn file(&mut self, delta: &git2::DiffDelta<'_>, (old, new): (u64, u64)) -> bool {
        let next = self.current.map_or(0, |i| i + 1);
        let limits = self.limits;
        let Some(file) = self.files.get_mut(next) else {
            // Past `max_files`: those are only counted.
            return false;
        };
        self.current = Some(next);
        if old.max(new) > limits.max_file_bytes {
            // libgit2 takes it as binary without reading it (`max_size`).
            file.too_large = true;
            file.binary = false;
            file.complete = false;
            file.counted = false;
            return true;
        }
        self.read = self.read.saturating_add(old + new);
        if self.read > limits.count_bytes as u64 {
            // Reading this file would pass the budget: stop here.
            self.counting_stopped = true;
            return false;
        }
        // Binary-ness is known once libgit2 has loaded the content, i.e. by now.
        file.binary |= delta.flags().is_binary();
        if self.cut {
            // Counted, not shown.
            file.complete = false;
        }
        true
    }

    fn current_file(&mut self) -> Option<&mut FileDiff> {
        self.current.and_then(|i| self.files.get_mut(i))
    }

    fn binary(&mut self) {
        if let Some(file) = self.current_file() {
            file.binary = !file.too_large;
        }
    }

    fn hunk(&mut self, hunk: &git2::DiffHunk<'_>) -> bool {
        if self.cut {
            return true;
        }
        let mut header = lossy(hunk.header());
        trim_line_end(&mut header);
        if let Some(file) = self.current_file() {
            file.hunks.push(Hunk {
                header,
                old_start: hunk.old_start(),
                old_lines: hunk.old_lines(),
                new_start: hunk.new_start(),
                new_lines: hunk.new_lines(),
                lines: Vec::new(),
            });
        }
        true
    }

    fn line(&mut self, line: &git2::DiffLine<'_>) -> bool {
        let kind = match line.origin() {
            ' ' => LineKind::Context,
            '+' => LineKind::Added,
            '-' => LineKind::Removed,
            '=' | '>' | '<' => LineKind::NoNewline,
            _ => return true,
        };
        let raw = line.content();
        if kind != LineKind::NoNewline {
            self.lines += 1;
            self.bytes = self.bytes.saturating_add(raw.len());
        }
        if self.lines > self.limits.count_lines || self.bytes > self.limits.count_bytes {
            self.counting_stopped = true;
            return false;
        }
        let shown = !self.cut
            && (kind == LineKind::NoNewline
                || (self.lines <= self.limits.max_lines && self.bytes <= self.limits.max_bytes));
        if !shown && !self.cut {
            self.cut = true;
            if let Some(file) = self.current_file() {
                file.complete = false;
                // A hunk cut before its first line is not shown at all.
                if file.hunks.last().is_some_and(|h| h.lines.is_empty()) {
                    file.hunks.pop();
                }
            }
        }
        let Some(file) = self.current_file() else {
            return true;
        };
        match kind {
            LineKind::Added => file.additions += 1,
            LineKind::Removed => file.deletions += 1,
            _ => {}
        }
        if !shown {
            return true;
        }
        let content = if kind == LineKind::NoNewline {
            "\\ No newline at end of file".to_string()
        } else {
            let mut s = lossy(raw);
            trim_line_end(&mut s);
            s
        };
        if file.hunks.is_empty() {
            file.hunks.push(Hunk {
                header: String::new(),
                old_start: 0,
                old_lines: 0,
                new_start: 0,
                new_lines: 0,
                lines: Vec::new(),
            });
        }
        if let Some(hunk) = file.hunks.last_mut() {
            hunk.lines.push(DiffLine {
                kind,
                old_line: line.old_lineno(),
                new_line: line.new_lineno(),
                content,
            });
        }
        true
    }
}

fn trim_line_end(s: &mut String) {
    if s.ends_with('\n') {
        s.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    #[test]
    fn root_commit_diff() {
        let f = Fixture::new();
        f.write("a.txt", "one\ntwo\n");
        f.write("b.bin", b"\0\x01\x02");
        f.write("empty", "");
        f.git(&["add", "-A"]);
        f.clock.set(f.clock.get() + 60);
        f.git(&["commit", "-q", "-m", "Root\n\nBody line."]);
        let c = f.head();
        let repo = f.repo();
        let d = commit_diff(&repo, c, &DiffLimits::default()).unwrap();
        assert_eq!(d.id, c);
        assert_eq!(d.summary, "Root");
        assert_eq!(d.message, "Root\n\nBody line.\n");
        assert_eq!(d.parents, []);
        assert_eq!(d.author.name, "Ann Author");
        assert_eq!(d.committer.name, "Cid Committer");
        assert_eq!(d.committer.email, "cid@example.org");
        assert_eq!(d.truncated, None);
        assert_eq!((d.additions, d.deletions), (Some(2), Some(0)));
        assert_eq!(d.files.len(), 3);
        let a = &d.files[0];
        assert_eq!(a.status, FileStatus::Added);
        assert_eq!(
            (a.old_path.as_deref(), a.new_path.as_deref()),
            (None, Some("a.txt"))
        );
        assert_eq!((a.old_mode, a.new_mode), (0, 0o100644));
        assert_eq!(
            (a.additions, a.deletions, a.binary, a.complete),
            (2, 0, false, true)
        );
        assert_eq!(a.hunks.len(), 1);
        assert_eq!(a.hunks[0].header, "@@ -0,0 +1,2 @@");
        assert_eq!((a.hunks[0].new_start, a.hunks[0].new_lines), (1, 2));
        let lines: Vec<_> = a.hunks[0]
            .lines
            .iter()
            .map(|l| (l.kind.origin(), l.old_line, l.new_line, l.content.as_str()))
            .collect();
        assert_eq!(
            lines,
            [('+', None, Some(1), "one"), ('+', None, Some(2), "two")]
        );
        let b = &d.files[1];
        assert_eq!(
            (b.new_path.as_deref(), b.binary, b.hunks.len()),
            (Some("b.bin"), true, 0)
        );
        let e = &d.files[2];
        assert_eq!(
            (e.new_path.as_deref(), e.binary, e.hunks.len()),
            (Some("empty"), false, 0)
        );
    }

    #[test]
    fn modify_delete_rename_and_typechange() {
        let f = Fixture::new();
        let body: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        f.write("old-name.txt", &body);
        f.write("gone.txt", "bye\n");
        f.write("edit.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n");
        f.write("tail.txt", "x\ny");
        f.write("became-link", "target\n");
        let parent = f.commit("base");
        f.git(&["mv", "old-name.txt", "new-name.txt"]);
        f.write("new-name.txt", body.replace("line 20\n", "line twenty\n"));
        f.git(&["rm", "-q", "gone.txt"]);
        f.write("edit.txt", "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n");
        f.write("tail.txt", "x\ny\nz\n");
        std::fs::remove_file(f.path().join("became-link")).unwrap();
        std::os::unix::fs::symlink("edit.txt", f.path().join("became-link")).unwrap();
        let c = f.commit("changes");
        let repo = f.repo();
        let d = commit_diff(&repo, c, &DiffLimits::default()).unwrap();
        assert_eq!(d.parents, [parent]);
        let by_status = |s: FileStatus| d.files.iter().find(|f| f.status == s).unwrap();

        let r = by_status(FileStatus::Renamed);
        assert_eq!(r.old_path.as_deref(), Some("old-name.txt"));
        assert_eq!(r.new_path.as_deref(), Some("new-name.txt"));
        assert_eq!((r.additions, r.deletions), (1, 1));

        let g = by_status(FileStatus::Deleted);
        assert_eq!(
            (g.old_path.as_deref(), g.new_path.as_deref()),
            (Some("gone.txt"), None)
        );
        assert_eq!((g.old_mode, g.new_mode), (0o100644, 0));
        assert_eq!(g.deletions, 1);

        let t = by_status(FileStatus::TypeChange);
        assert_eq!(t.new_path.as_deref(), Some("became-link"));
        assert_eq!((t.old_mode, t.new_mode), (0o100644, 0o120000));

        let e = d
            .files
            .iter()
            .find(|f| f.new_path.as_deref() == Some("edit.txt"))
            .unwrap();
        assert_eq!(e.status, FileStatus::Modified);
        // With the function-name context git would print.
        assert_eq!(e.hunks[0].header, "@@ -2,7 +2,7 @@ a");
        let lines: Vec<_> = e.hunks[0]
            .lines
            .iter()
            .map(|l| (l.kind, l.old_line, l.new_line, l.content.as_str()))
            .collect();
        assert_eq!(lines[2], (LineKind::Context, Some(4), Some(4), "d"));
        assert_eq!(lines[3], (LineKind::Removed, Some(5), None, "e"));
        assert_eq!(lines[4], (LineKind::Added, None, Some(5), "E"));
        assert_eq!(lines.len(), 8);

        let tail = d
            .files
            .iter()
            .find(|f| f.new_path.as_deref() == Some("tail.txt"))
            .unwrap();
        let kinds: Vec<_> = tail.hunks[0].lines.iter().map(|l| l.kind).collect();
        assert_eq!(
            kinds,
            [
                LineKind::Context,
                LineKind::Removed,
                LineKind::NoNewline,
                LineKind::Added,
                LineKind::Added
            ]
        );
        assert_eq!(d.files.len(), 5);
        assert_eq!(d.truncated, None);
    }

    #[test]
    fn diff_of_310_files_lists_300() {
        let f = Fixture::new();
        f.write("keep", "k");
        f.commit("base");
        for i in 0..310 {
            f.write(format!("many/f{i:03}.txt"), format!("{i}\n"));
        }
        let c = f.commit("310 files");
        let repo = f.repo();
        let d = commit_diff(&repo, c, &DiffLimits::default()).unwrap();
        assert_eq!(d.files.len(), 300);
        assert_eq!(
            d.truncated,
            Some(DiffCut {
                files_total: 310,
                files_more: false,
                files_omitted: 10,
                lines_cut: false
            })
        );
        assert!(d
            .files
            .iter()
            .all(|f| f.complete && f.counted && f.additions == 1));
        assert_eq!(d.files[299].new_path.as_deref(), Some("many/f299.txt"));
        assert_eq!(d.files[299].hunks[0].lines[0].content, "299");
        // Ten files were not looked at: no totals.
        assert_eq!(d.additions, None);
    }

    #[test]
    fn diff_cut_at_the_line_and_byte_limits() {
        let f = Fixture::new();
        f.write("a.txt", "1\n2\n3\n");
        f.write("b.txt", "1\n2\n3\n");
        f.write("c.txt", "1\n2\n3\n");
        f.write("d.bin", b"\0");
        let c = f.commit("c");
        let repo = f.repo();
        let limits = DiffLimits {
            max_lines: 5,
            ..DiffLimits::default()
        };
        let d = commit_diff(&repo, c, &limits).unwrap();
        assert_eq!(
            d.truncated,
            Some(DiffCut {
                files_total: 4,
                files_more: false,
                files_omitted: 0,
                lines_cut: true
            })
        );
        // Past the shown limit the files are still counted, whole.
        let got: Vec<_> = d
            .files
            .iter()
            .map(|f| (f.additions, f.counted, f.complete, f.hunks.len()))
            .collect();
        assert_eq!(
            got,
            [
                (3, true, true, 1),
                (3, true, false, 1),
                (3, true, false, 0),
                (0, true, false, 0)
            ]
        );
        assert_eq!(d.files[1].hunks[0].lines.len(), 2, "b.txt shows 2 lines");
        assert_eq!((d.additions, d.deletions), (Some(9), Some(0)));

        // Past the counting limit, the file at hand and those after it have no figures.
        let limits = DiffLimits {
            max_lines: 5,
            count_lines: 7,
            ..DiffLimits::default()
        };
        let d = commit_diff(&repo, c, &limits).unwrap();
        let counted: Vec<_> = d.files.iter().map(|f| f.counted).collect();
        assert_eq!(counted, [true, true, false, false]);
        assert_eq!(d.additions, None);

        // Exactly at the limit: nothing is cut.
        let limits = DiffLimits {
            max_lines: 9,
            ..DiffLimits::default()
        };
        let d = commit_diff(&repo, c, &limits).unwrap();
        assert_eq!(d.truncated, None);
        assert!(d.files[3].binary && d.files[3].complete);

        let limits = DiffLimits {
            max_bytes: 7,
            ..DiffLimits::default()
        };
        let d = commit_diff(&repo, c, &limits).unwrap();
        assert!(d.truncated.unwrap().lines_cut);
        assert_eq!(d.additions, Some(9));
        assert!(d.files[0].complete && !d.files[1].complete);
        assert!(d.files[1].hunks.is_empty(), "no hunk without a line shown");
    }
}
