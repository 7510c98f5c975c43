//! LFS pointer files: what git holds for a file stored with Git LFS, and the file it stands for
//! when the repository keeps that object, so the pages show the real file.

use std::fs::File;
use std::io::Read;

use super::objects::{rel_path, stored_size};
use crate::error::{Error, Result};
use crate::git::browse::BlobView;
use crate::git::RepoDir;

pub(crate) use crate::git::lfs::POINTER_MAX;

/// The object a pointer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub(crate) oid: String,
    pub(crate) size: u64,
}

/// Reads `data` as a pointer file (`git::lfs::parse_pointer`).
pub(crate) fn parse(data: &[u8]) -> Option<Pointer> {
    crate::git::lfs::parse_pointer(data).map(|(oid, size)| Pointer { oid, size })
}

/// The file `blob` stands for: when it is a pointer whose object `repo` keeps, that object's
/// content up to `limit` bytes (as [`BlobView`] reads a blob: nothing past the limit, binary by
/// a NUL in the first 8000 bytes), with the pointer. Otherwise `None`.
pub(crate) fn resolve(
    repo: &RepoDir,
    blob: &BlobView,
    limit: usize,
) -> Result<Option<(BlobView, Pointer)>> {
    if blob.truncated || blob.size > POINTER_MAX {
        return Ok(None);
    }
    let Some(pointer) = parse(&blob.data) else {
        return Ok(None);
    };
    let Some(size) = stored_size(repo, &pointer.oid)? else {
        return Ok(None);
    };
    let path = repo.path.join(rel_path(&pointer.oid));
    let failed = |e: std::io::Error| {
        Error::internal(
            &format!(
                "{}/{}: reading LFS object {}",
                repo.owner, repo.name, pointer.oid
            ),
            e,
        )
    };
    let mut data = Vec::new();
    let truncated = size > limit as u64;
    let probe = if truncated { 8000 } else { limit as u64 };
    File::open(&path)
        .map_err(failed)?
        .take(probe)
        .read_to_end(&mut data)
        .map_err(failed)?;
    let is_binary = data[..data.len().min(8000)].contains(&0);
    if truncated {
        data.clear();
    }
    Ok(Some((
        BlobView {
            id: blob.id,
            kind: blob.kind,
            size,
            data,
            truncated,
            is_binary,
        },
        pointer,
    )))
}
