//! Running git for a request: the isolated `git` command every child starts from, its memory
//! limit, the services clients talk to as every transport runs them ([`service`]), the slots git
//! work shares ([`slots`]), and the pump that streams a child's output to
//! a client without letting a slow client hold git ([`child`]), and git read as it prints
//! ([`GitRunner::read`], for blame and grep). Also the other gates on git work: snapshots made
//! at once, large raw files rebuilt from deltas at once, and how many of one kind of work (blames,
//! code searches) run at once ([`AtOnce`]).

pub(crate) mod child;
pub(crate) mod service;
pub(crate) mod slots;

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use child::{ChildGuard, SpoolBudget};
use slots::{Busy, Slot, SlotRules, Slots};

use crate::config::Config;
use crate::response::Response;

/// How forgelet runs git: the binary, the empty home and temp folders it gives children, the
/// memory each child may use, the slots git work shares and where output waits for slow clients.
pub(crate) struct GitRunner {
    git: PathBuf,
    path_var: std::ffi::OsString,
    home: PathBuf,
    pub(crate) tmp: PathBuf,
    /// Address space a git child may use (`RLIMIT_AS`), in bytes.
    memory: u64,
    slots: Slots,
    /// How long a request waits for a slot.
    slot_wait: Duration,
    pub(crate) spool: SpoolBudget,
    version: std::sync::OnceLock<String>,
}

/// What git maps and keeps, bounded so the address-space limit is not reached by honest work:
/// pack windows, delta search and caches. Passed with `-c` to every git child.
pub(crate) const BASE_SETTINGS: [&str; 8] = [
    "safe.directory=*",
    "core.packedGitLimit=256m",
    "core.packedGitWindowSize=32m",
    "core.deltaBaseCacheLimit=64m",
    "core.bigFileThreshold=64m",
    "pack.windowMemory=128m",
    "pack.deltaCacheSize=64m",
    "pack.threads=1",
];

/// How long a git request waits for a slot before it gets 503.
const SLOT_WAIT: Duration = Duration::from_secs(60);

impl GitRunner {
    /// `data_dir/home` (an empty folder for `HOME`) and `data_dir/tmp` are made if missing.
    pub(crate) fn new(config: &Config) -> GitRunner {
        let home = config.data_dir.join("home");
        let tmp = config.data_dir.join("tmp");
        for dir in [&home, &tmp] {
            if let Err(e) = fs::create_dir_all(dir) {
                log::warn!("cannot create {}: {e}", dir.display());
            }
        }
        let s = &config.server;
        GitRunner {
            git: PathBuf::from("git"),
            path_var: std::env::var_os("PATH")
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
            home,
            spool: SpoolBudget::new(tmp.clone(), config.limits.spool_bytes),
            tmp,
            memory: config.limits.git_memory_bytes,
            slots: Slots::new(SlotRules {
                total: s.git_workers,
                per_address: s.git_per_address,
                reserved: s.git_reserved,
            }),
            slot_wait: SLOT_WAIT,
            version: std::sync::OnceLock::new(),
        }
    }

