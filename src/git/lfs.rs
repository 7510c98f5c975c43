//! Git LFS as the repository holds it: pointer files in git, objects in `lfs/objects/`, and the
//! collection of objects no pointer names any more (by maintenance, after a grace period, and by
//! a purge).

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// Pointer files are at most this large (the specification's bound).
pub(crate) const POINTER_MAX: u64 = 1024;

/// The folder of a repository's LFS objects.
pub(crate) const OBJECTS: &str = "lfs/objects";

/// A hex SHA-256 object id as LFS names objects: 64 lower-case hex digits.
pub(crate) fn valid_oid(oid: &str) -> bool {
    oid.len() == 64 && oid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads `data` as a pointer file: `version https://git-lfs.github.com/spec/v1` first, then
/// `key value` lines, among them `oid sha256:{64 hex}` and `size {bytes}`, each line ending in a
/// line feed. The object's id and size; `None` for anything else (it is the file it is).
pub(crate) fn parse_pointer(data: &[u8]) -> Option<(String, u64)> {
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
    let key_char = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    for line in lines {
        let (key, value) = line.split_once(' ')?;
        match key {
            "oid" => oid = Some(value.strip_prefix("sha256:")?.to_string()),
            "size" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                size = Some(value.parse().ok()?)
            }
            "size" => return None,
            k if !k.is_empty() && k.bytes().all(key_char) => {}
            _ => return None,
        }
    }
    let oid = oid.filter(|o| valid_oid(o))?;
    Some((oid, size?))
}

/// The objects kept in `repo`'s `lfs/objects/`, with when each was written.
fn stored(repo: &Path) -> Vec<(String, PathBuf, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![repo.join(OBJECTS)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(t) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() && valid_oid(&name) {
                let written = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                out.push((name, e.path(), written));
            }
        }
    }
    out
}

/// The LFS objects some pointer in `repo`'s object database names (reachable or not: what
/// git still keeps may be needed again), read by `git cat-file` (`git()` makes the command).
fn named(repo: &Path, git: &dyn Fn() -> Command) -> Result<HashSet<String>, String> {
    let list = git()
        .arg("--git-dir")
        .arg(repo)
        .args([
            "cat-file",
            "--batch-all-objects",
            "--unordered",
            "--batch-check=%(objecttype) %(objectsize) %(objectname)",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run git cat-file: {e}"))?;
    if !list.status.success() {
        return Err(format!(
            "git cat-file --batch-all-objects failed ({}): {}",
            list.status,
            String::from_utf8_lossy(&list.stderr).trim()
        ));
    }
    let small: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split(' ');
            let (kind, size, name) = (w.next()?, w.next()?, w.next()?);
            let size: u64 = size.parse().ok()?;
            (kind == "blob" && size <= POINTER_MAX && size > 40).then(|| name.to_string())
        })
        .collect();
    let mut found = HashSet::new();
    if small.is_empty() {
        return Ok(found);
    }
    let mut child = git()
        .arg("--git-dir")
        .arg(repo)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run git cat-file: {e}"))?;
    let stdin = child.stdin.take();
    let writer = std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            for name in small {
                if writeln!(stdin, "{name}").is_err() {
                    break;
                }
            }
        }
    });
    let read = (|| -> Result<(), String> {
        let stdout = child.stdout.take().ok_or("git cat-file has no output")?;
        let mut out = BufReader::new(stdout);
        let mut header = String::new();
        loop {
            header.clear();
            if out.read_line(&mut header).map_err(|e| e.to_string())? == 0 {
                return Ok(());
            }
            let size: usize = match header.trim_end().rsplit(' ').next().map(str::parse) {
                Some(Ok(n)) if header.contains(" blob ") => n,
                _ => continue,
            };
            let mut data = vec![0; size + 1];
            out.read_exact(&mut data).map_err(|e| e.to_string())?;
            data.truncate(size);
            if let Some((oid, _)) = parse_pointer(&data) {
                found.insert(oid);
            }
        }
    })();
    let _ = writer.join();
    let status = child.wait().map_err(|e| e.to_string())?;
    read.map_err(|e| format!("reading git cat-file --batch: {e}"))?;
    if !status.success() {
        return Err(format!("git cat-file --batch failed ({status})"));
    }
    Ok(found)
}

/// Removes the LFS objects of `repo` that no pointer in its object database names and that
/// were written more than `grace` ago (an upload comes before the push that names it); their
/// number and bytes. Nothing to do, and no git run, when the repository has no LFS objects.
pub(crate) fn collect(
    repo: &Path,
    git: &dyn Fn() -> Command,
    grace: Duration,
) -> Result<(u64, u64), String> {
    let cutoff = SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let old: Vec<_> = stored(repo)
        .into_iter()
        .filter(|(_, _, written)| *written < cutoff)
        .collect();
    if old.is_empty() {
        return Ok((0, 0));
    }
    let named = named(repo, git)?;
    let (mut count, mut bytes) = (0, 0);
    for (oid, path, _) in old {
        if named.contains(&oid) {
            continue;
        }
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        match fs::remove_file(&path) {
            Ok(()) => {
                count += 1;
                bytes += size;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", path.display())),
        }
    }
    Ok((count, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn pointers_are_read_exactly() {
        let good =
            format!("version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 12345\n");
        assert_eq!(parse_pointer(good.as_bytes()), Some((OID.into(), 12345)));
        let extended = format!(
            "version https://git-lfs.github.com/spec/v1\next-0-foo sha256:{OID}\noid sha256:{OID}\nsize 1\n"
        );
        assert!(parse_pointer(extended.as_bytes()).is_some());
        for bad in [
            good.trim_end().to_string(),
            good.replace("v1", "v2"),
            good.replace("sha256:", "sha1:"),
            good.replace("12345", "-1"),
            good.replace("12345", ""),
            good.replace(OID, &OID[1..]),
            good.replace("size 12345\n", ""),
            format!("{good}trailing"),
            format!("x{good}"),
            "hello\n".to_string(),
        ] {
            assert_eq!(parse_pointer(bad.as_bytes()), None, "{bad:?}");
        }
        let long = format!("{good}{}", "a b\n".repeat(300));
        assert_eq!(parse_pointer(long.as_bytes()), None);
    }
}
