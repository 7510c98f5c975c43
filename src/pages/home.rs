//! `GET /{owner}/{repo}` (`repo.html`): the clone URL, the branch and tag selector, the latest
//! commit, the files of the default branch and its README (kept as `tree`'s are); how to push to
//! an empty repository.

use askama::Template;

use super::repo_head::{git_err, head, head_at, open, refs_of, Crumb, RepoHead};
use super::tree::files;
use super::{Chrome, PageCall};
use crate::error::Result;
use crate::git::browse::{self};
use crate::response::Answer;
use crate::site::Site;
use crate::urls::browse_url;

/// Branches, and tags, the home page's selector lists at most (the rest are a link away).
const SELECTOR_SIZE: usize = 10;

#[derive(Template)]
#[template(path = "repo.html")]
struct HomePage {
    chrome: Chrome,
    head: RepoHead,
    rev: String,
    /// The first [`SELECTOR_SIZE`] branches and tags, and how many there are.
    branches: Vec<Crumb>,
    tags: Vec<Crumb>,
    branches_total: usize,
    tags_total: usize,
    empty: bool,
    /// Snapshot links of the shown ref, encoded (a ref name may hold `%`, `#` or `..`).
    tgz_url: String,
    zip_url: String,
}

/// `GET /{owner}/{repo}`.
pub(crate) fn page<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let (req, ctx, repo) = (c.req, c.ctx, c.repo()?);
    let git = open(repo)?;
    let base = &site.config.base_path;
    let snap = refs_of(repo)?;
    let branches = browse::some_branches(&git, &snap, SELECTOR_SIZE).map_err(git_err(repo))?;
    let tags = browse::some_tags(&snap, SELECTOR_SIZE).map_err(git_err(repo))?;
    let default = browse::default_branch(&git).map_err(git_err(repo))?;
    // The default branch, or (when HEAD names a branch that does not exist) the first one.
    let start = match default {
        Some(browse::DefaultBranch {
            name,
            commit: Some(c),
        }) => Some((name, c)),
        _ => match branches.items.first() {
            Some(b) => Some((
                b.rev.clone(),
                browse::resolve_ref(&git, &b.rev)
                    .map_err(git_err(repo))?
                    .commit,
            )),
            None => None,
        },
    };
    let link = |r: &browse::RefLink| Crumb {
        name: r.name.clone(),
        url: browse_url(base, &repo.owner, &repo.name, "tree", &r.rev, ""),
    };
    let branch_links = branches.items.iter().map(link).collect();
    let tag_links = tags.items.iter().map(link).collect();
    let mut page = HomePage {
        chrome: ctx.chrome(site),
        head: match &start {
            Some((rev, _)) => head_at(site, ctx, repo, rev),
            None => head(site, ctx, repo),
        },
        rev: String::new(),
        branches: branch_links,
        tags: tag_links,
        branches_total: branches.total,
        tags_total: tags.total,
        empty: start.is_none(),
        tgz_url: String::new(),
        zip_url: String::new(),
    };
    let Some((rev, commit)) = start else {
        return ctx.render(site, req, 200, &page).map(Answer::from);
    };
    // The files and README: kept as a folder's page is (see `tree::files`).
    let fragment = files(site, &git, repo, &rev, commit, b"", true)?;
    let archive = |ext: &str| {
        browse_url(
            base,
            &repo.owner,
            &repo.name,
            "archive",
            &format!("{rev}.{ext}"),
            "",
        )
    };
    page.tgz_url = archive("tar.gz");
    page.zip_url = archive("zip");
    page.rev = rev;
    ctx.render_with(site, req, 200, &page, &fragment)
        .map(Answer::from)
}
