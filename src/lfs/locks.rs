//! Git LFS file locks (`git lfs lock`, `unlock`, `locks`, and the `locks/verify` git-lfs asks
//! before every push): kept per repository in `lfs/locks.json`, replaced whole under
//! `lfs/locks.lock` so two writers never lose a lock. Every route needs write access; a lock
//! belongs to the user who made it, and only that user, the repository's owner or a site admin
//! (with `force`) may remove it.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::batch::read_json;
use super::{json as answer, LfsCall};
use crate::error::{Error, Result};
use crate::fsfile;
use crate::git::RepoDir;
use crate::response::Answer;
use crate::site::Site;

/// Locks one repository may hold.
const LOCKS_MAX: usize = 10_000;
/// Locks one answer lists at most (a client's `limit` may ask for fewer).
const PAGE_MAX: usize = 100;
/// The longest path a lock may name, in bytes.
const PATH_MAX: usize = 4096;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Lock {
    id: String,
    path: String,
    locked_at: String,
    owner: String,
}

impl Lock {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "path": self.path,
            "locked_at": self.locked_at,
            "owner": { "name": self.owner },
        })
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct LockFile {
    locks: Vec<Lock>,
}

fn file(repo: &RepoDir) -> PathBuf {
    repo.path.join("lfs/locks.json")
}

fn load(repo: &RepoDir) -> Result<LockFile> {
    let path = file(repo);
    match fsfile::read_optional(&path).map_err(Error::Internal)? {
        None => Ok(LockFile::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::Internal(format!("{}: not a valid locks file: {e}", path.display()))
        }),
    }
}

/// Runs `change` on the repository's locks under its lock file and saves them if it succeeds.
fn update<T>(repo: &RepoDir, change: impl FnOnce(&mut LockFile) -> Result<T>) -> Result<T> {
    let dir = repo.path.join("lfs");
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Internal(format!(
                "{} is not a folder",
                dir.display()
            )))
        }
        Err(_) => std::fs::create_dir(&dir)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| Error::internal(&format!("making {}", dir.display()), e))?,
    }
    let _held = fsfile::lock(&dir.join("locks.lock")).map_err(Error::Internal)?;
    let mut locks = load(repo)?;
    let out = change(&mut locks)?;
    let bytes =
        serde_json::to_vec_pretty(&locks).map_err(|e| Error::internal("writing the locks", e))?;
    fsfile::replace(&file(repo), &bytes, 0o644).map_err(Error::Internal)?;
    Ok(out)
}

fn user<'c>(c: &'c LfsCall<'_>) -> Result<&'c str> {
    // Write access is never given to an anonymous client, so this is a signed-in user.
    c.user
        .ok_or_else(|| Error::Forbidden("Locks are for signed-in users.".into()))
}

/// `limit` and `cursor` of a listing: how many after which position.
fn page_of(limit: Option<u64>, cursor: Option<&str>) -> Result<(usize, usize)> {
    let limit = limit.map_or(PAGE_MAX, |l| (l as usize).clamp(1, PAGE_MAX));
    let start = match cursor {
        None | Some("") => 0,
        Some(c) => c
            .parse()
            .map_err(|_| Error::Invalid("\"cursor\" is not one this server gave.".into()))?,
    };
    Ok((limit, start))
}

fn next_cursor(start: usize, limit: usize, total: usize) -> Value {
    if start + limit < total {
        Value::from((start + limit).to_string())
    } else {
        Value::from("")
    }
}

/// `GET {repo}.git/info/lfs/locks?path=&id=&cursor=&limit=`.
pub(crate) fn list<'s>(_: &'s Site, c: &LfsCall<'_>, _: &mut dyn Read) -> Result<Answer<'s>> {
    let q = |name| c.req.query_param(name);
    let limit = match q("limit") {
        Some(l) => Some(
            l.parse()
                .map_err(|_| Error::Invalid("\"limit\" is not a number.".into()))?,
        ),
        None => None,
    };
    let (limit, start) = page_of(limit, q("cursor").as_deref())?;
    let (path, id) = (q("path"), q("id"));
    let all = load(c.repo)?;
    let found: Vec<&Lock> = all
        .locks
        .iter()
        .filter(|l| path.as_deref().map_or(true, |p| l.path == p))
        .filter(|l| id.as_deref().map_or(true, |i| l.id == i))
        .collect();
    let locks: Vec<Value> = found
        .iter()
        .skip(start)
        .take(limit)
        .map(|l| l.to_json())
        .collect();
    Ok(answer(
        200,
        &json!({ "locks": locks, "next_cursor": next_cursor(start, limit, found.len()) }),
    )
    .into())
}

