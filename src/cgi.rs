//! Plain CGI: one request from the environment and stdin, answered on stdout, through the same
//! handler as FastCGI.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStringExt;
use std::panic::{self, AssertUnwindSafe};

use std::sync::Arc;

use crate::gateway::{App, Params, INTERNAL_ERROR};

/// Answers the one request this process was started for.
pub(crate) fn run(app: Arc<dyn App>) -> io::Result<()> {
    let params = Params::from_pairs(
        std::env::vars_os()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
    );
    // Plain files on fds 0 and 1: unbuffered reads, and no line buffering of binary output.
    let mut stdin = File::from(io::stdin().as_fd().try_clone_to_owned()?);
    let mut stdout = BufWriter::new(File::from(io::stdout().as_fd().try_clone_to_owned()?));
    let caller = Arc::clone(&app);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        caller.call(params).respond(&mut stdin, &mut stdout)
    }));
    let answered = match result {
        Ok(r) => r.and_then(|_| stdout.flush()),
        Err(_) => {
            log::error!("a request panicked; answered 500");
            write_error(&mut stdout)
        }
    };
    drain(&mut stdin);
    // The answer is complete once the web server sees the end of the output: every copy of
    // fd 1 closed (this one, and fd 1 itself pointed at /dev/null), then what the answer left
    // for later is finished.
    drop(stdout);
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        // SAFETY: dup2 onto fd 1 of a descriptor this function owns; nothing else writes fd 1 now.
        unsafe {
            libc::dup2(null.as_raw_fd(), 1);
        }
    }
    app.settle();
    answered
}

/// The most of a request body left unread that is read and dropped before exiting.
const DRAIN_MAX: u64 = 64 * 1024 * 1024;

/// Reads what is left of the request body (one refused before it was read, such as a push
/// without credentials), up to [`DRAIN_MAX`]. Apache's mod_cgid talks to a CGI program over
/// one unix socket: closing it with request bytes unread resets the connection, and Apache
/// then loses the answer already written (the client sees a broken response instead of the
/// 401 that asks for credentials).
fn drain(stdin: &mut File) {
    let _ = io::copy(&mut stdin.take(DRAIN_MAX), &mut io::sink());
}

/// A 500 for when forgelet cannot start (bad config); the details go to stderr, the server's log.
pub(crate) fn write_error(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(INTERNAL_ERROR)?;
    out.flush()
}
