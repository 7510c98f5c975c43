//! Reading the command line and the terminal: a subcommand's words split into positional
//! arguments, flags and options ([`Args`]), one option taken out of the raw arguments
//! ([`take_option`]), and a new password asked for without echo or read from standard input.

use std::ffi::OsString;
use std::io::{self, Write};

use crate::auth::password;

/// A subcommand's arguments: positional words, flags given, and option values.
#[derive(Debug, Default)]
pub(super) struct Args {
    pub(super) positional: Vec<String>,
    flags: Vec<&'static str>,
    options: Vec<(&'static str, String)>,
}

impl Args {
    /// Splits `words` into positional words, the `flags` (`--x`) and `options` (`--x VALUE` or
    /// `--x=VALUE`) this command takes; anything else starting with `--` is refused.
    pub(super) fn parse(
        words: &[String],
        flags: &[&'static str],
        options: &[&'static str],
        command: &str,
    ) -> Result<Args, String> {
        let mut out = Args::default();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            i += 1;
            if !w.starts_with("--") || w == "--" {
                out.positional.push(w.clone());
                continue;
            }
            let (key, inline) = match w.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (w.as_str(), None),
            };
            if let Some(f) = flags.iter().find(|f| **f == key) {
                if inline.is_some() {
                    return Err(format!("{f} takes no value"));
                }
                if !out.flags.contains(f) {
                    out.flags.push(f);
                }
            } else if let Some(o) = options.iter().find(|o| **o == key) {
                let value = match inline {
                    Some(v) => v,
                    None if i < words.len() => {
                        i += 1;
                        words[i - 1].clone()
                    }
                    None => return Err(format!("{o} needs a value")),
                };
                if out.options.iter().any(|(k, _)| k == o) {
                    return Err(format!("{o} is given twice"));
                }
                out.options.push((o, value));
            } else {
                return Err(format!("unknown option {key} for {command}"));
            }
        }
        Ok(out)
    }

    pub(super) fn flag(&self, name: &str) -> bool {
        self.flags.contains(&name)
    }

    pub(super) fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Removes `--name VALUE` or `--name=VALUE` from `args`, returning the value.
pub(super) fn take_option(
    args: &mut Vec<OsString>,
    name: &str,
) -> Result<Option<OsString>, String> {
    let prefix = format!("{name}=");
    for i in 0..args.len() {
        let a = args[i].to_string_lossy().into_owned();
        if a == name {
            if i + 1 >= args.len() {
                return Err(format!("{name} needs a value"));
            }
            let v = args.remove(i + 1);
            args.remove(i);
            return Ok(Some(v));
        }
        if let Some(v) = a.strip_prefix(&prefix) {
            let v = OsString::from(v);
            args.remove(i);
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// Sets the terminal back as it was when dropped, and when the process is interrupted.
struct EchoOff {
    saved: libc::termios,
}

/// The terminal settings to restore if a signal ends the process while echo is off.
static SAVED_TERMIOS: std::sync::OnceLock<libc::termios> = std::sync::OnceLock::new();

extern "C" fn restore_and_die(sig: libc::c_int) {
    // Only async-signal-safe calls here.
    if let Some(t) = SAVED_TERMIOS.get() {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
    }
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

impl EchoOff {
    fn new() -> Result<EchoOff, String> {
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return Err(format!(
                "cannot read the terminal's settings: {}",
                io::Error::last_os_error()
            ));
        }
        let _ = SAVED_TERMIOS.set(saved);
        let handler = restore_and_die as extern "C" fn(libc::c_int);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            unsafe { libc::signal(sig, handler as libc::sighandler_t) };
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        if unsafe { libc::tcsetattr(0, libc::TCSAFLUSH, &quiet) } != 0 {
            return Err(format!(
                "cannot turn off the terminal's echo: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.saved) };
    }
}

/// One line from standard input, without its line ending; `None` at end of input.
fn read_line_stdin() -> Result<Option<String>, String> {
    use io::BufRead;
    let mut line = Vec::new();
    let n = io::stdin()
        .lock()
        .read_until(b'\n', &mut line)
        .map_err(|e| format!("cannot read standard input: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    String::from_utf8(line)
        .map(Some)
        .map_err(|_| "the password is not UTF-8 text".to_string())
}

fn prompt_hidden(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    let echo = EchoOff::new()?;
    let line = read_line_stdin();
    drop(echo);
    line?.ok_or_else(|| "no password given".to_string())
}

/// A new password for `name`: one line of standard input with `--password-stdin`, else asked
/// twice on the terminal without echo (a weak one refused before it is asked again). Setting it
/// (`accounts`) checks it either way.
pub(super) fn read_new_password(name: &str, from_stdin: bool) -> Result<String, String> {
    if from_stdin {
        return read_line_stdin()?.ok_or_else(|| {
            "no password on standard input (--password-stdin reads one line)".into()
        });
    }
    if unsafe { libc::isatty(0) } != 1 {
        return Err("standard input is not a terminal, so forgelet cannot ask for the password; give it on standard input with --password-stdin (one line)".into());
    }
    let first = prompt_hidden(&format!("New password for {name}: "))?;
    password::check_new(&first).map_err(|w| w.to_string())?;
    let again = prompt_hidden("Type it again: ")?;
    if again != first {
        return Err("the two passwords differ; nothing was changed".into());
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_into_positional_flags_and_options() {
        let w = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let a = Args::parse(
            &w("bob --admin --name=x --expires 3 more"),
            &["--admin"],
            &["--name", "--expires"],
            "t",
        )
        .unwrap();
        assert_eq!(a.positional, ["bob", "more"]);
        assert!(a.flag("--admin") && !a.flag("--password-stdin"));
        assert_eq!(
            (a.option("--name"), a.option("--expires")),
            (Some("x"), Some("3"))
        );
        assert!(Args::parse(&w("--bogus"), &[], &[], "t")
            .unwrap_err()
            .contains("unknown option --bogus for t"));
        assert!(Args::parse(&w("--name"), &[], &["--name"], "t")
            .unwrap_err()
            .contains("needs a value"));
        assert!(Args::parse(&w("--name a --name b"), &[], &["--name"], "t")
            .unwrap_err()
            .contains("twice"));
    }
}
