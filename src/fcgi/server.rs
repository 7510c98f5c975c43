//! The server: one poll thread that accepts connections and reads requests up to the end of their
//! PARAMS without blocking, lanes of pre-spawned worker threads that run the app, and the
//! SIGTERM/SIGINT drain.

use std::any::Any;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::listener::Listener;
use super::params::{Params, ParamsCollector};
use super::record::{
    check_end, parse_begin, push_end_request, push_management_reply, push_records, split_record,
    Limits, ABORT_REQUEST, BEGIN_REQUEST, CANT_MPX_CONN, PARAMS, REQUEST_COMPLETE, ROLE_RESPONDER,
    STDIN, STDOUT, UNKNOWN_ROLE,
};
use super::stream::{InBuf, Stdin, StdinState, Stdout};
use super::sys::{poll, wake_fd, Sock, WakePipe};
use super::{App, Config};

/// How long the poll thread may wait for room to send one of its short answers.
const POLL_WRITE_BUDGET: Duration = Duration::from_millis(200);
/// How long a connection we are closing is read and discarded from, so that closing with unread
/// request bytes does not turn into a reset that loses the answer we just sent.
const LINGER: Duration = Duration::from_secs(2);
/// At the connection cap, how long a connection must have been idle before a new one may take
/// its place: a just-accepted connection whose request bytes are not read yet is never evicted.
const EVICT_GRACE: Duration = Duration::from_secs(1);
/// Bytes of a request body left unread that the worker still reads to reuse a keep-alive
/// connection.
const DRAIN_BUDGET: usize = 64 * 1024;
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(100);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
const ACCEPTS_PER_ROUND: usize = 64;
const POLL_READ_CHUNK: usize = 16 * 1024;

use crate::gateway::{Call, Failed, INTERNAL_ERROR};

/// Asks a running server to shut down (tests, and serve()'s signal handlers).
#[derive(Debug)]
pub(crate) struct Stop {
    flag: AtomicBool,
    pipe: WakePipe,
    /// Whether the process-wide signal flag counts too (only for [`serve`]).
    signals: bool,
}

impl Stop {
    #[cfg(test)]
    pub(crate) fn new() -> io::Result<Arc<Stop>> {
        Stop::with_signals(false)
    }

    fn with_signals(signals: bool) -> io::Result<Arc<Stop>> {
        Ok(Arc::new(Stop {
            flag: AtomicBool::new(false),
            pipe: WakePipe::new()?,
            signals,
        }))
    }

    #[cfg(test)]
    pub(crate) fn request(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.pipe.wake();
    }

    fn is_requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst) || (self.signals && SIGNALLED.load(Ordering::SeqCst))
    }
}

static SERVING: AtomicBool = AtomicBool::new(false);
static SIGNALLED: AtomicBool = AtomicBool::new(false);
static SIGNAL_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only async-signal-safe work: an atomic store and a write(2). errno is saved so the
    // interrupted code does not see ours.
    // SAFETY: __errno_location returns this thread's errno slot.
    let saved = unsafe { *libc::__errno_location() };
    SIGNALLED.store(true, Ordering::SeqCst);
    let fd = SIGNAL_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        wake_fd(fd);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

fn set_signal(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we fill the handler, flags and an empty mask.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = handler;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: sigemptyset/sigaction get pointers to live structs.
    unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        super::sys::cvt(libc::sigaction(sig, &sa, std::ptr::null_mut()))?;
    }
    Ok(())
}

