//! `forgelet doctor [URL]`: checks a live deployment as a client would, and says for each
//! problem what to change and where. First this host, from the config ([`local`]): the data
//! directory, its owner and modes, git, the FastCGI socket, and SSH when the site offers it
//! ([`ssh`]: the account, sshd's settings, the key index). Then through the web server at URL
//! (default: `base_url`) ([`web`]), with a temporary private repository and a token that doctor
//! makes through the services (`repos`, `accounts`) and always removes. One line per check:
//! `ok`, `warning`, `FAILED` (with the fix) or `skipped` (with why); the exit status is 1 when
//! a check failed, 0 otherwise (warnings alone included).

mod http;
mod local;
mod ssh;
mod web;
mod webconf;

use std::fmt::Display;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::args::Args;
use super::usage_error;
use crate::config;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    Warning,
    Failed,
    Skipped,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        }
    }
}

/// The checks' outcomes, printed one line each as they come: `STATUS  check: text`.
#[derive(Default)]
struct Report {
    counts: [usize; 4],
}

impl Report {
    fn line(&mut self, status: Status, check: &str, text: impl Display) {
        self.counts[status as usize] += 1;
        let mut out = std::io::stdout().lock();
        // io errors print as "... (os error 111)"; the number helps no one reading it.
        let text = super::plain(&text.to_string());
        let _ = writeln!(out, "{:<8} {check}: {text}", status.word());
        let _ = out.flush();
    }

    fn ok(&mut self, check: &str, text: impl Display) {
        self.line(Status::Ok, check, text);
    }

    fn warn(&mut self, check: &str, text: impl Display) {
        self.line(Status::Warning, check, text);
    }

    fn fail(&mut self, check: &str, text: impl Display) {
        self.line(Status::Failed, check, text);
    }

    fn skip(&mut self, check: &str, text: impl Display) {
        self.line(Status::Skipped, check, text);
    }

    fn count(&self, status: Status) -> usize {
        self.counts[status as usize]
    }
}

/// Set by SIGINT, SIGTERM or SIGHUP: doctor stops checking and removes what it made.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Whether doctor was asked to stop.
fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Catches the signals that would end doctor, so that it removes its temporary repository and
/// token first. Without `SA_RESTART`, a blocking read returns so the flag is seen.
fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only stores to an atomic.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// What doctor was told to check.
struct Options {
    /// The URL given, else none (the config's base_url).
    url: Option<String>,
    nginx_conf: Option<PathBuf>,
    apache_conf: Option<PathBuf>,
    /// sshd's config file to read instead of its default (`sshd -f`).
    sshd_config: Option<PathBuf>,
}

/// `forgelet doctor [URL] [--nginx-conf PATH] [--apache-conf PATH] [--sshd-config PATH]`, with `words` the words
/// after `doctor`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let a = match Args::parse(
        words,
        &[],
        &["--nginx-conf", "--apache-conf", "--sshd-config"],
        "doctor",
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    let url = match a.positional.as_slice() {
        [] => None,
        [u] => Some(u.clone()),
        [_, extra, ..] => {
            return usage_error(&format!(
                "doctor takes one URL at most, found {extra:?} too"
            ))
        }
    };
    let opts = Options {
        url,
        nginx_conf: a.option("--nginx-conf").map(PathBuf::from),
        apache_conf: a.option("--apache-conf").map(PathBuf::from),
        sshd_config: a.option("--sshd-config").map(PathBuf::from),
    };
    catch_signals();
    let started = Instant::now();
    let mut r = Report::default();
    check(config_path, &opts, &mut r);
    let failed = r.count(Status::Failed);
    println!(
        "doctor: {failed} failed, {} warning(s), {} ok, {} skipped, in {:.1} s",
        r.count(Status::Warning),
        r.count(Status::Ok),
        r.count(Status::Skipped),
        started.elapsed().as_secs_f64()
    );
    if interrupted() {
        println!("doctor: interrupted; what it made was removed (see cleanup above)");
        return 1;
    }
    i32::from(failed > 0)
}

fn check(config_path: &Path, opts: &Options, r: &mut Report) {
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            r.fail("config", super::plain(&e.to_string()));
            r.skip(
                "everything else",
                "doctor needs the config to know where to look",
            );
            return;
        }
    };
    r.ok(
        "config",
        format!(
            "{} loads (base_url {}, data_dir {})",
            config.file.display(),
            config.base_url,
            config.data_dir.display()
        ),
    );
    let may_write = local::check(&config, r);
    ssh::check(&config, opts.sshd_config.as_deref(), r);
    let url_text = opts.url.clone().unwrap_or_else(|| config.base_url.clone());
    let url = match http::Url::parse(&url_text) {
        Ok(u) => u,
        Err(e) => {
            let whence = if opts.url.is_some() {
                "the URL given".to_string()
            } else {
                format!("base_url in {}", config.file.display())
            };
            r.fail("url", format!("{e} ({whence})"));
            r.skip("web", "no URL to check through the web server");
            return;
        }
    };
    web::check(
        &config,
        &url,
        may_write,
        opts.nginx_conf.as_deref(),
        opts.apache_conf.as_deref(),
        r,
    );
}

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> Result<String, String> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).map_err(|e| format!("no randomness: {e}"))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}
