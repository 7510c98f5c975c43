//! Refs as URLs name them and as the pages list them: a ref and a path from a URL's segments, what
//! `commit/{rev}` names, the default branch, and branch and tag lists (read from the ref snapshot
//! of `git::refs`).

use super::*;

/// What kind of name a URL used for a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefKind {
    /// `refs/heads/{name}`.
    Branch,
    /// `refs/tags/{name}`, peeled to the commit it tags.
    Tag,
    /// A full 40-hex object id (a commit, or a tag object peeled to one).
    Commit,
}

/// A ref name from a URL, resolved to a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedRef {
    pub(crate) commit: Oid,
    pub(crate) kind: RefKind,
    /// The name as the URL spelled it (`feature/x`, `v1.0`, or the hex id): what pages show
    /// and put back into links.
    pub(crate) name: String,
}

/// A `tree/{ref}/{path}` URL split into its ref and the path below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefPath {
    pub(crate) rev: ResolvedRef,
    /// The segments after the ref joined with `/`, empty ones dropped; empty is the root.
    /// Bytes, as file names need not be UTF-8.
    pub(crate) path: Vec<u8>,
}

/// Resolves the segments that follow `tree/` (or `blob/`, `raw/`, `commits/`) in a URL,
/// already percent-decoded and split on `/`. The longest leading run of segments that names a
/// branch, a tag or a full 40-hex commit id wins, so a branch `feature/x` is found even when
/// a tag `feature` exists; for the same run a branch beats a tag, which beats a commit id.
/// Names git would refuse for a branch (`a..b`, `x.lock`, empty segments, ...) and names
/// longer than libgit2 accepts (1024 bytes) never match.
/// `NotFound` when no prefix names a commit.
pub(crate) fn resolve_ref_path<S: AsRef<[u8]>>(
    repo: &Repository,
    segments: &[S],
) -> Result<RefPath> {
    // One string holding every segment, so each candidate is a slice of it: a URL with
    // thousands of segments costs one lookup per segment, not a new string each time. A ref
    // name is UTF-8, so the candidates stop before the first segment that is not.
    let mut joined = String::new();
    let mut ends = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        let Ok(seg) = std::str::from_utf8(seg.as_ref()) else {
            break;
        };
        if i > 0 {
            joined.push('/');
        }
        joined.push_str(seg);
        ends.push(joined.len());
    }
    for (k, end) in ends.iter().enumerate().rev() {
        if *end >= REFNAME_MAX {
            continue;
        }
        if let Some(rev) = lookup_ref(repo, &joined[..*end])? {
            let path = segments[k + 1..]
                .iter()
                .map(AsRef::as_ref)
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(&b'/');
            return Ok(RefPath { rev, path });
        }
    }
    Err(BrowseError::NotFound)
}

/// Resolves one whole ref name (`commits/{ref}`, `archive/{ref}.tar.gz`): a branch, else a
/// tag, else a full 40-hex commit id. `NotFound` otherwise.
pub(crate) fn resolve_ref(repo: &Repository, name: &str) -> Result<ResolvedRef> {
    lookup_ref(repo, name)?.ok_or(BrowseError::NotFound)
}

/// The most steps `~N` or `^N` may ask for in `commit/{rev}`.
pub(crate) const REV_STEPS_MAX: u32 = 1000;

/// The shortest commit id `commit/{rev}` takes: as long as git's own short ids.
pub(crate) const SHORT_ID_MIN: usize = 7;

