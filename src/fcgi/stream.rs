//! The request's byte streams as the app sees them: `Stdin` reads the body out of STDIN records as
//! it arrives, `Stdout` packs the response into STDOUT records; plus the connection read buffer.

use std::io::{self, Read, Write};

use super::record::{
    header_bytes, padding_for, push_end_request, push_management_reply, push_records, Header,
    Limits, ABORT_REQUEST, BEGIN_REQUEST, CANT_MPX_CONN, HEADER_LEN, MAX_CONTENT, REQUEST_COMPLETE,
    STDIN, STDOUT,
};
use super::sys::Sock;

/// Bytes read from a connection but not parsed yet.
#[derive(Debug, Default)]
pub(crate) struct InBuf {
    buf: Vec<u8>,
    start: usize,
}

impl InBuf {
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    /// One recv of at most `max` bytes appended to the buffer; `Ok(0)` is end of stream.
    pub(crate) fn fill(&mut self, sock: &Sock, max: usize) -> io::Result<usize> {
        if self.start > 0 {
            // What is left is at most one partial record, so moving it is cheap.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + max, 0);
        let r = sock.recv(&mut self.buf[old..]);
        self.buf.truncate(old + *r.as_ref().unwrap_or(&0));
        r
    }
}

const READ_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StdinState {
    Open,
    /// The empty STDIN record arrived.
    Eof,
    /// FCGI_ABORT_REQUEST arrived for our request.
    Aborted,
    /// The connection closed, failed or sent garbage; it cannot be used again.
    Broken,
}

/// The request body: the content of the active request's STDIN records, read as the app asks.
/// Records for other request ids or management records that arrive meanwhile are answered or
/// skipped. Content is copied straight into the caller's buffer when nothing is buffered.
pub(crate) struct Stdin<'a> {
    sock: &'a Sock,
    inbuf: &'a mut InBuf,
    id: u16,
    limits: &'a Limits,
    /// Content bytes left in the current STDIN record.
    remaining: usize,
    /// Padding to skip once `remaining` reaches zero.
    pad_after: usize,
    /// Bytes to discard before the next header (padding, or a record we ignore).
    skip: usize,
    state: StdinState,
    /// Set while draining after the app returned: EAGAIN means "not there yet", not a timeout.
    nonblocking: bool,
}

fn aborted() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the web server aborted the request",
    )
}

fn closed_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the end of the request body",
    )
}

impl<'a> Stdin<'a> {
    pub(crate) fn new(sock: &'a Sock, inbuf: &'a mut InBuf, id: u16, limits: &'a Limits) -> Self {
        Stdin {
            sock,
            inbuf,
            id,
            limits,
            remaining: 0,
            pad_after: 0,
            skip: 0,
            state: StdinState::Open,
            nonblocking: false,
        }
    }

    pub(crate) fn state(&self) -> StdinState {
        self.state
    }

    /// Maps a failed socket read to what the app should see, marking the stream broken when the
    /// failure is final (a timeout is not: the bytes read so far are still consistent).
    fn fail(&mut self, e: io::Error) -> io::Error {
        match e.kind() {
            io::ErrorKind::WouldBlock if self.nonblocking => e,
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
                io::ErrorKind::TimedOut,
                "timed out reading the request body",
            ),
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
                self.state = StdinState::Broken;
                closed_early()
            }
            _ => {
                self.state = StdinState::Broken;
                e
            }
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        match self.inbuf.fill(self.sock, READ_CHUNK) {
            Ok(0) => {
                self.state = StdinState::Broken;
                Err(closed_early())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Makes sure `n` bytes are buffered (a whole small record).
    fn need(&mut self, n: usize) -> io::Result<()> {
        while self.inbuf.len() < n {
            self.fill()?;
        }
        Ok(())
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sock.send_all(bytes).inspect_err(|_| {
            self.state = StdinState::Broken;
        })
    }

    /// After the app returned: reads on, without blocking and within a small budget, to see
    /// whether the body's end is already here (so a keep-alive connection can be reused even if
    /// the app never read an empty body). True when the end was reached.
    pub(crate) fn finish_quietly(&mut self, budget: usize) -> bool {
        if self.state != StdinState::Open {
            return self.state == StdinState::Eof;
        }
        if self.sock.set_nonblocking(true).is_err() {
            self.state = StdinState::Broken;
            return false;
        }
        self.nonblocking = true;
        let mut scratch = [0u8; 4096];
        let mut seen = 0usize;
        while seen <= budget {
            match self.read(&mut scratch) {
                Ok(0) => return self.state == StdinState::Eof,
                Ok(n) => seen += n,
                Err(_) => return false,
            }
        }
        false
    }
}

impl Read for Stdin<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                StdinState::Open => {}
                StdinState::Eof => return Ok(0),
                StdinState::Aborted => return Err(aborted()),
                StdinState::Broken => return Err(closed_early()),
            }
            if out.is_empty() {
                return Ok(0);
            }
            if self.remaining > 0 {
                let want = out.len().min(self.remaining);
                let n = if self.inbuf.is_empty() {
                    match self.sock.recv(&mut out[..want]) {
                        Ok(0) => {
                            self.state = StdinState::Broken;
                            return Err(closed_early());
                        }
                        Ok(n) => n,
                        Err(e) => return Err(self.fail(e)),
                    }
                } else {
                    let n = want.min(self.inbuf.len());
                    out[..n].copy_from_slice(&self.inbuf.data()[..n]);
                    self.inbuf.consume(n);
                    n
                };
                self.remaining -= n;
                if self.remaining == 0 {
                    self.skip = self.pad_after;
                }
                return Ok(n);
            }
            if self.skip > 0 {
                if self.inbuf.is_empty() {
                    self.fill()?;
                }
                let n = self.skip.min(self.inbuf.len());
                self.inbuf.consume(n);
                self.skip -= n;
                continue;
            }
            self.need(HEADER_LEN)?;
            let h = match Header::parse(self.inbuf.data()) {
                Ok(Some(h)) => h,
                Ok(None) => continue,
                Err(e) => {
                    self.state = StdinState::Broken;
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            let ours = h.request_id == self.id;
            if h.rtype == STDIN && ours {
                if h.content_len == 0 {
                    // Take the whole end record, padding included, so the buffer is left clean
                    // for the next request on a kept-alive connection.
                    self.need(h.total_len())?;
                    self.inbuf.consume(h.total_len());
                    self.state = StdinState::Eof;
                    return Ok(0);
                }
                self.inbuf.consume(HEADER_LEN);
                self.remaining = h.content_len;
                self.pad_after = h.padding_len;
                continue;
            }
            if h.rtype == ABORT_REQUEST && ours {
                self.need(h.total_len())?;
                self.inbuf.consume(h.total_len());
                self.state = StdinState::Aborted;
                return Err(aborted());
            }
            if h.request_id == 0 || (h.rtype == BEGIN_REQUEST && !ours) {
                self.need(h.total_len())?;
                let content = &self.inbuf.data()[HEADER_LEN..HEADER_LEN + h.content_len];
                let mut reply = Vec::new();
                if h.request_id == 0 {
                    push_management_reply(&mut reply, h.rtype, content, self.limits);
                } else {
                    // One request at a time per connection.
                    push_end_request(&mut reply, h.request_id, 0, CANT_MPX_CONN);
                }
                self.inbuf.consume(h.total_len());
                self.send(&reply)?;
                continue;
            }
            // Anything else (other ids, DATA, records meant for the other direction) is skipped.
            log::debug!(
                "fastcgi: skipping record type {} for request {} during request {}",
                h.rtype,
                h.request_id,
                self.id
            );
            self.inbuf.consume(HEADER_LEN);
            self.skip = h.content_len + h.padding_len;
        }
    }
}

