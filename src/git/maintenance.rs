//! Removing what was pushed by mistake, and keeping repositories in shape (see "Maintenance"
//! below).
//!
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

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use crate::fsfile::{self, FileLock};

/// Held shared by pushes, exclusively by a purge.
const LOCK: &str = "forgelet-maintenance.lock";
/// What a purge is doing or did.
const STATUS: &str = "forgelet-maintenance.status";
/// Held by a purge of this repository from its start to its end.
const PURGING: &str = "forgelet-purge.lock";
/// How long a purge waits for running pushes to finish.
const WAIT_FOR_PUSHES: Duration = Duration::from_secs(600);

/// A push's hold on its repository, released when dropped, and handed down to the push's git
/// ([`PushHold::hand_down`]) so that it lasts as long as that git, whatever happens to the
/// process that started it.
pub(crate) struct PushHold {
    lock: FileLock,
}

impl PushHold {
    /// Makes the git that `c` starts (and what it starts, such as index-pack) hold the hold
    /// too, until its last process ends.
    pub(crate) fn hand_down(&self, c: &mut Command) {
        self.lock.hand_down(c);
    }
}

/// The hold a push needs; `Ok(None)` while a purge runs or waits to.
///
/// A push that finds the repository alone (nobody else holds its lock: no push, maintenance
/// run, purge or move is under way, and no git any of them started is alive, since each hands
/// its hold down to its git) first removes the ref lock files git left there, which only a git
/// killed in the middle of updating refs leaves (forgelet itself writes no refs). Otherwise
/// such a lock would refuse every push of that branch until maintenance, an hour later at the
/// soonest, removed it; a kill of the whole service, or of the machine, at the wrong moment of
/// a push leaves one. Each is logged.
///
/// That look holds the lock exclusively for a moment, so a push (or maintenance run) that comes
/// beside it waits for it ([`shared_lock`]) instead of taking it for a purge: concurrent pushes
/// were refused as "being purged" now and then.
pub(crate) fn hold_for_push(repo: &Path) -> Result<Option<PushHold>, String> {
    if matches!(status(repo), Status::Running { .. }) {
        return Ok(None);
    }
    if let Some(_alone) = fsfile::try_lock(&repo.join(LOCK))? {
        for removed in remove_ref_locks(repo) {
            // One that cannot be removed is for the sysadmin; the push goes on (git says which
            // ref it could not lock, if it needs that one).
            match removed {
                Ok(gone) => log::warn!(
                    "{}: removed {gone}, left by a git stopped while it updated refs",
                    repo.display()
                ),
                Err(why) => log::warn!("{why}, left by a git stopped while it updated refs"),
            }
        }
    }
    Ok(shared_lock(repo)?.map(|lock| PushHold { lock }))
}

/// How long a push's look for stale ref locks may hold the repository's lock alone, at most;
/// a purge or a move holds it far longer.
const BRIEF_LOOK: Duration = Duration::from_secs(2);

/// The repository's lock, shared, waiting up to [`BRIEF_LOOK`] while another push looks for
/// stale ref locks; `None` when it is still held alone then (a purge, or a move of the folder).
fn shared_lock(repo: &Path) -> Result<Option<FileLock>, String> {
    let until = Instant::now() + BRIEF_LOOK;
    loop {
        if let Some(l) = fsfile::try_lock_shared(&repo.join(LOCK))? {
            return Ok(Some(l));
        }
        if matches!(status(repo), Status::Running { .. }) || Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes git's lock files of refs in `repo`: `refs/**/*.lock`, `HEAD.lock` (a push of the
/// branch `HEAD` names locks it for its reflog) and `packed-refs.lock`; what went, by path
/// inside the repository, or why one could not go. Only for a caller that knows no git writes
/// refs there.
fn remove_ref_locks(repo: &Path) -> Vec<Result<String, String>> {
    let mut found = Vec::new();
    for top in ["HEAD.lock", "packed-refs.lock"] {
        found.push(repo.join(top));
    }
    let mut stack = vec![repo.join("refs")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) if e.file_name().to_string_lossy().ends_with(".lock") => found.push(e.path()),
                _ => {}
            }
        }
    }
    found
        .into_iter()
        .filter_map(|path| match fs::remove_file(&path) {
            Ok(()) => Some(Ok(path
                .strip_prefix(repo)
                .unwrap_or(&path)
                .display()
                .to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(format!("cannot remove {}: {e}", path.display()))),
        })
        .collect()
}

