//! doctor's checks of git over SSH, when the site offers it (`[ssh] host`): the account sshd lets
//! the users' keys in as, the binary sshd runs for the key lookup, sshd's own settings for that
//! account (read with `sshd -T`, which needs root), and the key index the lookup reads.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::local::who;
use super::Report;
use crate::config::Config;

/// Where Debian's openssh-server installs sshd.
const SSHD: &str = "/usr/sbin/sshd";

pub(super) fn check(config: &Config, sshd_config: Option<&Path>, r: &mut Report) {
    let data_owner = fs::metadata(&config.data_dir).ok().map(|m| m.uid());
    let Some(host) = &config.ssh.host else {
        r.ok(
            "ssh",
            format!(
                "the site does not offer SSH ([ssh] host is not set in {}): nothing to check",
                config.file.display()
            ),
        );
        return;
    };
    r.ok(
        "ssh",
        format!(
            "clone URLs name {}@{host}, port {}",
            config.ssh.user, config.ssh.port
        ),
    );
    account(config, data_owner, r);
    command(config, r);
    let lookup_user = sshd_settings(config, sshd_config, r);
    key_index(config, lookup_user.as_deref(), r);
}

/// A line of the passwd database: uid, shell.
fn passwd(name: &str) -> Option<(u32, String)> {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = line.trim_end().split(':').collect();
    let uid = fields.get(2)?.parse().ok()?;
    Some((uid, fields.get(6).unwrap_or(&"").to_string()))
}

/// The account exists, owns the data, has a shell, and is not locked.
fn account(config: &Config, data_owner: Option<u32>, r: &mut Report) {
    let user = &config.ssh.user;
    let Some((uid, shell)) = passwd(user) else {
        r.fail(
            "ssh account",
            format!("there is no account {user} ([ssh] user): sshd runs forgelet as it; create it, or name the account that owns data_dir"),
        );
        return;
    };
    if let Some(owner) = data_owner.filter(|&o| o != uid) {
        r.fail(
            "ssh account",
            format!(
                "{user} (uid {uid}) is not the owner of {} ({}): a push over SSH would make files forgelet cannot change; set [ssh] user to the data's owner",
                config.data_dir.display(),
                who(owner)
            ),
        );
        return;
    }
    if shell.is_empty() || shell.ends_with("/nologin") || shell.ends_with("/false") {
        r.fail(
            "ssh account",
            format!("{user}'s shell is {shell:?}: sshd runs forced commands through the account's shell, so every SSH clone would fail; give it one (usermod -s /bin/sh {user})"),
        );
        return;
    }
    // The password field: readable by root only.
    let shadow = Command::new("getent").args(["shadow", user]).output();
    match shadow {
        Ok(out) if out.status.success() => {
            let line = String::from_utf8_lossy(&out.stdout);
            let field = line.split(':').nth(1).unwrap_or("");
            if field.starts_with('!') {
                r.warn(
                    "ssh account",
                    format!("{user}'s password field starts with '!', which OpenSSH takes for a locked account and refuses even with a key when sshd checks accounts itself (UsePAM no); `usermod -p '*' {user}` keeps passwords out and keys working"),
                );
                return;
            }
            r.ok(
                "ssh account",
                format!("{user} (uid {uid}) owns the data, has the shell {shell}, and is not locked"),
            );
        }
        _ => r.ok(
            "ssh account",
            format!("{user} (uid {uid}) owns the data and has the shell {shell} (run doctor as root to check that it is not locked)"),
        ),
    }
}

/// Why sshd would refuse `path` as an AuthorizedKeysCommand: it and every folder above it
/// must be root's and writable by no one else.
fn unsafe_for_sshd(path: &Path) -> Option<String> {
    let mut p = Some(path);
    while let Some(at) = p {
        match fs::metadata(at) {
            Ok(m) if m.uid() != 0 => {
                return Some(format!(
                    "{} belongs to {}, not root",
                    at.display(),
                    who(m.uid())
                ))
            }
            Ok(m) if m.mode() & 0o022 != 0 => {
                return Some(format!(
                    "{} is writable by its group or others (mode {:o})",
                    at.display(),
                    m.mode() & 0o7777
                ))
            }
            Ok(_) => {}
            Err(e) => return Some(format!("{}: {e}", at.display())),
        }
        p = at.parent();
    }
    None
}

/// The binary sshd runs: there, and acceptable to sshd.
fn command(config: &Config, r: &mut Report) {
    let cmd = &config.ssh.command;
    match fs::metadata(cmd) {
        Ok(m) if m.is_file() && m.mode() & 0o111 != 0 => {}
        Ok(_) => {
            r.fail(
                "ssh command",
                format!(
                    "{} ([ssh] command) is not an executable file",
                    cmd.display()
                ),
            );
            return;
        }
        Err(e) => {
            r.fail(
                "ssh command",
                format!("{} ([ssh] command): {e}; name the installed forgelet binary (the package's is /usr/bin/forgelet)", cmd.display()),
            );
            return;
        }
    }
    match unsafe_for_sshd(cmd) {
        Some(why) => r.fail(
            "ssh command",
            format!("sshd refuses to run {} as its AuthorizedKeysCommand: {why}; use the installed binary", cmd.display()),
        ),
        None => r.ok(
            "ssh command",
            format!("{} is root's all the way up, as sshd requires", cmd.display()),
        ),
    }
}

