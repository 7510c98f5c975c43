//! `GET commit/{rev}` (`commit.html`): one commit, its message and its diff, cut at the limits a
//! page shows. Each hunk's lines are highlighted by the file's language, the old side (context
//! and removed lines) and the new side (context and added lines) each with the grammar's state
//! carried through the hunk: what is highlighted is what is shown, never the whole file.

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::commits::commit_url;
use super::repo_head::{git_err, head, open, Crumb};
use super::{PageCall, PageCtx};
use crate::error::Result;
use crate::git::browse::{self, DiffCut, DiffLimits, FileDiff, FileStatus, LineKind};
use crate::git::RepoDir;
use crate::markup::highlight::{self, Highlighter, Language};
use crate::markup::TrustedHtml;
use crate::request::Request;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::{stamp, Stamp};
use crate::urls::browse_url;

pub(crate) struct FileView {
    pub(crate) status: &'static str,
    pub(crate) path: String,
    pub(crate) old_path: String,
    pub(crate) additions: usize,
    pub(crate) deletions: usize,
    pub(crate) binary: bool,
    pub(crate) too_large: bool,
    pub(crate) complete: bool,
    pub(crate) counted: bool,
    pub(crate) lines: Vec<DiffRow>,
}

/// One row of a file's diff: a hunk's header or one of its lines.
pub(crate) struct DiffRow {
    /// The row's CSS class: `hunk`, `add`, `del`, `ctx` or `note`.
    pub(crate) class: &'static str,
    pub(crate) old: String,
    pub(crate) new: String,
    /// `+`, `-`, a space, or `\` (before "No newline at end of file"); none for a header.
    pub(crate) origin: String,
    /// The text, plain.
    pub(crate) text: String,
    /// The text highlighted, when the file's language is known.
    pub(crate) html: Option<TrustedHtml>,
}

/// The rows of one hunk: its header, then its lines, highlighted as `language` when known.
fn hunk_rows(
    h: &browse::Hunk,
    language: Option<Language>,
    deadline: std::time::Instant,
    rows: &mut Vec<DiffRow>,
) {
    rows.push(DiffRow {
        class: "hunk",
        old: String::new(),
        new: String::new(),
        origin: String::new(),
        text: h.header.clone(),
        html: None,
    });
    let mut sides =
        language.map(|l| (Highlighter::new(l, deadline), Highlighter::new(l, deadline)));
    for l in &h.lines {
        let text = l.content.trim_end_matches('\n');
        let html = match (&mut sides, l.kind) {
            (Some((old, new)), LineKind::Context) => {
                old.line(text);
                Some(new.line(text))
            }
            (Some((_, new)), LineKind::Added) => Some(new.line(text)),
            (Some((old, _)), LineKind::Removed) => Some(old.line(text)),
            _ => None,
        };
        let n = |x: Option<u32>| x.map(|v| v.to_string()).unwrap_or_default();
        rows.push(DiffRow {
            class: match l.kind {
                LineKind::Added => "add",
                LineKind::Removed => "del",
                LineKind::Context => "ctx",
                LineKind::NoNewline => "note",
            },
            old: n(l.old_line),
            new: n(l.new_line),
            origin: l.kind.origin().to_string(),
            text: text.to_string(),
            html,
        });
    }
}

/// A symbolic link's mode: its "content" is a path, not code.
const SYMLINK_MODE: u32 = 0o120000;

#[derive(Template)]
#[template(path = "commit_body.html")]
struct CommitBody {
    id: String,
    summary: String,
    body: String,
    author: String,
    date: Stamp,
    parents: Vec<Crumb>,
    tree_url: String,
    files: Vec<FileView>,
    /// Every file the commit changed, listed or not.
    files_changed: usize,
    /// `files_changed` is a lower bound.
    more_files: bool,
    /// Empty when not every file was counted.
    additions: String,
    deletions: String,
    cut_note: String,
}

/// `GET commit/{rev}`: a commit id, a branch or a tag, with one `~N` or `^N` at most (see
/// `browse::resolve_commit_rev`).
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    commit_page(site, c.req, c.ctx, c.repo()?, &c.caps.rest.join("/")).map(Answer::from)
}

