//! A folder's README (`readme.html`): Markdown rendered by `markup`, any other README as text,
//! and one too large to read a link to its file.

use super::file_table::human_size;
use super::repo_head::git_err;
use crate::error::Result;
use crate::git::browse::{self};
use crate::git::RepoDir;
use crate::markup::{markdown, TrustedHtml};
use crate::site::Site;
use crate::urls::browse_url;

/// The README of a folder as its page shows it (`readme.html`).
pub(crate) enum Readme {
    None,
    /// Larger than a page reads: a link to its blob page instead.
    TooLarge {
        name: String,
        size: String,
        url: String,
    },
    /// Markdown, rendered: the one HTML a page inserts without escaping it.
    Markdown {
        name: String,
        html: TrustedHtml,
    },
    /// Any other README, shown as it is (escaped by the template).
    Plain {
        name: String,
        text: String,
    },
}

pub(crate) fn readme(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    rev: &str,
    commit: git2::Oid,
    dir: &[u8],
) -> Result<Readme> {
    let Some(readme) =
        browse::readme(git, commit, dir, browse::README_LIMIT).map_err(git_err(repo))?
    else {
        return Ok(Readme::None);
    };
    let base = &site.config.base_path;
    let name = readme.name;
    if readme.blob.truncated {
        // Not read at all: it is larger than a page renders.
        return Ok(Readme::TooLarge {
            name,
            size: human_size(readme.blob.size),
            url: browse_url(base, &repo.owner, &repo.name, "blob", rev, &readme.path),
        });
    }
    let text = String::from_utf8_lossy(&readme.blob.data).into_owned();
    if !readme.markdown {
        return Ok(Readme::Plain { name, text });
    }
    let blob_base = browse_url(base, &repo.owner, &repo.name, "blob", rev, "");
    let tree_base = browse_url(base, &repo.owner, &repo.name, "tree", rev, "");
    let raw_base = browse_url(base, &repo.owner, &repo.name, "raw", rev, "");
    let html = markdown::render(
        &text,
        &markdown::Context {
            blob_base: &blob_base,
            tree_base: &tree_base,
            raw_base: &raw_base,
            dir,
        },
    );
    Ok(Readme::Markdown { name, html })
}
