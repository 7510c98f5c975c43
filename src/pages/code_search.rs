//! `GET {owner}/{repo}/search?q=...&ref=...&path=...&regex=1&case=1` (`search_body.html`): the
//! lines of a repository's files that hold some text, at a branch, tag or commit (the default
//! branch unless `ref` says), grouped by file, each with a line of context either side and
//! linked to its line on the file's page.
//!
//! The text is a fixed string unless `regex=1` (an extended regular expression, as `git grep
//! -E` reads it, checked first so a bad one gets a clear message); case is ignored unless
//! `case=1`. `path` keeps files at or below that path, taken literally (no wildcards: `src`
//! is the folder `src` and what it holds, or a file of that name). git searches: `git grep`
//! on the commit the ref resolved to, the text after `-e`, the path after `--` as a literal
//! pathspec, nothing in the repository's config able to run a command. It is read as it
//! prints and stopped at [`MAX_FILES`] files, [`MAX_MATCHES`] matching lines or `[limits]
//! search_deadline`, and the page says when it was.

use std::time::Duration;

use askama::Template;

use super::repo_head::{git_err, head_at, open};
use super::{PageCall, PageCtx};
use crate::error::{Error, Result};
use crate::forms::{field, form_fields};
use crate::git::browse::grep::{GrepLine, GrepReader};
use crate::git::browse::{self, BrowseError};
use crate::git::RepoDir;
use crate::request::Request;
use crate::response::Answer;
use crate::site::Site;
use crate::urls::{browse_url, repo_tab_url};

use super::cache::Fragment;

/// Files a search shows at most.
pub(crate) const MAX_FILES: usize = 100;
/// Matching lines a search shows at most.
pub(crate) const MAX_MATCHES: usize = 1000;
/// The longest search text taken, in bytes.
pub(crate) const MAX_QUERY: usize = 1000;
/// How long a search waits for a git slot.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// A file's results as the page shows them.
struct FileResult {
    path: String,
    url: String,
    lines: Vec<ShownLine>,
}

/// A line of a file's results.
struct ShownLine {
    line: GrepLine,
    /// Its place on the file's page.
    link: String,
    /// The first of a run of lines after a gap.
    gap: bool,
}

#[derive(Template)]
#[template(path = "search_body.html")]
struct SearchBody {
    action: String,
    q: String,
    rev: String,
    path: String,
    regex: bool,
    case: bool,
    /// A search was run (the text was not empty and was taken).
    searched: bool,
    files: Vec<FileResult>,
    matches: usize,
    /// Why the search was not run, or what went wrong; empty when all is well.
    message: String,
    /// Why the results may be incomplete; empty when they are not.
    stopped: String,
}

/// `GET {owner}/{repo}/search`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let fields = form_fields(req.query().as_bytes());
    let on = |name: &str| matches!(field(&fields, name), Some("1" | "on" | "true"));
    let git = open(repo)?;
    let default = browse::default_branch(&git).ok().flatten().map(|d| d.name);
    let rev = field(&fields, "ref")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .or(default)
        .unwrap_or_else(|| "main".into());
    let path = field(&fields, "path")
        .unwrap_or_default()
        .trim()
        .trim_matches('/')
        .to_string();
    let mut body = SearchBody {
        action: repo_tab_url(&site.config.base_path, &repo.owner, &repo.name, "search"),
        q: field(&fields, "q").unwrap_or_default().to_string(),
        rev,
        path,
        regex: on("regex"),
        case: on("case"),
        searched: false,
        files: Vec::new(),
        matches: 0,
        message: String::new(),
        stopped: String::new(),
    };
    let status = search(site, req, ctx, &git, repo, &mut body)?;
    let title = if body.q.is_empty() {
        format!("Search \u{b7} {}/{}", repo.owner, repo.name)
    } else {
        format!(
            "{} \u{b7} Search \u{b7} {}/{}",
            body.q, repo.owner, repo.name
        )
    };
    let fragment = Fragment::render(title, &body)?;
    let mut r = ctx.render_repo_page(site, req, head_at(site, ctx, repo, &body.rev), &fragment)?;
    r.status = status;
    Ok(r.into())
}