fn commit_page(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    repo: &RepoDir,
    id: &str,
) -> Result<Response> {
    let git = open(repo)?;
    let oid = browse::resolve_commit_rev(&git, id).map_err(git_err(repo))?;
    // A commit's page is the same for every name of it: kept once per commit id.
    let key = Key::new(site, "commit", repo).map(|k| k.part(oid.as_bytes()));
    let fragment = cache::fragment(key, || commit_body(site, &git, repo, oid))?;
    ctx.render_repo_page(site, req, head(site, ctx, repo), &fragment)
}

/// The commit's message and diff, and the page's title.
fn commit_body(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    oid: git2::Oid,
) -> Result<Fragment> {
    let c = browse::commit_diff(git, oid, &DiffLimits::default()).map_err(git_err(repo))?;
    let files = file_views(&c.files);
    let cut_note = cut_note("This commit", c.truncated, c.files.len());
    let body = c
        .message
        .split_once('\n')
        .map(|(_, rest)| rest.trim().to_string())
        .unwrap_or_default();
    let id_s = c.id.to_string();
    let title = format!(
        "{} \u{b7} {}/{}@{}",
        c.summary, repo.owner, repo.name, c.short_id
    );
    Fragment::render(
        title,
        &CommitBody {
            tree_url: browse_url(
                &site.config.base_path,
                &repo.owner,
                &repo.name,
                "tree",
                &id_s,
                "",
            ),
            id: id_s,
            summary: c.summary.clone(),
            body,
            author: format!("{} <{}>", c.author.name, c.author.email),
            date: stamp(c.author.time, c.author.offset_minutes),
            parents: c
                .parents
                .iter()
                .map(|p| {
                    let s = p.to_string();
                    Crumb {
                        name: s[..7.min(s.len())].to_string(),
                        url: commit_url(site, repo, &s),
                    }
                })
                .collect(),
            files,
            files_changed: c.truncated.map_or(c.files.len(), |t| t.files_total),
            more_files: c.truncated.is_some_and(|t| t.files_more),
            additions: c.additions.map(|n| n.to_string()).unwrap_or_default(),
            deletions: c.deletions.map(|n| n.to_string()).unwrap_or_default(),
            cut_note,
        },
    )
}

/// A diff's files as the page lists them (`diff.html`).
pub(crate) fn file_views(files: &[FileDiff]) -> Vec<FileView> {
    let deadline = std::time::Instant::now() + highlight::BUDGET;
    files
        .iter()
        .map(|f| FileView {
            status: match f.status {
                FileStatus::Added => "added",
                FileStatus::Deleted => "deleted",
                FileStatus::Modified => "modified",
                FileStatus::Renamed => "renamed",
                FileStatus::Copied => "copied",
                FileStatus::TypeChange => "type changed",
            },
            path: f
                .new_path
                .clone()
                .or_else(|| f.old_path.clone())
                .unwrap_or_default(),
            old_path: match (&f.old_path, &f.new_path) {
                (Some(o), Some(n)) if o != n => o.clone(),
                _ => String::new(),
            },
            additions: f.additions,
            deletions: f.deletions,
            binary: f.binary,
            too_large: f.too_large,
            complete: f.complete,
            counted: f.counted,
            lines: {
                let language = f
                    .new_path
                    .as_ref()
                    .or(f.old_path.as_ref())
                    .filter(|_| f.new_mode != SYMLINK_MODE && f.old_mode != SYMLINK_MODE)
                    .and_then(|p| highlight::language(p.as_bytes(), ""));
                let mut rows = Vec::new();
                for h in &f.hunks {
                    hunk_rows(h, language, deadline, &mut rows);
                }
                rows
            },
        })
        .collect()
}

/// What a cut diff's page says was left out; `what` is "This commit" or the like. Empty when
/// nothing was.
pub(crate) fn cut_note(what: &str, truncated: Option<DiffCut>, listed: usize) -> String {
    match truncated {
        Some(cut) if cut.files_more => format!(
            "{what} changes more than {} files; the first {} are shown. Clone the repository to see the rest.",
            cut.files_total,
            cut.files_total.min(listed)
        ),
        Some(cut) if cut.files_omitted > 0 => format!(
            "{what} changes {} files; the first {} are shown. Clone the repository to see the rest.",
            cut.files_total,
            cut.files_total - cut.files_omitted
        ),
        Some(_) => "This diff is too large to show whole; the changes past the limit are not shown. Clone the repository to see them.".to_string(),
        None => String::new(),
    }
}
