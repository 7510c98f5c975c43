//! `forgelet ssh-serve KEYID`: the forced command sshd runs for a user's key (see `ssh`). The
//! session's stderr is the client's terminal, so the log goes to syslog instead (the journal on
//! a systemd host: `journalctl -t forgelet-ssh`): one line per session, and warnings.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::config;
use crate::ssh::{self, Session};

/// The name log lines carry.
const IDENT: &std::ffi::CStr = c"forgelet-ssh";

pub(super) fn run(config_path: &Path, args: &[String]) -> i32 {
    let [key_id] = args else {
        eprintln!(
            "ERROR: the server's SSH setup is wrong: ssh-serve takes one argument, the key's id."
        );
        log::error!("ssh-serve takes one argument, the key's id; found {args:?}");
        return 2;
    };
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            log::error!("{e}");
            eprintln!("ERROR: the server cannot read its configuration; its administrator will find why in the system log.");
            return 1;
        }
    };
    let command = std::env::var_os("SSH_ORIGINAL_COMMAND");
    let git_protocol = std::env::var_os("GIT_PROTOCOL");
    let session = Session {
        key_id,
        command: command.as_deref().map(|c| c.as_bytes()),
        git_protocol: git_protocol.as_deref().map(|p| p.as_bytes()),
    };
    ssh::serve(&config, &session, &mut std::io::stderr())
}

/// Sends the log to syslog: `ssh`'s lines from info up, everything else from warn up.
pub(super) fn init_syslog() {
    // SAFETY: openlog keeps the pointer; IDENT is a static C string.
    unsafe {
        libc::openlog(IDENT.as_ptr(), libc::LOG_PID, libc::LOG_DAEMON);
    }
    if log::set_boxed_logger(Box::new(Syslog)).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

struct Syslog;

impl log::Log for Syslog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Warn
            || (m.level() <= log::Level::Info && m.target().starts_with("forgelet::ssh"))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = match record.level() {
            log::Level::Error => libc::LOG_ERR,
            log::Level::Warn => libc::LOG_WARNING,
            log::Level::Info => libc::LOG_INFO,
            _ => libc::LOG_DEBUG,
        };
        let text = record.args().to_string().replace('\0', " ");
        let Ok(text) = CString::new(text) else {
            return;
        };
        // SAFETY: a constant format with one %s, given a live C string.
        unsafe {
            libc::syslog(priority, c"%s".as_ptr(), text.as_ptr());
        }
    }

    fn flush(&self) {}
}