/// Serves until SIGTERM or SIGINT; see the module documentation. May be called once per process:
/// it owns the process's SIGTERM/SIGINT handling, and ignores SIGPIPE so that writes to a gone
/// peer fail with EPIPE (keep it ignored).
pub fn serve(listener: Listener, config: Config, app: Arc<dyn App>) -> io::Result<()> {
    if SERVING.swap(true, Ordering::SeqCst) {
        return Err(io::Error::other(
            "fcgi::serve may be called only once per process",
        ));
    }
    let stop = Stop::with_signals(true)?;
    SIGNAL_FD.store(stop.pipe.write_fd(), Ordering::SeqCst);
    let warming = Arc::clone(&app);
    // A failed spawn only leaves that work to the first requests.
    let _ = std::thread::Builder::new()
        .name("warm".into())
        .spawn(move || warming.warm());
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let result = set_signal(libc::SIGPIPE, libc::SIG_IGN)
        .and_then(|()| set_signal(libc::SIGTERM, handler))
        .and_then(|()| set_signal(libc::SIGINT, handler))
        .and_then(|()| serve_until(listener, config, app, Arc::clone(&stop)));
    // Back to the defaults, so a second Ctrl-C after we return ends the process as usual; the
    // pipe is about to close, so the handler must not write to it any more.
    let _ = set_signal(libc::SIGTERM, libc::SIG_DFL);
    let _ = set_signal(libc::SIGINT, libc::SIG_DFL);
    SIGNAL_FD.store(-1, Ordering::SeqCst);
    result
}

/// A request whose PARAMS are complete, on its way to a worker.
struct Job {
    conn: Conn,
    id: u16,
    keep_conn: bool,
    call: Box<dyn Call>,
}

/// What a worker hands back to the poll thread when it is done with a connection.
enum Back {
    /// Idle keep-alive connection: wait for the next request.
    Keep(Conn),
    /// Closing, but the peer may still be sending: read and discard for a moment first.
    Linger(Conn),
    Closed,
}

/// What the workers share.
struct WorkerCtx {
    io_timeout: Duration,
    write_timeout: Duration,
    limits: Limits,
    back: Sender<Back>,
    stop: Arc<Stop>,
}

struct Lane {
    name: String,
    tx: Option<Sender<Job>>,
    /// Requests queued or running in this lane.
    count: Arc<AtomicUsize>,
    cap: usize,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a BEGIN_REQUEST (a new or kept-alive connection).
    Idle,
    /// Collecting the PARAMS of request `id`, which began at `since`.
    Params {
        id: u16,
        keep_conn: bool,
        since: Instant,
        collector: ParamsCollector,
    },
    /// Our side is shut; discard what arrives until EOF or `until`.
    Linger { until: Instant },
}

/// A connection owned by the poll thread (or, while a request runs, by a worker).
#[derive(Debug)]
struct Conn {
    sock: Sock,
    inbuf: InBuf,
    phase: Phase,
    last_active: Instant,
}

impl Conn {
    fn new(sock: Sock, now: Instant) -> Conn {
        Conn {
            sock,
            inbuf: InBuf::default(),
            phase: Phase::Idle,
            last_active: now,
        }
    }

    fn start_linger(&mut self, now: Instant) {
        self.sock.shutdown_write();
        self.inbuf.clear();
        self.phase = Phase::Linger {
            until: now + LINGER,
        };
    }

    /// Idle between requests with nothing buffered, lingering after its answer, or slower to
    /// send its PARAMS than any web server is: closing it loses no request worth keeping.
    fn evictable(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Idle => self.inbuf.is_empty(),
            Phase::Linger { .. } => true,
            Phase::Params { since, .. } => now.duration_since(since) >= EVICT_GRACE,
        }
    }

    fn deadline(&self, config: &Config) -> Option<Instant> {
        let after = |t: Instant, d: Duration| if d.is_zero() { None } else { Some(t + d) };
        match &self.phase {
            Phase::Idle if self.inbuf.is_empty() => after(self.last_active, config.idle_timeout),
            // A record started but not finished: the peer is starting a request.
            Phase::Idle => after(self.last_active, config.params_timeout),
            // Measured from the start, so a trickle of bytes cannot hold the slot forever.
            Phase::Params { since, .. } => after(*since, config.params_timeout),
            Phase::Linger { until } => Some(*until),
        }
    }
}

/// Why the poll thread gives up on a connection.
#[derive(Debug)]
enum CloseReason {
    Protocol(String),
    ParamsTooLarge(usize),
    Write(io::Error),
}

