//! git over SSH: one session, run by sshd as the forced command `forgelet ssh-serve KEYID` of
//! the key the client signed in with. The client's command (`SSH_ORIGINAL_COMMAND`) is read
//! exactly ([`command`]), the key's user is given the same access as over HTTP (`auth::access`
//! on the repository's settings), and git runs as for HTTP (`GitRunner::service`: the same
//! empty environment, `-c` settings and hook identity, the memory limit, the deadline, the
//! process group ended with it), full duplex on the session's own stdin and stdout. Pushes hold
//! the repository against a purge and start maintenance afterwards, as over HTTP.
//!
//! The session's stderr is the client's terminal: it gets one line when the session is
//! refused, and git's own messages. Nothing meant for the administrator goes there; that goes
//! to the log (the command line sends it to syslog for these sessions).

pub(crate) mod command;
pub(crate) mod slots;

use std::fmt;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::auth::users::valid_key_id;
use crate::auth::{access, Accounts};
use crate::config::Config;
use crate::git::{maintenance, RepoStore};
use crate::gitrun::service::{protocol_version, Service};
use crate::gitrun::GitRunner;

use command::Asked;

/// How long a session waits for a slot before it is refused.
const SLOT_WAIT: Duration = Duration::from_secs(5);

/// What sshd hands a session.
pub(crate) struct Session<'a> {
    /// The key's id, from the forced command.
    pub(crate) key_id: &'a str,
    /// `SSH_ORIGINAL_COMMAND`, when the client asked for a command.
    pub(crate) command: Option<&'a [u8]>,
    /// `GIT_PROTOCOL`, when the client sent it and sshd accepted it.
    pub(crate) git_protocol: Option<&'a [u8]>,
}

/// Why a session was refused: the `Display` text is what the client is told.
#[derive(Debug)]
enum Refused {
    /// The key is not (or no longer) any user's, or the id is malformed.
    UnknownKey,
    Shell(String),
    Lfs,
    /// Not a git service, with the reason (for the log).
    NotGit(&'static str),
    BadArguments(Service),
    /// Missing, or not readable by this user: the same words, so names do not leak.
    NotFound,
    ReadOnly(String),
    Unsupported(String, String),
    Purging(String),
    Busy,
    /// The server's fault; the reason is for the log only.
    Internal(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::UnknownKey => write!(
                f,
                "ERROR: this key belongs to no user of this server (it may have been removed)."
            ),
            Refused::Shell(user) => write!(
                f,
                "Hi {user}! You've authenticated, but forgelet does not provide shell access."
            ),
            Refused::Lfs => write!(
                f,
                "ERROR: this server answers git-lfs-authenticate OWNER/REPO download|upload over SSH; LFS objects travel over HTTPS."
            ),
            Refused::NotGit(_) => write!(
                f,
                "ERROR: this server only runs git-upload-pack, git-receive-pack and git-upload-archive over SSH."
            ),
            Refused::BadArguments(s) => write!(
                f,
                "ERROR: git-{} takes one argument, the repository (OWNER/REPO.git).",
                s.command()
            ),
            Refused::NotFound => write!(f, "ERROR: Repository not found."),
            Refused::ReadOnly(label) => write!(f, "ERROR: You may not push to {label}."),
            Refused::Unsupported(label, format) => write!(
                f,
                "ERROR: {label} uses the {format} object format; this server can only serve SHA-1 repositories."
            ),
            Refused::Purging(label) => write!(
                f,
                "ERROR: {label} is being purged of unreachable objects; pushes are refused until it is done. Push again in a minute."
            ),
            Refused::Busy => write!(f, "ERROR: the server is busy, try again in a minute."),
            Refused::Internal(_) => write!(
                f,
                "ERROR: the server could not serve this request; its administrator will find why in the system log."
            ),
        }
    }
}

