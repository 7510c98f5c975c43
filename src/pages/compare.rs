//! `GET compare/{base}...{head}` (`compare_body.html`): what `head` adds to `base`, as a pull
//! request shows it: the commits on `head` that `base` does not have (newest first, a page of
//! history at most) and the diff from their merge base to `head`, with the commit page's limits.
//! Refs may hold slashes (`compare/main...feature/x`): git refuses `..` in a ref name, so the
//! first `...` parts the two. Worked out at most `site::COMPARES_AT_ONCE` at a time per process
//! (503 with `Retry-After` past it); a page made is kept like a commit's, by the two commits.

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::commit::{cut_note, file_views, FileView};
use super::commits::{commit_url, row, CommitRow};
use super::repo_head::{git_err, head_at, open, Crumb};
use super::PageCall;
use crate::error::{Error, Result};
use crate::git::browse::{self, DiffLimits};
use crate::git::RepoDir;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::urls::browse_url;

#[derive(Template)]
#[template(path = "compare_body.html")]
struct CompareBody {
    base: String,
    head: String,
    note: String,
    commits: Vec<CommitRow>,
    more_commits: bool,
    history_url: String,
    merge_base: Option<Crumb>,
    files: Vec<FileView>,
    files_changed: usize,
    more_files: bool,
    additions: String,
    deletions: String,
    cut_note: String,
}

/// `GET compare/{base}...{head}`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let repo = c.repo()?;
    let spec = c.caps.rest.join("/");
    let (base, head) = spec.split_once("...").ok_or(Error::NotFound)?;
    if base.is_empty() || head.is_empty() {
        return Err(Error::NotFound);
    }
    let git = open(repo)?;
    let base_id = browse::resolve_commit_rev(&git, base).map_err(git_err(repo))?;
    let head_id = browse::resolve_commit_rev(&git, head).map_err(git_err(repo))?;
    let tabs = head_at(site, c.ctx, repo, head);
    // Kept once per pair of commits and the names the page shows them by.
    let key = Key::new(site, "compare", repo).map(|k| {
        k.part(base_id.as_bytes())
            .part(head_id.as_bytes())
            .part(base.as_bytes())
            .part(head.as_bytes())
    });
    if let Some(hit) = key.as_ref().and_then(cache::get) {
        return c
            .ctx
            .render_repo_page(site, c.req, tabs, &hit)
            .map(Answer::from);
    }
    let Some(_turn) = site.compares.enter() else {
        let mut r = Response::text(
            503,
            "The server is working out other comparisons; try again in a few seconds.\n".into(),
        );
        r.header("Retry-After", "5");
        r.no_cache();
        return Ok(r.into());
    };
    let fragment = compare_body(site, &git, repo, (base, base_id), (head, head_id))?;
    let fragment = match key {
        Some(key) => cache::put(key, fragment),
        None => std::sync::Arc::new(fragment),
    };
    c.ctx
        .render_repo_page(site, c.req, tabs, &fragment)
        .map(Answer::from)
}

fn compare_body(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    (base, base_id): (&str, git2::Oid),
    (head, head_id): (&str, git2::Oid),
) -> Result<Fragment> {
    let d =
        browse::divergence(git, base_id, head_id, browse::LOG_PAGE_SIZE).map_err(git_err(repo))?;
    let diff = match d.merge_base {
        Some(from) => Some(
            browse::commits_diff(git, from, head_id, &DiffLimits::default())
                .map_err(git_err(repo))?,
        ),
        None => None,
    };
    let note = match (&d.merge_base, d.ahead.is_empty()) {
        (None, _) => format!(
            "{base} and {head} have entirely different histories: there is no common commit to compare from."
        ),
        (Some(_), true) => {
            format!("There is nothing to compare: {base} has every commit of {head}.")
        }
        (Some(_), false) => String::new(),
    };
    let (files, files_changed, more_files, additions, deletions, cut) = match &diff {
        Some(diff) => (
            file_views(&diff.files),
            diff.truncated.map_or(diff.files.len(), |t| t.files_total),
            diff.truncated.is_some_and(|t| t.files_more),
            diff.additions.map(|n| n.to_string()).unwrap_or_default(),
            diff.deletions.map(|n| n.to_string()).unwrap_or_default(),
            cut_note("This comparison", diff.truncated, diff.files.len()),
        ),
        None => (
            Vec::new(),
            0,
            false,
            String::new(),
            String::new(),
            String::new(),
        ),
    };
    let base_path = &site.config.base_path;
    Fragment::render(
        format!(
            "Comparing {base}...{head} \u{b7} {}/{}",
            repo.owner, repo.name
        ),
        &CompareBody {
            base: base.to_string(),
            head: head.to_string(),
            note,
            commits: d.ahead.iter().map(|c| row(site, repo, c)).collect(),
            more_commits: d.has_more,
            history_url: browse_url(base_path, &repo.owner, &repo.name, "commits", head, ""),
            merge_base: d.merge_base.map(|id| {
                let s = id.to_string();
                Crumb {
                    name: s[..7.min(s.len())].to_string(),
                    url: commit_url(site, repo, &s),
                }
            }),
            files,
            files_changed,
            more_files,
            additions,
            deletions,
            cut_note: cut,
        },
    )
}