/// What reading the buffered records of a connection led to.
enum Outcome {
    /// Need more bytes.
    Wait,
    Close(CloseReason),
    /// The request was answered here and the connection is not kept: close after a linger.
    Linger,
    Dispatch {
        id: u16,
        keep_conn: bool,
        params: Params,
    },
}

/// Processes the complete records buffered on `conn` until a request's PARAMS are complete, more
/// bytes are needed, or the connection must close. Never blocks except for a short answer write.
fn step(conn: &mut Conn, limits: &Limits, max_params: usize, now: Instant) -> Outcome {
    loop {
        let (rec, used) = match split_record(conn.inbuf.data()) {
            Ok(Some(r)) => r,
            Ok(None) => return Outcome::Wait,
            Err(e) => return Outcome::Close(CloseReason::Protocol(e.to_string())),
        };
        let h = rec.header;
        let mut reply = Vec::new();
        let mut result = None;
        if h.request_id == 0 {
            push_management_reply(&mut reply, h.rtype, rec.content, limits);
        } else {
            let active = match &conn.phase {
                Phase::Params { id, .. } => Some(*id),
                _ => None,
            };
            let ours = active == Some(h.request_id);
            match h.rtype {
                BEGIN_REQUEST => {
                    let begin = match parse_begin(rec.content) {
                        Ok(b) => b,
                        Err(e) => return Outcome::Close(CloseReason::Protocol(e.to_string())),
                    };
                    if ours {
                        return Outcome::Close(CloseReason::Protocol(
                            "BEGIN_REQUEST for a request already begun".into(),
                        ));
                    } else if active.is_some() {
                        push_end_request(&mut reply, h.request_id, 0, CANT_MPX_CONN);
                    } else if begin.role != ROLE_RESPONDER {
                        push_end_request(&mut reply, h.request_id, 0, UNKNOWN_ROLE);
                        if !begin.keep_conn {
                            result = Some(Outcome::Linger);
                        }
                    } else {
                        conn.phase = Phase::Params {
                            id: h.request_id,
                            keep_conn: begin.keep_conn,
                            since: now,
                            collector: ParamsCollector::new(max_params),
                        };
                    }
                }
                PARAMS if ours => {
                    if rec.content.is_empty() {
                        if let Phase::Params {
                            collector,
                            keep_conn,
                            ..
                        } = std::mem::replace(&mut conn.phase, Phase::Idle)
                        {
                            match collector.finish() {
                                Ok(params) => {
                                    result = Some(Outcome::Dispatch {
                                        id: h.request_id,
                                        keep_conn,
                                        params,
                                    })
                                }
                                Err(e) => {
                                    return Outcome::Close(CloseReason::Protocol(e.to_string()))
                                }
                            }
                        }
                    } else if let Phase::Params { collector, .. } = &mut conn.phase {
                        if collector.push(rec.content).is_err() {
                            return Outcome::Close(CloseReason::ParamsTooLarge(max_params));
                        }
                    }
                }
                STDIN if ours => {
                    return Outcome::Close(CloseReason::Protocol(
                        "STDIN before the end of PARAMS".into(),
                    ))
                }
                ABORT_REQUEST if ours => {
                    let keep = matches!(
                        conn.phase,
                        Phase::Params {
                            keep_conn: true,
                            ..
                        }
                    );
                    conn.phase = Phase::Idle;
                    push_end_request(&mut reply, h.request_id, 0, REQUEST_COMPLETE);
                    if !keep {
                        result = Some(Outcome::Linger);
                    }
                }
                // Records of requests that are not active (e.g. the rest of a body we answered
                // early), DATA, and records meant for the other direction are ignored.
                _ => {}
            }
        }
        conn.inbuf.consume(used);
        if !reply.is_empty() {
            if let Err(e) = conn.sock.send_all_within(&reply, POLL_WRITE_BUDGET) {
                return Outcome::Close(CloseReason::Write(e));
            }
        }
        if let Some(outcome) = result {
            return outcome;
        }
    }
}

