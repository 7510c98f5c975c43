//! LFS pointer files: what git holds for a file stored with Git LFS, and the file it stands for
//! when the repository keeps that object, so the pages show the real file.

use std::fs::File;
use std::io::Read;

use super::objects::{rel_path, stored_size};
use crate::error::{Error, Result};
use crate::git::browse::BlobView;
use crate::git::RepoDir;

/// Pointer files are at most this large (the specification's bound).
pub(crate) const POINTER_MAX: u64 = 1024;

/// The object a pointer names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pointer {
    pub(crate) oid: String,
    pub(crate) size: u64,
}

/// Reads `data` as a pointer file: `version https://git-lfs.github.com/spec/v1` first, then
/// `key value` lines, among them `oid sha256:{64 hex}` and `size {bytes}`, each line ending in a
/// line feed. Anything else is not a pointer (it is shown as the file it is).
pub(crate) fn parse(data: &[u8]) -> Option<Pointer> {
    if data.len() as u64 > POINTER_MAX {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let body = text.strip_suffix('\n')?;
    let mut lines = body.split('\n');
    if lines.next()? != "version https://git-lfs.github.com/spec/v1" {
        return None;
    }
    let (mut oid, mut size) = (None, None);
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "oid" => oid = Some(value.strip_prefix("sha256:")?.to_string()),
            "size" if value.bytes().all(|b| b.is_ascii_digit()) => size = Some(value.parse().ok()?),
            k if !k.is_empty()
                && k.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                }) => {}
            _ => return None,
        }
    }
    let oid = oid.filter(|o| super::valid_oid(o))?;
    Some(Pointer { oid, size: size? })
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

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn pointers_are_read_exactly() {
        let good =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        assert_eq!(
            parse(good.as_bytes()),
            Some(Pointer {
                oid: OID.into(),
                size: 12345
            })
        );
        let extended = format!(
            "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n"
        );
        assert!(parse(extended.as_bytes()).is_some());
        for bad in [
            good.trim_end().to_string(),
            good.replace("v1", "v2"),
            good.replace("sha256:", "sha1:"),
            good.replace("12345", "-1"),
            good.replace(OID, &OID[1..]),
            good.replace("size 12345\n", ""),
            format!("{good}trailing"),
            format!("x{good}"),
            "hello\n".to_string(),
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
        let long = format!("{good}{}", "a b\n".repeat(300));
        assert_eq!(parse(long.as_bytes()), None);
    }
}
