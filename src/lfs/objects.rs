//! LFS objects on disk, and the routes that send, receive and verify them.
//!
//! `{repo}/lfs/objects/{oid[0..2]}/{oid[2..4]}/{oid}`, written only by a rename from
//! `{repo}/lfs/tmp/` once the bytes hash to the id. Downloads go to the web server like git's own
//! files (the same internal location, the same checks that no symlink is on the way).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{json, valid_oid, LfsCall};
use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::response::{Answer, Response, Stream};
use crate::site::Site;

/// The object's path below the repository folder.
pub(crate) fn rel_path(oid: &str) -> String {
    format!("lfs/objects/{}/{}/{oid}", &oid[..2], &oid[2..4])
}

/// The size of the object `oid` kept in `repo`, if it is there (a regular file, not a link).
pub(crate) fn stored_size(repo: &RepoDir, oid: &str) -> Result<Option<u64>> {
    if !valid_oid(oid) {
        return Ok(None);
    }
    match fs::symlink_metadata(repo.path.join(rel_path(oid))) {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::internal(
            &format!("{}/{}: LFS object {oid}", repo.owner, repo.name),
            e,
        )),
    }
}

/// The object id the route captured (checked as 64 hex digits by the route table).
fn oid_of<'c>(c: &'c LfsCall<'_>) -> Result<&'c str> {
    let oid = c.caps.rest.last().map(String::as_str).unwrap_or_default();
    if valid_oid(oid) {
        Ok(oid)
    } else {
        Err(Error::NotFound)
    }
}

/// `GET {repo}.git/info/lfs/objects/{oid}`: the object, by the web server (or streamed, with
/// Range, when `sendfile = "none"`).
pub(crate) fn download<'s>(
    site: &'s Site,
    c: &LfsCall<'_>,
    _: &mut dyn Read,
) -> Result<Answer<'s>> {
    let oid = oid_of(c)?;
    let mut r = Response::new(200);
    r.header("Content-Type", "application/octet-stream");
    // Named by its content: it never changes; shared caches only for an anonymous client.
    r.cache_forever(c.user.is_none());
    crate::downloads::file::send(&site.config, c.repo, &rel_path(oid), r, c.req.range())
        .map(Answer::from)
}

/// `PUT {repo}.git/info/lfs/objects/{oid}`: the object's bytes, kept only if they hash to `oid`.
pub(crate) fn upload<'s>(site: &'s Site, c: &LfsCall<'_>, _: &mut dyn Read) -> Result<Answer<'s>> {
    let oid = oid_of(c)?.to_string();
    let max = site.config.limits.lfs_object_bytes;
    if c.req.content_length().is_some_and(|n| n > max) {
        return Err(too_large(max));
    }
    Ok(Answer::Stream(Box::new(Upload {
        repo: c.repo.clone(),
        oid,
        max,
    })))
}

fn too_large(max: u64) -> Error {
    Error::TooLarge(format!(
        "This object is larger than this server accepts ({} MiB).",
        max >> 20
    ))
}

struct Upload {
    repo: RepoDir,
    oid: String,
    max: u64,
}

impl Stream for Upload {
    fn run(
        self: Box<Self>,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        head_only: bool,
    ) -> io::Result<()> {
        let r = match receive(&self.repo, &self.oid, self.max, input) {
            Ok(()) => Response::new(200),
            Err(e) => super::error_response(e),
        };
        r.write_cgi(out, head_only)
    }
}

/// A temporary file removed when dropped, unless it was moved into place.
struct Temp(Option<PathBuf>);

impl Drop for Temp {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

/// Streams the body into `lfs/tmp/`, hashing it, and renames it into place if it is `oid`.
fn receive(repo: &RepoDir, oid: &str, max: u64, input: &mut dyn Read) -> Result<()> {
    let what = |e: io::Error, doing: &str| {
        Error::internal(
            &format!("{}/{}: LFS upload {oid}: {doing}", repo.owner, repo.name),
            e,
        )
    };
    let tmp_dir = repo.path.join("lfs/tmp");
    make_dirs(&repo.path, &tmp_dir).map_err(|e| what(e, "making lfs/tmp"))?;
    let mut random = [0u8; 8];
    getrandom::getrandom(&mut random).map_err(|e| Error::internal("randomness", e))?;
    let tmp_path = tmp_dir.join(format!("{oid}.{}", crate::fsfile::hex(&random)));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp_path)
        .map_err(|e| what(e, "creating its temporary file"))?;
    let temp = Temp(Some(tmp_path));
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut total: u64 = 0;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The client went away or the body broke off: nothing is kept.
            Err(_) => return Err(Error::BadRequest("the upload ended before its end")),
        };
        total += n as u64;
        if total > max {
            return Err(too_large(max));
        }
        hash.update(&buf[..n]);
        file.write_all(&buf[..n])
            .map_err(|e| what(e, "writing its temporary file"))?;
    }
    let got = crate::fsfile::hex(&hash.finalize());
    if got != oid {
        return Err(Error::Invalid(format!(
            "The uploaded bytes ({total} bytes, SHA-256 {got}) are not object {oid}; nothing was kept."
        )));
    }
    file.sync_all().map_err(|e| what(e, "syncing"))?;
    drop(file);
    let dest = repo.path.join(rel_path(oid));
    if let Some(parent) = dest.parent() {
        make_dirs(&repo.path, parent).map_err(|e| what(e, "making its folder"))?;
    }
    let Some(from) = temp.0.as_ref() else {
        return Err(Error::Internal("an upload lost its temporary file".into()));
    };
    fs::rename(from, &dest).map_err(|e| what(e, "moving it into place"))?;
    let mut temp = temp;
    temp.0 = None;
    if let Some(parent) = dest.parent() {
        if let Ok(d) = File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Makes `dir` and the folders above it up to `root` (which exists), refusing to go through a
/// symlink (a repository's folders are forgelet's own).
fn make_dirs(root: &Path, dir: &Path) -> io::Result<()> {
    let rel = dir
        .strip_prefix(root)
        .map_err(|_| io::Error::other("a folder outside the repository"))?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "{} is not a folder",
                    at.display()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&at) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `POST {repo}.git/info/lfs/verify`: after an upload, whether the object is kept with the size
/// the client expects.
pub(crate) fn verify<'s>(_: &'s Site, c: &LfsCall<'_>, body: &mut dyn Read) -> Result<Answer<'s>> {
    let value = super::batch::read_json(body)?;
    let oid = value
        .get("oid")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let size = value.get("size").and_then(|v| v.as_u64());
    let (true, Some(size)) = (valid_oid(oid), size) else {
        return Err(Error::Invalid(
            "A verify request names an object by \"oid\" (64 hex digits) and \"size\".".into(),
        ));
    };
    match stored_size(c.repo, oid)? {
        Some(kept) if kept == size => Ok(json(200, &serde_json::json!({})).into()),
        Some(kept) => Err(Error::Invalid(format!(
            "Object {oid} is kept with {kept} bytes, not {size}."
        ))),
        None => Err(Error::NotFound),
    }
}
