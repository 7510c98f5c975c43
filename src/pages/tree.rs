//! `GET tree/{ref}[/{path}]`: a folder at any branch, tag or commit; and the files and README
//! part (`tree_body.html`) the home page shares.

use std::sync::Arc;

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::commits::{row, CommitRow};
use super::file_table::{last_changes, last_note, rows, FileRow};
use super::readme::{readme, Readme};
use super::repo_head::{crumbs, git_err, head_at, open, Crumb};
use super::PageCall;
use crate::error::Result;
use crate::git::browse::{self};
use crate::git::RepoDir;
use crate::response::Answer;
use crate::site::Site;

#[derive(Template)]
#[template(path = "tree_body.html")]
struct TreeBody {
    rev: String,
    /// Empty on the home page.
    crumbs: Vec<Crumb>,
    latest: Option<CommitRow>,
    files: Vec<FileRow>,
    /// Why some entries show no last change; empty when all do.
    last_note: String,
    readme: Readme,
}

/// A folder's files, its latest commit and its README at `commit` (which the ref `rev`
/// resolved to), with crumbs unless `home`: kept once per commit, ref name and path.
pub(crate) fn files(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    rev: &str,
    commit: git2::Oid,
    path: &[u8],
    home: bool,
) -> Result<Arc<Fragment>> {
    let key = Key::new(site, if home { "home" } else { "tree" }, repo)
        .map(|k| k.part(commit.as_bytes()).part(rev.as_bytes()).part(path));
    cache::fragment(key, || {
        let listing = browse::list_tree(git, commit, path).map_err(git_err(repo))?;
        let changes = last_changes(site, git, repo, commit, path, &listing)?;
        let title = if home {
            format!(
                "{}/{} \u{b7} {}",
                repo.owner, repo.name, site.config.site_name
            )
        } else {
            format!(
                "{}/{} at {rev} \u{b7} {}",
                repo.owner, repo.name, site.config.site_name
            )
        };
        Fragment::render(
            title,
            &TreeBody {
                rev: rev.to_string(),
                crumbs: if home {
                    Vec::new()
                } else {
                    crumbs(site, repo, rev, path, false)
                },
                files: rows(site, repo, rev, path, &listing, changes.as_deref()),
                last_note: last_note(&listing, changes.as_deref()),
                latest: listing.last_commit.as_ref().map(|c| row(site, repo, c)),
                readme: readme(site, git, repo, rev, commit, path)?,
            },
        )
    })
}

/// `GET tree/{ref}[/{path}]`: a folder's files, its latest commit and its README.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let rev = at.rev.name.clone();
    let fragment = files(site, &git, repo, &rev, at.rev.commit, &at.path, false)?;
    ctx.render_repo_page(site, req, head_at(site, ctx, repo, &rev), &fragment)
        .map(Answer::from)
}
