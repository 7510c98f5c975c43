//! The dumb protocol's generated files: `info/refs`, `HEAD` and `objects/info/packs`, made from the
//! repository as it is (`info/refs` once per change of the refs), so they are never stale and no
//! `update-server-info` hook is needed.

use std::fs;
use std::io;
use std::path::Path;
use std::time::SystemTime;

use git2::{ObjectType, Oid, Repository};

use super::GitCall;
use crate::config::{Config, Handoff};
use crate::error::{Error, Result as PageResult};
use crate::git::refs::RefSnapshot;
use crate::git::RepoDir;
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::site::{open, refs_of};

use crate::git::store::CACHE_DIR;
/// Older files of a kind are removed once this many newer ones exist and they are this old.
const CACHE_KEEP: usize = 3;
const CACHE_KEEP_SECS: u64 = 60;

/// `GET info/refs` (dumb): the ref list made once per change of the refs. With a sendfile header
/// configured, it is written once to a file in the repository's [`CACHE_DIR`], named by its
/// content, and the web server sends that file (with sendfile, not through forgelet); else it is
/// sent from memory.
fn info_refs_response(
    config: &Config,
    repo: &RepoDir,
    git: &Repository,
    snap: &RefSnapshot,
) -> PageResult<Response> {
    let label = format!("{}/{}", repo.owner, repo.name);
    let body = snap
        .info_refs(|s| ref_list(git, s, &label))
        .map_err(|e| Error::internal(&label, e.message()))?;
    let mut r = Response::new(200);
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.no_cache();
    if config.sendfile == Handoff::None {
        r.body = crate::response::Body::Bytes(body.to_vec());
        return Ok(r);
    }
    let file = snap.derived(
        "info-refs-file",
        |_| -> std::result::Result<String, String> { write_cached(&repo.path, "info-refs", body) },
    );
    match file {
        Ok(name) => {
            match config.sendfile {
                Handoff::XAccelRedirect => r.header(
                    "X-Accel-Redirect",
                    format!(
                        "{}/{}/{}.git/{CACHE_DIR}/{name}",
                        config.internal_prefix, repo.owner, repo.name
                    ),
                ),
                _ => r.header(
                    "X-Sendfile",
                    repo.path
                        .join(CACHE_DIR)
                        .join(name.as_str())
                        .to_string_lossy()
                        .into_owned(),
                ),
            }
            Ok(r)
        }
        Err(e) => {
            log::warn!("{label}: cannot keep info/refs for the web server to send: {e}");
            r.body = crate::response::Body::Bytes(body.to_vec());
            Ok(r)
        }
    }
}

/// `GET info/refs` without `?service=` (the dumb protocol); a service git does not have is
/// refused, as git's own http-backend does.
pub(crate) fn info_refs<'s>(site: &'s Site, c: &GitCall<'_>) -> PageResult<Answer<'s>> {
    if c.req.query_param("service").is_some() {
        return Err(Error::Forbidden("Unsupported service.".into()));
    }
    let git = open(c.repo)?;
    let snap = refs_of(c.repo)?;
    info_refs_response(&site.config, c.repo, &git, &snap).map(Answer::from)
}

/// `GET HEAD`.
pub(crate) fn head<'s>(_site: &'s Site, c: &GitCall<'_>) -> PageResult<Answer<'s>> {
    let git = open(c.repo)?;
    let body = head_file(&git).map_err(|e| Error::internal(&label(c.repo), e.message()))?;
    Ok(generated("text/plain", body).into())
}

/// `GET objects/info/packs`.
pub(crate) fn packs<'s>(_site: &'s Site, c: &GitCall<'_>) -> PageResult<Answer<'s>> {
    let body = packs_list(&c.repo.path).map_err(|e| Error::internal(&label(c.repo), e))?;
    Ok(generated("text/plain; charset=utf-8", body).into())
}

/// A generated, changing git file: never cached.
fn generated(content_type: &str, body: Vec<u8>) -> Response {
    let mut r = Response::bytes(200, content_type, body);
    r.no_cache();
    r
}

fn label(repo: &RepoDir) -> String {
    format!("{}/{}", repo.owner, repo.name)
}

/// Writes `bytes` to `{repo}/{CACHE_DIR}/{kind}-{hash of bytes}` (unless that file is there
/// already) and removes older files of the kind; the file's name.
fn write_cached(repo: &Path, kind: &str, bytes: &[u8]) -> std::result::Result<String, String> {
    let dir = repo.join(CACHE_DIR);
    let hash = crate::keyed::keyed_hash(b"forgelet-cache", kind, bytes);
    let name = format!("{kind}-{}", &hash[..32]);
    let path = dir.join(&name);
    if !path.is_file() {
        fs::create_dir_all(&dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
        crate::fsfile::replace(&path, bytes, 0o644)?;
    }
    // Older files go once newer ones replaced them a while ago: a request given an older name
    // a moment ago still finds its file.
    let prefix = format!("{kind}-");
    let mut older: Vec<(SystemTime, std::path::PathBuf)> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n != name)
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    older.sort_by_key(|o| std::cmp::Reverse(o.0));
    for (at, old) in older.into_iter().skip(CACHE_KEEP.saturating_sub(1)) {
        let age = at.elapsed().unwrap_or_default();
        if age.as_secs() >= CACHE_KEEP_SECS {
            let _ = fs::remove_file(old);
        }
    }
    Ok(name)
}

