//! One git child per request, streamed to the client without letting a slow client hold git.
//!
//! git's output goes to the client as git writes it, so progress and keepalives arrive on time.
//! When the client reads slower than git writes, the part it has not taken yet waits in memory
//! (up to [`MEMORY_PER_REQUEST`]) and then in an unlinked file under `{data_dir}/tmp`, so git
//! finishes at its own pace and gives its slot back (see `slots`); only the connection is left
//! draining. The files of all requests together stay under a budget (`[limits] spool_mib`):
//! past it git waits for its client like before, holding its slot, and the write deadline
//! (`[server] write_timeout`: no byte accepted for that long) ends such a client.
//!
//! Whatever happens (client gone, deadline, panic), the child's whole process group is stopped
//! and the child reaped.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Output a client has not taken yet kept in memory per request, before it goes to a file.
const MEMORY_PER_REQUEST: usize = 512 << 10;
/// One read from git fills at most one FastCGI record, so a flush sends whole records.
const CHUNK: usize = 65_535;
/// How long a stopped git may take to clean up before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Where output waiting for slow clients goes, and how much of it there may be in all.
pub(crate) struct SpoolBudget {
    dir: PathBuf,
    max_bytes: u64,
    used: AtomicU64,
}

impl SpoolBudget {
    pub(crate) fn new(dir: PathBuf, max_bytes: u64) -> SpoolBudget {
        SpoolBudget {
            dir,
            max_bytes,
            used: AtomicU64::new(0),
        }
    }

    /// Takes `n` bytes of the budget, if they are left.
    fn take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                (u + n <= self.max_bytes).then_some(u + n)
            })
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::SeqCst);
    }

    /// Bytes in spool files now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
}

/// Stops a child's process group while the child is not reaped yet (after that its group id
/// may belong to someone else).
#[derive(Clone)]
pub(crate) struct Killer(Arc<Mutex<Option<i32>>>);

impl Killer {
    /// Asks the group to stop: SIGTERM, so git removes a push's quarantine and its lock files.
    pub(crate) fn stop(&self) {
        self.signal(libc::SIGTERM);
    }

    fn signal(&self, sig: libc::c_int) {
        let pgid = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pgid) = *pgid {
            signal_group(pgid, sig);
        }
    }
}

fn signal_group(pgid: i32, sig: libc::c_int) {
    if pgid > 0 {
        // SAFETY: kill(2) with a negative pid signals the group; no memory is involved.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// Owns a child started in its own process group; however the request ends, the child is
/// reaped and nothing of its group is left: whatever still runs after a grace period is killed.
pub(crate) struct ChildGuard {
    pub(crate) child: Child,
    killer: Killer,
    reaped: bool,
}

impl ChildGuard {
    pub(crate) fn new(child: Child) -> ChildGuard {
        // process_group(0) made the child the leader of a group with its own pid.
        let pgid = i32::try_from(child.id()).ok();
        ChildGuard {
            child,
            killer: Killer(Arc::new(Mutex::new(pgid))),
            reaped: false,
        }
    }

    pub(crate) fn killer(&self) -> Killer {
        self.killer.clone()
    }

    /// Waits for a child that has closed its output (or was asked to stop): it gets STOP_GRACE
    /// to exit, then SIGKILL; once it is reaped, what it left running in its group
    /// (pack-objects, index-pack) is killed.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        let until = Instant::now() + STOP_GRACE;
        let mut killed = false;
        let status = loop {
            // The reap and the end of the group id's use happen under one lock, so a stop from
            // another thread never reaches a group id that is free again.
            let mut pgid = self.killer.0.lock().unwrap_or_else(PoisonError::into_inner);
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    if let Some(g) = pgid.take() {
                        signal_group(g, libc::SIGKILL);
                    }
                    break Ok(status);
                }
                Ok(None) => {}
                Err(e) => {
                    pgid.take();
                    break Err(e);
                }
            }
            drop(pgid);
            if !killed && Instant::now() >= until {
                self.killer.signal(libc::SIGKILL);
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.reaped = true;
        status
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if !self.reaped {
            self.killer.stop();
            let _ = self.wait();
        }
    }
}

/// What a client has not taken yet of one child's output: memory first, then a file.
struct Spool<'b> {
    budget: &'b SpoolBudget,
    state: Mutex<SpoolState>,
    changed: Condvar,
}