/// How long moving a repository's folder (delete, rename, a new owner) waits for running pushes.
pub(crate) const WAIT_FOR_PUSHES_TO_MOVE: Duration = Duration::from_secs(15);

/// Holds off pushes to `repo` while its folder is moved, once the running ones have finished
/// (waiting up to `wait`): a git still writing into the folder would make its folders again
/// under the old name (git creates the folders an object's path needs), leaving a stray folder
/// where the repository was. `Ok(None)` when pushes still run after `wait`. Pushes that arrive
/// meanwhile are refused as during a purge; the lock file moves with the folder.
pub(crate) fn hold_off_pushes(repo: &Path, wait: Duration) -> Result<Option<FileLock>, String> {
    let until = Instant::now() + wait;
    loop {
        if let Some(l) = fsfile::try_lock(&repo.join(LOCK))? {
            return Ok(Some(l));
        }
        if Instant::now() >= until {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the status file says, checked against the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    /// No purge has run.
    Never,
    /// Waiting for another repository's purge, or this repository's maintenance, to finish;
    /// pushes go on meanwhile.
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
/// A purge keeps LFS objects uploaded this recently even when nothing names them yet.
const LFS_PURGE_GRACE: Duration = Duration::from_secs(3600);

pub(crate) fn purge(
    data_dir: &Path,
    pack_cache: &Path,
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
    // A maintenance run of the repository ends first (pushes go on meanwhile), and none
    // starts until the purge is done.
    let maintaining = repo.join(MAINTAINING);
    let _maintenance = match fsfile::try_lock(&maintaining)? {
        Some(l) => l,
        None => {
            say("waiting for the repository's maintenance to finish");
            write_status(repo, "queued", started, "")?;
            fsfile::lock(&maintaining)?
        }
    };
    // Answers cached from before the purge may hold what it removes: none is used from now
    // on (the generation is raised), and none is left (again at the end, for those made
    // while it ran).
    let pack_cache = crate::packcache::store::Store::new(pack_cache);
    crate::packcache::identity::forget(repo, &pack_cache)?;
    step("waiting for pushes to finish", &mut say)?;
    let until = Instant::now() + WAIT_FOR_PUSHES;
    let lock = loop {
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
    // The repack and the commit-graph leave the repository as maintenance would (a bitmap, a
    // graph that names no purged commit).
    let steps: [(&str, &[&str]); 4] = [
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
        (
            "repacking what is reachable",
            &[
                "repack",
                "-a",
                "-d",
                "-q",
                "--write-midx",
                "--write-bitmap-index",
            ],
        ),
        ("pruning the rest", &["prune", "--expire=now"]),
        (
            "writing the commit-graph",
            &[
                "-c",
                "commitGraph.changedPathsVersion=2",
                "commit-graph",
                "write",
                "--reachable",
                "--changed-paths",
                "--no-progress",
            ],
        ),
    ];
    // Its git holds off pushes too, even if this process is killed first: a push never
    // starts beside a prune that outlived its purge.
    let git = || {
        let mut c = git();
        lock.hand_down(&mut c);
        c
    };
    for (what, args) in steps {
        step(what, &mut say)?;
        if let Err(why) = run_git(git(), repo, args) {
            write_status(repo, "failed", crate::time::now(), &why)?;
            return Err(why);
        }
    }
    // LFS objects no pointer names any more (the reflogs expired and the unreachable pruned
    // above), except those uploaded in the last hour: a push names them only after its upload.
    step("removing Git LFS objects nothing names", &mut say)?;
    if let Err(why) = super::lfs::collect(repo, &git, LFS_PURGE_GRACE) {
        write_status(repo, "failed", crate::time::now(), &why)?;
        return Err(why);
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

/// Runs `c` (a `git` command) with `args` on the repository at `repo`; git's complaint if it
/// fails.
fn run_git(mut c: Command, repo: &Path, args: &[&str]) -> Result<(), String> {
    c.arg("--git-dir")
        .arg(repo)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match c.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "git {} failed ({}): {}",
            args.iter()
                .find(|a| !a.starts_with('-') && !a.contains('='))
                .copied()
                .unwrap_or(""),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run git: {e}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Maintenance
//
// What git's own `gc` and `maintenance` do, run by forgelet so that it is safe beside clones
// and pushes, one run at a time per repository and a few per site:
//
// - leftovers of a git that was stopped (a push past its deadline, a crash): quarantine
//   folders, temporary packs and indexes, and lock files, once older than the git deadline (no
//   git forgelet runs lives longer, so nothing older is in use). A stale ref lock refuses every
//   later push of that ref, so a push that finds the repository alone removes those at once
//   (`hold_for_push`);
// - refs packed into `packed-refs`;
// - packs: after a push, a geometric repack (small packs rolled into larger ones, loose objects
//   packed); from the timer or the command, everything into one pack and the objects nothing
//   reaches into a cruft pack, which keeps them until `cruft_days` have passed since they were
//   last written or used (the expired loose ones are pruned with the same grace period, as
//   git's own gc does). Only a purge drops them sooner. Either way a multi-pack index and its
//   reachability bitmap are written, which spare clones and fetches most of their counting;
// - a commit-graph, as one file (libgit2 reads only that form), with changed-path Bloom
//   filters, version 2 where git knows `commitGraph.changedPathsVersion` (older gits ignore the
//   setting and write version 1).
//
// Locks: one run per repository (`forgelet-maintain.lock`, exclusive), which a purge holds too
// from before it holds off pushes to its end: a purge waits for a run under way (queued,
// pushes going on), and no run starts during a purge (`forgelet maintain` waits, a run a push
// starts leaves it). A run also checks the purge's status and holds the repository's
// `forgelet-maintenance.lock` shared, as a push does, so it could not overlap a purge even
// without the first lock. A run takes
// one of `at_once` turns (`{data_dir}/maintenance/turn-N.lock`) and holds the data folder
// itself shared (`flock`), so a backup that holds it exclusively waits for the runs under way
// and keeps new ones waiting until it is done.

/// Held by a maintenance run of this repository from its start to its end.
const MAINTAINING: &str = "forgelet-maintain.lock";
/// How the last maintenance run ended.
const MAINTAINED: &str = "forgelet-maintain.status";
/// `{data_dir}/maintenance/`: one lock file per turn.
const TURNS: &str = "maintenance";
/// How often a run waiting for a turn looks again.
const TURN_POLL: Duration = Duration::from_millis(250);

/// Which repack a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// After pushes: geometric, cheap, never rewriting the large pack.
    Auto,
    /// From the timer or the command line: everything into one pack, the unreachable into a
    /// cruft pack; skipped when the packs are in that shape already.
    Full,
}

/// What a run is to do and how.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) kind: Kind,
    /// Wait for a run of the same repository under way to end (else leave it to that run).
    pub(crate) wait: bool,
    /// Objects nothing reaches are dropped once this many days old.
    pub(crate) cruft_days: u32,
    /// Leftovers of git older than this are removed.
    pub(crate) stale_after: Duration,
    /// Runs on the site at once.
    pub(crate) at_once: usize,
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// Not run, and why.
    Skipped(String),
}

/// The packs and loose objects of a repository, counted from the file names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Packs that are neither cruft packs nor kept (`.keep`).
    pub(crate) packs: usize,
    /// When each cruft pack was written.
    pub(crate) cruft: Vec<SystemTime>,
    /// Loose objects, counted up to the cap given.
    pub(crate) loose: usize,
    /// A multi-pack index with its reachability bitmap.
    pub(crate) bitmap: bool,
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The repository's [`Shape`], loose objects counted up to `loose_cap`.
pub(crate) fn shape(repo: &Path, loose_cap: usize) -> Shape {
    let mut s = Shape::default();
    let objects = repo.join("objects");
    let pack_dir = objects.join("pack");
    let names: Vec<String> = fs::read_dir(&pack_dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let has = |n: &str| names.iter().any(|x| x == n);
    for n in &names {
        let Some(stem) = n.strip_suffix(".pack") else {
            continue;
        };
        if has(&format!("{stem}.mtimes")) {
            if let Ok(t) = fs::metadata(pack_dir.join(n)).and_then(|m| m.modified()) {
                s.cruft.push(t);
            }
        } else if !has(&format!("{stem}.keep")) {
            s.packs += 1;
        }
    }
    s.bitmap = has("multi-pack-index")
        && names
            .iter()
            .any(|n| n.starts_with("multi-pack-index-") && n.ends_with(".bitmap"));
    if let Ok(dirs) = fs::read_dir(&objects) {
        for d in dirs.flatten() {
            let name = d.file_name();
            let name = name.to_string_lossy();
            if name.len() != 2 || !is_hex(&name) {
                continue;
            }
            if let Ok(files) = fs::read_dir(d.path()) {
                s.loose += files
                    .flatten()
                    .filter(|f| {
                        let n = f.file_name();
                        let n = n.to_string_lossy();
                        n.len() == 38 && is_hex(&n)
                    })
                    .count();
            }
            if s.loose >= loose_cap {
                break;
            }
        }
    }
    s
}

/// Whether a push left the repository worth maintaining: `packs` packs or `loose` loose
/// objects (as git's `gc --auto` judges), and no run of it under way.
pub(crate) fn worth_maintaining(repo: &Path, packs: usize, loose: usize) -> bool {
    let s = shape(repo, loose);
    (s.packs >= packs || s.loose >= loose) && !maintenance_running(repo)
}

/// A maintenance run of the repository holds its lock.
pub(crate) fn maintenance_running(repo: &Path) -> bool {
    matches!(fsfile::try_lock(&repo.join(MAINTAINING)), Ok(None))
}

/// The last run's outcome as its status file says: `done` or `failed: why`, and when.
pub(crate) fn last_maintenance(repo: &Path) -> Option<(String, u64)> {
    let text = fsfile::read_optional(&repo.join(MAINTAINED)).ok()??;
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let state = lines.next()?.to_string();
    let at = lines.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    match lines.next() {
        Some(why) if state == "failed" => Some((format!("failed: {why}"), at)),
        _ => Some((state, at)),
    }
}

/// One of the site's turns, and the data folder held shared; released when dropped.
struct Turn {
    _turn: fsfile::FileLock,
    _site: fsfile::FileLock,
}

fn try_turn(data_dir: &Path, at_once: usize) -> Result<Option<Turn>, String> {
    let Some(site) = fsfile::try_lock_folder(data_dir, true)? else {
        return Ok(None);
    };
    let dir = data_dir.join(TURNS);
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for i in 0..at_once.max(1) {
        if let Some(turn) = fsfile::try_lock(&dir.join(format!("turn-{i}.lock")))? {
            return Ok(Some(Turn {
                _turn: turn,
                _site: site,
            }));
        }
    }
    Ok(None)
}

/// Maintains the repository at `repo` as `plan` says, running `git` (made by `git`, isolated
/// as every git forgelet runs) for each step; `say` hears each step as it starts. The outcome
/// is also kept in the repository's `forgelet-maintain.status`.
pub(crate) fn maintain(
    data_dir: &Path,
    repo: &Path,
    plan: &Plan,
    git: impl Fn() -> Command,
    mut say: impl FnMut(&str),
) -> Result<Outcome, String> {
    let mine = repo.join(MAINTAINING);
    let _mine = match fsfile::try_lock(&mine)? {
        Some(l) => l,
        None if plan.wait => {
            say("waiting for the maintenance under way to end");
            fsfile::lock(&mine)?
        }
        None => return Ok(Outcome::Skipped("its maintenance runs already".into())),
    };
    let _turn = match try_turn(data_dir, plan.at_once)? {
        Some(t) => t,
        None => {
            say("waiting for a turn (other maintenance runs, or a backup holds the data folder)");
            loop {
                std::thread::sleep(TURN_POLL);
                if let Some(t) = try_turn(data_dir, plan.at_once)? {
                    break t;
                }
            }
        }
    };
    let purging = || Outcome::Skipped("a purge of it is under way".into());
    if matches!(status(repo), Status::Running { .. } | Status::Queued { .. }) {
        return Ok(purging());
    }
    let Some(hold) = shared_lock(repo)? else {
        return Ok(purging());
    };
    // Its git holds the hold too, as a push's does: a push never takes a lock git packing refs
    // holds for a stale one, even if this process is killed and its git goes on.
    let git = || {
        let mut c = git();
        hold.hand_down(&mut c);
        c
    };
    let result = maintenance_steps(repo, plan, git, &mut say);
    let now = crate::time::now();
    let written = match &result {
        Ok(()) => fsfile::replace(
            &repo.join(MAINTAINED),
            format!("done\n{now}\n").as_bytes(),
            0o644,
        ),
        Err(why) => {
            let why: String = why.chars().filter(|c| !c.is_control()).collect();
            fsfile::replace(
                &repo.join(MAINTAINED),
                format!("failed\n{now}\n{why}\n").as_bytes(),
                0o644,
            )
        }
    };
    result?;
    written?;
    Ok(Outcome::Done)
}

fn maintenance_steps(
    repo: &Path,
    plan: &Plan,
    git: impl Fn() -> Command,
    say: &mut dyn FnMut(&str),
) -> Result<(), String> {
    if plan.kind == Kind::Full {
        say("checking the packs, the refs and the objects they reach");
        check(repo, &git)?;
    }
    let removed = remove_leftovers(repo, plan.stale_after)?;
    if !removed.is_empty() {
        say(&format!(
            "removed what interrupted git left: {}",
            removed.join(", ")
        ));
    }
    if has_loose_refs(&repo.join("refs")) {
        say("packing refs");
        run_git(git(), repo, &["pack-refs", "--all"])?;
    }

    let before = shape(repo, 1);
    let cruft_before = SystemTime::now()
        .checked_sub(Duration::from_secs(u64::from(plan.cruft_days) * 86_400))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let empty = before.packs == 0 && before.loose == 0 && before.cruft.is_empty();
    let repacked = match plan.kind {
        _ if empty => {
            say("no objects yet: nothing to pack");
            false
        }
        Kind::Auto => {
            say("repacking the newest packs (geometric), with a multi-pack index and bitmap");
            run_git(
                git(),
                repo,
                &[
                    "repack",
                    "-d",
                    "-q",
                    "--geometric=2",
                    "--write-midx",
                    "--write-bitmap-index",
                ],
            )?;
            true
        }
        Kind::Full
            if before.loose == 0
                && before.packs <= 1
                && before.bitmap
                && before.cruft.len() <= 1
                && before.cruft.iter().all(|t| *t > cruft_before) =>
        {
            say("the packs are in shape already");
            false
        }
        Kind::Full => {
            say(&format!(
                "repacking into one pack, with a multi-pack index and bitmap; what nothing reaches goes to a cruft pack (dropped after {} days)",
                plan.cruft_days
            ));
            let expiry = format!("--cruft-expiration={}.days.ago", plan.cruft_days);
            run_git(
                git(),
                repo,
                &[
                    "repack",
                    "-d",
                    "-q",
                    "--cruft",
                    &expiry,
                    "--write-midx",
                    "--write-bitmap-index",
                ],
            )?;
            // The repack packs loose objects (the unreachable ones into the cruft pack) and
            // removes them, but leaves those past the expiry loose: they go now, with the same
            // grace period, as git's own gc does.
            let expire = format!("--expire={}.days.ago", plan.cruft_days);
            run_git(git(), repo, &["prune", &expire])?;
            true
        }
    };
    let info = repo.join("objects/info");
    let graph_missing = !info.join("commit-graph").is_file()
        || info.join("commit-graphs/commit-graph-chain").exists();
    if repacked || (graph_missing && !empty) {
        say("writing the commit-graph, with changed-path Bloom filters");
        let mut c = git();
        // Version 2 filters where git knows the setting; older gits ignore it and write
        // version 1. Without --split git writes one file and drops any chain.
        c.arg("-c").arg("commitGraph.changedPathsVersion=2");
        run_git(
            c,
            repo,
            &[
                "commit-graph",
                "write",
                "--reachable",
                "--changed-paths",
                "--no-progress",
            ],
        )?;
    }
    let grace = Duration::from_secs(u64::from(plan.cruft_days) * 86_400);
    let (count, bytes) = super::lfs::collect(repo, &git, grace)?;
    if count > 0 {
        say(&format!(
            "removed {count} Git LFS object(s) no pointer names ({bytes} bytes), unused for {} days",
            plan.cruft_days
        ));
    }
    say("done");
    Ok(())
}

/// Lines of git's complaint kept in a message.
const COMPLAINT_LINES: usize = 6;

/// Finds damage before maintenance touches the repository: the cheap look of
/// [`super::check::damage`], then `git fsck --connectivity-only` (every object the refs reach
/// is there, and every commit and tree reads). A damaged repository is left as it is, for the
/// administrator to restore; the error says what is wrong and what to do.
fn check(repo: &Path, git: &impl Fn() -> Command) -> Result<(), String> {
    let mut damage = super::check::damage(repo);
    if damage.is_empty() {
        if let Err(e) = run_git(
            git(),
            repo,
            &[
                "fsck",
                "--connectivity-only",
                "--no-reflogs",
                "--no-dangling",
                "--no-progress",
            ],
        ) {
            let mut lines: Vec<&str> = e.lines().collect();
            let more = lines.len().saturating_sub(COMPLAINT_LINES);
            lines.truncate(COMPLAINT_LINES);
            let mut text = lines.join(" / ");
            if more > 0 {
                text.push_str(&format!(" (and {more} more lines)"));
            }
            damage.push(text);
        }
    }
    if damage.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the repository is damaged, so maintenance left it as it was: {}. Restore it from a backup (see the README, \"A full disk, and damaged repositories\"); `git fsck --full` in {} says more",
        damage.join("; "),
        repo.display()
    ))
}

/// A ref file below `dir` (a lock file is none): `git pack-refs` has work to do. Checked first
/// so that a site of many quiet repositories starts no git for them.
fn has_loose_refs(dir: &Path) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|e| match e.file_type() {
        Ok(t) if t.is_dir() => has_loose_refs(&e.path()),
        Ok(_) => !e.file_name().to_string_lossy().ends_with(".lock"),
        Err(_) => false,
    })
}

/// Removes what a stopped git left in `repo` and is older than `older_than`: quarantine
/// folders of pushes (`objects/incoming-*`, `objects/tmp_objdir-*`), temporary object, pack,
/// index and graph files, lock files of refs, reflogs, `packed-refs`, `HEAD`, `config` and the
/// object folders, `.keep` files a push left on its pack, and forgelet's own temporary files of
/// a write that was killed (`.config.tmp-*`, in `lfs/` too). forgelet's own locks
/// (`forgelet-*.lock`, held with `flock`, never stale) are not touched. Returns what went, by
/// path inside the repository.
pub(crate) fn remove_leftovers(repo: &Path, older_than: Duration) -> Result<Vec<String>, String> {
    let cutoff = SystemTime::now()
        .checked_sub(older_than)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut removed = Vec::new();
    let mut remove = |path: PathBuf, dir: bool| -> Result<(), String> {
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return Ok(());
        };
        if meta.modified().map_or(true, |t| t >= cutoff) {
            return Ok(());
        }
        let gone = if dir && meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match gone {
            Ok(()) => {
                let rel = path.strip_prefix(repo).unwrap_or(&path);
                removed.push(rel.display().to_string());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", path.display())),
        }
    };
    let names = |dir: &Path| -> Vec<(String, PathBuf, bool)> {
        fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                        (
                            e.file_name().to_string_lossy().into_owned(),
                            e.path(),
                            is_dir,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let objects = repo.join("objects");
    for (name, path, is_dir) in names(&objects) {
        if is_dir && (name.starts_with("incoming-") || name.starts_with("tmp_objdir-")) {
            remove(path, true)?;
        } else if is_dir && name.len() == 2 && is_hex(&name) {
            for (n, p, _) in names(&path) {
                if n.starts_with("tmp_obj_") {
                    remove(p, false)?;
                }
            }
        }
    }
    for dir in [
        objects.join("pack"),
        objects.join("info"),
        objects.join("info/commit-graphs"),
    ] {
        for (n, p, is_dir) in names(&dir) {
            if is_dir {
                continue;
            }
            let pushed_keep =
                n.ends_with(".keep") && fs::read(&p).is_ok_and(|b| b.starts_with(b"receive-pack"));
            if n.starts_with("tmp_") || n.ends_with(".lock") || pushed_keep {
                remove(p, false)?;
            }
        }
    }
    for top in [
        "packed-refs.lock",
        "HEAD.lock",
        "config.lock",
        "shallow.lock",
    ] {
        remove(repo.join(top), false)?;
    }
    let mut stack = vec![repo.join("refs"), repo.join("logs")];
    while let Some(dir) = stack.pop() {
        for (n, p, is_dir) in names(&dir) {
            if is_dir {
                stack.push(p);
            } else if n.ends_with(".lock") {
                remove(p, false)?;
            }
        }
    }
    // forgelet's own temporary files of a settings or LFS locks write that was killed.
    for dir in [repo.to_path_buf(), repo.join("lfs")] {
        for gone in fsfile::remove_stale_temps(&dir, older_than)? {
            let rel = gone.strip_prefix(repo).unwrap_or(&gone);
            removed.push(rel.display().to_string());
        }
    }
    Ok(removed)
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
    fn a_push_alone_removes_ref_locks_and_one_beside_others_keeps_them() {
        let repo =
            std::env::temp_dir().join(format!("forgelet-reflocks-{}.git", std::process::id()));
        let _ = std::fs::remove_dir_all(&repo);
        std::fs::create_dir_all(repo.join("refs/heads/topic")).unwrap();
        std::fs::create_dir_all(repo.join("refs/tags")).unwrap();
        let locks = [
            "HEAD.lock",
            "packed-refs.lock",
            "refs/heads/main.lock",
            "refs/heads/topic/x.lock",
            "refs/tags/v1.lock",
        ];
        let kept = [
            "HEAD",
            "refs/heads/main",
            "config.lock",
            "forgelet-maintain.lock",
        ];
        for f in locks.iter().chain(kept.iter()) {
            std::fs::write(repo.join(f), "x\n").unwrap();
        }
        let all_there = |when: &str| {
            for f in locks.iter().chain(kept.iter()) {
                assert!(repo.join(f).exists(), "{f} went {when}");
            }
        };
        // Beside another push (or a maintenance run), each lock may be its git's: all stay.
        let other = fsfile::try_lock_shared(&repo.join(LOCK)).unwrap().unwrap();
        let beside = hold_for_push(&repo).unwrap().expect("shared");
        all_there("beside another push");
        drop((other, beside));
        // Beside a git a push handed its hold to, which outlived the push's own process.
        let mut c = Command::new("sleep");
        c.arg("5");
        let held = fsfile::try_lock_shared(&repo.join(LOCK)).unwrap().unwrap();
        held.hand_down(&mut c);
        let mut sleeper = c.spawn().unwrap();
        drop(held);
        let beside = hold_for_push(&repo).unwrap().expect("shared");
        all_there("beside a running git");
        drop(beside);
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        // Beside another push's look for stale locks (the lock held alone for a moment): the
        // push waits for the moment to pass instead of being refused as during a purge.
        let look = fsfile::try_lock(&repo.join(LOCK)).unwrap().unwrap();
        let looking = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(look);
        });
        let beside = hold_for_push(&repo).unwrap();
        assert!(beside.is_some(), "refused beside another push's look");
        looking.join().unwrap();
        drop(beside);
        // Alone: git's ref locks go, nothing else does.
        let alone = hold_for_push(&repo).unwrap().expect("alone");
        for f in locks {
            assert!(!repo.join(f).exists(), "{f} was kept");
        }
        for f in kept {
            assert!(repo.join(f).exists(), "{f} went");
        }
        drop(alone);
        let _ = std::fs::remove_dir_all(&repo);
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
            let purging = s.spawn(|| {
                purge(
                    &root,
                    &root.join("repos/.cache"),
                    &repo,
                    || git_in(&work),
                    |_| {},
                )
            });
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

    #[test]
    fn moving_a_repository_waits_for_its_pushes_and_holds_new_ones_off() {
        let repo = std::env::temp_dir().join(format!("forgelet-move-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&repo);
        std::fs::create_dir_all(&repo).unwrap();
        let push = hold_for_push(&repo).unwrap().expect("nothing holds it");
        assert!(hold_off_pushes(&repo, Duration::from_millis(200))
            .unwrap()
            .is_none());
        std::thread::scope(|s| {
            let mover = s.spawn(|| hold_off_pushes(&repo, Duration::from_secs(20)));
            std::thread::sleep(Duration::from_millis(200));
            assert!(!mover.is_finished(), "the move did not wait for the push");
            drop(push);
            let hold = mover.join().unwrap().unwrap().expect("the push ended");
            assert!(hold_for_push(&repo).unwrap().is_none(), "a push got in");
            drop(hold);
        });
        assert!(hold_for_push(&repo).unwrap().is_some());
        std::fs::remove_dir_all(&repo).unwrap();
    }

    #[test]
    fn a_purge_waits_for_maintenance_and_no_maintenance_runs_during_a_purge() {
        let root = std::env::temp_dir().join(format!("forgelet-purge-mt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let work = root.join("repos/alice/work");
        std::fs::create_dir_all(&work).unwrap();
        for args in [
            &["init", "-q"][..],
            &["commit", "-q", "--allow-empty", "-m", "one"][..],
        ] {
            assert!(git_in(&work).args(args).status().unwrap().success());
        }
        let repo = work.join(".git");
        let plan = Plan {
            kind: Kind::Auto,
            wait: false,
            cruft_days: 14,
            stale_after: Duration::from_secs(3600),
            at_once: 1,
        };

        // A maintenance run holds its lock: the purge waits, queued, and pushes go on.
        let running = fsfile::try_lock(&repo.join(MAINTAINING)).unwrap().unwrap();
        std::thread::scope(|s| {
            let purging = s.spawn(|| {
                purge(
                    &root,
                    &root.join("repos/.cache"),
                    &repo,
                    || git_in(&work),
                    |_| {},
                )
            });
            let until = Instant::now() + Duration::from_secs(20);
            while !matches!(status(&repo), Status::Queued { .. }) {
                assert!(Instant::now() < until, "{:?}", status(&repo));
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(
                hold_for_push(&repo).unwrap().is_some(),
                "a push was held off while the purge waited for maintenance"
            );
            std::thread::sleep(Duration::from_millis(200));
            assert!(!purging.is_finished(), "the purge did not wait");
            drop(running);
            purging.join().unwrap().unwrap();
        });
        assert!(matches!(status(&repo), Status::Done { .. }));

        // While a purge holds the lock, a run a push starts leaves the repository alone.
        let purging = fsfile::try_lock(&repo.join(MAINTAINING)).unwrap().unwrap();
        let outcome = maintain(&root, &repo, &plan, || git_in(&work), |_| {}).unwrap();
        assert!(matches!(outcome, Outcome::Skipped(_)), "{outcome:?}");
        drop(purging);
        // A purge that says it runs (and holds its lock) is never run beside, either.
        let purge_lock = fsfile::try_lock(&repo.join(PURGING)).unwrap().unwrap();
        write_status(&repo, "running", 1, "repacking what is reachable").unwrap();
        let outcome = maintain(&root, &repo, &plan, || git_in(&work), |_| {}).unwrap();
        assert_eq!(
            outcome,
            Outcome::Skipped("a purge of it is under way".into())
        );
        drop(purge_lock);
        write_status(&repo, "done", 1, "").unwrap();
        // With nothing in the way it runs.
        let outcome = maintain(&root, &repo, &plan, || git_in(&work), |_| {}).unwrap();
        assert_eq!(outcome, Outcome::Done);
        assert_eq!(last_maintenance(&repo).map(|(s, _)| s), Some("done".into()));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_site_gives_at_most_at_once_turns_and_none_while_its_folder_is_held() {
        let root = std::env::temp_dir().join(format!("forgelet-turns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // A lock let go is free once every copy of its descriptor is closed: a process another
        // test forks meanwhile holds one until it runs its program, so what must come free is
        // waited for a moment.
        let soon = |what: &str, f: &dyn Fn() -> Option<fsfile::FileLock>| {
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(l) = f() {
                    return l;
                }
                assert!(Instant::now() < until, "{what}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        let turn = |what: &str| soon(what, &|| try_turn(&root, 2).unwrap().map(|t| t._turn));
        let one = turn("a first turn");
        let two = turn("a second turn");
        assert!(
            try_turn(&root, 2).unwrap().is_none(),
            "a third of two turns"
        );
        drop(one);
        let three = turn("a turn given back");
        drop((two, three));
        // A backup holds the data folder: no turn until it lets go.
        let backup = soon("the backup's hold", &|| {
            fsfile::try_lock_folder(&root, false).unwrap()
        });
        assert!(try_turn(&root, 2).unwrap().is_none());
        drop(backup);
        let held = soon("a turn after the backup", &|| {
            try_turn(&root, 2).unwrap().map(|t| t._site)
        });
        // And a backup waits for the runs under way.
        assert!(fsfile::try_lock_folder(&root, false).unwrap().is_none());
        drop(held);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
