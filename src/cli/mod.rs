//! The command line: the mode (serve, CGI, or an admin command) from the arguments, with the
//! logger and the config set up first. The admin commands, one module per area (`repo`, `user`,
//! `token`, `key`, `check`, `doctor`, `maintain`; `ssh` is sshd's forced command), only parse their arguments, call the service layer (`repos`, `accounts`)
//! and print; they work on the same files the server reads, as the data directory's owner.

mod args;
mod cache;
mod check;
mod doctor;
mod key;
mod maintain;
mod repo;
mod ssh;
mod token;
mod user;

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::AccountError;
use crate::auth::Accounts;
use crate::config::Config;
use crate::repos::RepoError;
use crate::site::Site;
use crate::{cgi, config, fcgi, git};
use args::take_option;

const USAGE: &str = "\
usage: forgelet [--config PATH] COMMAND

commands:
  serve [--listen unix:PATH|HOST:PORT]   answer FastCGI requests (socket from systemd, fd 0, or --listen)
  check                                  validate the config and the data directory
  doctor [URL] [--nginx-conf PATH] [--apache-conf PATH] [--sshd-config PATH]
                                         check the live deployment as a client would, through the web
                                         server at URL (default base_url), and SSH when [ssh] host is
                                         set (sshd's settings as root); says what to change and where
  user add NAME [--admin] [--password-stdin]
                                         add a user (asks for the password, or reads one line with --password-stdin)
  user passwd NAME [--password-stdin]    set a new password (ends the user's web sessions)
  user del NAME [--reassign USER]        delete a user (refused while they own repositories, unless moved to USER)
  user list                              one line per user: name, admin or user, number of tokens
  token create USER --name N [--expires DAYS]
                                         make a personal access token for git, lasting DAYS (1 to 3650)
                                         or until revoked; printed once, on the last line
  token list USER                        name, created, expiry and last use of each token
  token revoke USER NAME
  key add USER [--name NAME] FILE|-      add an SSH public key (a .pub file, or - for standard input); the
                                         name defaults to the key's comment; prints its fingerprint
  key list USER                          name, size, fingerprint, type and date added of each SSH key
  key del USER NAME|FINGERPRINT          delete an SSH key (it stops working at once)
  key reindex                            write the SSH key index ([ssh] key_index) again from the users file
  ssh-keys USER TYPE KEY                 sshd's AuthorizedKeysCommand (%u %t %k): the authorized_keys line
                                         of a known key, or nothing
  repo create OWNER/NAME [--private] [--description TEXT]
  repo list
  repo import OWNER/NAME PATH [--move]   adopt an existing bare repository (copied; --move removes the source)
  repo set OWNER/NAME --visibility public|private
  repo purge OWNER/NAME                  drop objects no branch or tag reaches (after a force-push of a secret)
  repo grant OWNER/NAME USER read|write  make USER a collaborator
  repo revoke OWNER/NAME USER            remove USER from the collaborators
  cache                                  what the pack cache holds, and how many fetches it answered
  cache clear                            take every answer out of the pack cache
  ssh-serve KEYID                        serve one git session over SSH for the key KEYID: the forced
                                         command sshd runs (reads SSH_ORIGINAL_COMMAND and GIT_PROTOCOL;
                                         refusals go to the client, the log to syslog as forgelet-ssh)
  maintain [OWNER/NAME]                  repack (bitmaps, multi-pack index), write the commit-graph, pack
                                         refs, remove what interrupted git left and Git LFS objects nothing
                                         names; with no name every repository, then the trash and the pack
                                         cache (the timer runs it)

OWNER is a user's name: add the user before their repositories.

With no command, forgelet serves FastCGI when fd 0 is a listening socket (spawn-fcgi, mod_fcgid),
or answers one CGI request when GATEWAY_INTERFACE is set.
The config is --config PATH, else $FORGELET_CONFIG, else /etc/forgelet/config.toml.
Logging: RUST_LOG=warn|info|debug (default warn).
";

/// Runs forgelet with the process's arguments; the exit code: 0 ok, 1 failure, 2 usage error.
pub fn run() -> i32 {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let config_flag = match take_option(&mut args, "--config") {
        Ok(v) => v.map(PathBuf::from),
        Err(e) => return usage_error(&e),
    };
    // An SSH session's stderr is its client's terminal: its log goes to syslog.
    if args.first().is_some_and(|a| a == "ssh-serve") {
        ssh::init_syslog();
    } else {
        // Warnings and errors, plus the server's one start and one stop line; nothing per
        // request.
        env_logger::Builder::from_env(
            env_logger::Env::default().default_filter_or("warn,forgelet::fcgi::server=info"),
        )
        .format_timestamp(None)
        .init();
    }
    let words: Vec<String> = match args.iter().map(|a| a.clone().into_string()).collect() {
        Ok(w) => w,
        Err(_) => return usage_error("arguments must be UTF-8"),
    };
    if words.iter().any(|w| w == "--help" || w == "-h")
        || words.first().map(String::as_str) == Some("help")
    {
        print!("{USAGE}");
        return 0;
    }
    if words.iter().any(|w| w == "--version" || w == "-V") {
        println!("forgelet {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }

    if let Err(e) = git::isolate_libgit2() {
        eprintln!("forgelet: cannot set up libgit2: {}", e.message());
        return 1;
    }

    let config_path = config::choose_path(config_flag.as_deref());
    let word = |i: usize| words.get(i).map(String::as_str);

    if words.is_empty() {
        // A socket on fd 0 wins over CGI variables: under spawn-fcgi or mod_fcgid the environment
        // may carry anything.
        if fcgi::fd0_is_listening_socket() {
            return serve(&config_path, None);
        }
        if std::env::var_os("GATEWAY_INTERFACE").is_some() {
            return run_cgi(&config_path);
        }
        eprint!("{USAGE}");
        return 2;
    }

    match (word(0), word(1)) {
        (Some("serve"), _) => {
            let mut rest: Vec<OsString> = words[1..].iter().map(OsString::from).collect();
            let listen = match take_option(&mut rest, "--listen") {
                Ok(v) => v.map(|v| v.to_string_lossy().into_owned()),
                Err(e) => return usage_error(&e),
            };
            if !rest.is_empty() {
                return usage_error(&format!("unexpected argument {:?}", rest[0]));
            }
            serve(&config_path, listen)
        }
        (Some("check"), None) => with_config(&config_path, check::run),
        (Some("check"), Some(extra)) => {
            usage_error(&format!("check takes no arguments, found {extra:?}"))
        }
        (Some("cache"), None) => with_config(&config_path, cache::status),
        (Some("cache"), Some("clear")) if words.len() == 2 => {
            with_config(&config_path, cache::clear)
        }
        (Some("cache"), Some(_)) => usage_error(&format!(
            "cache takes no argument or `clear`, found {:?}",
            words[1..].join(" ")
        )),
        (Some("doctor"), _) => doctor::run(&config_path, &words[1..]),
        (Some("repo"), _) => repo::run(&config_path, &words[1..]),
        (Some("maintain"), _) => maintain::run(&config_path, &words[1..]),
        (Some("user"), _) => user::run(&config_path, &words[1..]),
        (Some("token"), _) => token::run(&config_path, &words[1..]),
        (Some("key"), _) => key::run(&config_path, &words[1..]),
        (Some("ssh-keys"), _) => key::ssh_keys(&config_path, &words[1..]),
        (Some("ssh-serve"), _) => ssh::run(&config_path, &words[1..]),
        (Some(cmd), _) => usage_error(&format!("unknown command {cmd:?}")),
        (None, _) => usage_error("no command given"),
    }
}

/// Messages for people: io errors print as "No such file or directory (os error 2)"; the
/// number helps no one reading it.
fn plain(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(" (os error ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + " (os error ".len()..];
        match tail.find(')') {
            Some(j) if tail[..j].bytes().all(|b| b.is_ascii_digit()) => rest = &tail[j + 1..],
            _ => {
                out.push_str(" (os error ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Prints `message` and the usage; the exit code of a usage error.
fn usage_error(message: &str) -> i32 {
    eprintln!("forgelet: {message}\n\n{USAGE}");
    2
}

fn load_config(path: &Path) -> Result<Config, i32> {
    config::load(path).map_err(|e| {
        eprintln!("forgelet: {}", plain(&e.to_string()));
        1
    })
}

/// An admin command's outcome: its failure is the message printed for the sysadmin.
type Outcome = Result<(), String>;

/// Loads the config and runs an admin command with it; the exit code: 0 ok, 1 failure.
fn with_config(path: &Path, f: impl FnOnce(&Config) -> Outcome) -> i32 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match f(&config) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("forgelet: {}", plain(&e));
            1
        }
    }
}

/// Refuses to write data owned by another user: files made by root in a folder the server reads as
/// `forgelet` would later be unreadable or unwritable to it.
fn check_owner(config: &Config) -> Outcome {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    match fs::metadata(&config.data_dir) {
        Ok(m) if m.uid() != euid => Err(format!(
            "{} belongs to uid {}, but this command runs as uid {euid}; run it as the data directory's owner (e.g. sudo -u forgelet forgelet ...)",
            config.data_dir.display(),
            m.uid()
        )),
        _ => Ok(()),
    }
}

/// The data directory's accounts, for a command run as the data directory's owner.
fn open_accounts(config: &Config) -> Result<Accounts, String> {
    check_owner(config)?;
    fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create {}: {e}", config.data_dir.display()))?;
    Accounts::open(&config.data_dir, config.ssh.live_key_index())
}

/// A refused or failed repository operation as the command line says it: the service's
/// message, with what to type next where the command line knows it.
fn repo_error(e: RepoError) -> String {
    match &e {
        RepoError::NoSuchOwner(owner) => {
            format!("{e}; add one first with `forgelet user add {owner}`")
        }
        RepoError::NotFound { .. } => format!("{e} (see `forgelet repo list`)"),
        RepoError::NoSuchUser(_) => format!("{e} (see `forgelet user list`)"),
        RepoError::MoveFailed { .. } => format!("{e}; run the command again to finish"),
        _ => e.to_string(),
    }
}

/// A refused or failed account operation as the command line says it (see [`repo_error`]).
fn account_error(e: AccountError) -> String {
    let e = match e {
        AccountError::Repo(r) => return repo_error(r),
        e => e,
    };
    match &e {
        AccountError::NoSuchUser(_) => format!("{e} (see `forgelet user list`)"),
        AccountError::OwnsRepos { .. } => {
            format!("{e}; give them to another user with --reassign USER, or delete them first")
        }
        AccountError::HeirIsUser(_) => format!("--reassign: {e}"),
        AccountError::NoSuchHeir(_) => format!("--reassign: {e} (see `forgelet user list`)"),
        AccountError::TokenExists { user, token } => {
            format!("{e} with `forgelet token revoke {user} {token}`")
        }
        AccountError::NoSuchToken { user, .. } => {
            format!("{e} (see `forgelet token list {user}`)")
        }
        AccountError::NoSuchKey { user, .. } => format!("{e} (see `forgelet key list {user}`)"),
        _ => e.to_string(),
    }
}

fn run_cgi(config_path: &Path) -> i32 {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => {
            let _ = cgi::write_error(&mut std::io::stdout());
            return code;
        }
    };
    let site = match Site::new(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("forgelet: {}", plain(&e));
            let _ = cgi::write_error(&mut std::io::stdout());
            return 1;
        }
    };
    match cgi::run(std::sync::Arc::new(site)) {
        Ok(()) => 0,
        Err(e) => {
            log::debug!("CGI response not completed: {e}");
            1
        }
    }
}

/// Requests that may wait for a worker, per worker, before the server answers 503. git's dumb
/// client runs several requests at once per clone and gives up on the first 503, so a burst of
/// clones must wait its turn rather than fail; only a real overload is turned away.
const QUEUE_PER_WORKER: usize = 8;
/// Threads of the git lane at least: requests waiting for a git slot, running git, or draining
/// what git wrote to a slow client.
const GIT_LANE_THREADS: usize = 64;
/// The git lane's nice value, and its git children's.
const GIT_LANE_NICE: i32 = 5;
/// A web server sends a request's parameters at once; a connection that has not in this time is
/// closed (and at the connection cap, one that is a second late makes room).
const PARAMS_TIMEOUT: Duration = Duration::from_secs(5);

fn serve(config_path: &Path, listen: Option<String>) -> i32 {
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let listener = match fcgi::Listener::inherited() {
        Ok(Some(l)) => l,
        Ok(None) => {
            let spec_text = listen.unwrap_or_else(|| config.server.listen.clone());
            if spec_text.is_empty() {
                eprintln!("forgelet: no socket to serve: give --listen unix:PATH|HOST:PORT, set server.listen in {}, or start forgelet with a socket (systemd, spawn-fcgi)", config.file.display());
                return 1;
            }
            let spec = match spec_text.parse::<fcgi::ListenSpec>() {
                Ok(fcgi::ListenSpec::Unix { path, .. }) => fcgi::ListenSpec::Unix {
                    path,
                    group: config.server.socket_group.clone(),
                },
                Ok(s) => s,
                Err(e) => {
                    eprintln!("forgelet: {e}");
                    return 1;
                }
            };
            if let fcgi::ListenSpec::Unix { path, .. } = &spec {
                if let Some(dir) = path.parent().filter(|d| !d.is_dir()) {
                    eprintln!(
                        "forgelet: cannot listen on {spec_text}: the folder {} does not exist (create it, owned by the user forgelet runs as, or let systemd's RuntimeDirectory= make it)",
                        dir.display()
                    );
                    return 1;
                }
            }
            match fcgi::Listener::bind(&spec) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!(
                        "forgelet: cannot listen on {spec_text}: {}",
                        plain(&e.to_string())
                    );
                    return 1;
                }
            }
        }
        Err(e) => {
            eprintln!("forgelet: cannot use the socket handed over: {e}");
            return 1;
        }
    };
    let s = &config.server;
    let fcgi_config = fcgi::Config {
        lanes: vec![
            fcgi::LaneConfig {
                name: "quick".into(),
                workers: s.workers,
                queue: QUEUE_PER_WORKER * s.workers,
                nice: 0,
            },
            // git requests wait for a git slot (`[server] git_workers` of them) in their
            // thread, and a thread whose git is done drains the rest to a slow client without a
            // slot: so many more threads than slots.
            fcgi::LaneConfig {
                name: "git".into(),
                workers: GIT_LANE_THREADS.max(4 * s.git_workers),
                queue: QUEUE_PER_WORKER * s.git_workers,
                // Pages are waited for by a person; git transfers by a progress bar. When the
                // CPU is short, the pages' lane goes first (git's children inherit this too).
                nice: GIT_LANE_NICE,
            },
        ],
        max_connections: s.max_connections,
        io_timeout: s.timeout,
        write_timeout: s.write_timeout,
        params_timeout: PARAMS_TIMEOUT,
        idle_timeout: Duration::from_secs(60),
        max_params_bytes: 1 << 20,
        retry_after_secs: 5,
        drain_timeout: Duration::from_secs(30),
    };
    let site = match Site::new(config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("forgelet: {}", plain(&e));
            return 1;
        }
    };
    match fcgi::serve(listener, fcgi_config, site) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("forgelet: serving failed: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn os_error_numbers_are_dropped() {
        assert_eq!(
            plain("cannot open /x: No such file or directory (os error 2)"),
            "cannot open /x: No such file or directory"
        );
        assert_eq!(plain("a (os error 13) b (os error x)"), "a b (os error x)");
        assert_eq!(plain("nothing to drop"), "nothing to drop");
    }
}