    /// A slot for git work of a client at `address` (its `REMOTE_ADDR`), waiting for one to
    /// come free as `slots` says.
    pub(crate) fn slot(
        &self,
        address: &str,
        anonymous: bool,
    ) -> std::result::Result<Slot<'_>, Busy> {
        self.slots.acquire(
            &crate::request::client_key(address),
            anonymous,
            self.slot_wait,
        )
    }

    /// A slot as [`GitRunner::slot`] gives, waiting at most `wait`: for a page, whose worker
    /// must not wait as long as a clone may.
    pub(crate) fn slot_within(
        &self,
        address: &str,
        anonymous: bool,
        wait: Duration,
    ) -> std::result::Result<Slot<'_>, Busy> {
        self.slots.acquire(
            &crate::request::client_key(address),
            anonymous,
            wait.min(self.slot_wait),
        )
    }

    /// `git` from an empty environment plus an allowlist, shut off from the host's config, in
    /// its own process group; `-c` settings and the subcommand are the caller's. Start it with
    /// [`GitRunner::spawn`], which limits its memory.
    pub(crate) fn git(&self) -> Command {
        let mut c = Command::new(&self.git);
        c.env_clear()
            .env("PATH", &self.path_var)
            .env("HOME", &self.home)
            .env("TMPDIR", &self.tmp)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            // glibc makes an arena per thread, each reserving 64 MiB of address space; two
            // keep git's threads within the limit below.
            .env("MALLOC_ARENA_MAX", "2")
            .process_group(0);
        for setting in BASE_SETTINGS {
            c.arg("-c").arg(setting);
        }
        c
    }

    /// Whether the git children run are version `major.minor` or newer (false when the version
    /// cannot be read).
    pub(crate) fn version_at_least(&self, major: u32, minor: u32) -> bool {
        version_at_least(self.version(), major, minor)
    }

    /// `git version` of the git children run (asked once per process), e.g. `git version
    /// 2.47.3`; empty when it cannot be run.
    pub(crate) fn version(&self) -> &str {
        self.version.get_or_init(|| {
            let mut c = self.git();
            c.arg("version")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null());
            match self
                .spawn(&mut c)
                .and_then(|child| child.wait_with_output())
            {
                Ok(out) if out.status.success() => {
                    String::from_utf8_lossy(&out.stdout).trim().to_string()
                }
                _ => String::new(),
            }
        })
    }

    /// Starts a command made by [`GitRunner::git`] and limits its address space to
    /// `[limits] git_memory_mib` (what it starts later, such as pack-objects, inherits it).
    pub(crate) fn spawn(&self, c: &mut Command) -> io::Result<Child> {
        let child = c.spawn()?;
        let limit = libc::rlimit {
            rlim_cur: self.memory as libc::rlim_t,
            rlim_max: self.memory as libc::rlim_t,
        };
        // SAFETY: prlimit(2) on our own child with a pointer to a live rlimit; the old limit
        // is not asked for.
        let rc = unsafe {
            libc::prlimit(
                child.id() as libc::pid_t,
                libc::RLIMIT_AS,
                &limit,
                std::ptr::null_mut(),
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            // The child may already be gone (it failed at once); anything else is ours.
            if e.raw_os_error() != Some(libc::ESRCH) {
                let mut guard = ChildGuard::new(child);
                guard.killer().stop();
                let _ = guard.wait();
                return Err(e);
            }
        }
        Ok(child)
    }
}

/// What a bounded run of git printed (see [`GitRunner::output`]).
pub(crate) struct Bounded {
    /// Standard output, at most the bound given.
    pub(crate) stdout: Vec<u8>,
    /// git ran to its end and exited with success, and all of its output is here.
    pub(crate) complete: bool,
}

impl GitRunner {
    /// Runs a command made by [`GitRunner::git`] (stdin empty, stderr dropped) and reads its
    /// output: at most `max_bytes`, and for at most `deadline`; past either, git is stopped (its
    /// whole process group) and what it printed so far is given back, not `complete`.
    pub(crate) fn output(
        &self,
        c: &mut Command,
        deadline: Duration,
        max_bytes: usize,
    ) -> io::Result<Bounded> {
        let mut stdout = Vec::new();
        let ran = self.read(c, deadline, |part| {
            let room = max_bytes - stdout.len();
            stdout.extend_from_slice(&part[..part.len().min(room)]);
            part.len() <= room
        })?;
        Ok(Bounded {
            stdout,
            complete: ran.complete,
        })
    }
}

/// How a run of git read as it printed ended (see [`GitRunner::read`]).
pub(crate) struct Read {
    /// git ran to its end, exited with success, and the reader took all it printed.
    pub(crate) complete: bool,
    /// The deadline passed and git was stopped.
    pub(crate) timed_out: bool,
    /// git's exit code, when it exited (not when a signal ended it).
    pub(crate) code: Option<i32>,
}

impl GitRunner {
    /// Runs a command made by [`GitRunner::git`] (stdin empty, stderr dropped) and hands what it
    /// prints to `take` as it comes, for at most `deadline`. When `take` says it has had enough
    /// (returns `false`) or the deadline passes, git is stopped (its whole process group). Whoever
    /// keeps what `take` is given bounds it; nothing is kept here.
    pub(crate) fn read(
        &self,
        c: &mut Command,
        deadline: Duration,
        mut take: impl FnMut(&[u8]) -> bool,
    ) -> io::Result<Read> {
        use std::io::Read as _;
        use std::process::Stdio;
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut guard = ChildGuard::new(self.spawn(c)?);
        let killer = guard.killer();
        let (done, timer) = std::sync::mpsc::channel::<()>();
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let timed_out = Arc::clone(&timed_out);
            let killer = killer.clone();
            std::thread::spawn(move || {
                if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    timer.recv_timeout(deadline)
                {
                    timed_out.store(true, Ordering::SeqCst);
                    killer.stop();
                }
            })
        };
        let mut cut = false;
        let mut failed = None;
        if let Some(mut out) = guard.child.stdout.take() {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match out.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if !take(&buf[..n]) {
                            cut = true;
                            killer.stop();
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        killer.stop();
                        failed = Some(e);
                        break;
                    }
                }
            }
        }
        // git closed its output at its end: its exit is a moment away. Waiting for it without
        // reaping it (the watchdog may still signal its group) saves the reaper's polling
        // interval, which is much of a short blame's time.
        if !cut && failed.is_none() {
            let _ = wait_exited(guard.child.id());
        }
        let status = guard.wait();
        let _ = done.send(());
        let _ = watchdog.join();
        if let Some(e) = failed {
            return Err(e);
        }
        let timed_out = timed_out.load(Ordering::SeqCst);
        let complete = !cut && !timed_out && status.as_ref().is_ok_and(|s| s.success());
        Ok(Read {
            complete,
            timed_out,
            code: status.ok().and_then(|s| s.code()),
        })
    }
}