/// The response: bytes are gathered into one STDOUT record (at most [`MAX_CONTENT`] bytes) and
/// sent when it is full, on flush, and at the end of the request.
pub(crate) struct Stdout<'a> {
    sock: &'a Sock,
    id: u16,
    /// Room for the header, then the content of the record being filled.
    buf: Vec<u8>,
    written_any: bool,
    sent_any: bool,
    broken: bool,
}

impl<'a> Stdout<'a> {
    pub(crate) fn new(sock: &'a Sock, id: u16) -> Self {
        let mut buf = Vec::with_capacity(HEADER_LEN + MAX_CONTENT + 8);
        buf.resize(HEADER_LEN, 0);
        Stdout {
            sock,
            id,
            buf,
            written_any: false,
            sent_any: false,
            broken: false,
        }
    }

    /// Whether the app wrote any byte (sent or still buffered).
    pub(crate) fn written_any(&self) -> bool {
        self.written_any
    }

    /// Whether any record already went out (after that the response cannot be replaced).
    pub(crate) fn sent_any(&self) -> bool {
        self.sent_any
    }

    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    /// Forgets buffered bytes that have not gone out, so an error page can replace them.
    pub(crate) fn discard_unsent(&mut self) {
        self.buf.truncate(HEADER_LEN);
    }

    fn content_len(&self) -> usize {
        self.buf.len() - HEADER_LEN
    }

    fn check(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection to the web server is gone",
            ));
        }
        Ok(())
    }

    fn send_buffered(&mut self) -> io::Result<()> {
        let len = self.content_len();
        let pad = padding_for(len);
        self.buf[..HEADER_LEN].copy_from_slice(&header_bytes(STDOUT, self.id, len, pad));
        self.buf.resize(self.buf.len() + pad, 0);
        let r = self.sock.send_all(&self.buf);
        self.buf.truncate(HEADER_LEN);
        self.sent_any = true;
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// Ends the request: flushes, then sends the empty STDOUT record and END_REQUEST together.
    pub(crate) fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        let mut tail = Vec::with_capacity(2 * HEADER_LEN + 8);
        push_records(&mut tail, STDOUT, self.id, b"");
        push_end_request(&mut tail, self.id, 0, REQUEST_COMPLETE);
        let r = self.sock.send_all(&tail);
        if r.is_err() {
            self.broken = true;
        }
        r
    }
}

/// A write at least this long with nothing buffered goes out as its own record, straight from
/// the caller's bytes (git's output comes in parts of up to 64 KiB).
const DIRECT: usize = 16 * 1024;

impl Write for Stdout<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        if data.is_empty() {
            return Ok(0);
        }
        if self.content_len() == 0 && data.len() >= DIRECT {
            let n = data.len().min(MAX_CONTENT);
            let pad = padding_for(n);
            let r = self.sock.send_parts_all(&[
                &header_bytes(STDOUT, self.id, n, pad),
                &data[..n],
                &[0u8; 8][..pad],
            ]);
            self.written_any = true;
            self.sent_any = true;
            if let Err(e) = r {
                self.broken = true;
                return Err(e);
            }
            return Ok(n);
        }
        if self.content_len() == MAX_CONTENT {
            self.send_buffered()?;
        }
        let n = data.len().min(MAX_CONTENT - self.content_len());
        self.buf.extend_from_slice(&data[..n]);
        self.written_any = true;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        if self.content_len() > 0 {
            self.send_buffered()?;
        }
        Ok(())
    }
}
