//! `GET blame/{ref}/{path}` (`blame_body.html`): each line of a file with the commit that last
//! changed it, its author and date, consecutive lines of one commit grouped, and a link to the
//! blame before that commit (at its parent, under the file's name there).
//!
//! git works it out: `git blame --incremental` on the commit the ref resolved to (libgit2's blame
//! is far slower on long histories), read as it prints, for at most `[limits] blame_deadline`
//! and a bounded amount of output. A blame cut short shows what git found, the other lines
//! plain, and says so. A whole blame is kept in the page cache (`pages::cache`, an LRU bounded
//! by bytes in memory, keyed by the commit id, the ref's name and the path): a commit's blame
//! never changes, the cache is already shared by the workers and bounded, and a restart only
//! costs one run of git per file asked again.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::commits::commit_url;
use super::repo_head::{crumbs, git_err, head_at, open, Crumb};
use super::PageCall;
use crate::error::{Error, Result};
use crate::git::browse::blame::{parse_incremental, Blame};
use crate::git::browse::{self};
use crate::markup::{highlight, TrustedHtml};
use crate::response::Answer;
use crate::site::Site;
use crate::time::{stamp, Stamp};
use crate::urls::browse_url;

/// What git may print for one blame: past it, git is stopped and the page shows what it read.
const OUTPUT_LIMIT: usize = 32 << 20;
/// How long a blame waits for a git slot.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// The commit of a group of lines.
struct GroupCommit {
    short_id: String,
    url: String,
    author: String,
    /// When it was written, as every page shows a date (`time::stamp`): the exact time in the
    /// author's zone, read as "3 days ago" by the page's script with the exact time on hover.
    date: Stamp,
    summary: String,
    /// The blame at the commit's parent, under the file's name there.
    before_url: Option<String>,
}

/// Consecutive lines from one commit (or not attributed yet: no commit).
struct Group {
    commit: Option<GroupCommit>,
    /// The line number and its text, highlighted as on the file's page (escaped plain text
    /// where the language is unknown or the file too large).
    lines: Vec<(usize, TrustedHtml)>,
}

#[derive(Template)]
#[template(path = "blame_body.html")]
struct BlameBody {
    rev: String,
    crumbs: Vec<Crumb>,
    blob_url: String,
    raw_url: String,
    groups: Vec<Group>,
    /// Why there is nothing to blame (a binary or too large file); empty otherwise.
    note: String,
    /// Why some lines have no commit; empty when git finished.
    stopped: String,
}