/// Resolves what `commit/{rev}` names: a branch or tag name, or a commit id of at least
/// [`SHORT_ID_MIN`] hex digits naming exactly one commit; either may be followed by one `~N`
/// (the Nth first-parent ancestor) or `^N` (the Nth parent, `^0` the commit itself), N at most
/// [`REV_STEPS_MAX`], `~` and `^` alone meaning 1. Nothing that searches history or the reflogs
/// (`:/text`, `^{/re}`, `@{...}`) is taken. `NotFound` for anything else, an ambiguous id too.
pub(crate) fn resolve_commit_rev(repo: &Repository, rev: &str) -> Result<Oid> {
    let (base, step) = split_step(rev).ok_or(BrowseError::NotFound)?;
    let start = match lookup_ref(repo, base)? {
        Some(r) => r.commit,
        None => {
            if !(SHORT_ID_MIN..=40).contains(&base.len())
                || !base.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(BrowseError::NotFound);
            }
            repo.find_commit_by_prefix(base)
                .map(|c| c.id())
                .map_err(not_found_or_git)?
        }
    };
    let parent = |id: Oid, nth: usize| -> Result<Oid> {
        let c = repo.find_commit(id).map_err(not_found_or_git)?;
        if nth >= c.parent_count() {
            return Err(BrowseError::NotFound);
        }
        c.parent_id(nth).map_err(not_found_or_git)
    };
    match step {
        Step::None | Step::Parent(0) => Ok(start),
        Step::Parent(n) => parent(start, n as usize - 1),
        Step::Ancestor(n) => (0..n).try_fold(start, |id, _| parent(id, 0)),
    }
}

/// The one `~N` / `^N` a `commit/{rev}` may end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    None,
    Ancestor(u32),
    Parent(u32),
}

/// Splits `rev` into what it starts from and its step; `None` when the step is not one of ours.
/// A ref name holds neither `~` nor `^`, so the last of them starts the step.
fn split_step(rev: &str) -> Option<(&str, Step)> {
    let Some(at) = rev.rfind(['~', '^']) else {
        return Some((rev, Step::None));
    };
    let (base, op) = rev.split_at(at);
    let digits = &op[1..];
    let n = if digits.is_empty() {
        1
    } else if digits.len() <= 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u32>().ok()?
    } else {
        return None;
    };
    if base.is_empty() || n > REV_STEPS_MAX {
        return None;
    }
    Some((
        base,
        if op.starts_with('~') {
            Step::Ancestor(n)
        } else {
            Step::Parent(n)
        },
    ))
}

fn lookup_ref(repo: &Repository, name: &str) -> Result<Option<ResolvedRef>> {
    // `is_valid_name` panics on a NUL byte (it builds a C string); no ref can hold one anyway.
    // Empty segments are refused here because libgit2 would fold `a//b` into `a/b`, and a
    // URL should name a ref in one way only.
    if name.contains('\0') || name.split('/').any(str::is_empty) {
        return Ok(None);
    }
    for (prefix, kind) in [
        ("refs/heads/", RefKind::Branch),
        ("refs/tags/", RefKind::Tag),
    ] {
        let full = format!("{prefix}{name}");
        if full.len() >= REFNAME_MAX || !Reference::is_valid_name(&full) {
            return Ok(None);
        }
        let reference = match repo.find_reference(&full) {
            Ok(r) => r,
            Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => continue,
            Err(e) => return Err(e.into()),
        };
        // A tag of a tree or a blob names no commit: it cannot be browsed as one. An object
        // that cannot be read (missing, corrupt) is damage, not a name the user got wrong.
        match reference.peel_to_commit() {
            Ok(commit) => {
                return Ok(Some(ResolvedRef {
                    commit: commit.id(),
                    kind,
                    name: name.to_string(),
                }))
            }
            Err(e) if matches!(e.code(), ErrorCode::Peel | ErrorCode::InvalidSpec) => {}
            Err(e) => {
                return Err(BrowseError::Git(format!(
                    "{full} cannot be read: {}",
                    e.message()
                )))
            }
        }
    }
    if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let Ok(id) = Oid::from_str(name) else {
            return Ok(None);
        };
        let object = match repo.find_object(id, None) {
            Ok(o) => o,
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if matches!(object.kind(), Some(ObjectType::Commit | ObjectType::Tag)) {
            if let Ok(commit) = object.peel_to_commit() {
                return Ok(Some(ResolvedRef {
                    commit: commit.id(),
                    kind: RefKind::Commit,
                    name: name.to_string(),
                }));
            }
        }
    }
    Ok(None)
}

/// The branch `HEAD` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultBranch {
    /// Without `refs/heads/`.
    pub(crate) name: String,
    /// `None` while the branch is unborn (an empty repository, or `HEAD` naming a branch that
    /// was never pushed).
    pub(crate) commit: Option<Oid>,
}

