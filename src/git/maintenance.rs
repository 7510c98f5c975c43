//! Removing what was pushed by mistake. Objects force-pushed away stay readable by id (by
//! `commit/`, `raw/`, a snapshot, a protocol v2 `want`, a dumb client's loose object request),
//! as on GitHub until it collects them; forgelet also keeps reflogs, which hold them. A purge
//! drops them for good: reflogs expired, everything reachable repacked into one pack, the rest
//! pruned.
//!
//! git calls `prune --expire=now` unsafe beside concurrent writers (a push's new objects could be
//! pruned before its refs point at them), so pushes are held off for the length of a purge: each
//! push holds `forgelet-maintenance.lock` shared; a purge first says so in
//! `forgelet-maintenance.status` (pushes that start then get 503), then waits for the exclusive
//! lock, so the pushes already running finish first. Reads go on meanwhile. One purge runs at a
//! time on the whole site (`{data_dir}/purge.lock`). The status file says how far a purge got,
//! for the settings page.
//!
//! The caches follow: a worker's opened repository is opened again once the pack folder changed
//! (see `cache`), the files forgelet made for the web server to send (`forgelet-cache/`) are
//! removed, and so are the repository's answers in the pack cache (`packcache`); no other
//! cache holds objects.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fsfile::{self, FileLock};

/// Held shared by pushes, exclusively by a purge.
const LOCK: &str = "forgelet-maintenance.lock";
/// What a purge is doing or did.
const STATUS: &str = "forgelet-maintenance.status";
/// Held by a purge of this repository from its start to its end.
const PURGING: &str = "forgelet-purge.lock";
/// How long a purge waits for running pushes to finish.
const WAIT_FOR_PUSHES: Duration = Duration::from_secs(600);

/// A push's hold on its repository, released when dropped.
pub(crate) struct PushHold {
    _lock: FileLock,
}

/// The hold a push needs; `Ok(None)` while a purge runs or waits to.
pub(crate) fn hold_for_push(repo: &Path) -> Result<Option<PushHold>, String> {
    if matches!(status(repo), Status::Running { .. }) {
        return Ok(None);
    }
    Ok(fsfile::try_lock_shared(&repo.join(LOCK))?.map(|lock| PushHold { _lock: lock }))
}

/// What the status file says, checked against the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// No purge has run.
    Never,
    /// Waiting for another repository's purge to finish; pushes go on meanwhile.
    Queued { since: u64 },
    /// Running (or waiting for pushes): the step, and when the purge started (Unix time).
    Running { step: String, since: u64 },
    /// Finished at this time.
    Done { at: u64 },
    /// Failed at this time, with git's reason.
    Failed { at: u64, why: String },
}

