//! A folder's files as a table (`file_table.html`): names linking to their tree or blob pages,
//! and sizes.

use crate::git::browse::{self, EntryKind};
use crate::git::RepoDir;
use crate::site::Site;
use crate::urls::browse_url;

pub(crate) struct FileRow {
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) is_dir: bool,
    pub(crate) size: String,
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
) -> Vec<FileRow> {
    let base = &site.config.base_path;
    listing
        .entries
        .iter()
        .map(|e| {
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
            }
        })
        .collect()
}
