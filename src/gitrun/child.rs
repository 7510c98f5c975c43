//! One git child per request, streamed to the client without letting a slow client hold git.
//!
//! git's output goes to the client as git writes it, so progress and keepalives arrive on time.
//! While the client keeps up, one thread reads git's pipe and writes each part to the client
//! itself, as a relay like fcgiwrap does: no handoff between threads per part. When a write to
//! the client has not returned for [`TAKEOVER`], a second thread takes over reading git, and the
//! part the client has not taken yet waits in memory (up to [`MEMORY_PER_REQUEST`]) and then in
//! an unlinked file under `{data_dir}/tmp`, so git finishes at its own pace and gives its slot
//! back (see `slots`); only the connection is left draining. Once the client has caught up, the
//! relay goes back to one thread. The files of all requests together stay under a budget (`[limits] spool_mib`):
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
use std::process::{Child, ChildStdin, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

/// Output a client has not taken yet kept in memory per request, before it goes to a file.
const MEMORY_PER_REQUEST: usize = 512 << 10;
/// One read from git fills at most one FastCGI record, so a flush sends whole records.
const CHUNK: usize = 65_535;
/// How long one write to the client may take before git's output goes to the spool instead of
/// waiting for it.
const TAKEOVER: Duration = Duration::from_millis(20);
/// How long the feeder of an exited git may take to say whether git had all of its input.
const FEED_END: Duration = Duration::from_secs(5);
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

    /// Kills the group: for a child that did not stop when asked.
    pub(crate) fn kill(&self) {
        self.signal(libc::SIGKILL);
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
    /// The client waits for git's next part (it has taken everything kept).
    client_waiting: bool,
}

/// What [`Spool::push`] did with a part.
enum Pushed {
    /// Kept for the client; `caught_up` when the client was waiting for it (it had taken all
    /// the rest).
    Kept { caught_up: bool },
    /// The client is gone: nothing is kept.
    Gone,
}

/// The next part for the client.
enum Next<'g, 'r> {
    /// A part kept in the spool.
    Kept(Vec<u8>),
    /// Nothing is kept and no one reads git: the client reads git's next part itself.
    Read(MutexGuard<'g, Reader<'r>>),
    /// git has ended and all was taken.
    End,
}

/// Where a copy of git's output goes, as git writes it (the pack cache's entry being made).
pub(crate) trait Record: Write + Send {
    /// git has exited with success after its input was all taken, and every byte of its output
    /// has been written here: the record is whole, whatever the client has taken so far (a slow
    /// client must not keep a complete record from those waiting for it). Not called otherwise.
    fn complete(&mut self);
}

/// git's output pipe (and the record of it); whoever holds it reads git.
struct Reader<'r> {
    stdout: ChildStdout,
    record: Option<&'r mut dyn Record>,
    buf: Vec<u8>,
    /// git closed its output (not a failed read).
    at_end: bool,
}