/// Logs at most once per `every`, counting what it held back.
struct RateLimit {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    fn new(every: Duration) -> RateLimit {
        RateLimit {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(number held back since the last line)` when a line may be logged now.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// Accept errors that concern one connection only; accept(2) says to just try again.
fn accept_error_is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPROTO | libc::EPERM | libc::ENETDOWN | libc::ENOPROTOOPT)
            | Some(libc::EHOSTDOWN | libc::ENONET | libc::EHOSTUNREACH | libc::EOPNOTSUPP)
            | Some(libc::ENETUNREACH)
    )
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(non-string panic payload)"
    }
}

/// A request's place in its lane's count, given back once: when the app is done (before the end
/// of the request goes out, so a client that saw the end finds the slot free), or on drop.
struct Slot<'a> {
    count: &'a AtomicUsize,
    held: bool,
}

impl Slot<'_> {
    fn release(&mut self) {
        if std::mem::take(&mut self.held) {
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs one request on a worker thread and says what becomes of the connection.
fn run_job(ctx: &WorkerCtx, job: Job, slot: &mut Slot<'_>) -> Back {
    let Job {
        mut conn,
        id,
        keep_conn,
        call,
    } = job;
    if let Err(e) = conn
        .sock
        .set_nonblocking(false)
        .and_then(|()| conn.sock.set_timeouts(ctx.io_timeout, ctx.write_timeout))
    {
        log::debug!("fastcgi: cannot prepare connection: {e}");
        return Back::Closed;
    }
    let (ended, stdin_state) = {
        let mut stdin = Stdin::new(&conn.sock, &mut conn.inbuf, id, &ctx.limits);
        let mut stdout = Stdout::new(&conn.sock, id);
        let result = catch_unwind(AssertUnwindSafe(|| call.respond(&mut stdin, &mut stdout)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let peer_gone = matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::UnexpectedEof
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::TimedOut
                );
                if peer_gone {
                    log::debug!("fastcgi: request ended early: {e}");
                } else {
                    log::warn!("fastcgi: request handler failed: {e}");
                }
                if !stdout.written_any() {
                    let _ = stdout.write_all(INTERNAL_ERROR);
                }
            }
            Err(payload) => {
                log::error!(
                    "fastcgi: request handler panicked: {}",
                    panic_message(payload.as_ref())
                );
                if !stdout.sent_any() {
                    stdout.discard_unsent();
                    let _ = stdout.write_all(INTERNAL_ERROR);
                }
            }
        }
        slot.release();
        // The end-of-request records always go out while the socket takes them.
        let ended = !stdout.is_broken() && stdout.finish().is_ok();
        let done = ended && stdin.finish_quietly(DRAIN_BUDGET);
        let state = if done { StdinState::Eof } else { stdin.state() };
        (ended, state)
    };
    if !ended || stdin_state == StdinState::Broken {
        return Back::Closed;
    }
    if conn.sock.set_nonblocking(true).is_err() {
        return Back::Closed;
    }
    match (stdin_state, keep_conn) {
        (StdinState::Eof, true) => Back::Keep(conn),
        (StdinState::Eof, false) => Back::Closed,
        _ => Back::Linger(conn),
    }
}

/// Sets this thread's nice value (on Linux a thread's own, inherited by what it starts).
fn set_thread_nice(nice: i32) {
    // SAFETY: gettid and setpriority take and return plain integers.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if rc != 0 {
        log::debug!(
            "fastcgi: cannot set a worker's nice value to {nice}: {}",
            io::Error::last_os_error()
        );
    }
}

fn worker_loop(rx: Arc<Mutex<Receiver<Job>>>, count: Arc<AtomicUsize>, ctx: Arc<WorkerCtx>) {
    loop {
        // The lock is held only while waiting for a job; whoever holds it takes the next one.
        let job = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        let mut slot = Slot {
            count: &count,
            held: true,
        };
        let back = match catch_unwind(AssertUnwindSafe(|| run_job(&ctx, job, &mut slot))) {
            Ok(back) => back,
            Err(payload) => {
                log::error!(
                    "fastcgi: internal panic while serving a request: {}",
                    panic_message(payload.as_ref())
                );
                Back::Closed
            }
        };
        slot.release();
        // The poll thread is gone only after shutdown; then the connection just closes.
        let _ = ctx.back.send(back);
        ctx.stop.pipe.wake();
    }
}

fn validate(config: &Config) -> io::Result<()> {
    let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    if config.lanes.is_empty() {
        return bad("fcgi config: at least one lane is needed".into());
    }
    if let Some(l) = config.lanes.iter().find(|l| l.workers == 0) {
        return bad(format!("fcgi config: lane {:?} has no workers", l.name));
    }
    if config.max_connections == 0 {
        return bad("fcgi config: max_connections must be at least 1".into());
    }
    Ok(())
}

struct PollLoop {
    /// Taken (closed) when the drain starts, so new connections are refused, not queued.
    listener: Option<Listener>,
    config: Config,
    app: Arc<dyn App>,
    lanes: Vec<Lane>,
    limits: Limits,
    stop: Arc<Stop>,
    back_rx: Receiver<Back>,
    conns: Vec<Conn>,
    /// Connections that are with a lane (queued or running).
    busy: usize,
    accept_paused_until: Option<Instant>,
    backoff: Duration,
    accept_warn: RateLimit,
    overflow_warn: RateLimit,
    scratch: Vec<u8>,
}

/// [`serve`] without the signal handling: runs until `stop` is requested.
pub(crate) fn serve_until(
    listener: Listener,
    config: Config,
    app: Arc<dyn App>,
    stop: Arc<Stop>,
) -> io::Result<()> {
    validate(&config)?;
    super::sys::set_nonblocking(listener.raw(), true)?;
    let limits = Limits {
        max_conns: config.max_connections,
        max_reqs: config.lanes.iter().map(|l| l.workers + l.queue).sum(),
    };
    let (back_tx, back_rx) = mpsc::channel();
    let ctx = Arc::new(WorkerCtx {
        io_timeout: config.io_timeout,
        write_timeout: config.write_timeout,
        limits,
        back: back_tx,
        stop: Arc::clone(&stop),
    });
    let mut lanes = Vec::new();
    for lc in &config.lanes {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let count = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for i in 0..lc.workers {
            let (rx, count, ctx) = (Arc::clone(&rx), Arc::clone(&count), Arc::clone(&ctx));
            let nice = lc.nice;
            let t = std::thread::Builder::new()
                .name(format!("fcgi-{}-{i}", lc.name))
                .spawn(move || {
                    if nice != 0 {
                        set_thread_nice(nice);
                    }
                    worker_loop(rx, count, ctx)
                })?;
            threads.push(t);
        }
        lanes.push(Lane {
            name: lc.name.clone(),
            tx: Some(tx),
            count,
            cap: lc.workers + lc.queue,
            threads,
        });
    }
    drop(ctx);
    log::info!(
        "fastcgi: serving on {} with lanes {}",
        listener.describe(),
        config
            .lanes
            .iter()
            .map(|l| format!("{} ({} workers, queue {})", l.name, l.workers, l.queue))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut pl = PollLoop {
        listener: Some(listener),
        config,
        app,
        lanes,
        limits,
        stop,
        back_rx,
        conns: Vec::new(),
        busy: 0,
        accept_paused_until: None,
        backoff: ACCEPT_BACKOFF_MIN,
        accept_warn: RateLimit::new(Duration::from_secs(10)),
        overflow_warn: RateLimit::new(Duration::from_secs(10)),
        scratch: vec![0; 64 * 1024],
    };
    pl.run()?;
    pl.drain();
    Ok(())
}

impl PollLoop {
    fn open_connections(&self) -> usize {
        self.conns.len() + self.busy
    }

    fn run(&mut self) -> io::Result<()> {
        let mut pfds: Vec<libc::pollfd> = Vec::new();
        loop {
            if self.stop.is_requested() {
                return Ok(());
            }
            let now = Instant::now();
            if self.accept_paused_until.is_some_and(|t| now >= t) {
                self.accept_paused_until = None;
            }
            let at_cap = self.open_connections() >= self.config.max_connections;
            let accepting =
                self.accept_paused_until.is_none() && (!at_cap || self.oldest_idle(now).is_some());
            let pfd = |fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            pfds.clear();
            pfds.push(pfd(self.stop.pipe.read_fd()));
            // A negative fd is skipped by poll: the listener stays in place, just unwatched.
            let listen_fd = self.listener.as_ref().map_or(-1, Listener::raw);
            pfds.push(pfd(if accepting { listen_fd } else { -1 }));
            let base = pfds.len();
            pfds.extend(self.conns.iter().map(|c| pfd(c.sock.raw())));

            let mut next = self.accept_paused_until;
            for c in &self.conns {
                if let Some(d) = c.deadline(&self.config) {
                    next = Some(next.map_or(d, |n| n.min(d)));
                }
                // At the cap, wake up when a connection becomes old enough to make room.
                if at_cap && !accepting {
                    let d = match c.phase {
                        Phase::Params { since, .. } => Some(since.max(c.last_active) + EVICT_GRACE),
                        _ if c.evictable(now) => Some(c.last_active + EVICT_GRACE),
                        _ => None,
                    };
                    if let Some(d) = d {
                        next = Some(next.map_or(d, |n| n.min(d)));
                    }
                }
            }
            let timeout = next.map(|d| d.saturating_duration_since(now));
            poll(&mut pfds, timeout)?;

            let now = Instant::now();
            if pfds[0].revents != 0 {
                self.stop.pipe.drain();
            }
            if self.stop.is_requested() {
                return Ok(());
            }
            let ready: Vec<usize> = (0..pfds.len() - base)
                .filter(|&i| pfds[base + i].revents != 0)
                .collect();
            // Highest index first: removing one moves the last connection into its place, and
            // that one has been handled already (or was not ready).
            for &i in ready.iter().rev() {
                self.on_readable(i, now);
            }
            self.take_back(now);
            if accepting && pfds[1].revents != 0 {
                self.accept(now);
            }
            self.expire(now);
        }
    }

    fn close(&mut self, i: usize, reason: &CloseReason) {
        match reason {
            CloseReason::ParamsTooLarge(cap) => {
                log::warn!(
                    "fastcgi: request parameters larger than {cap} bytes; closing connection"
                )
            }
            CloseReason::Protocol(e) => {
                log::debug!("fastcgi: protocol error, closing connection: {e}")
            }
            CloseReason::Write(e) => log::debug!("fastcgi: cannot answer, closing connection: {e}"),
        }
        self.conns.swap_remove(i);
    }

    fn on_readable(&mut self, i: usize, now: Instant) {
        let conn = &mut self.conns[i];
        if let Phase::Linger { .. } = conn.phase {
            match conn.sock.recv(&mut self.scratch) {
                Ok(0) => {
                    self.conns.swap_remove(i);
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    self.conns.swap_remove(i);
                }
            }
            return;
        }
        match conn.inbuf.fill(&conn.sock, POLL_READ_CHUNK) {
            Ok(0) => {
                if let Err(e) = check_end(conn.inbuf.data()) {
                    log::debug!("fastcgi: peer closed the connection: {e}");
                } else if matches!(conn.phase, Phase::Params { .. }) {
                    log::debug!("fastcgi: peer closed the connection before the end of PARAMS");
                }
                self.conns.swap_remove(i);
            }
            Ok(_) => {
                conn.last_active = now;
                self.drive(i, now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                log::debug!("fastcgi: read error, closing connection: {e}");
                self.conns.swap_remove(i);
            }
        }
    }

    /// The app's call for a request, and its lane.
    fn admit(&self, params: Params) -> (Box<dyn Call>, usize) {
        let app = Arc::clone(&self.app);
        let call = match catch_unwind(AssertUnwindSafe(|| app.call(params))) {
            Ok(call) => call,
            Err(payload) => {
                log::error!(
                    "fastcgi: App::call panicked: {}; answering 500",
                    panic_message(payload.as_ref())
                );
                Box::new(Failed)
            }
        };
        let lane = self.pick_lane(call.as_ref());
        (call, lane)
    }

    fn pick_lane(&self, call: &dyn Call) -> usize {
        match catch_unwind(AssertUnwindSafe(|| call.lane())) {
            Ok(lane) if lane < self.lanes.len() => lane,
            Ok(lane) => {
                log::debug!("fastcgi: app chose lane {lane}, which does not exist; using lane 0");
                0
            }
            Err(payload) => {
                log::error!(
                    "fastcgi: Call::lane panicked: {}; using lane 0",
                    panic_message(payload.as_ref())
                );
                0
            }
        }
    }

    /// Processes what is buffered on connection `i`, answering or dispatching requests.
    fn drive(&mut self, i: usize, now: Instant) {
        loop {
            let outcome = step(
                &mut self.conns[i],
                &self.limits,
                self.config.max_params_bytes,
                now,
            );
            match outcome {
                Outcome::Wait => return,
                Outcome::Close(reason) => return self.close(i, &reason),
                Outcome::Linger => return self.conns[i].start_linger(now),
                Outcome::Dispatch {
                    id,
                    keep_conn,
                    params,
                } => {
                    let (call, lane_ix) = self.admit(params);
                    let lane = &self.lanes[lane_ix];
                    if lane.count.load(Ordering::SeqCst) >= lane.cap {
                        if let Some(held) = self.overflow_warn.allow(now) {
                            log::warn!(
                                "fastcgi: lane {} is full; answering 503 ({held} more since the last warning)",
                                lane.name
                            );
                        }
                        let reply = overflow_reply(id, self.config.retry_after_secs);
                        if let Err(e) = self.conns[i]
                            .sock
                            .send_all_within(&reply, POLL_WRITE_BUDGET)
                        {
                            return self.close(i, &CloseReason::Write(e));
                        }
                        if keep_conn {
                            // The rest of this request's body, if any, is ignored as it arrives.
                            continue;
                        }
                        return self.conns[i].start_linger(now);
                    }
                    let conn = self.conns.swap_remove(i);
                    let job = Job {
                        conn,
                        id,
                        keep_conn,
                        call,
                    };
                    let Some(tx) = &lane.tx else { return };
                    lane.count.fetch_add(1, Ordering::SeqCst);
                    match tx.send(job) {
                        Ok(()) => self.busy += 1,
                        Err(_) => {
                            lane.count.fetch_sub(1, Ordering::SeqCst);
                            log::error!("fastcgi: lane {} has no workers left", lane.name);
                        }
                    }
                    return;
                }
            }
        }
    }

    /// Connections coming back from workers.
    fn take_back(&mut self, now: Instant) {
        while let Ok(back) = self.back_rx.try_recv() {
            self.busy = self.busy.saturating_sub(1);
            match back {
                Back::Closed => {}
                Back::Keep(mut conn) => {
                    conn.phase = Phase::Idle;
                    conn.last_active = now;
                    self.conns.push(conn);
                    // The next request may be buffered already, and poll would not report it.
                    let i = self.conns.len() - 1;
                    self.drive(i, now);
                }
                Back::Linger(mut conn) => {
                    conn.start_linger(now);
                    self.conns.push(conn);
                }
            }
        }
    }

    /// The connection that has waited longest, and at least EVICT_GRACE, without a request under
    /// way, if any.
    fn oldest_idle(&self, now: Instant) -> Option<usize> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.evictable(now) && now.duration_since(c.last_active) >= EVICT_GRACE)
            .min_by_key(|(_, c)| c.last_active)
            .map(|(i, _)| i)
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_ROUND {
            if self.open_connections() >= self.config.max_connections {
                // At the cap a new connection takes the place of the longest-idle one, so idle
                // keep-alive (or silent) connections can never lock new requests out.
                match self.oldest_idle(now) {
                    Some(i) => {
                        log::debug!(
                            "fastcgi: at the connection cap; closing the longest-idle connection"
                        );
                        self.conns.swap_remove(i);
                    }
                    None => return,
                }
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok(sock) => {
                    self.backoff = ACCEPT_BACKOFF_MIN;
                    self.conns.push(Conn::new(sock, now));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if accept_error_is_per_connection(&e) => {
                    log::debug!("fastcgi: accept: {e}");
                }
                Err(e) => {
                    if let Some(held) = self.accept_warn.allow(now) {
                        log::warn!(
                            "fastcgi: accept failed: {e}; pausing accepts for {:?} ({held} more failures since the last warning)",
                            self.backoff
                        );
                    }
                    self.accept_paused_until = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    return;
                }
            }
        }
    }

    fn expire(&mut self, now: Instant) {
        for i in (0..self.conns.len()).rev() {
            if self.conns[i]
                .deadline(&self.config)
                .is_some_and(|d| now >= d)
            {
                if let Phase::Params { .. } = self.conns[i].phase {
                    log::debug!("fastcgi: request parameters not complete in time; closing");
                }
                self.conns.swap_remove(i);
            }
        }
    }

    /// After a stop: no more accepts, idle connections closed, busy ones given up to
    /// drain_timeout.
    fn drain(mut self) {
        self.conns.clear();
        // Dropping the listener also removes the unix socket file we created.
        self.listener = None;
        log::info!(
            "fastcgi: shutting down; waiting for {} request(s) in flight",
            self.busy
        );
        let deadline = Instant::now() + self.config.drain_timeout;
        while self.busy > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.back_rx.recv_timeout(left) {
                // Whatever comes back is closed.
                Ok(_) => self.busy -= 1,
                Err(RecvTimeoutError::Timeout) => {
                    log::warn!(
                        "fastcgi: {} request(s) still running after {:?}; exiting anyway",
                        self.busy,
                        self.config.drain_timeout
                    );
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Closing the job channels lets idle workers finish; join them only if none is busy.
        for lane in &mut self.lanes {
            lane.tx = None;
        }
        if self.busy == 0 {
            for lane in &mut self.lanes {
                for t in lane.threads.drain(..) {
                    let _ = t.join();
                }
            }
        }
        log::info!("fastcgi: stopped");
    }
}

/// The 503 sent when a lane is full: a complete response with its end-of-request records.
fn overflow_reply(id: u16, retry_after: u32) -> Vec<u8> {
    let body = format!(
        "Status: 503 Service Unavailable\r\nRetry-After: {retry_after}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         The server is busy; please try again in {retry_after} seconds.\n"
    );
    let mut out = Vec::new();
    push_records(&mut out, STDOUT, id, body.as_bytes());
    push_records(&mut out, STDOUT, id, b"");
    push_end_request(&mut out, id, 0, REQUEST_COMPLETE);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let mut r = RateLimit::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(r.allow(t), Some(0));
        assert_eq!(r.allow(t + Duration::from_secs(1)), None);
        assert_eq!(r.allow(t + Duration::from_secs(2)), None);
        assert_eq!(r.allow(t + Duration::from_secs(11)), Some(2));
    }

    #[test]
    fn accept_errors_are_classified() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert!(accept_error_is_per_connection(&e(libc::ECONNABORTED)));
        assert!(!accept_error_is_per_connection(&e(libc::EMFILE)));
        assert!(!accept_error_is_per_connection(&e(libc::ENFILE)));
        assert!(!accept_error_is_per_connection(&e(libc::ENOBUFS)));
    }

    #[test]
    fn overflow_reply_is_complete() {
        let out = overflow_reply(1, 5);
        let (r, used) = split_record(&out).unwrap().unwrap();
        let text = String::from_utf8_lossy(r.content);
        assert!(text.starts_with("Status: 503 Service Unavailable\r\nRetry-After: 5\r\n"));
        let (r2, used2) = split_record(&out[used..]).unwrap().unwrap();
        assert_eq!((r2.header.rtype, r2.content.len()), (STDOUT, 0));
        let (r3, _) = split_record(&out[used + used2..]).unwrap().unwrap();
        assert_eq!(r3.header.rtype, super::super::record::END_REQUEST);
    }
}