/// Runs the search the form asks for into `body`; the page's status.
fn search(
    site: &Site,
    req: &Request,
    ctx: &PageCtx,
    git: &git2::Repository,
    repo: &RepoDir,
    body: &mut SearchBody,
) -> Result<u16> {
    let q = body.q.clone();
    if q.is_empty() {
        return Ok(200);
    }
    if q.len() > MAX_QUERY {
        body.message = format!("The search text is longer than {MAX_QUERY} bytes.");
        return Ok(400);
    }
    if q.contains(['\0', '\n', '\r']) || body.path.contains(['\0', '\n', '\r']) {
        body.message =
            "The search text and the path are one line each, without NUL characters.".into();
        return Ok(400);
    }
    let Some(_turn) = site.searches.enter() else {
        return Err(Error::Busy(
            "Other searches are running right now; try again in a few seconds.".into(),
        ));
    };
    let commit = match browse::resolve_ref(git, &body.rev) {
        Ok(r) => r.commit,
        Err(BrowseError::NotFound) => {
            body.message = format!("There is no branch, tag or commit {} here.", body.rev);
            return Ok(404);
        }
        Err(e) => return Err(git_err(repo)(e)),
    };
    let slot = site
        .git
        .slot_within(req.remote_addr(), ctx.viewer.is_none(), SLOT_WAIT)
        .map_err(|busy| Error::Busy(busy.message().to_string()))?;
    let id = commit.to_string();
    let deadline = site.config.limits.search_deadline;
    let mut c = site.git.git();
    // Nothing the repository's config says may run a command or change what is printed.
    for setting in [
        "core.quotePath=false",
        "core.fsmonitor=false",
        "core.pager=cat",
        "pager.grep=false",
        "color.ui=never",
        "color.grep=never",
        "grep.lineNumber=true",
        "grep.column=false",
        "grep.fullName=true",
        "grep.fallbackToNoIndex=false",
        "grep.patternType=default",
        "grep.extendedRegexp=false",
    ] {
        c.arg("-c").arg(setting);
    }
    c.arg("--literal-pathspecs")
        .arg("--no-replace-objects")
        .arg("--git-dir")
        .arg(&repo.path)
        .arg("grep")
        .arg("--no-color")
        .arg("--no-textconv")
        .arg("--heading")
        .arg("--break")
        .arg("-n")
        .arg("-I")
        .arg("--context=1")
        .arg(if body.regex {
            "--extended-regexp"
        } else {
            "--fixed-strings"
        });
    if !body.case {
        c.arg("--ignore-case");
    }
    c.arg("-e").arg(&q);
    // The revision after --end-of-options, where git's grep knows it (2.47 does; Debian 12's
    // 2.39 takes it for a revision and fails). Either way the revision is a full object id,
    // 40 hex digits, which no option begins with.
    if site.git.version_at_least(2, 47) {
        c.arg("--end-of-options");
    }
    c.arg(&id).arg("--");
    if !body.path.is_empty() {
        c.arg(&body.path);
    }
    let mut reader = GrepReader::new(&format!("{id}:"), MAX_FILES, MAX_MATCHES);
    let ran = site
        .git
        .read(&mut c, deadline, |part| reader.feed(part))
        .map_err(|e| Error::internal("running git grep", e))?;
    drop(slot);
    body.searched = true;
    body.matches = reader.matches;
    let base = &site.config.base_path;
    body.files = reader
        .files
        .into_iter()
        .map(|f| {
            let url = browse_url(base, &repo.owner, &repo.name, "blob", &body.rev, &f.path);
            let mut lines = Vec::new();
            for run in f.runs.into_iter().filter(|r| !r.is_empty()) {
                let gap = !lines.is_empty();
                for (i, line) in run.into_iter().enumerate() {
                    lines.push(ShownLine {
                        link: format!("{url}#L{}", line.number),
                        line,
                        gap: gap && i == 0,
                    });
                }
            }
            FileResult {
                path: String::from_utf8_lossy(&f.path).into_owned(),
                lines,
                url,
            }
        })
        .collect();
    if reader.more {
        body.stopped = format!(
            "Only the first {} matching lines in at most {} files are shown; narrow the search to see the rest.",
            MAX_MATCHES, MAX_FILES
        );
    } else if ran.timed_out {
        body.stopped = format!(
            "The search stopped after {} seconds; there may be more matches than these.",
            deadline.as_secs()
        );
    } else if !ran.complete && !body.files.is_empty() {
        body.stopped = "The search did not finish; there may be more matches than these.".into();
    } else if body.regex && ran.code == Some(128) {
        // git grep dies (128) on an expression the C library refuses, or cannot compile within
        // git's memory limit. Only git compiles it: the library writes repeats out, so nested
        // ones such as `(a{32767}){32767}` (17 bytes) once made forgelet, compiling it itself
        // to check it, allocate 24 GB until the kernel killed it.
        body.message = "This is not a valid regular expression, or git could not compile it: check its brackets, parentheses and {n} counts.".into();
        body.searched = false;
        return Ok(400);
    } else if !ran.complete && ran.code != Some(1) {
        // git grep exits with 1 when nothing matches; anything else went wrong.
        log::warn!(
            "git grep in {}/{} ended with {:?}",
            repo.owner,
            repo.name,
            ran.code
        );
        body.message = "git could not run this search.".into();
        body.searched = false;
        return Ok(500);
    }
    Ok(200)
}