/// The branch `HEAD` points at, born or not. `None` when `HEAD` is missing, detached, or
/// names something outside `refs/heads/`.
pub(crate) fn default_branch(repo: &Repository) -> Result<Option<DefaultBranch>> {
    let head = match repo.find_reference("HEAD") {
        Ok(h) => h,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(target) = head.symbolic_target_bytes() else {
        return Ok(None);
    };
    let Ok(target) = std::str::from_utf8(target) else {
        return Ok(None);
    };
    let Some(name) = target.strip_prefix("refs/heads/") else {
        return Ok(None);
    };
    let commit = match repo.find_reference(target) {
        Ok(r) => r.peel_to_commit().ok().map(|c| c.id()),
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Some(DefaultBranch {
        name: name.to_string(),
        commit,
    }))
}

/// One branch for the branches page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BranchInfo {
    /// Without `refs/heads/` (lossy if the ref name is not UTF-8).
    pub(crate) name: String,
    /// What a URL names it by: `name`, or the commit's full id when the name is not UTF-8.
    pub(crate) rev: String,
    pub(crate) is_default: bool,
    pub(crate) commit: CommitSummary,
}

/// One page of a list of refs, and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefPage<T> {
    pub(crate) items: Vec<T>,
    pub(crate) total: usize,
}

/// A branch's or tag's place in its list: what it is sorted by, its name and its target.
type Dated = (i64, Vec<u8>, Oid);

/// The branches that point at a commit, most recently committed to first, then by name; made
/// once per snapshot of the refs (it reads every branch's commit).
fn branches_by_date(repo: &Repository, snap: &RefSnapshot) -> Result<std::sync::Arc<Vec<Dated>>> {
    snap.derived("branches-by-date", |s| -> Result<Vec<Dated>> {
        let mut out = Vec::new();
        for r in s.under(b"refs/heads/") {
            let Some(commit) = peel_commit(repo, r.target)? else {
                continue;
            };
            out.push((commit.time().seconds(), r.name.clone(), r.target));
        }
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(out)
    })
}

/// The commit `id` is or leads to (through tags), if any; an object that is missing or of
/// another kind is none.
fn peel_commit(repo: &Repository, id: Oid) -> Result<Option<Commit<'_>>> {
    if let Ok(c) = repo.find_commit(id) {
        return Ok(Some(c));
    }
    match repo.find_object(id, None) {
        Ok(o) => Ok(o.peel_to_commit().ok()),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// One page of the branches that point at a commit: the default branch first, then the most
/// recently committed to, then by name. The cost is one read of every branch's commit once per
/// change of the refs, then the shown page's commits.
pub(crate) fn branches(
    repo: &Repository,
    snap: &RefSnapshot,
    skip: usize,
    limit: usize,
) -> Result<RefPage<BranchInfo>> {
    let default = default_branch(repo)?.map(|d| format!("refs/heads/{}", d.name).into_bytes());
    let order = branches_by_date(repo, snap)?;
    let first = order
        .iter()
        .position(|(_, name, _)| Some(name) == default.as_ref());
    let listed = first.map(|i| &order[i]).into_iter().chain(
        order
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != first)
            .map(|(_, d)| d),
    );
    let mut items = Vec::new();
    for (_, name, target) in listed.skip(skip).take(limit) {
        let Some(commit) = peel_commit(repo, *target)? else {
            continue;
        };
        items.push(branch_info(name, &commit, default.as_deref()));
    }
    Ok(RefPage {
        items,
        total: order.len(),
    })
}

fn branch_info(full: &[u8], commit: &Commit<'_>, default: Option<&[u8]>) -> BranchInfo {
    let raw = full.strip_prefix(b"refs/heads/").unwrap_or(full);
    let utf8 = std::str::from_utf8(raw).is_ok();
    let name = lossy(raw);
    BranchInfo {
        is_default: default == Some(full),
        rev: if utf8 {
            name.clone()
        } else {
            commit.id().to_string()
        },
        name,
        commit: CommitSummary::of(commit),
    }
}

/// A ref for a selector: its name for display and what a URL names it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefLink {
    pub(crate) name: String,
    pub(crate) rev: String,
}