/// The last purge's status. One that says it runs but holds no lock was interrupted (its
/// process stopped): that is a failure.
pub(crate) fn status(repo: &Path) -> Status {
    let Ok(Some(text)) = fsfile::read_optional(&repo.join(STATUS)) else {
        return Status::Never;
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let (state, at, message) = (
        lines.next().unwrap_or(""),
        lines.next().and_then(|t| t.parse().ok()).unwrap_or(0),
        lines.next().unwrap_or("").to_string(),
    );
    let alive = || !matches!(fsfile::try_lock(&repo.join(PURGING)), Ok(Some(_)));
    match state {
        "queued" if alive() => Status::Queued { since: at },
        "running" => {
            // A running purge holds its lock; nobody holding it means it stopped.
            if alive() {
                Status::Running {
                    step: message,
                    since: at,
                }
            } else {
                Status::Failed {
                    at,
                    why: "the purge was interrupted (its process stopped); run it again".into(),
                }
            }
        }
        "queued" => Status::Failed {
            at,
            why: "the purge was interrupted (its process stopped); run it again".into(),
        },
        "done" => Status::Done { at },
        "failed" => Status::Failed { at, why: message },
        _ => Status::Never,
    }
}

fn write_status(repo: &Path, state: &str, at: u64, message: &str) -> Result<(), String> {
    let message: String = message.chars().filter(|c| !c.is_control()).collect();
    fsfile::replace(
        &repo.join(STATUS),
        format!("{state}\n{at}\n{message}\n").as_bytes(),
        0o644,
    )
}

/// Purges the repository at `repo`: waits for the site's purge lock, holds off pushes, and runs
/// `git` (made by `git`, isolated as every git forgelet runs) for each step. `say` hears each
/// step as it starts.
pub(crate) fn purge(
    data_dir: &Path,
    repo: &Path,
    git: impl Fn() -> Command,
    mut say: impl FnMut(&str),
) -> Result<(), String> {
    let started = crate::time::now();
    let step = |text: &str, say: &mut dyn FnMut(&str)| -> Result<(), String> {
        say(text);
        write_status(repo, "running", started, text)
    };
    let _purging = fsfile::try_lock(&repo.join(PURGING))?
        .ok_or("a purge of this repository is running already")?;
    let site_lock = data_dir.join("purge.lock");
    let _site = match fsfile::try_lock(&site_lock)? {
        Some(l) => l,
        None => {
            say("waiting for other purges to finish");
            write_status(repo, "queued", started, "")?;
            fsfile::lock(&site_lock)?
        }
    };
    // Answers cached from before the purge may hold what it removes: none is used from now
    // on (the generation is raised), and none is left (again at the end, for those made
    // while it ran).
    let pack_cache = crate::packcache::store::Store::new(&data_dir.join("repos"));
    crate::packcache::identity::forget(repo, &pack_cache)?;
    step("waiting for pushes to finish", &mut say)?;
    let until = Instant::now() + WAIT_FOR_PUSHES;
    let _lock = loop {
        if let Some(l) = fsfile::try_lock(&repo.join(LOCK))? {
            break l;
        }
        if Instant::now() >= until {
            let why = format!(
                "pushes were still running after {} minutes",
                WAIT_FOR_PUSHES.as_secs() / 60
            );
            write_status(repo, "failed", crate::time::now(), &why)?;
            return Err(why);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let steps: [(&str, &[&str]); 3] = [
        (
            "expiring the reflogs",
            &[
                "reflog",
                "expire",
                "--expire=now",
                "--expire-unreachable=now",
                "--all",
            ],
        ),
        ("repacking what is reachable", &["repack", "-a", "-d", "-q"]),
        ("pruning the rest", &["prune", "--expire=now"]),
    ];
    for (what, args) in steps {
        step(what, &mut say)?;
        let mut c = git();
        c.arg("--git-dir")
            .arg(repo)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = c.output().map_err(|e| format!("cannot run git: {e}"));
        let failed = match out {
            Ok(o) if o.status.success() => None,
            Ok(o) => Some(format!(
                "git {} failed ({}): {}",
                args[0],
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => Some(e),
        };
        if let Some(why) = failed {
            write_status(repo, "failed", crate::time::now(), &why)?;
            return Err(why);
        }
    }
    // Files made from the repository for the web server to send: none may outlive a purge.
    let cache = repo.join(super::store::CACHE_DIR);
    if cache.exists() {
        if let Err(e) = std::fs::remove_dir_all(&cache) {
            let why = format!("cannot remove {}: {e}", cache.display());
            write_status(repo, "failed", crate::time::now(), &why)?;
            return Err(why);
        }
    }
    if let Err(why) = crate::packcache::identity::forget(repo, &pack_cache) {
        write_status(repo, "failed", crate::time::now(), &why)?;
        return Err(why);
    }
    write_status(repo, "done", crate::time::now(), "")?;
    say("done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git_in(dir: &Path) -> Command {
        let mut c = Command::new("git");
        c.current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.org")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.org");
        c
    }

    #[test]
    fn pushes_wait_for_a_purge_and_a_purge_for_pushes() {
        let root = std::env::temp_dir().join(format!("forgelet-purge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let work = root.join("repos/alice/work");
        std::fs::create_dir_all(&work).unwrap();
        assert!(git_in(&work)
            .args(["init", "-q"])
            .status()
            .unwrap()
            .success());
        assert!(git_in(&work)
            .args(["commit", "-q", "--allow-empty", "-m", "one"])
            .status()
            .unwrap()
            .success());
        let repo = work.join(".git");
        assert_eq!(status(&repo), Status::Never);

        let push = hold_for_push(&repo).unwrap().expect("no purge yet");
        std::thread::scope(|s| {
            let purging = s.spawn(|| purge(&root, &repo, || git_in(&work), |_| {}));
            // The purge says it waits for the push; new pushes are held off meanwhile.
            let until = Instant::now() + Duration::from_secs(20);
            while !matches!(
                status(&repo),
                Status::Running { ref step, .. } if step == "waiting for pushes to finish"
            ) {
                assert!(Instant::now() < until, "{:?}", status(&repo));
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(hold_for_push(&repo).unwrap().is_none());
            std::thread::sleep(Duration::from_millis(200));
            assert!(
                !purging.is_finished(),
                "the purge did not wait for the push"
            );
            drop(push);
            purging.join().unwrap().unwrap();
        });
        assert!(matches!(status(&repo), Status::Done { .. }));
        assert!(hold_for_push(&repo).unwrap().is_some());

        // A purge whose process stopped reads as failed, and pushes go on.
        write_status(&repo, "running", 1, "repacking what is reachable").unwrap();
        assert!(
            matches!(status(&repo), Status::Failed { ref why, .. } if why.contains("interrupted"))
        );
        assert!(hold_for_push(&repo).unwrap().is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