impl Reader<'_> {
    /// One read from git into `buf`, recorded: the number of bytes, or `None` at the end.
    fn read(&mut self) -> Option<usize> {
        loop {
            match self.stdout.read(&mut self.buf) {
                Ok(0) => {
                    self.at_end = true;
                    return None;
                }
                Ok(n) => {
                    if let Some(r) = self.record.as_mut() {
                        let _ = r.write_all(&self.buf[..n]);
                    }
                    return Some(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Our end of the pipe failed: the end of the output.
                Err(_) => return None,
            }
        }
    }
}

fn lock_reader<'g, 'r>(reader: &'g Mutex<Reader<'r>>) -> MutexGuard<'g, Reader<'r>> {
    reader.lock().unwrap_or_else(PoisonError::into_inner)
}

fn try_lock_reader<'g, 'r>(reader: &'g Mutex<Reader<'r>>) -> Option<MutexGuard<'g, Reader<'r>>> {
    match reader.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
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

    /// Keeps `data` for the client; waits while memory is full and the budget spent.
    fn push(&self, data: Vec<u8>) -> Pushed {
        let mut s = self.lock();
        loop {
            if s.gone {
                return Pushed::Gone;
            }
            let caught_up = s.client_waiting;
            let file_in_use = s.file.is_some() && s.taken < s.written;
            if !file_in_use
                && (s.memory.is_empty() || s.memory_bytes + data.len() <= MEMORY_PER_REQUEST)
            {
                s.memory_bytes += data.len();
                s.memory.push_back(data);
                self.changed.notify_all();
                return Pushed::Kept { caught_up };
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
                        return Pushed::Kept { caught_up };
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

    /// Wakes the client to look again (the reader was let go).
    fn wake(&self) {
        let _s = self.lock();
        self.changed.notify_all();
    }

    fn is_gone(&self) -> bool {
        self.lock().gone
    }

    /// Waits until the client has been in one write for [`TAKEOVER`] (true), or git's output
    /// has ended or the client is gone (false). `sending` is when the client's current write
    /// began, in milliseconds after `base` plus one; 0 when it is not writing.
    fn wait_stuck(&self, sending: &AtomicU64, base: Instant) -> bool {
        let mut s = self.lock();
        loop {
            if s.ended || s.gone {
                return false;
            }
            let since = sending.load(Ordering::SeqCst);
            if since != 0 && millis_since(base) >= since - 1 + TAKEOVER.as_millis() as u64 {
                return true;
            }
            s = self
                .changed
                .wait_timeout(s, TAKEOVER)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
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

    /// The next part for the client: one kept, else git's pipe to read when no one else reads
    /// it, else (waiting) whichever comes first.
    fn next<'g, 'r>(&self, reader: &'g Mutex<Reader<'r>>) -> io::Result<Next<'g, 'r>> {
        let mut s = self.lock();
        loop {
            if let Some(chunk) = s.memory.pop_front() {
                s.memory_bytes -= chunk.len();
                self.changed.notify_all();
                return Ok(Next::Kept(chunk));
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
                return Ok(Next::Kept(chunk));
            }
            if s.ended {
                return Ok(Next::End);
            }
            // The spool's lock is held, so a reader that lets go after this try wakes us.
            if let Some(g) = try_lock_reader(reader) {
                return Ok(Next::Read(g));
            }
            s.client_waiting = true;
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.client_waiting = false;
        }
    }
}

impl Drop for Spool<'_> {
    fn drop(&mut self) {
        let charged = std::mem::take(&mut self.lock().charged);
        self.budget.give_back(charged);
    }
}

fn millis_since(base: Instant) -> u64 {
    base.elapsed().as_millis() as u64
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
/// gets git's output too, as git writes it (at git's pace, not the client's), and is told
/// [`Record::complete`] as soon as git has ended well; its errors are its own business.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run<H: Send>(
    mut guard: ChildGuard,
    held: H,
    input: Option<Box<dyn Read + Send + '_>>,
    deadline: Duration,
    budget: &SpoolBudget,
    out: &mut (dyn Write + Send),
    head: &mut WriteHead<'_>,
    mut record: Option<&mut dyn Record>,
) -> Ended {
    let killer = guard.killer();
    let stdin: Option<ChildStdin> = guard.child.stdin.take();
    let (Some(stdout), Some(mut stderr)) = (guard.child.stdout.take(), guard.child.stderr.take())
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
    let reader = Mutex::new(Reader {
        stdout,
        record: record.take(),
        buf: vec![0u8; CHUNK],
        at_end: false,
    });
    let sending = AtomicU64::new(0);
    let base = Instant::now();
    let timed_out = AtomicBool::new(false);
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // Whether all of the input went to git, once the feeder knows.
    let (fed_tx, fed_rx) = mpsc::channel::<bool>();
    std::thread::scope(|s| {
        let feed_killer = killer.clone();
        let feeder = s.spawn(move || {
            let r = match (input, stdin) {
                (Some(mut input), Some(mut stdin)) => {
                    let r = io::copy(&mut input, &mut stdin);
                    if let Err(e) = &r {
                        // Over the cap, or the client went away mid-upload: stop git before it
                        // acts on half a request. (A git that stopped reading early shows up
                        // here as a broken pipe; it has said what it had to.)
                        if e.kind() != io::ErrorKind::BrokenPipe {
                            feed_killer.stop();
                        }
                    }
                    r
                }
                // No body: git's stdin closes here.
                _ => Ok(0),
            };
            let _ = fed_tx.send(r.is_ok());
            r
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
        let reader = &reader;
        let sending = &sending;
        // Takes over reading git while the client is stuck in a write, and reaps git.
        let helper = s.spawn(move || {
            while spool.wait_stuck(sending, base) {
                let Some(mut g) = try_lock_reader(reader) else {
                    continue;
                };
                loop {
                    let Some(n) = g.read() else {
                        spool.end();
                        break;
                    };
                    match spool.push(g.buf[..n].to_vec()) {
                        // The client has taken all the rest: it reads git itself again.
                        Pushed::Kept { caught_up: true } | Pushed::Gone => break,
                        Pushed::Kept { caught_up: false } => {}
                    }
                }
                drop(g);
                spool.wake();
            }
            if spool.is_gone() {
                // git was told to stop: its output is read to the end, unkept.
                let mut g = lock_reader(reader);
                let _ = io::copy(&mut g.stdout, &mut io::sink());
            }
            let status = guard.wait();
            // git is done: its slot is free while the client takes the rest.
            drop(held);
            let _ = done_tx.send(());
            // The record is whole when git read its input, ended well in time and all of
            // its output was read (the client may still be taking it). git has exited, so the
            // feeder is done or about to be (its next write fails).
            let whole = !spool.is_gone()
                && !timed_out.load(Ordering::SeqCst)
                && status.as_ref().is_ok_and(|s| s.success())
                && fed_rx.recv_timeout(FEED_END).unwrap_or(false);
            if whole {
                let mut g = lock_reader(reader);
                if g.at_end {
                    if let Some(r) = g.record.as_mut() {
                        r.complete();
                    }
                }
            }
            status
        });

        // The client, on this thread.
        let mut started = false;
        let mut mine = vec![0u8; CHUNK];
        let mut send = |data: &[u8]| -> io::Result<()> {
            sending.store(millis_since(base) + 1, Ordering::SeqCst);
            let r = (|| {
                if !started {
                    head(out, data)?;
                    started = true;
                }
                out.write_all(data)?;
                // Progress and keepalives must reach the client as git makes them.
                out.flush()
            })();
            sending.store(0, Ordering::SeqCst);
            r
        };
        let sent = loop {
            let r = match spool.next(reader) {
                Ok(Next::Kept(chunk)) => send(&chunk),
                Ok(Next::Read(mut g)) => match g.read() {
                    Some(n) => {
                        // The part is ours; the reader gets the other buffer, so the helper
                        // can read on while this part goes out.
                        std::mem::swap(&mut g.buf, &mut mine);
                        drop(g);
                        send(&mine[..n])
                    }
                    None => {
                        drop(g);
                        spool.end();
                        Ok(())
                    }
                },
                Ok(Next::End) => break Ok(started),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                break Err(e);
            }
        };
        if sent.is_err() {
            spool.abandon();
            killer.stop();
        }
        let status = helper
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
        shell(&format!("head -c {bytes} /dev/zero"))
    }

    /// A child running `script` with `sh -c`, its stdout and stderr piped, in its own process
    /// group (as git is run).
    fn shell(script: &str) -> ChildGuard {
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
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

    /// A client that has gone away.
    struct Gone;
    impl Write for Gone {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A record kept in memory; `complete` says when it was told it is whole (and how long it
    /// was then), `open` is set at that moment (to let a gated client go on).
    #[derive(Default)]
    struct Kept {
        bytes: Vec<u8>,
        complete_at: Option<usize>,
        open: Option<Arc<AtomicBool>>,
    }
    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.bytes.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Record for Kept {
        fn complete(&mut self) {
            assert!(self.complete_at.is_none(), "told twice");
            self.complete_at = Some(self.bytes.len());
            if let Some(o) = &self.open {
                o.store(true, Ordering::SeqCst);
            }
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
        let budget = tmp_budget(64 << 20);
        let start = Instant::now();
        let ended = run(
            // Writes forever unless stopped.
            shell("cat /dev/zero"),
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

    /// A client that stalls on every fourth write, for longer than the takeover time.
    struct Stalling {
        writes: usize,
        got: Vec<u8>,
    }
    impl Write for Stalling {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            if self.writes % 4 == 0 {
                std::thread::sleep(TAKEOVER * 3);
            }
            self.got.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_stays_in_order_while_the_relay_switches_between_one_and_two_threads() {
        // git's output here is numbered lines, so a part sent out of turn shows.
        let child = shell("seq 1 400000");
        let expected = Command::new("seq")
            .arg("1")
            .arg("400000")
            .output()
            .unwrap()
            .stdout;
        let budget = tmp_budget(64 << 20);
        let mut recorded = Kept::default();
        let mut out = Stalling {
            writes: 0,
            got: Vec::new(),
        };
        let ended = run(
            child,
            (),
            None,
            Duration::from_secs(60),
            &budget,
            &mut out,
            &mut |_, _| Ok(()),
            Some(&mut recorded),
        );
        assert!(matches!(ended.sent, Ok(true)));
        assert!(ended.status.unwrap().success());
        assert!(out.writes > 8, "the output came in too few parts to test");
        assert!(out.got == expected, "the client's copy is out of order");
        assert!(recorded.bytes == expected, "the record is out of order");
        assert_eq!(recorded.complete_at, Some(expected.len()));
        assert_eq!(budget.used(), 0);
    }

    /// A clone storm's followers wait for the leader's record: it must be whole when git is
    /// done, not when the leader's own (slow) client is. The client here takes nothing until
    /// the record is complete.
    #[test]
    fn the_record_is_complete_when_git_is_done_before_the_client_is() {
        let budget = tmp_budget(64 << 20);
        let open = Arc::new(AtomicBool::new(false));
        let mut out = Gated {
            open: Arc::clone(&open),
            got: Vec::new(),
        };
        let mut recorded = Kept {
            open: Some(Arc::clone(&open)),
            ..Kept::default()
        };
        let start = Instant::now();
        let ended = run(
            writer(3 << 20),
            (),
            None,
            Duration::from_secs(30),
            &budget,
            &mut out,
            &mut |_, _| Ok(()),
            Some(&mut recorded),
        );
        assert!(start.elapsed() < Duration::from_secs(20));
        assert!(matches!(ended.sent, Ok(true)));
        assert_eq!(recorded.complete_at, Some(3 << 20));
        assert_eq!(out.got.len(), 3 << 20);
    }

    #[test]
    fn a_record_of_a_git_that_failed_or_was_stopped_is_never_complete() {
        let budget = tmp_budget(64 << 20);
        for (script, deadline) in [("echo half; exit 3", 30), ("echo half; sleep 30", 1)] {
            let mut recorded = Kept::default();
            let mut out = Vec::new();
            run(
                shell(script),
                (),
                None,
                Duration::from_secs(deadline),
                &budget,
                &mut out,
                &mut |_, _| Ok(()),
                Some(&mut recorded),
            );
            assert_eq!(recorded.bytes, b"half\n", "{script}");
            assert_eq!(recorded.complete_at, None, "{script}");
        }
        // Nor of one whose client went away.
        let mut recorded = Kept::default();
        run(
            writer(3 << 20),
            (),
            None,
            Duration::from_secs(30),
            &budget,
            &mut Gone,
            &mut |_, _| Ok(()),
            Some(&mut recorded),
        );
        assert_eq!(recorded.complete_at, None);
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
