//! git work over SSH counted across processes. Each SSH session is a process of its own, so
//! the slots of one server process (`gitrun::slots`) cannot count them; lock files can. A
//! session holds one of `[server] git_workers` lock files (`{data_dir}/run/ssh-slot-N`) and one
//! of its user's share (`{data_dir}/run/ssh-user-NAME-N`, as many as `[server] git_per_address`
//! gives one address over HTTP; 0 for no share) with `flock` while git runs. A session that
//! ends in any way, a crash included, lets go of them: the kernel releases a lock with the
//! process's last descriptor of the file, and the files are opened close-on-exec, so git and
//! what it starts never hold them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::fsfile::{self, FileLock};

/// How often a session that waits for a slot tries again.
const POLL: Duration = Duration::from_millis(100);

/// The slots a session holds; given back when dropped.
pub(crate) struct Held {
    _site: FileLock,
    _user: Option<FileLock>,
}

/// Why no slot was taken.
#[derive(Debug)]
pub(crate) enum NoSlot {
    /// Every slot (of the site, or of the user's share) stayed taken while the session waited.
    Busy,
    /// A lock file could not be made or locked.
    Failed(String),
}

/// The folder the lock files live in.
pub(crate) fn run_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("run")
}

/// The lock file of the site's slot `n`.
pub(crate) fn site_slot(data_dir: &Path, n: usize) -> PathBuf {
    run_dir(data_dir).join(format!("ssh-slot-{n}"))
}

/// The lock file of `user`'s slot `n` (names are unique ignoring case, so the file is named in
/// lower case).
pub(crate) fn user_slot(data_dir: &Path, user: &str, n: usize) -> PathBuf {
    run_dir(data_dir).join(format!("ssh-user-{}-{n}", user.to_ascii_lowercase()))
}

/// A slot of the site's `total` and one of `user`'s `share` (none when `share` is 0), waiting
/// up to `wait` for them to come free.
pub(crate) fn acquire(
    data_dir: &Path,
    total: usize,
    share: usize,
    user: &str,
    wait: Duration,
) -> Result<Held, NoSlot> {
    let dir = run_dir(data_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| NoSlot::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let until = Instant::now() + wait;
    loop {
        // The user's share first: a user at their share waits without taking a site slot.
        let user_lock = if share == 0 {
            Some(None)
        } else {
            first_free((0..share).map(|n| user_slot(data_dir, user, n)))?.map(Some)
        };
        if let Some(user_lock) = user_lock {
            if let Some(site) = first_free((0..total).map(|n| site_slot(data_dir, n)))? {
                return Ok(Held {
                    _site: site,
                    _user: user_lock,
                });
            }
        }
        if Instant::now() >= until {
            return Err(NoSlot::Busy);
        }
        std::thread::sleep(POLL);
    }
}

/// The first of `files` whose lock is free, locked.
fn first_free(files: impl Iterator<Item = PathBuf>) -> Result<Option<FileLock>, NoSlot> {
    for file in files {
        if let Some(lock) = fsfile::try_lock(&file).map_err(NoSlot::Failed)? {
            return Ok(Some(lock));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_share_the_site_slots_and_each_user_their_own() {
        let dir = std::env::temp_dir().join(format!("forgelet-ssh-slots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let now = Duration::ZERO;
        let a1 = acquire(&dir, 3, 2, "alice", now).unwrap();
        let _a2 = acquire(&dir, 3, 2, "Alice", now).unwrap();
        // alice holds her share, whatever the case of her name.
        assert!(matches!(
            acquire(&dir, 3, 2, "ALICE", now),
            Err(NoSlot::Busy)
        ));
        let _b = acquire(&dir, 3, 2, "bob", now).unwrap();
        // Every site slot is taken.
        assert!(matches!(
            acquire(&dir, 3, 2, "carol", now),
            Err(NoSlot::Busy)
        ));
        // One given back is taken by the next who waits for it.
        let waiter = std::thread::spawn({
            let dir = dir.clone();
            move || acquire(&dir, 3, 2, "carol", Duration::from_secs(10)).is_ok()
        });
        std::thread::sleep(Duration::from_millis(150));
        drop(a1);
        assert!(waiter.join().unwrap());
        // No share: one user may take every slot.
        let _ = std::fs::remove_dir_all(&dir);
        let all: Vec<Held> = (0..3)
            .map(|_| acquire(&dir, 3, 0, "alice", now).unwrap())
            .collect();
        assert!(matches!(
            acquire(&dir, 3, 0, "alice", now),
            Err(NoSlot::Busy)
        ));
        drop(all);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
