//! The SSH key index (`[ssh] key_index`): the one file `forgelet ssh-keys`, run by sshd as an
//! unprivileged user, reads to answer "whose key is this". It holds one line per key, `ID TYPE
//! BASE64`, sorted by id, after a comment line: no user names and nothing secret, so it is
//! world-readable (0644), and the users file and the site secret can stay the data directory
//! owner's alone.
//!
//! It is written whole, atomically, by every change to a key (under the users lock, before the
//! users file: see `Locked::save`) and by `forgelet key reindex`. It only narrows what sshd lets
//! in: `forgelet ssh-serve` finds the key's user by its id in users.toml, so a line left over
//! for a key removed from users.toml lets no one in.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use super::users::{valid_key_id, Users};
use crate::fsfile;

const HEADER: &str = "# forgelet SSH key index: ID TYPE BASE64, sorted by id. Written by forgelet; `forgelet key reindex` rewrites it from users.toml.\n";

/// Every key of `users` as the index holds it: `(id, "TYPE BASE64")`, sorted by id.
pub(crate) fn entries(users: &Users) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = users
        .iter()
        .flat_map(|u| u.ssh_keys.iter().map(|k| (k.id.clone(), k.key.clone())))
        .collect();
    all.sort();
    all
}

/// Writes the index at `path` holding `entries` (from [`entries`]): atomic replace, mode 0644,
/// the folder made (0755) when missing. The error names the file and says what to do.
pub(crate) fn write(path: &Path, entries: &[(String, String)]) -> Result<(), String> {
    let mut text = String::from(HEADER);
    for (id, key) in entries {
        text.push_str(id);
        text.push(' ');
        text.push_str(key);
        text.push('\n');
    }
    let failed = |e: String| {
        let dir = path.parent().unwrap_or(Path::new("/"));
        format!(
            "cannot write the SSH key index {}: {e}. Make {} writable by the user forgelet runs as (for example `install -d -o forgelet -m 0755 {}`), or name another file in [ssh] key_index; nothing was changed",
            path.display(),
            dir.display(),
            dir.display()
        )
    };
    if let Some(dir) = path.parent() {
        if !dir.is_dir() {
            make_dir(dir).map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
        }
    }
    fsfile::replace(path, text.as_bytes(), 0o644).map_err(failed)
}

/// Makes `dir` and its missing parents, 0755 whatever the umask.
fn make_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(0o755).create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
}

/// The id of the key `kind base64`, whose id is `id`, when the index's text holds it: a binary
/// search on the sorted lines, then the whole key compared, not only its id.
pub(crate) fn find<'t>(text: &'t str, id: &str, kind: &str, base64: &str) -> Option<&'t str> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    let id_of = |l: &str| l.split(' ').next().unwrap_or("").to_string();
    let first = lines.partition_point(|l| id_of(l).as_str() < id);
    // Ids are unique in users.toml; every line with the id is looked at all the same, in case
    // the file was edited by hand.
    lines[first..]
        .iter()
        .take_while(|l| id_of(l) == id)
        .find_map(|l| {
            let mut words = l.split(' ');
            let (lid, t, k) = (words.next()?, words.next()?, words.next()?);
            (valid_key_id(lid) && t == kind && k == base64 && words.next().is_none()).then_some(lid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_index_is_sorted_world_readable_and_found_by_id() {
        let d = std::env::temp_dir().join(format!("forgelet-key-index-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let path = d.join("ssh").join("keys");
        let entries: Vec<(String, String)> = vec![
            ("0a".repeat(12), "ssh-ed25519 AAAA1".into()),
            ("1b".repeat(12), "ssh-rsa AAAA2".into()),
            ("ff".repeat(12), "ssh-ed25519 AAAA3".into()),
        ];
        write(&path, &entries).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!(
            fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777,
            0o755
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# forgelet SSH key index"));
        for (id, key) in &entries {
            let (kind, b64) = key.split_once(' ').unwrap();
            assert_eq!(find(&text, id, kind, b64), Some(id.as_str()), "{id}");
            // Same id, another key: not found.
            assert_eq!(find(&text, id, kind, "AAAA9"), None);
            assert_eq!(find(&text, id, "ecdsa-sha2-nistp256", b64), None);
        }
        assert_eq!(find(&text, &"0c".repeat(12), "ssh-ed25519", "AAAA1"), None);
        write(&path, &[]).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), HEADER);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_index_that_cannot_be_written_says_where_and_what_to_do() {
        let d = std::env::temp_dir().join(format!("forgelet-key-index-ro-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        // A file where the folder should be: fails even for root.
        fs::write(d.join("ssh"), "").unwrap();
        let e = write(&d.join("ssh").join("keys"), &[]).unwrap_err();
        assert!(e.contains("cannot write the SSH key index"), "{e}");
        assert!(e.contains(&format!("{}/ssh/keys", d.display())), "{e}");
        assert!(e.contains("[ssh] key_index"), "{e}");
        fs::remove_dir_all(&d).unwrap();
    }
}