fn ref_link(full: &[u8], prefix: &[u8], target: Oid) -> RefLink {
    let raw = full.strip_prefix(prefix).unwrap_or(full);
    let name = lossy(raw);
    RefLink {
        rev: if std::str::from_utf8(raw).is_ok() {
            name.clone()
        } else {
            target.to_string()
        },
        name,
    }
}

/// A few branches for a selector, without reading any commit: the default branch (when it
/// exists), then the others by name, `limit` in all; and how many branches there are.
pub(crate) fn some_branches(
    repo: &Repository,
    snap: &RefSnapshot,
    limit: usize,
) -> Result<RefPage<RefLink>> {
    let default = default_branch(repo)?.map(|d| format!("refs/heads/{}", d.name).into_bytes());
    let all = snap.under(b"refs/heads/");
    let first = all.iter().find(|r| Some(&r.name) == default.as_ref());
    let items = first
        .into_iter()
        .chain(all.iter().filter(|r| Some(&r.name) != default.as_ref()))
        .take(limit)
        .map(|r| ref_link(&r.name, b"refs/heads/", r.target))
        .collect();
    Ok(RefPage {
        items,
        total: all.len(),
    })
}

/// A few tags for a selector, without reading any object: the highest versions first (names
/// compared with their runs of digits as numbers, so `v1.10` comes before `v1.9`), `limit` of
/// them; and how many tags there are. The order is made once per snapshot of the refs.
pub(crate) fn some_tags(snap: &RefSnapshot, limit: usize) -> Result<RefPage<RefLink>> {
    let all = snap.under(b"refs/tags/");
    let order = snap.derived("tags-by-version", |s| -> Result<Vec<usize>> {
        let tags = s.under(b"refs/tags/");
        let mut order: Vec<usize> = (0..tags.len()).collect();
        order.sort_by(|&a, &b| version_cmp(&tags[b].name, &tags[a].name));
        Ok(order)
    })?;
    Ok(RefPage {
        items: order
            .iter()
            .take(limit)
            .map(|&i| ref_link(&all[i].name, b"refs/tags/", all[i].target))
            .collect(),
        total: all.len(),
    })
}

/// Compares names as versions: runs of ASCII digits by their value, everything else by byte.
fn version_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            // Leading zeros aside, a longer run is a larger number.
            let x = &a[si..i];
            let y = &b[sj..j];
            let x = &x[x.iter().position(|&c| c != b'0').unwrap_or(x.len())..];
            let y = &y[y.iter().position(|&c| c != b'0').unwrap_or(y.len())..];
            match x.len().cmp(&y.len()).then_with(|| x.cmp(y)) {
                Ordering::Equal => {}
                other => return other,
            }
        } else {
            match a[i].cmp(&b[j]) {
                Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
                other => return other,
            }
        }
    }
    (a.len() - i).cmp(&(b.len() - j)).then_with(|| a.cmp(b))
}

/// What an annotated tag adds to a lightweight one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagAnnotation {
    /// The tag object's id.
    pub(crate) id: Oid,
    /// Missing in some old tags.
    pub(crate) tagger: Option<Person>,
    pub(crate) message: String,
}

/// One tag for the tags page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TagInfo {
    /// Without `refs/tags/` (lossy if the ref name is not UTF-8).
    pub(crate) name: String,
    /// What a URL names it by: `name`, or the tagged object's full id when the name is not
    /// UTF-8.
    pub(crate) rev: String,
    /// The tagged object after peeling every tag object.
    pub(crate) target: Oid,
    /// The tagged commit; `None` when the tag names a tree or a blob.
    pub(crate) commit: Option<CommitSummary>,
    /// `None` for a lightweight tag.
    pub(crate) annotation: Option<TagAnnotation>,
    /// What the list is sorted by: the tagger's time, else the commit's, else 0.
    pub(crate) time: i64,
}

/// Every tag, newest first (by [`TagInfo::time`]), then by version; made once per snapshot of the
/// refs (it reads every tag). The target is the tag's own object, for a URL that names it.
fn tags_by_date(repo: &Repository, snap: &RefSnapshot) -> Result<std::sync::Arc<Vec<Dated>>> {
    snap.derived("tags-by-date", |s| -> Result<Vec<Dated>> {
        let mut out = Vec::new();
        for r in s.under(b"refs/tags/") {
            let Some(info) = tag_info(repo, &r.name, r.target)? else {
                continue;
            };
            out.push((info.time, r.name.clone(), r.target));
        }
        // Tags made at the same moment (or tagging the same commit) by version, highest first.
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| version_cmp(&b.1, &a.1)));
        Ok(out)
    })
}