/// `POST {repo}.git/info/lfs/locks` `{"path": ...}`: a lock of that path for the client.
pub(crate) fn create<'s>(_: &'s Site, c: &LfsCall<'_>, body: &mut dyn Read) -> Result<Answer<'s>> {
    let owner = user(c)?.to_string();
    let request = read_json(body)?;
    let path = request
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if path.is_empty() || path.len() > PATH_MAX || path.contains('\0') {
        return Err(Error::Invalid(format!(
            "A lock names a \"path\" of 1 to {PATH_MAX} bytes."
        )));
    }
    let mut random = [0u8; 12];
    getrandom::getrandom(&mut random).map_err(|e| Error::internal("randomness", e))?;
    let made = update(c.repo, |locks| {
        if let Some(held) = locks.locks.iter().find(|l| l.path == path) {
            return Ok(Err(held.clone()));
        }
        if locks.locks.len() >= LOCKS_MAX {
            return Err(Error::Conflict(format!(
                "This repository holds {LOCKS_MAX} locks, as many as it may."
            )));
        }
        let lock = Lock {
            id: fsfile::hex(&random),
            path: path.clone(),
            locked_at: crate::time::stamp(crate::time::now() as i64, 0).iso,
            owner: owner.clone(),
        };
        locks.locks.push(lock.clone());
        Ok(Ok(lock))
    })?;
    Ok(match made {
        Ok(lock) => answer(201, &json!({ "lock": lock.to_json() })),
        Err(held) => answer(
            409,
            &json!({ "lock": held.to_json(), "message": format!("{} is already locked by {}.", held.path, held.owner) }),
        ),
    }
    .into())
}

/// `POST {repo}.git/info/lfs/locks/verify`: the locks, split into the client's and others'.
pub(crate) fn verify<'s>(_: &'s Site, c: &LfsCall<'_>, body: &mut dyn Read) -> Result<Answer<'s>> {
    let me = user(c)?;
    let request = read_json(body)?;
    let (limit, start) = page_of(
        request.get("limit").and_then(Value::as_u64),
        request.get("cursor").and_then(Value::as_str),
    )?;
    let all = load(c.repo)?;
    let page: Vec<&Lock> = all.locks.iter().skip(start).take(limit).collect();
    let ours: Vec<Value> = page
        .iter()
        .filter(|l| l.owner == me)
        .map(|l| l.to_json())
        .collect();
    let theirs: Vec<Value> = page
        .iter()
        .filter(|l| l.owner != me)
        .map(|l| l.to_json())
        .collect();
    Ok(answer(
        200,
        &json!({ "ours": ours, "theirs": theirs, "next_cursor": next_cursor(start, limit, all.locks.len()) }),
    )
    .into())
}

/// `POST {repo}.git/info/lfs/locks/{id}/unlock` `{"force": bool}`.
pub(crate) fn unlock<'s>(_: &'s Site, c: &LfsCall<'_>, body: &mut dyn Read) -> Result<Answer<'s>> {
    let me = user(c)?.to_string();
    let id = c
        .caps
        .rest
        .first()
        .cloned()
        .filter(|i| !i.is_empty() && i.len() <= 64 && i.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(Error::NotFound)?;
    let request = read_json(body)?;
    let force = request
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let may_break = c.manage;
    let removed = update(c.repo, |locks| {
        let Some(at) = locks.locks.iter().position(|l| l.id == id) else {
            return Err(Error::NotFound);
        };
        let lock = &locks.locks[at];
        if lock.owner != me {
            if !force {
                return Err(Error::Forbidden(format!(
                    "{} is locked by {}; only they may unlock it (the repository's owner or an admin may break it with --force).",
                    lock.path, lock.owner
                )));
            }
            if !may_break {
                return Err(Error::Forbidden(format!(
                    "{} is locked by {}; only the repository's owner or an admin may break another user's lock.",
                    lock.path, lock.owner
                )));
            }
        }
        Ok(locks.locks.remove(at))
    })?;
    Ok(answer(200, &json!({ "lock": removed.to_json() })).into())
}