/// A session that got as far as running git.
struct Ran {
    user: String,
    /// The program, as the client named it (`git-upload-pack`, `git-lfs-authenticate`).
    program: String,
    label: String,
    code: i32,
    /// git was stopped at its deadline.
    timed_out: bool,
    /// What happened, for the log.
    outcome: String,
}

/// `git-lfs-authenticate OWNER/REPO download|upload`: after the same access check as for a
/// fetch (a download) or a push (an upload), prints the LFS API's address and a header valid
/// for that repository and user for a few minutes (`lfs::token`), as JSON on stdout.
fn lfs_authenticate(
    config: &Config,
    accounts: &Accounts,
    user: &crate::auth::User,
    owner: &str,
    name: &str,
    upload: bool,
) -> Result<Ran, Refused> {
    let repo = RepoStore::new(config.repos_dir())
        .locate(owner, name)
        .map_err(|e| Refused::Internal(format!("looking up {owner}/{name}: {e}")))?
        .ok_or(Refused::NotFound)?;
    let label = format!("{}/{}", repo.owner, repo.name);
    let granted = access(
        Some(user),
        &repo.owner,
        &repo.settings(),
        config.anonymous_read,
    );
    if !granted.may_read() {
        return Err(Refused::NotFound);
    }
    if upload && !granted.may_write() {
        return Err(Refused::ReadOnly(label));
    }
    let expires = crate::time::now() + crate::lfs::token::LIFETIME_SECS;
    let header = crate::lfs::token::sign(
        accounts.secret(),
        crate::lfs::token::Op::Api,
        &label,
        "",
        Some((&user.name, &user.stamp)),
        expires,
    );
    let answer = serde_json::json!({
        "href": format!("{}/info/lfs", crate::urls::clone_url(&config.base_url, &repo.owner, &repo.name)),
        "header": { "Authorization": header },
        "expires_in": crate::lfs::token::LIFETIME_SECS,
    });
    let mut out = std::io::stdout().lock();
    writeln!(out, "{answer}")
        .and_then(|()| out.flush())
        .map_err(|e| Refused::Internal(format!("{label}: writing the LFS answer: {e}")))?;
    Ok(Ran {
        user: user.name.clone(),
        program: "git-lfs-authenticate".into(),
        label,
        code: 0,
        timed_out: false,
        outcome: format!(
            "a header for {}",
            if upload { "uploads" } else { "downloads" }
        ),
    })
}

/// Serves one session: refusals and git's messages go to `err` (the client's terminal), git's
/// protocol to the process's stdin and stdout. The process's exit status.
pub(crate) fn serve(config: &Config, session: &Session<'_>, err: &mut dyn Write) -> i32 {
    // sshd starts sessions with umask 022; repositories must not become world-readable.
    // SAFETY: umask(2) has no preconditions.
    unsafe {
        libc::umask(0o027);
    }
    let started = Instant::now();
    let key = session.key_id;
    match run(config, session) {
        Ok(ran) => {
            log::info!(
                "key {key} ({}): {} {}: {} in {:.1} s",
                ran.user,
                ran.program,
                ran.label,
                ran.outcome,
                started.elapsed().as_secs_f64()
            );
            if ran.timed_out {
                let _ = writeln!(
                    err,
                    "ERROR: git took longer than the server's limit of {} seconds.",
                    config.limits.git_deadline.as_secs()
                );
            }
            ran.code
        }
        Err(refused) => {
            match &refused {
                Refused::Internal(why) => log::warn!("key {key}: {why}"),
                Refused::NotGit(why) => log::info!("key {key}: refused a command: {why}"),
                other => log::info!("key {key}: refused: {other}"),
            }
            let _ = writeln!(err, "{refused}");
            1
        }
    }
}

