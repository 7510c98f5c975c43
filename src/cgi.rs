//! Plain CGI: one request from the environment and stdin, answered on stdout, through the same
//! handler as FastCGI.

use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStringExt;
use std::panic::{self, AssertUnwindSafe};

use crate::fcgi::{App, Params};

/// Answers the one request this process was started for.
pub(crate) fn run(app: &dyn App) -> io::Result<()> {
    let params = Params::from_pairs(
        std::env::vars_os()
            .map(|(k, v)| (k.into_vec(), v.into_vec()))
            .collect(),
    );
    let mut stdin = io::stdin().lock();
    let mut stdout = BufWriter::new(io::stdout().lock());
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        app.respond(&params, &mut stdin, &mut stdout)
    }));
    match result {
        Ok(r) => r.and_then(|_| stdout.flush()),
        Err(_) => {
            log::error!("a request panicked; answered 500");
            write_error(&mut stdout)
        }
    }
}

/// A 500 for when forgelet cannot start (bad config); the details go to stderr, the server's log.
pub(crate) fn write_error(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(
        b"Status: 500 Internal Server Error\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nInternal server error; the details are in the server's log.\n",
    )?;
    out.flush()
}
