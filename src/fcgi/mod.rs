//! forgelet's FastCGI responder: listener, records, streams and a bounded pool of worker threads.
//! It knows nothing of git or HTML.
//!
//! How it works:
//! - One poll thread owns the listening socket and every connection that is not running a
//!   request. It reads records without blocking until a request's BEGIN_REQUEST and complete
//!   PARAMS are in, so a slow client never holds a worker; management records
//!   (FCGI_GET_VALUES, unknown types), other roles and multiplexing attempts are answered there.
//! - The app reads the request's params once into a [`Call`] ([`App::call`]), which names its
//!   lane ([`Call::lane`]); each lane has its own pre-spawned workers and a queue. A full lane is answered at once with 503 and `Retry-After`, so slow git
//!   clones never starve the web pages.
//! - A worker runs [`Call::respond`] with blocking I/O under `io_timeout` (reads) and
//!   `write_timeout` (writes), then always ends the
//!   request (empty STDOUT + END_REQUEST). Keep-alive connections go back to the poll thread.
//! - Accept errors (e.g. out of file descriptors) are logged and backed off, never fatal; at
//!   `max_connections` the listener is not polled until a connection closes.
//! - Panics in the app are caught and answered with 500; the worker lives on.
//!
//! Linux only (accept4, pipe2, MSG_NOSIGNAL). [`serve`] may be called once per process: it
//! installs the SIGTERM/SIGINT handlers and ignores SIGPIPE, which must stay ignored.

mod listener;
pub(crate) mod params;
pub(crate) mod record;
mod server;
mod stream;
mod sys;

#[cfg(test)]
mod tests;

use std::time::Duration;

pub use listener::{fd0_is_listening_socket, group_id, ListenSpec, Listener};
// The error type of `ListenSpec::from_str`, exported so callers can name it.
pub use crate::gateway::{App, Call, Params};
#[allow(unused_imports)]
pub use listener::ListenSpecError;
pub use server::serve;

/// One worker pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneConfig {
    /// For thread names and log lines.
    pub name: String,
    /// Threads, spawned at start; at least 1.
    pub workers: usize,
    /// Requests that may wait for a free worker; beyond workers + queue the answer is 503.
    pub queue: usize,
    /// The workers' nice value (0 as the process; higher yields the CPU to the other lanes).
    /// What they start inherits it.
    pub nice: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// e.g. [pages, git]; each lane has its own threads.
    pub lanes: Vec<LaneConfig>,
    /// Open connections (idle + busy); beyond it, stop accepting until one closes.
    pub max_connections: usize,
    /// Read timeout on a socket while a request is being served (a request body that stops
    /// arriving). Zero means none.
    pub io_timeout: Duration,
    /// Write timeout while a request is being served: a peer that takes no byte of the answer
    /// for this long is given up. Zero means none.
    pub write_timeout: Duration,
    /// The time a peer gets to send a request's BEGIN_REQUEST and complete PARAMS (a web server
    /// sends them at once). Zero means none. At the connection cap, a connection that has been
    /// collecting PARAMS for a second makes room for a new one.
    pub params_timeout: Duration,
    /// Keep-alive connections idle longer are closed. Zero means never.
    pub idle_timeout: Duration,
    /// Cap on the total size of a request's PARAMS stream; over it the connection is closed.
    pub max_params_bytes: usize,
    /// For overflow 503s.
    pub retry_after_secs: u32,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        let lane = |name: &str, workers| LaneConfig {
            name: name.to_string(),
            workers,
            queue: workers * 2,
            nice: 0,
        };
        Config {
            lanes: vec![lane("pages", 8), lane("git", 4)],
            max_connections: 512,
            io_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            params_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_params_bytes: 1 << 20,
            retry_after_secs: 5,
            drain_timeout: Duration::from_secs(30),
        }
    }
}
