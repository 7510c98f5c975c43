//! Browsing a repository as plain data: refs named in URLs, trees, blobs, history, one commit
//! with its diff, branch and tag lists, and the README. Pure functions over a `git2::Repository`
//! that return owned structs; the pages turn them into HTML and never call git2 themselves.
//!
//! Paths inside a repository are bytes (`impl AsRef<[u8]>`, so `&str` works too) because git
//! file names need not be UTF-8. A path is split on `/` and empty components are ignored, so
//! `""` and `"/"` are the root and `"a//b/"` is `"a/b"`. Every limit named in DESIGN.md's
//! "Limits" that applies here is a parameter with the documented default as a constant.
#![allow(dead_code)] // used by the repository pages (issue 4)

use std::cell::RefCell;
use std::fmt;

use git2::{
    Commit, Delta, DiffFindOptions, DiffOptions, ErrorCode, ObjectType, Oid, Reference, Repository,
    Signature, Tree,
};

use super::refs::RefSnapshot;

/// Bytes of a blob shown on a blob page (DESIGN.md "blob shown").
pub(crate) const BLOB_SHOWN_LIMIT: usize = 1 << 20;
/// Bytes of a README read for rendering (DESIGN.md "README rendered").
pub(crate) const README_LIMIT: usize = 512 << 10;
/// Commits on one page of history.
pub(crate) const LOG_PAGE_SIZE: usize = 50;
/// Like git, a blob with a NUL byte in its first 8000 bytes is binary.
const BINARY_PROBE: usize = 8000;
/// libgit2 refuses longer ref names (`GIT_REFNAME_MAX`), so longer candidates are skipped.
const REFNAME_MAX: usize = 1024;
/// Hex digits of a commit id shown for display (links always use the full id).
const SHORT_ID_LEN: usize = 7;

const MODE_TYPE_MASK: i32 = 0o170000;
const MODE_TREE: i32 = 0o040000;
const MODE_BLOB: i32 = 0o100000;
const MODE_SYMLINK: i32 = 0o120000;
const MODE_GITLINK: i32 = 0o160000;

/// Why browsing failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BrowseError {
    /// No such ref, commit or path, or the path names the wrong kind of object (a file where a
    /// folder was asked for, or the other way round): the page answers 404.
    NotFound,
    /// The repository could not be read (missing objects, I/O, corruption): the page answers 500
    /// and logs this text, which is never shown to the user.
    Git(String),
}

impl fmt::Display for BrowseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrowseError::NotFound => f.write_str("not found"),
            BrowseError::Git(msg) => write!(f, "reading the repository failed: {msg}"),
        }
    }
}

impl std::error::Error for BrowseError {}

impl From<git2::Error> for BrowseError {
    /// A libgit2 error while reading what a ref or tree says exists means the repository is
    /// damaged, not that the user asked for something missing; user input is mapped to
    /// [`BrowseError::NotFound`] where it is looked up.
    fn from(e: git2::Error) -> BrowseError {
        BrowseError::Git(e.message().to_string())
    }
}

type Result<T, E = BrowseError> = std::result::Result<T, E>;

