//! What every repository page shares: its title and tabs (`repo_head.html`), the crumbs of
//! the path it shows (`crumbs.html`), and the repository opened for a page.

use super::PageCtx;
use crate::error::Error;
use crate::git::browse::{self, BrowseError};
use crate::git::{RepoDir, Visibility};
use crate::site::Site;
use crate::urls::{browse_url, clone_url, owner_url, repo_tab_url, repo_url, ssh_clone_url};

pub(crate) use crate::site::{open, refs_of};

pub(crate) struct Crumb {
    pub(crate) name: String,
    pub(crate) url: String,
}

/// What every repository page shows at the top.
pub(crate) struct RepoHead {
    /// Shown to the owner and admins only.
    pub(crate) settings_url: Option<String>,
    pub(crate) commits_url: String,
    pub(crate) branches_url: String,
    pub(crate) tags_url: String,
    /// The code search, at the ref the page shows.
    pub(crate) search_url: String,
    pub(crate) owner: String,
    pub(crate) owner_url: String,
    pub(crate) name: String,
    pub(crate) home_url: String,
    pub(crate) private: bool,
    pub(crate) description: String,
    pub(crate) clone_url: String,
    /// Only when the site offers SSH (`[ssh] host`).
    pub(crate) ssh_clone_url: Option<String>,
    /// The page's Atom feed (the commits and tags pages), linked from the head and the page.
    pub(crate) feed: Option<FeedLink>,
}

/// An Atom feed a page offers.
pub(crate) struct FeedLink {
    pub(crate) title: String,
    pub(crate) url: String,
}

pub(crate) fn git_err(repo: &RepoDir) -> impl Fn(BrowseError) -> Error + '_ {
    move |e| match e {
        BrowseError::NotFound => Error::NotFound,
        BrowseError::Git(detail) => Error::Damaged {
            repo: format!("{}/{}", repo.owner, repo.name),
            detail,
        },
    }
}

/// The repository's title and tabs, the Commits tab on the default branch.
pub(crate) fn head(site: &Site, ctx: &PageCtx, repo: &RepoDir) -> RepoHead {
    let default = repo
        .open()
        .ok()
        .and_then(|g| browse::default_branch(&g).ok().flatten())
        .map(|d| d.name)
        .unwrap_or_else(|| "main".into());
    head_at(site, ctx, repo, &default)
}

/// The repository's title and tabs, the Commits tab on `rev` (the ref a page shows).
pub(crate) fn head_at(site: &Site, ctx: &PageCtx, repo: &RepoDir, rev: &str) -> RepoHead {
    let c = &site.config;
    let (base, owner, name) = (
        c.base_path.as_str(),
        repo.owner.as_str(),
        repo.name.as_str(),
    );
    RepoHead {
        settings_url: crate::auth::may_manage(ctx.viewer.as_ref(), owner)
            .then(|| repo_tab_url(base, owner, name, "settings")),
        commits_url: browse_url(base, owner, name, "commits", rev, ""),
        branches_url: repo_tab_url(base, owner, name, "branches"),
        tags_url: repo_tab_url(base, owner, name, "tags"),
        search_url: format!(
            "{}?ref={}",
            repo_tab_url(base, owner, name, "search"),
            crate::urls::encode_query(rev)
        ),
        owner_url: owner_url(base, owner),
        owner: repo.owner.clone(),
        name: repo.name.clone(),
        home_url: repo_url(base, owner, name),
        private: repo.settings().visibility == Visibility::Private,
        description: repo.description(),
        clone_url: clone_url(&c.base_url, &repo.owner, &repo.name),
        ssh_clone_url: c
            .ssh
            .host
            .as_ref()
            .map(|host| ssh_clone_url(&c.ssh.user, host, c.ssh.port, owner, name)),
        feed: None,
    }
}

/// The path's crumbs: the repository, then each folder, then the last part, which is a file
/// when `file` (its crumb links to the file's page, not to a folder of that name).
pub(crate) fn crumbs(
    site: &Site,
    repo: &RepoDir,
    rev: &str,
    path: &[u8],
    file: bool,
) -> Vec<Crumb> {
    let base = &site.config.base_path;
    let mut out = vec![Crumb {
        name: repo.name.clone(),
        url: browse_url(base, &repo.owner, &repo.name, "tree", rev, ""),
    }];
    let parts: Vec<&[u8]> = path
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let mut so_far = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if !so_far.is_empty() {
            so_far.push(b'/');
        }
        so_far.extend_from_slice(part);
        let view = if file && i + 1 == parts.len() {
            "blob"
        } else {
            "tree"
        };
        out.push(Crumb {
            name: String::from_utf8_lossy(part).into_owned(),
            url: browse_url(base, &repo.owner, &repo.name, view, rev, &so_far),
        });
    }
    out
}