/// What the tag `full` (`refs/tags/...`) pointing at `id` shows; `None` when its object is
/// missing or cannot be peeled.
fn tag_info(repo: &Repository, full: &[u8], id: Oid) -> Result<Option<TagInfo>> {
    let raw = full.strip_prefix(b"refs/tags/").unwrap_or(full);
    let utf8 = std::str::from_utf8(raw).is_ok();
    let name = lossy(raw);
    let object = match repo.find_object(id, None) {
        Ok(o) => o,
        Err(e) if e.code() == ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let annotation = object.as_tag().map(|tag| TagAnnotation {
        id: tag.id(),
        tagger: tag.tagger().map(|s| Person::from_signature(&s)),
        message: tag.message_bytes().map(lossy).unwrap_or_default(),
    });
    // `peel(Any)` follows tag objects to what they tag (but would take a commit to its tree,
    // so only tags are peeled).
    let target = if object.kind() == Some(ObjectType::Tag) {
        match object.peel(ObjectType::Any) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        }
    } else {
        object
    };
    let commit = target.as_commit().map(CommitSummary::of);
    let time = annotation
        .as_ref()
        .and_then(|a| a.tagger.as_ref().map(|t| t.time))
        .or(commit.as_ref().map(|c| c.committer_time))
        .unwrap_or(0);
    Ok(Some(TagInfo {
        rev: if utf8 {
            name.clone()
        } else {
            target.id().to_string()
        },
        name,
        target: target.id(),
        commit,
        annotation,
        time,
    }))
}