/// Maps "no such object/ref" (and its cousins for user-typed names) to `NotFound`.
fn not_found_or_git(e: git2::Error) -> BrowseError {
    match e.code() {
        ErrorCode::NotFound | ErrorCode::Ambiguous | ErrorCode::InvalidSpec | ErrorCode::Peel => {
            BrowseError::NotFound
        }
        _ => BrowseError::from(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Shared structs
// ---------------------------------------------------------------------------------------------

/// An author, committer or tagger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Person {
    pub(crate) name: String,
    pub(crate) email: String,
    /// Seconds since the Unix epoch.
    pub(crate) time: i64,
    /// The person's offset from UTC, in minutes (`+0100` is 60).
    pub(crate) offset_minutes: i32,
}

impl Person {
    fn from_signature(sig: &Signature<'_>) -> Person {
        let when = sig.when();
        Person {
            name: lossy(sig.name_bytes()),
            email: lossy(sig.email_bytes()),
            time: when.seconds(),
            offset_minutes: when.offset_minutes(),
        }
    }
}

/// One commit as a line of history (log entries, branch and tag targets, a tree's last change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitSummary {
    pub(crate) id: Oid,
    /// The first [`SHORT_ID_LEN`] hex digits, for display only.
    pub(crate) short_id: String,
    /// The first paragraph of the message on one line.
    pub(crate) summary: String,
    pub(crate) author: Person,
    /// When the commit was made (what "latest" means for branches).
    pub(crate) committer_time: i64,
    pub(crate) parents: Vec<Oid>,
}

impl CommitSummary {
    fn of(commit: &Commit<'_>) -> CommitSummary {
        CommitSummary {
            id: commit.id(),
            short_id: short_id(commit.id()),
            summary: commit.summary_bytes().map(lossy).unwrap_or_default(),
            author: Person::from_signature(&commit.author()),
            committer_time: commit.committer().when().seconds(),
            parents: commit.parent_ids().collect(),
        }
    }
}

fn short_id(id: Oid) -> String {
    let mut hex = id.to_string();
    hex.truncate(SHORT_ID_LEN);
    hex
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------------
// Refs
// ---------------------------------------------------------------------------------------------

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
        // A tag of a tree or a blob names no commit: it cannot be browsed as one.
        if let Ok(commit) = reference.peel_to_commit() {
            return Ok(Some(ResolvedRef {
                commit: commit.id(),
                kind,
                name: name.to_string(),
            }));
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

// ---------------------------------------------------------------------------------------------
// Trees and blobs
// ---------------------------------------------------------------------------------------------

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

fn find_commit<'r>(repo: &'r Repository, id: Oid) -> Result<Commit<'r>> {
    repo.find_commit(id).map_err(not_found_or_git)
}

/// A path's components, empty ones (from leading, trailing or doubled slashes) dropped.
fn components(path: &[u8]) -> Vec<&[u8]> {
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
fn child(repo: &Repository, tree: Option<(Oid, i32)>, comp: &[u8]) -> Result<Option<(Oid, i32)>> {
    let Some((id, mode)) = tree else {
        return Ok(None);
    };
    if mode & MODE_TYPE_MASK != MODE_TREE {
        return Ok(None);
    }
    let tree = repo.find_tree(id)?;
    Ok(tree.get_name_bytes(comp).map(|e| (e.id(), e.filemode())))
}

// ---------------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------------

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
            // A parent a shallow repository does not have ends that line of history.
            let time = match repo.find_commit(parent) {
                Ok(p) => p.time().seconds(),
                Err(e) if e.code() == git2::ErrorCode::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            self.met += 1;
            self.queue.push((time, std::cmp::Reverse(self.met), parent));
        }
        Ok(Some(commit))
    }
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

// ---------------------------------------------------------------------------------------------
// One commit and its diff
// ---------------------------------------------------------------------------------------------

/// How much of a diff is shown (DESIGN.md "Limits").
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
        repo.diff_tree_to_tree(Some(&new_tree), Some(&new_tree), Some(&mut opts))?
    } else {
        repo.diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), Some(&mut opts))?
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
    let view = CommitView {
        id: commit.id(),
        short_id: short_id(commit.id()),
        summary: commit.summary_bytes().map(lossy).unwrap_or_default(),
        message: lossy(commit.message_bytes()),
        author: Person::from_signature(&commit.author()),
        committer: Person::from_signature(&commit.committer()),
        parents: commit.parent_ids().collect(),
        files,
        additions,
        deletions,
        truncated,
    };
    Ok(view)
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
    use super::*;
    use std::cell::Cell;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A folder removed with its contents on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::SeqCst);
            let path =
                std::env::temp_dir().join(format!("forgelet-browse-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A repository with a work tree, built with the `git` command, isolated from the host's
    /// configuration; every commit is one minute after the previous one.
    struct Fixture {
        dir: TempDir,
        clock: Cell<i64>,
    }

    const EPOCH: i64 = 1_700_000_000;

    impl Fixture {
        fn new() -> Fixture {
            let f = Fixture {
                dir: TempDir::new(),
                clock: Cell::new(EPOCH),
            };
            f.git(&["init", "-q", "-b", "main", "."]);
            f
        }

        fn path(&self) -> &Path {
            &self.dir.0
        }

        fn git_output(&self, args: &[&str]) -> String {
            let date = format!("@{} +0100", self.clock.get());
            let out = Command::new("git")
                .args(args)
                .current_dir(self.path())
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_AUTHOR_NAME", "Ann Author")
                .env("GIT_AUTHOR_EMAIL", "ann@example.org")
                .env("GIT_COMMITTER_NAME", "Cid Committer")
                .env("GIT_COMMITTER_EMAIL", "cid@example.org")
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        }

        fn git(&self, args: &[&str]) {
            self.git_output(args);
        }

        fn write(&self, path: impl AsRef<[u8]>, content: impl AsRef<[u8]>) {
            let path = self.path().join(std::ffi::OsStr::from_bytes(path.as_ref()));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }

        /// Stages everything and commits it one minute later; returns the new commit's id.
        fn commit(&self, message: &str) -> Oid {
            self.git(&["add", "-A"]);
            self.commit_staged(message)
        }

        /// Commits the index as it is, one minute later.
        fn commit_staged(&self, message: &str) -> Oid {
            self.clock.set(self.clock.get() + 60);
            self.git(&["commit", "-q", "--allow-empty", "-m", message]);
            self.head()
        }

        fn head(&self) -> Oid {
            self.rev("HEAD")
        }

        fn rev(&self, rev: &str) -> Oid {
            Oid::from_str(&self.git_output(&["rev-parse", rev])).unwrap()
        }

        fn repo(&self) -> Repository {
            Repository::open(self.path()).unwrap()
        }

        /// The refs as they are now.
        fn refs(&self) -> std::sync::Arc<RefSnapshot> {
            crate::git::refs::snapshot(&self.path().join(".git")).unwrap()
        }
    }

    fn make_executable(path: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn segs(url: &str) -> Vec<&str> {
        url.split('/').collect()
    }

    // --- refs -----------------------------------------------------------------------------

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

    // --- branches and tags ----------------------------------------------------------------

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

    // --- trees, blobs, README -------------------------------------------------------------

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

    // --- history --------------------------------------------------------------------------

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

    // --- one commit's diff ----------------------------------------------------------------

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

    #[test]
    fn display_of_errors() {
        assert_eq!(BrowseError::NotFound.to_string(), "not found");
        assert_eq!(
            BrowseError::Git("bad object".into()).to_string(),
            "reading the repository failed: bad object"
        );
    }
}