/// sshd's settings for the account (`sshd -T -C ...`, as root); the account the key lookup runs
/// as, when sshd names one.
fn sshd_settings(config: &Config, sshd_config: Option<&Path>, r: &mut Report) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        r.skip(
            "sshd",
            "reading sshd's settings (sshd -T) needs root: run doctor as root to check them",
        );
        return None;
    }
    if !Path::new(SSHD).exists() {
        r.fail(
            "sshd",
            format!("{SSHD} is missing: git over SSH needs OpenSSH's server (apt-get install openssh-server)"),
        );
        return None;
    }
    let user = &config.ssh.user;
    let mut sshd = Command::new(SSHD);
    if let Some(file) = sshd_config {
        sshd.arg("-f").arg(file);
    }
    let out = match sshd
        .arg("-T")
        .arg("-C")
        .arg(format!("user={user},host=localhost,addr=127.0.0.1"))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            r.fail("sshd", format!("cannot run {SSHD} -T: {e}"));
            return None;
        }
    };
    if !out.status.success() {
        r.fail(
            "sshd",
            format!(
                "sshd -T refuses its config: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        );
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let setting = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.to_string())
            .collect()
    };
    let first = |key: &str| setting(key).into_iter().next().unwrap_or_default();
    let snippet = "copy /usr/share/forgelet/sshd/forgelet.conf to /etc/ssh/sshd_config.d/, edit its paths and reload sshd (README, \"git over SSH\")";
    let akc = first("authorizedkeyscommand");
    if akc.is_empty() || akc == "none" {
        r.fail(
            "sshd",
            format!("sshd does not ask forgelet whose key signs in as {user}: {snippet}"),
        );
        return None;
    }
    let words: Vec<&str> = akc.split_whitespace().collect();
    let config_given = words
        .iter()
        .position(|w| *w == "--config")
        .and_then(|i| words.get(i + 1));
    if !words.contains(&"ssh-keys") || !akc.ends_with("%u %t %k") {
        r.fail(
            "sshd",
            format!("sshd's AuthorizedKeysCommand for {user} is `{akc}`, not forgelet's key lookup (`... ssh-keys %u %t %k`): {snippet}"),
        );
        return None;
    }
    if config_given.map(Path::new) != Some(config.file.as_path()) {
        r.fail(
            "sshd",
            format!(
                "sshd's key lookup reads {} but this site's config is {}: edit --config in /etc/ssh/sshd_config.d/forgelet.conf",
                config_given.unwrap_or(&"the default config"),
                config.file.display()
            ),
        );
    }
    let lookup = first("authorizedkeyscommanduser");
    if lookup.is_empty() || lookup == "none" || lookup == "root" || lookup == *user {
        r.fail(
            "sshd",
            format!("sshd runs the key lookup as {:?}: it needs an account of its own that can read only the key index (the package makes forgelet-ssh): {snippet}", if lookup.is_empty() { "none" } else { lookup.as_str() }),
        );
        return None;
    }
    let accepts_protocol = setting("acceptenv")
        .iter()
        .any(|v| v.split_whitespace().any(|p| p == "GIT_PROTOCOL"));
    let passwords = first("passwordauthentication") == "yes";
    match (accepts_protocol, passwords) {
        (false, _) => r.warn(
            "sshd",
            format!("sshd does not accept GIT_PROTOCOL from {user}'s clients, so SSH clones use protocol v0 (slower on repositories with many refs): add `AcceptEnv GIT_PROTOCOL` to its Match block"),
        ),
        (true, true) => r.warn(
            "sshd",
            format!("sshd accepts passwords for {user}: keys are all forgelet uses; add `PasswordAuthentication no` to its Match block"),
        ),
        (true, false) => r.ok(
            "sshd",
            format!("sshd asks forgelet for {user}'s keys (as {lookup}), accepts GIT_PROTOCOL, and no passwords"),
        ),
    }
    Some(lookup)
}

/// The key index: there, and readable by the lookup's account.
fn key_index(config: &Config, lookup_user: Option<&str>, r: &mut Report) {
    let index = &config.ssh.key_index;
    let m = match fs::metadata(index) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.warn(
                "ssh key index",
                format!("{} ([ssh] key_index) does not exist yet, so no key signs in: it is written when a key is added, or by `forgelet key reindex`", index.display()),
            );
            return;
        }
        Err(e) => {
            r.fail("ssh key index", format!("{}: {e}", index.display()));
            return;
        }
    };
    let whom = lookup_user.unwrap_or("sshd's lookup account");
    if m.mode() & 0o004 == 0 {
        r.fail(
            "ssh key index",
            format!("{} is not readable by others (mode {:o}), so {whom} cannot read it and no key signs in: `forgelet key reindex` writes it 0644", index.display(), m.mode() & 0o7777),
        );
        return;
    }
    let mut dir = index.parent();
    while let Some(d) = dir {
        if let Ok(dm) = fs::metadata(d) {
            if dm.mode() & 0o001 == 0 {
                r.fail(
                    "ssh key index",
                    format!("{whom} cannot reach {}: {} is closed to others (mode {:o}); keep the index in a folder of its own, such as /var/lib/forgelet-ssh", index.display(), d.display(), dm.mode() & 0o7777),
                );
                return;
            }
        }
        dir = d.parent();
    }
    r.ok(
        "ssh key index",
        format!("{} is readable by {whom}", index.display()),
    );
}