/// How a run of git on the caller's own stdin and stdout ended (see [`GitRunner::attached`]).
pub(crate) struct Attached {
    pub(crate) status: io::Result<std::process::ExitStatus>,
    /// The deadline passed and git was stopped.
    pub(crate) timed_out: bool,
}

impl GitRunner {
    /// Runs a command made by [`GitRunner::git`] on this process's own stdin, stdout and stderr
    /// (an SSH session's channel), under the memory limit, for at most `deadline`: past it the
    /// whole process group is stopped (killed if it does not stop within a grace period).
    /// Whatever git left running in its group is killed once git has ended.
    pub(crate) fn attached(&self, c: &mut Command, deadline: Duration) -> io::Result<Attached> {
        let mut guard = ChildGuard::new(self.spawn(c)?);
        let killer = guard.killer();
        let pid = guard.child.id();
        let (done, timer) = std::sync::mpsc::channel::<()>();
        let timed_out = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let timed_out = Arc::clone(&timed_out);
            std::thread::spawn(move || {
                use std::sync::mpsc::RecvTimeoutError::Timeout;
                if let Err(Timeout) = timer.recv_timeout(deadline) {
                    timed_out.store(true, Ordering::SeqCst);
                    killer.stop();
                    if let Err(Timeout) = timer.recv_timeout(STOP_GRACE) {
                        killer.kill();
                    }
                }
            })
        };
        // Waits for git to end without reaping it, so its process group id stays its own
        // while the watchdog may still signal it; the guard reaps it and clears the group.
        let ended = wait_exited(pid);
        let status = guard.wait();
        let _ = done.send(());
        let _ = watchdog.join();
        ended?;
        Ok(Attached {
            status,
            timed_out: timed_out.load(Ordering::SeqCst),
        })
    }
}

/// How long git, asked to stop at its deadline, has before its group is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Blocks until the child `pid` has exited, leaving it to be reaped (`waitid` with `WNOWAIT`).
fn wait_exited(pid: u32) -> io::Result<()> {
    loop {
        // SAFETY: siginfo_t is plain data, zeroed is a valid value for waitid to fill in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid(2) on our own child with a pointer to a live siginfo_t.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// 503 with `Retry-After` when no git slot came free in time.
pub(crate) fn busy_response(busy: Busy) -> Response {
    let mut r = Response::text(503, format!("{}\n", busy.message()));
    r.header("Retry-After", "5");
    r.no_cache();
    r
}

/// A file in `dir` that is gone from the folder as soon as it is open.
pub(crate) fn temp_file(dir: &Path) -> io::Result<File> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = dir.join(format!(".body-{}-{n}-{nanos:x}", std::process::id()));
        match fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => {
                let _ = fs::remove_file(&path);
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("cannot make a temporary file"))
}

/// Whether `git version 2.47.3` (as `git version` prints it) is `major.minor` or newer.
fn version_at_least(version: &str, major: u32, minor: u32) -> bool {
    let mut numbers = version
        .trim_start_matches("git version ")
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// Snapshots made at once by one process.
pub(crate) const SNAPSHOTS_AT_ONCE: usize = 2;

/// Counts snapshots being made.
#[derive(Default)]
pub(crate) struct Snapshots(AtomicUsize);

/// One of the [`SNAPSHOTS_AT_ONCE`] snapshots in the making.
pub(crate) struct SnapshotTurn<'a>(&'a AtomicUsize);

impl Drop for SnapshotTurn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Snapshots {
    /// A turn to make a snapshot, unless [`SNAPSHOTS_AT_ONCE`] are being made.
    pub(crate) fn enter(&self) -> Option<SnapshotTurn<'_>> {
        let prev = self.0.fetch_add(1, Ordering::SeqCst);
        let turn = SnapshotTurn(&self.0);
        (prev < SNAPSHOTS_AT_ONCE).then_some(turn)
    }
}

/// Counts the runs of one kind of work (blames, code searches, comparisons) going on in this process,
/// up to a cap: past it, a request is told to come back rather than wait.
pub(crate) struct AtOnce {
    running: AtomicUsize,
    cap: usize,
}