fn run(config: &Config, session: &Session<'_>) -> Result<Ran, Refused> {
    if !valid_key_id(session.key_id) {
        return Err(Refused::UnknownKey);
    }
    let accounts =
        Accounts::open(&config.data_dir, config.ssh.live_key_index()).map_err(Refused::Internal)?;
    let users = accounts.users().map_err(Refused::Internal)?;
    let (user, _) = users
        .find_ssh_key(session.key_id)
        .ok_or(Refused::UnknownKey)?;
    let (service, owner, name) = match command::parse(session.command) {
        Asked::Git {
            service,
            owner,
            name,
        } => (service, owner, name),
        Asked::LfsAuthenticate {
            owner,
            name,
            upload,
        } => return lfs_authenticate(config, &accounts, user, &owner, &name, upload),
        Asked::Shell => return Err(Refused::Shell(user.name.clone())),
        Asked::Lfs => return Err(Refused::Lfs),
        // A name no repository can have: no repository has it.
        Asked::BadPath { .. } => return Err(Refused::NotFound),
        Asked::BadArguments { service } => return Err(Refused::BadArguments(service)),
        Asked::Other(why) => return Err(Refused::NotGit(why)),
    };
    // The same rules as every HTTP route (see `app::authorize`).
    let repo = RepoStore::new(config.repos_dir())
        .locate(&owner, &name)
        .map_err(|e| Refused::Internal(format!("looking up {owner}/{name}: {e}")))?
        .ok_or(Refused::NotFound)?;
    let label = format!("{}/{}", repo.owner, repo.name);
    let settings = repo.settings();
    if let Some(problem) = &settings.problem {
        log::warn!("{label}: {problem}");
    }
    let granted = access(Some(user), &repo.owner, &settings, config.anonymous_read);
    if !granted.may_read() {
        return Err(Refused::NotFound);
    }
    if service.writes() && !granted.may_write() {
        return Err(Refused::ReadOnly(label));
    }
    if let Some(format) = &settings.unsupported_format {
        return Err(Refused::Unsupported(label, format.clone()));
    }
    // Held for the whole push: a purge waits for it, and none starts meanwhile.
    let hold = if service.writes() {
        match maintenance::hold_for_push(&repo.path) {
            Ok(Some(h)) => Some(h),
            Ok(None) => return Err(Refused::Purging(label)),
            Err(e) => return Err(Refused::Internal(format!("{label}: {e}"))),
        }
    } else {
        None
    };
    let s = &config.server;
    let slot = slots::acquire(
        &config.data_dir,
        s.git_workers,
        s.git_per_address,
        &user.name,
        SLOT_WAIT,
    )
    .map_err(|e| match e {
        slots::NoSlot::Busy => Refused::Busy,
        slots::NoSlot::Failed(why) => Refused::Internal(why),
    })?;
    let runner = GitRunner::new(config);
    // receive-pack and upload-archive speak v0 only; `service` passes the version to
    // upload-pack alone.
    let version = protocol_version(
        session
            .git_protocol
            .and_then(|p| std::str::from_utf8(p).ok()),
    );
    let mut c = runner.service(service, &label, Some(&user.name), version, &config.limits);
    c.arg(&repo.path);
    if let Some(hold) = &hold {
        hold.hand_down(&mut c);
    }
    let ended = runner
        .attached(&mut c, config.limits.git_deadline)
        .map_err(|e| Refused::Internal(format!("{label}: cannot run git: {e}")))?;
    drop(slot);
    drop(hold);
    let (code, outcome) = match &ended.status {
        _ if ended.timed_out => (1, "stopped at the deadline".to_string()),
        Ok(s) if s.success() => (0, "done".to_string()),
        Ok(s) => (s.code().unwrap_or(1).max(1), format!("git failed ({s})")),
        Err(e) => (1, format!("git could not be waited for ({e})")),
    };
    if service.writes() && code == 0 {
        if let Err(e) = crate::repos::start_maintenance(config, &repo) {
            log::warn!("{label}: cannot start maintenance after a push: {e}");
        }
    }
    Ok(Ran {
        user: user.name.clone(),
        program: format!("git-{}", service.command()),
        label,
        code,
        timed_out: ended.timed_out,
        outcome,
    })
}
