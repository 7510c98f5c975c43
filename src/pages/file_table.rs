//! A folder's files as a table (`file_table.html`): names linking to their tree or blob pages,
//! each entry's last change (its commit's message and date), and sizes.

use std::sync::Arc;

use super::cache::{Key, Store, Weigh};
use super::commits::commit_url;
use super::repo_head::git_err;
use crate::error::Result;
use crate::git::browse::{self, EntryKind, LastChanges, LAST_CHANGES_MAX_ENTRIES};
use crate::git::RepoDir;
use crate::site::Site;
use crate::time::{stamp, Stamp};
use crate::urls::browse_url;

pub(crate) struct FileRow {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) is_dir: bool,
    pub(crate) size: String,
    /// The commit that last changed it; `None` when not looked for or not found.
    pub(crate) last: Option<LastCell>,
}

/// An entry's last change as the table shows it.
pub(crate) struct LastCell {
    pub(crate) url: String,
    pub(crate) summary: String,
    pub(crate) date: Stamp,
}

/// Why some entries have no last change (empty when all have one).
pub(crate) fn last_note(listing: &browse::TreeListing, changes: Option<&LastChanges>) -> String {
    match changes {
        None if listing.entries.len() > LAST_CHANGES_MAX_ENTRIES => format!(
            "Last changes are shown for folders of up to {LAST_CHANGES_MAX_ENTRIES} entries."
        ),
        Some(c) if c.stopped => format!(
            "Looked through the newest {} commits: entries without a change here changed before them.",
            browse::LOG_SCAN_LIMIT
        ),
        _ => String::new(),
    }
}

impl Weigh for LastChanges {
    fn bytes(&self) -> usize {
        self.commits
            .iter()
            .map(|c| c.summary.len() + c.author.name.len() + c.author.email.len() + 128)
            .sum::<usize>()
            + self.of.len() * 16
    }
}

/// Last changes a process keeps at most, in bytes: a folder's are worked out once per commit
/// and path (the same folder under another history has other last changes), whatever ref
/// name or page (home or folder) asks.
static LAST_CHANGES: Store<LastChanges> = Store::new(8 << 20, 1 << 20);

/// The last change of each entry of the folder at `path` in `commit`; `None` for a folder of
/// more than [`LAST_CHANGES_MAX_ENTRIES`] entries.
pub(crate) fn last_changes(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    commit: git2::Oid,
    path: &[u8],
    listing: &browse::TreeListing,
) -> Result<Option<Arc<LastChanges>>> {
    if listing.entries.len() > LAST_CHANGES_MAX_ENTRIES {
        return Ok(None);
    }
    let key = Key::new(site, "last-changes", repo).map(|k| k.part(commit.as_bytes()).part(path));
    LAST_CHANGES
        .get_or_make(key, || {
            let names: Vec<&[u8]> = listing.entries.iter().map(|e| &e.raw_name[..]).collect();
            browse::last_changes(git, commit, path, &names).map_err(git_err(repo))
        })
        .map(Some)
}

pub(crate) fn human_size(n: u64) -> String {
    match n {
        n if n < 1024 => format!("{n} B"),
        n if n < 1 << 20 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
    }
}

pub(crate) fn rows(
    site: &Site,
    repo: &RepoDir,
    rev: &str,
    dir: &[u8],
    listing: &browse::TreeListing,
    changes: Option<&LastChanges>,
) -> Vec<FileRow> {
    let base = &site.config.base_path;
    let last = |i: usize| {
        let c = changes?;
        let commit = c.commits.get((*c.of.get(i)?)?)?;
        Some(LastCell {
            url: commit_url(site, repo, &commit.id.to_string()),
            summary: commit.summary.clone(),
            date: stamp(commit.author.time, commit.author.offset_minutes),
        })
    };
    listing
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            // Links carry the name's exact bytes; the page shows it as text.
            let mut path = dir.to_vec();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(&e.raw_name);
            let is_dir = e.kind == EntryKind::Dir;
            let view = if is_dir { "tree" } else { "blob" };
            FileRow {
                name: e.name.clone(),
                url: browse_url(base, &repo.owner, &repo.name, view, rev, &path),
                is_dir,
                size: e.size.map(human_size).unwrap_or_default(),
                last: last(i),
            }
        })
        .collect()
}