/// One of an [`AtOnce`]'s runs, given back when dropped.
pub(crate) struct Turn<'a>(&'a AtomicUsize);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AtOnce {
    pub(crate) fn new(cap: usize) -> AtOnce {
        AtOnce {
            running: AtomicUsize::new(0),
            cap,
        }
    }

    /// A turn, unless `cap` runs are going on.
    pub(crate) fn enter(&self) -> Option<Turn<'_>> {
        let prev = self.running.fetch_add(1, Ordering::SeqCst);
        let turn = Turn(&self.running);
        (prev < self.cap).then_some(turn)
    }
}

/// Whether a large delta is being rebuilt in this process right now.
#[derive(Default)]
pub(crate) struct DeltaGate(AtomicBool);

/// Holds the [`DeltaGate`] while alive.
pub(crate) struct DeltaTurn<'a>(&'a AtomicBool);

impl Drop for DeltaTurn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl DeltaGate {
    pub(crate) fn enter(&self) -> Option<DeltaTurn<'_>> {
        self.0
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| DeltaTurn(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn versions_are_compared_by_major_and_minor() {
        assert!(version_at_least("git version 2.47.3", 2, 47));
        assert!(version_at_least("git version 3.0.0", 2, 47));
        assert!(!version_at_least("git version 2.39.5", 2, 47));
        assert!(version_at_least(
            "git version 2.39.5 (Apple Git-154)",
            2,
            39
        ));
        assert!(!version_at_least("", 2, 0));
    }

    #[test]
    fn children_run_under_the_memory_limit() {
        let dir = std::env::temp_dir().join(format!("forgelet-runner-{}", std::process::id()));
        let config = crate::config::parse(
            Path::new("test.toml"),
            &format!(
                "data_dir = \"{}\"\n[limits]\ngit_memory_mib = 300\n",
                dir.display()
            ),
        )
        .unwrap();
        let runner = GitRunner::new(&config);
        // What the child starts after the limit is set inherits it, as pack-objects does.
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg("sleep 0.3; grep 'Max address space' /proc/self/limits")
            .stdout(Stdio::piped());
        let out = runner.spawn(&mut c).unwrap().wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&(300u64 << 20).to_string()), "{text}");
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn bounded_output_stops_git_at_its_deadline_and_its_bound() {
        let dir = std::env::temp_dir().join(format!("forgelet-bounded-{}", std::process::id()));
        let config = crate::config::parse(
            Path::new("test.toml"),
            &format!("data_dir = \"{}\"\n", dir.display()),
        )
        .unwrap();
        let runner = GitRunner::new(&config);
        let whole = runner
            .output(runner.git().arg("version"), Duration::from_secs(30), 1000)
            .unwrap();
        assert!(whole.complete);
        assert!(whole.stdout.starts_with(b"git version "));
        // A child that prints without end: cut at the bound, and stopped.
        let started = std::time::Instant::now();
        let cut = runner
            .output(
                runner.git().args(["-c", "alias.flood=!yes", "flood"]),
                Duration::from_secs(30),
                5000,
            )
            .unwrap();
        assert!(!cut.complete);
        assert_eq!(cut.stdout.len(), 5000);
        // A child that prints nothing for longer than the deadline: stopped at it.
        let slow = runner
            .output(
                runner.git().args(["-c", "alias.nap=!sleep 20", "nap"]),
                Duration::from_millis(300),
                5000,
            )
            .unwrap();
        assert!(!slow.complete && slow.stdout.is_empty());
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn read_hands_output_over_and_stops_git_when_told_or_late() {
        let dir = std::env::temp_dir().join(format!("forgelet-read-{}", std::process::id()));
        let config = crate::config::parse(
            Path::new("test.toml"),
            &format!("data_dir = \"{}\"\n", dir.display()),
        )
        .unwrap();
        let runner = GitRunner::new(&config);
        let mut got = Vec::new();
        let whole = runner
            .read(runner.git().arg("version"), Duration::from_secs(30), |p| {
                got.extend_from_slice(p);
                true
            })
            .unwrap();
        assert!(whole.complete && !whole.timed_out);
        assert!(got.starts_with(b"git version "));
        // Told to stop: git is stopped, not read to its end.
        let started = std::time::Instant::now();
        let mut seen = 0;
        let cut = runner
            .read(
                runner.git().args(["-c", "alias.flood=!yes", "flood"]),
                Duration::from_secs(30),
                |p| {
                    seen += p.len();
                    seen < 100_000
                },
            )
            .unwrap();
        assert!(!cut.complete && !cut.timed_out);
        // Late: stopped at the deadline.
        let slow = runner
            .read(
                runner.git().args(["-c", "alias.nap=!sleep 20", "nap"]),
                Duration::from_millis(300),
                |_| true,
            )
            .unwrap();
        assert!(!slow.complete && slow.timed_out);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let _ = fs::remove_dir_all(dir);
    }
}
