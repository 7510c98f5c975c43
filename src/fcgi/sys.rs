//! Thin safe wrappers over the few system calls the responder needs: socket I/O that never raises
//! SIGPIPE, blocking mode and timeouts, poll, and a non-blocking self-pipe.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Turns a -1 return into the thread's errno.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

pub(crate) fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on an fd number has no memory effects; a bad fd gives EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) })?;
    Ok(())
}

pub(crate) fn set_nonblocking(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl on an fd number has no memory effects; a bad fd gives EBADF.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    let new = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    if new != flags {
        // SAFETY: as above.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, new) })?;
    }
    Ok(())
}

/// A connected stream socket (unix or TCP) owned by the responder.
#[derive(Debug)]
pub(crate) struct Sock {
    fd: OwnedFd,
}

impl Sock {
    pub(crate) fn new(fd: OwnedFd) -> Sock {
        Sock { fd }
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// One recv; EINTR is retried (socket calls with a timeout are not restarted by SA_RESTART).
    pub(crate) fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let r = unsafe { libc::recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            match cvt_size(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// One send with MSG_NOSIGNAL, so a gone peer is EPIPE and never a signal.
    pub(crate) fn send(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            // SAFETY: the pointer and length describe `buf`, which outlives the call.
            let r = unsafe {
                libc::send(
                    self.raw(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            match cvt_size(r) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// Sends all of `buf` on a blocking socket whose SO_SNDTIMEO expiring shows up as EAGAIN.
    pub(crate) fn send_all(&self, buf: &[u8]) -> io::Result<()> {
        self.send_parts_all(&[buf])
    }

    /// Sends all of `parts` in order, as one message where the socket takes it (sendmsg with
    /// MSG_NOSIGNAL, so a gone peer is EPIPE and never a signal), without copying them together
    /// first. The socket is blocking; its SO_SNDTIMEO expiring shows up as EAGAIN, a timeout.
    pub(crate) fn send_parts_all(&self, parts: &[&[u8]]) -> io::Result<()> {
        let mut skip = 0usize;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        while skip < total {
            // The parts not fully sent yet, the first one cut where the last send stopped.
            let mut iov: [libc::iovec; 4] = [libc::iovec {
                iov_base: std::ptr::null_mut(),
                iov_len: 0,
            }; 4];
            let mut count = 0;
            let mut at = 0usize;
            for p in parts {
                let (start, end) = (at, at + p.len());
                at = end;
                if end <= skip || p.is_empty() {
                    continue;
                }
                if count == iov.len() {
                    break;
                }
                let from = skip.saturating_sub(start);
                iov[count] = libc::iovec {
                    iov_base: p[from..].as_ptr() as *mut libc::c_void,
                    iov_len: p.len() - from,
                };
                count += 1;
            }
            // SAFETY: an all-zero msghdr is valid; the iovecs point into `parts`, which outlive
            // the call, and sendmsg only reads them.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = count as _;
            // SAFETY: `msg` describes readable memory as above.
            let r = unsafe { libc::sendmsg(self.raw(), &msg, libc::MSG_NOSIGNAL) };
            match cvt_size(r) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => skip += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "timed out writing to the web server",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Sends all of `buf` on a non-blocking socket, waiting for room at most `budget` in total.
    /// Used by the poll thread for its short answers; a peer that reads nothing is given up on.
    pub(crate) fn send_all_within(&self, mut buf: &[u8], budget: Duration) -> io::Result<()> {
        let deadline = Instant::now() + budget;
        while !buf.is_empty() {
            match self.send(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "peer does not read its answers",
                        ));
                    }
                    let mut pfd = [libc::pollfd {
                        fd: self.raw(),
                        events: libc::POLLOUT,
                        revents: 0,
                    }];
                    poll(&mut pfd, Some(left))?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        set_nonblocking(self.raw(), on)
    }

    /// SO_RCVTIMEO and SO_SNDTIMEO; a zero duration means no timeout.
    pub(crate) fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        let tv = |timeout: Duration| libc::timeval {
            tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
            // Always below 1,000,000, so it fits whatever width suseconds_t has.
            tv_usec: timeout.subsec_micros() as libc::suseconds_t,
        };
        for (opt, tv) in [
            (libc::SO_RCVTIMEO, tv(read)),
            (libc::SO_SNDTIMEO, tv(write)),
        ] {
            // SAFETY: passes a pointer to a live timeval and its exact size.
            cvt(unsafe {
                libc::setsockopt(
                    self.raw(),
                    libc::SOL_SOCKET,
                    opt,
                    (&tv as *const libc::timeval).cast(),
                    socklen_of::<libc::timeval>(),
                )
            })?;
        }
        Ok(())
    }

    /// Half-closes our side so the peer sees EOF while we may still read what it sends.
    pub(crate) fn shutdown_write(&self) {
        // SAFETY: shutdown on an fd number has no memory effects; errors are irrelevant here.
        unsafe {
            libc::shutdown(self.raw(), libc::SHUT_WR);
        }
    }
}

pub(crate) fn socklen_of<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(std::mem::size_of::<T>()).unwrap_or(0)
}

/// poll(2) with EINTR reported as zero ready descriptors; `None` waits without limit.
pub(crate) fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let ms = match timeout {
        None => -1,
        // Round up so a 0.3 ms deadline does not turn into a busy loop of zero-timeout polls.
        Some(d) => libc::c_int::try_from(d.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX),
    };
    let nfds = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: the pointer and count describe `fds`, which outlives the call.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), nfds, ms) };
    match cvt(r) {
        Ok(n) => Ok(usize::try_from(n).unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// A non-blocking, close-on-exec pipe used to wake the poll thread (from workers and from the
/// signal handler, which may only call async-signal-safe functions such as write).
#[derive(Debug)]
pub(crate) struct WakePipe {
    rd: OwnedFd,
    wr: OwnedFd,
}

impl WakePipe {
    pub(crate) fn new() -> io::Result<WakePipe> {
        let mut fds = [-1; 2];
        // SAFETY: pipe2 writes two fds into the array we pass.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
        // SAFETY: pipe2 succeeded, so both fds are open and nobody else owns them.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(WakePipe { rd, wr })
    }

    pub(crate) fn read_fd(&self) -> RawFd {
        self.rd.as_raw_fd()
    }

    pub(crate) fn write_fd(&self) -> RawFd {
        self.wr.as_raw_fd()
    }

    pub(crate) fn wake(&self) {
        wake_fd(self.write_fd());
    }

    /// Empties the pipe so the next poll blocks again.
    pub(crate) fn drain(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let r = unsafe { libc::read(self.read_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                let interrupted =
                    r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted;
                if !interrupted {
                    return;
                }
            }
        }
    }
}

/// Writes one byte; async-signal-safe. A full pipe already means "wake up", so errors are ignored.
pub(crate) fn wake_fd(fd: RawFd) {
    let byte = 1u8;
    // SAFETY: writes one byte from a live stack variable.
    unsafe {
        libc::write(fd, (&byte as *const u8).cast(), 1);
    }
}