#[derive(Default)]
struct SpoolState {
    /// Older than anything in the file.
    memory: VecDeque<Vec<u8>>,
    memory_bytes: usize,
    file: Option<File>,
    /// Bytes written to the file, and taken from it, since it was last emptied.
    written: u64,
    taken: u64,
    /// The budget this spool holds (what its file holds).
    charged: u64,
    /// git closed its output.
    ended: bool,
    /// The client is gone: nothing more is kept.
    gone: bool,
}

impl<'b> Spool<'b> {
    fn new(budget: &'b SpoolBudget) -> Spool<'b> {
        Spool {
            budget,
            state: Mutex::new(SpoolState::default()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SpoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `data` for the client; waits while memory is full and the budget spent. False
    /// when the client is gone.
    fn push(&self, data: Vec<u8>) -> bool {
        let mut s = self.lock();
        loop {
            if s.gone {
                return false;
            }
            let file_in_use = s.file.is_some() && s.taken < s.written;
            if !file_in_use
                && (s.memory.is_empty() || s.memory_bytes + data.len() <= MEMORY_PER_REQUEST)
            {
                s.memory_bytes += data.len();
                s.memory.push_back(data);
                self.changed.notify_all();
                return true;
            }
            let n = data.len() as u64;
            if self.budget.take(n) {
                if s.file.is_none() {
                    match super::temp_file(&self.budget.dir) {
                        Ok(f) => s.file = Some(f),
                        Err(e) => {
                            log::warn!(
                                "cannot make a file for output a client has not taken yet in {}: {e}",
                                self.budget.dir.display()
                            );
                            self.budget.give_back(n);
                            // As if the budget were spent: wait for the client.
                            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
                            continue;
                        }
                    }
                }
                let at = s.written;
                let wrote = s.file.as_ref().map(|f| f.write_all_at(&data, at));
                match wrote {
                    Some(Ok(())) => {
                        s.written += n;
                        s.charged += n;
                        self.changed.notify_all();
                        return true;
                    }
                    _ => {
                        self.budget.give_back(n);
                        log::warn!(
                            "cannot write output a client has not taken yet to {}",
                            self.budget.dir.display()
                        );
                    }
                }
            }
            // Memory full, budget spent (or the disk refused): git waits for its client.
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// git closed its output.
    fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_all();
    }

    /// The client is gone: drop what is kept, refuse what comes.
    fn abandon(&self) {
        let mut s = self.lock();
        s.gone = true;
        s.memory.clear();
        s.memory_bytes = 0;
        self.empty_file(&mut s);
        drop(s);
        self.changed.notify_all();
    }

    fn empty_file(&self, s: &mut SpoolState) {
        if let Some(f) = &s.file {
            let _ = f.set_len(0);
        }
        s.written = 0;
        s.taken = 0;
        self.budget.give_back(std::mem::take(&mut s.charged));
    }

    /// The next part for the client, waiting for git; `None` once git has ended and all was
    /// taken.
    fn next(&self) -> io::Result<Option<Vec<u8>>> {
        let mut s = self.lock();
        loop {
            if let Some(chunk) = s.memory.pop_front() {
                s.memory_bytes -= chunk.len();
                self.changed.notify_all();
                return Ok(Some(chunk));
            }
            if s.taken < s.written {
                let n = (s.written - s.taken).min(CHUNK as u64) as usize;
                let mut chunk = vec![0u8; n];
                let at = s.taken;
                if let Some(f) = &s.file {
                    f.read_exact_at(&mut chunk, at)?;
                }
                s.taken += n as u64;
                if s.taken == s.written {
                    self.empty_file(&mut s);
                }
                self.changed.notify_all();
                return Ok(Some(chunk));
            }
            if s.ended {
                return Ok(None);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl Drop for Spool<'_> {
    fn drop(&mut self) {
        let charged = std::mem::take(&mut self.lock().charged);
        self.budget.give_back(charged);
    }
}

/// How a child ended, for a log line: "exit status: 128", "signal: 9 (SIGKILL)", or why it
/// could not be waited for.
pub(crate) fn status_text(status: &io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => format!("not waited for: {e}"),
    }
}

/// Writes a response's headers, given the first bytes of the content.
pub(crate) type WriteHead<'a> = dyn FnMut(&mut (dyn Write + Send), &[u8]) -> io::Result<()> + 'a;

/// How one child's exchange ended.
pub(crate) struct Ended {
    /// `Ok(true)`: `head` and git's output went to the client; `Ok(false)`: git wrote nothing
    /// (the caller answers); `Err`: the client went away (or stopped reading for the write
    /// deadline).
    pub(crate) sent: io::Result<bool>,
    pub(crate) status: io::Result<ExitStatus>,
    /// The first 64 KiB git wrote to stderr.
    pub(crate) stderr: Vec<u8>,
    /// What feeding the request body to git gave (`Ok(0)` without a body).
    pub(crate) feed: io::Result<u64>,
    /// The deadline stopped git.
    pub(crate) timed_out: bool,
}

/// Runs a started child to its end: feeds `input` (when given) to its stdin, streams its
/// stdout to `out` (calling `head` with the first part before it goes out), keeps its stderr, stops it at
/// `deadline`. `held` (the git slot, and whatever else counts running git) is dropped as soon
/// as git has exited, before a slow client has taken all of its output. `record`, when given,
/// gets git's output too, as git writes it (at git's pace, not the client's); its errors are
/// its own business.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<H: Send>(
    mut guard: ChildGuard,
    held: H,
    input: Option<Box<dyn Read + Send + '_>>,
    deadline: Duration,
    budget: &SpoolBudget,
    out: &mut (dyn Write + Send),
    head: &mut WriteHead<'_>,
    mut record: Option<&mut (dyn Write + Send)>,
) -> Ended {
    let killer = guard.killer();
    let stdin: Option<ChildStdin> = guard.child.stdin.take();
    let (Some(mut stdout), Some(mut stderr)) =
        (guard.child.stdout.take(), guard.child.stderr.take())
    else {
        return Ended {
            sent: Err(io::Error::other("git's pipes are missing")),
            status: guard.wait(),
            stderr: Vec::new(),
            feed: Ok(0),
            timed_out: false,
        };
    };
    let spool = Spool::new(budget);
    let timed_out = AtomicBool::new(false);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let feed_killer = killer.clone();
        let feeder = s.spawn(move || match (input, stdin) {
            (Some(mut input), Some(mut stdin)) => {
                let r = io::copy(&mut input, &mut stdin);
                if let Err(e) = &r {
                    // Over the cap, or the client went away mid-upload: stop git before it
                    // acts on half a request. (A git that stopped reading early shows up here
                    // as a broken pipe; it has said what it had to.)
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        feed_killer.stop();
                    }
                }
                r
            }
            // No body: git's stdin closes here.
            _ => Ok(0),
        });
        let errors = s.spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut buf);
            // The rest is read and dropped, so git never blocks on a full pipe.
            let _ = io::copy(&mut stderr, &mut io::sink());
            buf
        });
        let watch_killer = killer.clone();
        let timed_out = &timed_out;
        s.spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(deadline) {
                timed_out.store(true, Ordering::SeqCst);
                watch_killer.stop();
            }
        });
        let spool = &spool;
        let producer = s.spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // Our end of the pipe failed: the end of the output.
                    Err(_) => break,
                };
                if let Some(r) = record.as_mut() {
                    let _ = r.write_all(&buf[..n]);
                }
                if !spool.push(buf[..n].to_vec()) {
                    // The client is gone (git was told to stop): read to the end, unkept.
                    let _ = io::copy(&mut stdout, &mut io::sink());
                    break;
                }
            }
            spool.end();
            let status = guard.wait();
            // git is done: its slot is free while the client takes the rest.
            drop(held);
            let _ = done_tx.send(());
            status
        });

        // The client, on this thread.
        let mut started = false;
        let sent = loop {
            let chunk = match spool.next() {
                Ok(Some(c)) => c,
                Ok(None) => break Ok(started),
                Err(e) => break Err(e),
            };
            let written = (|| {
                if !started {
                    head(out, &chunk)?;
                    started = true;
                }
                out.write_all(&chunk)?;
                // Progress and keepalives must reach the client as git makes them.
                out.flush()
            })();
            if let Err(e) = written {
                break Err(e);
            }
        };
        if sent.is_err() {
            spool.abandon();
            killer.stop();
        }
        let status = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("git's output reader panicked")));
        let feed = feeder
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("git's input writer panicked")));
        let stderr = errors.join().unwrap_or_default();
        Ended {
            sent,
            status,
            stderr,
            feed,
            timed_out: timed_out.load(Ordering::SeqCst),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::atomic::AtomicUsize;

    /// A child writing `bytes` zero bytes to stdout, in its own process group.
    fn writer(bytes: usize) -> ChildGuard {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("head -c {bytes} /dev/zero"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        ChildGuard::new(child)
    }

    /// Sets its flag when dropped (stands for the git slot).
    struct Held(Arc<AtomicBool>);
    impl Drop for Held {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    /// A client that takes nothing until `open` says so, then everything.
    struct Gated {
        open: Arc<AtomicBool>,
        got: Vec<u8>,
    }
    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            while !self.open.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn tmp_budget(max: u64) -> SpoolBudget {
        SpoolBudget::new(std::env::temp_dir(), max)
    }

    use std::os::unix::process::CommandExt;

    #[test]
    fn git_finishes_and_gives_its_slot_back_while_the_client_waits() {
        let budget = tmp_budget(64 << 20);
        let released = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicBool::new(false));
        let mut out = Gated {
            open: Arc::clone(&open),
            got: Vec::new(),
        };
        let heads = AtomicUsize::new(0);
        let ended = std::thread::scope(|s| {
            let (released2, open2) = (Arc::clone(&released), Arc::clone(&open));
            let budget = &budget;
            s.spawn(move || {
                // The slot comes back while the client has taken nothing.
                let until = Instant::now() + Duration::from_secs(20);
                while !released2.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert!(budget.used() > 0, "nothing went to the spool file");
                open2.store(true, Ordering::SeqCst);
            });
            run(
                writer(3 << 20),
                Held(Arc::clone(&released)),
                None,
                Duration::from_secs(30),
                budget,
                &mut out,
                &mut |_, _| {
                    heads.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                },
                None,
            )
        });
        assert!(released.load(Ordering::SeqCst));
        assert!(matches!(ended.sent, Ok(true)));
        assert!(ended.status.unwrap().success());
        assert_eq!(out.got.len(), 3 << 20);
        assert!(out.got.iter().all(|&b| b == 0));
        assert_eq!(heads.load(Ordering::SeqCst), 1);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn past_the_budget_git_waits_for_its_client() {
        let budget = tmp_budget(1 << 20);
        let released = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicBool::new(false));
        let mut out = Gated {
            open: Arc::clone(&open),
            got: Vec::new(),
        };
        let ended = std::thread::scope(|s| {
            let (released2, open2) = (Arc::clone(&released), Arc::clone(&open));
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(500));
                // 3 MiB cannot all wait in 512 KiB of memory and a 1 MiB budget.
                assert!(
                    !released2.load(Ordering::SeqCst),
                    "git ended past the budget"
                );
                open2.store(true, Ordering::SeqCst);
            });
            run(
                writer(3 << 20),
                Held(Arc::clone(&released)),
                None,
                Duration::from_secs(30),
                &budget,
                &mut out,
                &mut |_, _| Ok(()),
                None,
            )
        });
        assert!(ended.status.unwrap().success());
        assert_eq!(out.got.len(), 3 << 20);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_client_that_goes_away_stops_git() {
        struct Gone;
        impl Write for Gone {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let budget = tmp_budget(64 << 20);
        // Writes forever unless stopped.
        let child = Command::new("sh")
            .arg("-c")
            .arg("cat /dev/zero")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let ended = run(
            ChildGuard::new(child),
            (),
            None,
            Duration::from_secs(30),
            &budget,
            &mut Gone,
            &mut |_, _| Ok(()),
            None,
        );
        assert!(ended.sent.is_err());
        assert!(!ended.status.unwrap().success());
        assert!(start.elapsed() < Duration::from_secs(10));
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn nothing_written_is_told_apart() {
        let budget = tmp_budget(1 << 20);
        let mut out = Vec::new();
        let ended = run(
            writer(0),
            (),
            None,
            Duration::from_secs(30),
            &budget,
            &mut out,
            &mut |_, _| panic!("no head without output"),
            None,
        );
        assert!(matches!(ended.sent, Ok(false)));
        assert!(out.is_empty());
    }
}
