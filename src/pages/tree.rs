//! `GET tree/{ref}[/{path}]` (`tree.html`): a folder at any branch, tag or commit.

use askama::Template;

use super::commits::{row, CommitRow};
use super::file_table::{rows, FileRow};
use super::readme::{readme, Readme};
use super::repo_head::{crumbs, git_err, head_at, open, Crumb, RepoHead};
use super::{Chrome, PageCall};
use crate::error::Result;
use crate::git::browse::{self};
use crate::response::Answer;
use crate::site::Site;

#[derive(Template)]
#[template(path = "tree.html")]
struct TreePage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    crumbs: Vec<Crumb>,
    latest: Option<CommitRow>,
    files: Vec<FileRow>,
    readme: Readme,
}

/// `GET tree/{ref}[/{path}]`: a folder's files, its latest commit and its README.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let at = browse::resolve_ref_path(&git, &c.rest_bytes()).map_err(git_err(repo))?;
    let rev = at.rev.name.clone();
    let path = at.path.clone();
    let commit = at.rev.commit;
    let listing = browse::list_tree(&git, commit, &path).map_err(git_err(repo))?;
    let readme = readme(site, &git, repo, &rev, commit, &path)?;
    ctx.render(
        site,
        req,
        200,
        &TreePage {
            chrome: ctx.chrome(site),
            head: head_at(site, ctx, repo, &rev),
            crumbs: crumbs(site, repo, &rev, &path, false),
            files: rows(site, repo, &rev, &path, &listing),
            latest: listing.last_commit.as_ref().map(|c| row(site, repo, c)),
            readme,
            rev,
        },
    )
    .map(Answer::from)
}