/// One page of the tags, newest first (by [`TagInfo::time`]), then by version. The cost is one
/// read of every tag once per change of the refs, then the shown page's.
pub(crate) fn tags(
    repo: &Repository,
    snap: &RefSnapshot,
    skip: usize,
    limit: usize,
) -> Result<RefPage<TagInfo>> {
    let order = tags_by_date(repo, snap)?;
    let mut items = Vec::new();
    for (_, name, target) in order.iter().skip(skip).take(limit) {
        if let Some(info) = tag_info(repo, name, *target)? {
            items.push(info);
        }
    }
    Ok(RefPage {
        items,
        total: order.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::*;

    /// `commit/{rev}` for a branch or tag name was a 404: refs, short ids and one `~N` / `^N`
    /// step are taken now, and nothing that searches history or the reflogs.
    #[test]
    fn commit_urls_take_ref_names_short_ids_and_one_step() {
        let f = Fixture::new();
        f.write("a.txt", "1\n");
        let first = f.commit("first");
        f.write("a.txt", "2\n");
        let second = f.commit("second");
        f.git(&["checkout", "-q", "-b", "feature/x", &first.to_string()]);
        f.write("b.txt", "b\n");
        let side = f.commit("side");
        f.git(&["checkout", "-q", "main"]);
        f.git(&["merge", "-q", "--no-ff", "-m", "merge", "feature/x"]);
        let merge = f.rev("main");
        f.git(&["tag", "-a", "-m", "release", "v1", &second.to_string()]);
        let repo = f.repo();
        let rev = |r: &str| resolve_commit_rev(&repo, r);
        assert_eq!(rev("main"), Ok(merge));
        assert_eq!(rev("feature/x"), Ok(side));
        assert_eq!(rev("v1"), Ok(second));
        assert_eq!(rev("main~1"), Ok(second));
        assert_eq!(rev("main~"), Ok(second));
        assert_eq!(rev("main~2"), Ok(first));
        assert_eq!(rev("main^"), Ok(second));
        assert_eq!(rev("main^2"), Ok(side));
        assert_eq!(rev("main^0"), Ok(merge));
        assert_eq!(rev("v1~1"), Ok(first));
        let hex = merge.to_string();
        assert_eq!(rev(&format!("{}~2", &hex[..7])), Ok(first));
        for refused in [
            "main~3",
            "main^3",
            "main~1001",
            "main~99999",
            "main~1~1",
            "main~-1",
            "main~x",
            "~1",
            "main@{0}",
            "main@{1}",
            "@{-1}",
            ":/first",
            "main^{/first}",
            "main^{commit}",
            "HEAD",
            "main:a.txt",
            "main..feature/x",
            "",
        ] {
            assert_eq!(rev(refused), Err(BrowseError::NotFound), "{refused}");
        }
        assert_eq!(
            split_step("main~1000"),
            Some(("main", Step::Ancestor(1000)))
        );
    }

    #[test]
    fn longest_ref_wins_and_branches_beat_tags() {
        let f = Fixture::new();
        f.write("dir/a.txt", "a\n");
        let first = f.commit("first");
        f.git(&["tag", "feature"]); // a tag named like the branch's first segment
        f.git(&["tag", "-a", "-m", "release one", "v1"]);
        f.git(&["checkout", "-q", "-b", "feature/x"]);
        f.write("dir/b.txt", "b\n");
        let second = f.commit("second");
        f.git(&["branch", "v1"]); // same name as a tag, another commit
        let repo = f.repo();

        let r = resolve_ref_path(&repo, &segs("feature/x/dir/b.txt")).unwrap();
        assert_eq!(r.rev.kind, RefKind::Branch);
        assert_eq!(r.rev.name, "feature/x");
        assert_eq!(r.rev.commit, second);
        assert_eq!(r.path, b"dir/b.txt");

        let r = resolve_ref_path(&repo, &segs("feature/dir")).unwrap();
        assert_eq!((r.rev.kind, r.rev.name.as_str()), (RefKind::Tag, "feature"));
        assert_eq!((r.rev.commit, r.path.as_slice()), (first, &b"dir"[..]));

        // A branch and a tag of the same length: the branch.
        let r = resolve_ref_path(&repo, &segs("v1")).unwrap();
        assert_eq!((r.rev.kind, r.rev.commit), (RefKind::Branch, second));
        let tag = resolve_ref(&repo, "v1").unwrap();
        assert_eq!(tag.kind, RefKind::Branch);

        // An annotated tag is peeled to its commit.
        f.git(&["branch", "-D", "v1"]);
        let r = resolve_ref_path(&repo, &segs("v1/dir/a.txt")).unwrap();
        assert_eq!((r.rev.kind, r.rev.commit), (RefKind::Tag, first));
        assert_eq!(r.path, b"dir/a.txt");

        // A full commit id, and the root path with trailing and doubled slashes.
        let hex = first.to_string();
        let r = resolve_ref_path(&repo, &segs(&format!("{hex}/"))).unwrap();
        assert_eq!((r.rev.kind, r.rev.commit), (RefKind::Commit, first));
        assert_eq!(r.path, b"");
        let r = resolve_ref_path(&repo, &segs("main//dir//")).unwrap();
        assert_eq!(
            (r.rev.name.as_str(), r.path.as_slice()),
            ("main", &b"dir"[..])
        );

        // A short id is not a ref in tree URLs, but is a commit in commit URLs.
        assert_eq!(
            resolve_ref_path(&repo, &segs(&hex[..7])),
            Err(BrowseError::NotFound)
        );
        assert_eq!(resolve_commit_rev(&repo, &hex[..7]), Ok(first));
        assert_eq!(resolve_commit_rev(&repo, &hex), Ok(first));
        assert_eq!(
            resolve_commit_rev(&repo, "zzzzzzz"),
            Err(BrowseError::NotFound)
        );
        assert_eq!(resolve_commit_rev(&repo, "abc"), Err(BrowseError::NotFound));
        assert_eq!(
            resolve_commit_rev(&repo, &hex[..6]),
            Err(BrowseError::NotFound)
        );
        assert_eq!(
            resolve_commit_rev(&repo, &"0".repeat(40)),
            Err(BrowseError::NotFound)
        );
        // A tree's id is no commit.
        let tree = f.rev("HEAD^{tree}").to_string();
        assert_eq!(resolve_ref(&repo, &tree), Err(BrowseError::NotFound));
        assert_eq!(resolve_commit_rev(&repo, &tree), Err(BrowseError::NotFound));
    }

    #[test]
    fn a_branch_and_a_folder_of_branches_cannot_both_exist() {
        // git keeps refs as files, so `feature` and `feature/x` cannot both be branches: the
        // URL `tree/feature/x` is never ambiguous between two branches.
        let f = Fixture::new();
        f.commit("c");
        f.git(&["branch", "feature"]);
        let out = Command::new("git")
            .args(["branch", "feature/x"])
            .current_dir(f.path())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let repo = f.repo();
        let r = resolve_ref_path(&repo, &segs("feature/x")).unwrap();
        assert_eq!(
            (r.rev.name.as_str(), r.path.as_slice()),
            ("feature", &b"x"[..])
        );
    }

    #[test]
    fn names_git_refuses_are_not_found() {
        let f = Fixture::new();
        f.commit("c");
        f.git(&["branch", "feat/y"]);
        let repo = f.repo();
        assert_eq!(resolve_ref(&repo, "feat/y").unwrap().kind, RefKind::Branch);
        // A trailing slash is a ref name with an empty segment, but a tree URL's empty path.
        assert_eq!(resolve_ref(&repo, "feat/y/"), Err(BrowseError::NotFound));
        assert_eq!(resolve_ref_path(&repo, &segs("feat/y/")).unwrap().path, b"");
        for bad in [
            "feat//y",
            "/feat/y",
            "",
            "..",
            "a..b",
            "main.lock",
            ".main",
            "ma in",
            "ma\0in",
            "main@{0}",
            "-",
            "ma~1",
            "ma^",
            "ma:n",
            "ma?n",
            "ma*",
            "ma[n",
            "HEAD/../main",
            "nope",
        ] {
            assert_eq!(
                resolve_ref(&repo, bad),
                Err(BrowseError::NotFound),
                "{bad:?}"
            );
            assert_eq!(
                resolve_ref_path(&repo, &segs(bad)),
                Err(BrowseError::NotFound),
                "{bad:?}"
            );
        }
        assert_eq!(
            resolve_ref_path::<&str>(&repo, &[]),
            Err(BrowseError::NotFound)
        );
        // Thousands of segments: one lookup each, then NotFound.
        let long = vec!["x"; 4000];
        assert_eq!(resolve_ref_path(&repo, &long), Err(BrowseError::NotFound));
    }

    #[test]
    fn default_branch_born_unborn_and_detached() {
        let f = Fixture::new();
        let repo = f.repo();
        assert_eq!(
            default_branch(&repo).unwrap(),
            Some(DefaultBranch {
                name: "main".into(),
                commit: None
            })
        );
        let c = f.commit("c");
        assert_eq!(default_branch(&repo).unwrap().unwrap().commit, Some(c));
        f.git(&["symbolic-ref", "HEAD", "refs/heads/trunk"]);
        assert_eq!(
            default_branch(&repo).unwrap(),
            Some(DefaultBranch {
                name: "trunk".into(),
                commit: None
            })
        );
        f.git(&["checkout", "-q", "--detach", "main"]);
        assert_eq!(default_branch(&repo).unwrap(), None);
    }

    #[test]
    fn empty_repository() {
        let f = Fixture::new();
        let repo = f.repo();
        assert_eq!(resolve_ref(&repo, "main"), Err(BrowseError::NotFound));
        assert_eq!(
            resolve_ref_path(&repo, &segs("main/README.md")),
            Err(BrowseError::NotFound)
        );
        let snap = f.refs();
        assert_eq!(branches(&repo, &snap, 0, 100).unwrap().items, vec![]);
        assert_eq!(tags(&repo, &snap, 0, 100).unwrap().items, vec![]);
        let missing = Oid::from_str(&"1".repeat(40)).unwrap();
        assert_eq!(list_tree(&repo, missing, ""), Err(BrowseError::NotFound));
        assert_eq!(log(&repo, missing, "", 0, 10), Err(BrowseError::NotFound));
        assert_eq!(
            commit_diff(&repo, missing, &DiffLimits::default()),
            Err(BrowseError::NotFound)
        );
    }

    #[test]
    fn branches_default_first_then_newest() {
        let f = Fixture::new();
        let c1 = f.commit("one");
        f.git(&["branch", "old"]);
        f.git(&["checkout", "-q", "-b", "newer"]);
        let c2 = f.commit("two");
        f.git(&["checkout", "-q", "-b", "newest"]);
        let c3 = f.commit("three");
        f.git(&["branch", "also-newest"]);
        f.git(&["checkout", "-q", "main"]);
        let repo = f.repo();
        let snap = f.refs();
        let page = branches(&repo, &snap, 0, 100).unwrap();
        assert_eq!(page.total, 5);
        let list = page.items;
        let names: Vec<_> = list.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["main", "also-newest", "newest", "newer", "old"]);
        // Pages of two.
        let names = |skip| -> Vec<String> {
            branches(&repo, &snap, skip, 2)
                .unwrap()
                .items
                .into_iter()
                .map(|b| b.name)
                .collect()
        };
        assert_eq!(names(0), ["main", "also-newest"]);
        assert_eq!(names(2), ["newest", "newer"]);
        assert_eq!(names(4), ["old"]);
        assert!(names(6).is_empty());
        // The selector's few: the default branch, then by name.
        let some = some_branches(&repo, &snap, 3).unwrap();
        assert_eq!(some.total, 5);
        let names: Vec<_> = some.items.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["main", "also-newest", "newer"]);
        assert!(list[0].is_default && !list[1].is_default);
        assert_eq!(list[0].commit.id, c1);
        assert_eq!(list[1].commit.id, c3);
        assert_eq!(list[3].commit.id, c2);
        assert_eq!(list[3].commit.summary, "two");
        assert_eq!(list[3].commit.committer_time, EPOCH + 120);
    }

    #[test]
    fn tags_lightweight_and_annotated_newest_first() {
        let f = Fixture::new();
        let c1 = f.commit("one");
        f.git(&["tag", "light-old"]);
        let c2 = f.commit("two");
        f.clock.set(f.clock.get() + 600);
        f.git(&[
            "tag",
            "-a",
            "-m",
            "Release 1\n\nNotes.",
            "v1",
            &c1.to_string(),
        ]);
        f.git(&["tag", "light-new"]);
        let blob = f.git_output(&["hash-object", "-w", "--stdin"]);
        f.git(&["tag", "blob-tag", &blob]);
        let repo = f.repo();
        let snap = f.refs();
        let list = tags(&repo, &snap, 0, 100).unwrap().items;
        let names: Vec<_> = list.iter().map(|t| t.name.as_str()).collect();
        let some = some_tags(&snap, 2).unwrap();
        assert_eq!(some.total, 4);
        assert_eq!(some.items[0].name, "v1");
        assert_eq!(some.items[1].name, "light-old");
        // v1 was made last (tagger time) though it tags the oldest commit.
        assert_eq!(names, ["v1", "light-new", "light-old", "blob-tag"]);
        let v1 = &list[0];
        assert_eq!(v1.target, c1);
        assert_eq!(v1.commit.as_ref().unwrap().summary, "one");
        let a = v1.annotation.as_ref().unwrap();
        assert_eq!(a.message, "Release 1\n\nNotes.\n");
        let tagger = a.tagger.as_ref().unwrap();
        assert_eq!(tagger.name, "Cid Committer");
        assert_eq!(tagger.time, EPOCH + 720);
        assert_eq!(tagger.offset_minutes, 60);
        assert_eq!(v1.time, EPOCH + 720);
        assert_eq!(list[1].target, c2);
        assert!(list[1].annotation.is_none());
        assert_eq!(list[1].time, EPOCH + 120);
        assert_eq!(list[3].commit, None);
        assert_eq!(list[3].time, 0);
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        let mut v: Vec<&[u8]> = vec![
            b"v1.9",
            b"v1.10",
            b"v1.2",
            b"v2.0-rc1",
            b"v2.0",
            b"release",
            b"v01.11",
            b"v10",
        ];
        v.sort_by(|a, b| version_cmp(b, a));
        let v: Vec<&str> = v.iter().map(|s| std::str::from_utf8(s).unwrap()).collect();
        assert_eq!(
            v,
            ["v10", "v2.0-rc1", "v2.0", "v01.11", "v1.10", "v1.9", "v1.2", "release"]
        );
    }
}