/// `info/refs` exactly as `git update-server-info` writes it: every ref under `refs/` sorted by
/// name, `<oid>\t<name>\n`, and for an annotated tag a second line with the fully peeled object,
/// `<oid>\t<name>^{}\n`. Refs whose object is missing are left out (and logged). Made from a
/// snapshot of the refs, once per snapshot (see `RefSnapshot::info_refs`); peeled tags come from
/// `packed-refs` where git recorded them.
pub(crate) fn ref_list(
    repo: &Repository,
    snap: &RefSnapshot,
    label: &str,
) -> Result<Vec<u8>, git2::Error> {
    let odb = repo.odb()?;
    let mut out = Vec::with_capacity(snap.refs.len() * 64);
    for r in &snap.refs {
        let name = &r.name;
        if let Some(peeled) = r.peeled {
            push_line(&mut out, r.target, name, b"");
            push_line(&mut out, peeled, name, b"^{}");
            continue;
        }
        let kind = match odb.read_header(r.target) {
            Ok((_, kind)) => kind,
            Err(e) => {
                log::warn!(
                    "{label}: ref {} points at missing object {}: {}",
                    String::from_utf8_lossy(name),
                    r.target,
                    e.message()
                );
                continue;
            }
        };
        push_line(&mut out, r.target, name, b"");
        if kind == ObjectType::Tag {
            let mut obj = repo.find_object(r.target, Some(ObjectType::Tag))?;
            while obj.kind() == Some(ObjectType::Tag) {
                match obj.peel(ObjectType::Any) {
                    Ok(next) => obj = next,
                    Err(e) => {
                        log::warn!(
                            "{label}: tag {} cannot be peeled: {}",
                            String::from_utf8_lossy(name),
                            e.message()
                        );
                        break;
                    }
                }
            }
            if obj.kind() != Some(ObjectType::Tag) {
                push_line(&mut out, obj.id(), name, b"^{}");
            }
        }
    }
    Ok(out)
}

fn push_line(out: &mut Vec<u8>, oid: Oid, name: &[u8], suffix: &[u8]) {
    out.extend_from_slice(oid.to_string().as_bytes());
    out.push(b'\t');
    out.extend_from_slice(name);
    out.extend_from_slice(suffix);
    out.push(b'\n');
}

/// `HEAD` as git's http-backend sends it: `ref: <target>\n` for a symbolic HEAD (unborn too),
/// else the object id.
pub(crate) fn head_file(repo: &Repository) -> Result<Vec<u8>, git2::Error> {
    let head = repo.find_reference("HEAD")?;
    let line = match head.symbolic_target_bytes() {
        Some(target) => {
            let mut l = b"ref: ".to_vec();
            l.extend_from_slice(target);
            l
        }
        None => head
            .target()
            .map(|o| o.to_string().into_bytes())
            .unwrap_or_default(),
    };
    let mut out = line;
    out.push(b'\n');
    Ok(out)
}

/// `objects/info/packs`: a `P pack-<id>.pack` line for every pack that has its index, newest first,
/// then an empty line.
pub(crate) fn packs_list(repo_dir: &Path) -> io::Result<Vec<u8>> {
    let dir = repo_dir.join("objects").join("pack");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(b"\n".to_vec()),
        Err(e) => return Err(e),
    };
    let mut packs: Vec<(SystemTime, String)> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !is_pack_name(&name, ".pack") {
            continue;
        }
        let meta = entry.metadata()?;
        let idx = dir.join(name.replace(".pack", ".idx"));
        let has_idx = fs::symlink_metadata(&idx)
            .map(|m| m.is_file())
            .unwrap_or(false);
        if meta.is_file() && has_idx {
            packs.push((meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), name));
        }
    }
    packs.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = Vec::new();
    for (_, name) in packs {
        out.extend_from_slice(b"P ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    Ok(out)
}

/// `pack-<40 hex>{ext}`.
pub(crate) fn is_pack_name(name: &str, ext: &str) -> bool {
    name.strip_prefix("pack-")
        .and_then(|r| r.strip_suffix(ext))
        .is_some_and(|h| is_hex(h, 40))
}

/// Exactly `len` lowercase hex digits.
pub(crate) fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let h = "0123456789abcdef0123456789abcdef01234567";
        assert!(is_pack_name(&format!("pack-{h}.pack"), ".pack"));
        assert!(is_pack_name(&format!("pack-{h}.idx"), ".idx"));
        assert!(!is_pack_name(&format!("pack-{h}.idx"), ".pack"));
        assert!(!is_pack_name(
            &format!("pack-{}.pack", h.to_uppercase()),
            ".pack"
        ));
        assert!(!is_pack_name("pack-../x.pack", ".pack"));
        assert!(is_hex("ab", 2) && !is_hex("ag", 2) && !is_hex("abc", 2));
    }
}
