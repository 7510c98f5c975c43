//! A file of a repository, once access to it has been checked: handed to the web server
//! (`X-Accel-Redirect` to the internal location, `X-Sendfile`) or streamed by forgelet itself
//! with Range support. git's own files (loose objects, packs), Git LFS objects and the files
//! `raw/` serves from LFS go this way.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;

use crate::config::{Config, Handoff};
use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::response::{Body, Response};

/// Answers a request for `rel` (`objects/ab/cd…`, `objects/pack/pack-….pack|idx` or an LFS
/// object's `lfs/objects/…`, already checked against its pattern) in `repo`, with the status and
/// headers of `r` (its content type and caching, set by the caller).
pub(crate) fn send(
    config: &Config,
    repo: &RepoDir,
    rel: &str,
    mut r: Response,
    range: Option<&str>,
) -> Result<Response> {
    // Every component below the repository must be a real folder and the last a regular file:
    // a symlink anywhere could lead out of the repository (or into another, private one).
    let mut path = repo.path.clone();
    let parts: Vec<&str> = rel.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound),
            Err(e) => return Err(Error::internal(&format!("{}", path.display()), e)),
        };
        let last = i + 1 == parts.len();
        let ok = if last { meta.is_file() } else { meta.is_dir() };
        if !ok {
            if meta.file_type().is_symlink() {
                log::warn!(
                    "{}/{}: refused to serve {rel}: a symlink is on its path",
                    repo.owner,
                    repo.name
                );
            }
            return Err(Error::NotFound);
        }
    }

    match config.sendfile {
        Handoff::XAccelRedirect => {
            r.header(
                "X-Accel-Redirect",
                format!(
                    "{}/{}/{}.git/{rel}",
                    config.internal_prefix, repo.owner, repo.name
                ),
            );
        }
        Handoff::XSendfile => {
            r.header("X-Sendfile", path.to_string_lossy().into_owned());
        }
        Handoff::None => {
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::NotFound => Error::NotFound,
                    _ => Error::internal(&format!("open {}", path.display()), e),
                })?;
            return stream(r, file, range, &path.to_string_lossy());
        }
    }
    Ok(r)
}

/// Sends `file` (whole, or the one byte range asked for) in the body of `r`.
fn stream(mut r: Response, file: File, range: Option<&str>, label: &str) -> Result<Response> {
    let meta = file
        .metadata()
        .map_err(|e| Error::internal(&format!("stat {label}"), e))?;
    if !meta.is_file() {
        return Err(Error::NotFound);
    }
    let size = meta.len();
    r.header("Accept-Ranges", "bytes");
    match range.map(|h| parse_range(h, size)) {
        None | Some(RangeAsk::Ignore) => {
            r.body = Body::File {
                file,
                start: 0,
                len: size,
            };
        }
        Some(RangeAsk::Part(start, end)) => {
            r.status = 206;
            r.header("Content-Range", format!("bytes {start}-{end}/{size}"));
            r.body = Body::File {
                file,
                start,
                len: end - start + 1,
            };
        }
        Some(RangeAsk::Unsatisfiable) => {
            let mut r416 = Response::text(416, "Requested range not satisfiable.\n".into());
            r416.header("Content-Range", format!("bytes */{size}"));
            return Ok(r416);
        }
    }
    Ok(r)
}

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// Absent meaning: send the whole file (malformed headers and multiple ranges too, as RFC 9110 allows).
    Ignore,
    /// First and last byte, inclusive.
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(header: &str, size: u64) -> RangeAsk {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsk::Ignore;
    };
    if spec.contains(',') {
        return RangeAsk::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Ignore;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeAsk::Unsatisfiable,
            Some(_) if size == 0 => RangeAsk::Unsatisfiable,
            Some(n) => RangeAsk::Part(size.saturating_sub(n), size - 1),
            None => RangeAsk::Ignore,
        },
        (first, last) => {
            let Some(first) = num(first) else {
                return RangeAsk::Ignore;
            };
            let last = if last.is_empty() {
                u64::MAX
            } else {
                match num(last) {
                    Some(l) if l >= first => l,
                    _ => return RangeAsk::Ignore,
                }
            };
            if first >= size {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part(first, last.min(size - 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        assert_eq!(parse_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(parse_range("bytes=10-", 100), Part(10, 99));
        assert_eq!(parse_range("bytes=90-200", 100), Part(90, 99));
        assert_eq!(parse_range("bytes=-5", 100), Part(95, 99));
        assert_eq!(parse_range("bytes=-500", 100), Part(0, 99));
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ignore);
        assert_eq!(parse_range("bytes=9-1", 100), Ignore);
        assert_eq!(parse_range("bytes=a-", 100), Ignore);
        assert_eq!(parse_range("items=0-1", 100), Ignore);
        assert_eq!(parse_range("bytes=+1-2", 100), Ignore);
    }
}
