//! What a web server's gateway hands forgelet and what it calls: a request's parameters (the
//! CGI variables, as bytes) and the [`App`] that answers it. FastCGI (`fcgi`) and plain CGI
//! (`cgi`) are two gateways over this interface; neither knows what the app does, and the app
//! knows neither.

use std::io;
use std::sync::Arc;

/// A request's parameters as the web server sent them: bytes, not strings (a header may hold any
/// byte), in arrival order. Duplicate names are kept; [`Params::get`] returns the first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Params {
    pub fn from_pairs(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Params {
        Params { pairs }
    }

    /// The value of the first parameter named exactly `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| v.as_slice())
    }

    // Part of the interface even while forgelet's binary does not call it.
    #[allow(dead_code)]
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.pairs.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))
    }
}

/// What a gateway hands each request to; implemented by forgelet's app (and by test apps).
pub trait App: Send + Sync + 'static {
    /// Reads a request's parameters, once, into the call that answers it. A FastCGI server calls
    /// this on its poll thread as soon as the params are complete, before any body is read, so
    /// it must be quick and must not block.
    fn call(self: Arc<Self>, params: Params) -> Box<dyn Call>;

    /// Work an answer left for after it was sent, finished before a process that answers one
    /// request (CGI) exits; a long-running server lets it finish in the background.
    fn settle(&self) {}

    /// Readies what a long-running server's first requests would otherwise wait for (loading
    /// data every process needs once). A FastCGI server calls it on a thread of its own at
    /// start, while it already answers; a process that answers one request (CGI) does not.
    fn warm(&self) {}
}

/// One request, read and ready to answer.
pub trait Call: Send {
    /// Which lane (worker pool) serves it: an index into the FastCGI server's lanes
    /// (`fcgi::Config::lanes`; CGI has one). An index out of range means lane 0.
    fn lane(&self) -> usize;

    /// Answers by writing a CGI-style response to `stdout`
    /// ("Status: 200 OK\r\nContent-Type: ...\r\n\r\n" then the body). `stdin` yields the request
    /// body (FCGI_STDIN) and returns an error, not a silent EOF, when the web server aborted the
    /// request (kind `ConnectionAborted`) or the connection closed before the body's end (kind
    /// `UnexpectedEof`). `stdout` is buffered; `flush` sends what is buffered. The end of the
    /// request is sent for you after this returns, whether Ok or Err; an Err or a panic before
    /// any output becomes a 500. Both streams are `Send`, so a handler may read the body on one
    /// thread while it writes the answer on another (e.g. pumping a child process).
    fn respond(
        self: Box<Self>,
        stdin: &mut (dyn io::Read + Send),
        stdout: &mut (dyn io::Write + Send),
    ) -> io::Result<()>;
}

/// What a gateway answers when the app could not even read a request (it panicked in
/// [`App::call`]): a 500.
pub struct Failed;

impl Call for Failed {
    fn lane(&self) -> usize {
        0
    }

    fn respond(
        self: Box<Self>,
        _stdin: &mut (dyn io::Read + Send),
        stdout: &mut (dyn io::Write + Send),
    ) -> io::Result<()> {
        stdout.write_all(INTERNAL_ERROR)
    }
}

/// A 500 with no detail (the detail goes to the log).
pub const INTERNAL_ERROR: &[u8] = b"Status: 500 Internal Server Error\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
Internal server error; the details are in the server's log.\n";
