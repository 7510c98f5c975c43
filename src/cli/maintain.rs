//! `forgelet maintain [OWNER/NAME]`: keeps repositories in shape (see `git::maintenance`): one
//! repository, or every repository and then the site's trash and pack cache. The timer
//! (`deploy/forgelet-maintain.timer`) runs it with no argument; a push starts
//! `forgelet maintain --auto OWNER/NAME` (see `repos::start_maintenance`), which does the cheap
//! geometric repack and leaves the repository to a run under way. Runs at a low CPU and I/O
//! priority, which the git it runs inherits.

use std::path::Path;

use super::args::Args;
use super::{check_owner, repo_error, usage_error, with_config, Outcome};
use crate::config::Config;
use crate::git::maintenance::{self, Kind, Plan};
use crate::git::{RepoDir, RepoStore};
use crate::gitrun::GitRunner;
use crate::repos;

/// The nice value maintenance runs at (at least).
const NICE: i32 = 10;

/// `forgelet maintain ...`, with `words` the words after `maintain`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let a = match Args::parse(words, &["--auto"], &[], "maintain") {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let auto = a.flag("--auto");
    match a.positional.as_slice() {
        [] if auto => usage_error("maintain --auto takes OWNER/NAME"),
        [] => with_config(config_path, all),
        [name] => with_config(config_path, |c| one(c, name, auto)),
        [_, extra, ..] => usage_error(&format!(
            "maintain takes at most one OWNER/NAME, found also {extra:?}"
        )),
    }
}

/// Lowers this process's CPU priority to [`NICE`] (unless it is lower already) and its I/O
/// priority to idle; what it starts inherits both. Best effort: maintenance runs either way.
fn lower_priority() {
    // SAFETY: getpriority and setpriority on this process; no memory is passed.
    unsafe {
        let now = libc::getpriority(libc::PRIO_PROCESS as _, 0);
        if now < NICE {
            libc::setpriority(libc::PRIO_PROCESS as _, 0, NICE);
        }
    }
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    // SAFETY: ioprio_set takes three integers; no memory is passed.
    unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0 as libc::c_long,
            IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT,
        );
    }
}

fn plan(config: &Config, kind: Kind, wait: bool) -> Plan {
    Plan {
        kind,
        wait,
        cruft_days: config.maintenance.cruft_days,
        stale_after: config.limits.git_deadline,
        at_once: config.maintenance.at_once,
    }
}

/// Maintains one repository, printing each step (`OWNER/NAME: step`).
fn maintain_repo(
    config: &Config,
    runner: &GitRunner,
    repo: &RepoDir,
    plan: &Plan,
) -> Result<(), String> {
    let label = format!("{}/{}", repo.owner, repo.name);
    // A run a push started prints nowhere: its failure is said here, by the next run, once
    // this run has ended (and not when this run failed the same way: that says it already).
    let earlier =
        maintenance::last_maintenance(&repo.path).filter(|(state, _)| state.starts_with("failed"));
    let outcome = maintenance::maintain(
        &config.data_dir,
        &repo.path,
        plan,
        || runner.git(),
        |step| println!("{label}: {step}"),
    );
    if let Some((state, at)) = earlier {
        let same = match &outcome {
            // (The status file keeps the reason without its control characters.)
            Err(e) => {
                let e: String = e.chars().filter(|c| !c.is_control()).collect();
                state.strip_prefix("failed: ") == Some(e.as_str())
            }
            Ok(_) => false,
        };
        if !same {
            eprintln!(
                "forgelet: {label}: the maintenance before this one (at {} UTC) {state}",
                crate::time::date(at as i64, 0)
            );
        }
    }
    let outcome = outcome.map_err(|e| format!("{label}: {e}"))?;
    if let maintenance::Outcome::Skipped(why) = outcome {
        println!("{label}: skipped: {why}");
    }
    Ok(())
}

/// `forgelet maintain OWNER/NAME` (waits for a run of it under way, then does the full
/// repack), or with `--auto` what a push starts (skipped when another run has it in hand or
/// the push left nothing worth the work).
fn one(config: &Config, full: &str, auto: bool) -> Outcome {
    let (owner, name) = repos::parse_full_name(full).map_err(repo_error)?;
    check_owner(config)?;
    let repo =
        repos::locate(&RepoStore::new(config.repos_dir()), &owner, &name).map_err(repo_error)?;
    lower_priority();
    let runner = GitRunner::new(config);
    if auto {
        let m = &config.maintenance;
        if !maintenance::worth_maintaining(&repo.path, m.auto_packs, m.auto_loose) {
            println!(
                "{}/{}: skipped: nothing worth maintaining, or its maintenance runs already",
                repo.owner, repo.name
            );
            return Ok(());
        }
        return maintain_repo(config, &runner, &repo, &plan(config, Kind::Auto, false));
    }
    maintain_repo(config, &runner, &repo, &plan(config, Kind::Full, true))
}

/// `forgelet maintain`: every repository (a failure is reported and the others go on), then
/// the trash past `[maintenance] trash_days` and the pack cache's leftovers past the git
/// deadline.
fn all(config: &Config) -> Outcome {
    check_owner(config)?;
    lower_priority();
    let runner = GitRunner::new(config);
    let store = RepoStore::new(config.repos_dir());
    let list = repos::list(&store).map_err(repo_error)?;
    let plan = plan(config, Kind::Full, true);
    let mut failed = Vec::new();
    for repo in &list {
        if let Err(e) = maintain_repo(config, &runner, repo, &plan) {
            eprintln!("forgelet: {e}");
            failed.push(format!("{}/{}", repo.owner, repo.name));
        }
    }
    match repos::remove_stale_temps(config) {
        Ok(gone) => {
            for path in gone {
                println!(
                    "removed {}, left by a write that was stopped",
                    path.display()
                );
            }
        }
        Err(e) => {
            eprintln!("forgelet: {e}");
            failed.push("the data directory's temporary files".into());
        }
    }
    match repos::empty_trash(config, config.maintenance.trash_days) {
        Ok(gone) => {
            for path in gone {
                println!("trash: removed {}", path.display());
            }
        }
        Err(e) => {
            eprintln!("forgelet: trash: {e}");
            failed.push("the trash".into());
        }
    }
    // Answers unused for [pack_cache] max_age_days are taken out, and what was taken out (or
    // left by a writer that died) long enough ago for no web server to be about to open it
    // is deleted.
    let cache = crate::packcache::store::Store::new(&config.pack_cache.dir);
    let expired = cache.expire(config.pack_cache.max_age);
    if expired > 0 {
        println!(
            "pack cache: took out {expired} answers unused for {} days",
            config.pack_cache.max_age.as_secs() / 86_400
        );
    }
    match cache.sweep(crate::packcache::SWEEP_GRACE) {
        Ok(0) => {}
        Ok(n) => println!("pack cache: removed {n} files left over"),
        Err(e) => {
            eprintln!("forgelet: pack cache: {e}");
            failed.push("the pack cache".into());
        }
    }
    println!(
        "maintained {} of {} repositories",
        list.len()
            .saturating_sub(failed.iter().filter(|f| f.contains('/')).count()),
        list.len()
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("maintenance failed for {}", failed.join(", ")))
    }
}