/// `GET blame/{ref}/{path}`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let (rev, path, commit) = (at.rev.name.clone(), at.path.clone(), at.rev.commit);
    if path.is_empty() {
        return Err(Error::NotFound);
    }
    let head = head_at(site, ctx, repo, &rev);
    let key = Key::new(site, "blame", repo)
        .map(|k| k.part(commit.as_bytes()).part(rev.as_bytes()).part(&path));
    if let Some(hit) = key.as_ref().and_then(cache::get) {
        return ctx
            .render_repo_page(site, req, head, &hit)
            .map(Answer::from);
    }
    let b = browse::blob(&git, commit, &path, browse::BLOB_SHOWN_LIMIT).map_err(git_err(repo))?;
    let base = &site.config.base_path;
    let crumbs = crumbs(site, repo, &rev, &path, true);
    let title = format!(
        "Blame of {} \u{b7} {}/{}",
        crumbs.last().map(|c| c.name.as_str()).unwrap_or_default(),
        repo.owner,
        repo.name
    );
    let mut body = BlameBody {
        rev: rev.clone(),
        crumbs,
        blob_url: browse_url(base, &repo.owner, &repo.name, "blob", &rev, &path),
        raw_url: browse_url(base, &repo.owner, &repo.name, "raw", &rev, &path),
        groups: Vec::new(),
        note: String::new(),
        stopped: String::new(),
    };
    if b.truncated {
        body.note = "This file is too large to blame here; use git blame in a clone.".into();
    } else if b.is_binary {
        body.note = "This is a binary file: it has no lines to blame.".into();
    }
    if !body.note.is_empty() {
        let fragment = Fragment::render(title, &body)?;
        let fragment = match key {
            Some(key) => cache::put(key, fragment),
            None => Arc::new(fragment),
        };
        return ctx
            .render_repo_page(site, req, head, &fragment)
            .map(Answer::from);
    }
    let Some(_turn) = site.blames.enter() else {
        return Err(Error::Busy(
            "Other blames are being worked out right now; try again in a few seconds.".into(),
        ));
    };
    let slot = site
        .git
        .slot_within(req.remote_addr(), ctx.viewer.is_none(), SLOT_WAIT)
        .map_err(|busy| Error::Busy(busy.message().to_string()))?;
    let deadline = site.config.limits.blame_deadline;
    let mut c = site.git.git();
    // The commit is a full object id, which no option begins with; the path follows `--`.
    c.arg("-c")
        .arg("core.quotePath=false")
        .arg("--no-replace-objects")
        .arg("--git-dir")
        .arg(&repo.path)
        .arg("blame")
        .arg("--incremental")
        .arg("--no-textconv")
        .arg(commit.to_string())
        .arg("--")
        .arg(OsStr::from_bytes(&path));
    let mut out = Vec::new();
    let mut full = false;
    let text = String::from_utf8_lossy(&b.data);
    let lines: Vec<&str> = text.lines().collect();
    // The lines are highlighted on a thread of their own while git works out the blame (git is
    // another process: the two use two cores), as the file's page shows them and from the same
    // cache (by blob id and language).
    let highlight_lines = || -> Vec<TrustedHtml> {
        let language = lines
            .first()
            .and_then(|first| highlight::language(&path, first))
            .filter(|_| highlight::fits(b.data.len(), lines.len()));
        match language {
            Some(language) => highlight::file(b.id.as_bytes(), language, &lines).to_vec(),
            None => lines.iter().map(|l| highlight::plain(l)).collect(),
        }
    };
    let (ran, html) = std::thread::scope(|s| {
        let highlighting = std::thread::Builder::new()
            .name("blame-highlight".into())
            .spawn_scoped(s, highlight_lines);
        let ran = site.git.read(&mut c, deadline, |part| {
            if out.len() + part.len() > OUTPUT_LIMIT {
                full = true;
                return false;
            }
            out.extend_from_slice(part);
            true
        });
        let html = match highlighting {
            Ok(h) => h
                .join()
                .unwrap_or_else(|_| lines.iter().map(|l| highlight::plain(l)).collect()),
            // No thread to be had: highlighted here, after git.
            Err(_) => highlight_lines(),
        };
        (ran, html)
    });
    let ran = ran.map_err(|e| Error::internal("running git blame", e))?;
    drop(slot);
    let blame = parse_incremental(&out);
    drop(out);
    body.groups = groups(site, repo, &blame, html);
    if !ran.complete {
        body.stopped = if ran.timed_out {
            format!(
                "git blame stopped after {} seconds; the lines without a commit were not worked out in time.",
                deadline.as_secs()
            )
        } else if full {
            "git blame printed more than this page takes; the lines without a commit were not worked out.".into()
        } else {
            "git blame did not finish; the lines without a commit were not worked out.".into()
        };
    }
    let fragment = Fragment::render(title, &body)?;
    // A blame cut short may come out whole next time.
    let fragment = match key {
        Some(key) if ran.complete => cache::put(key, fragment),
        _ => Arc::new(fragment),
    };
    ctx.render_repo_page(site, req, head, &fragment)
        .map(Answer::from)
}

/// The file's lines in groups of consecutive lines from one run of git's answer.
fn groups(
    site: &Site,
    repo: &crate::git::RepoDir,
    blame: &Blame,
    lines: Vec<TrustedHtml>,
) -> Vec<Group> {
    let base = &site.config.base_path;
    let by_line = blame.by_line(lines.len());
    let mut out: Vec<Group> = Vec::new();
    let mut current: Option<Option<usize>> = None;
    for (i, (line, run)) in lines.into_iter().zip(by_line).enumerate() {
        // Adjacent runs of the same commit are one group, as the commit is.
        let commit_of = run.and_then(|r| blame.runs.get(r)).map(|r| r.commit);
        if current != Some(commit_of) {
            current = Some(commit_of);
            let commit = run.and_then(|r| blame.runs.get(r)).and_then(|r| {
                let c = blame.commits.get(r.commit)?;
                let id = c.id.to_string();
                Some(GroupCommit {
                    short_id: id.get(..7).unwrap_or(&id).to_string(),
                    url: commit_url(site, repo, &id),
                    author: c.author.clone(),
                    date: stamp(c.time, c.offset_minutes),
                    summary: c.summary.clone(),
                    before_url: r.previous.as_ref().map(|(parent, name)| {
                        browse_url(
                            base,
                            &repo.owner,
                            &repo.name,
                            "blame",
                            &parent.to_string(),
                            name,
                        )
                    }),
                })
            });
            out.push(Group {
                commit,
                lines: Vec::new(),
            });
        }
        if let Some(g) = out.last_mut() {
            g.lines.push((i + 1, line));
        }
    }
    out
}
