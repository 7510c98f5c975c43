//! `forgelet key ...`: add, list and delete users' SSH keys, and rewrite the key index; and
//! `forgelet ssh-keys USER TYPE KEY`, the lookup sshd's `AuthorizedKeysCommand` runs.

use std::io::{self, Read, Write};
use std::path::Path;

use super::args::Args;
use super::{account_error, open_accounts, usage_error, with_config, Outcome};
use crate::accounts;
use crate::auth::{key_index, keys};
use crate::config::{self, Config};

/// `forgelet key SUBCOMMAND ...`, with `words` the words after `key`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let sub = words.first().map(String::as_str);
    let (options, form): (&[&str], &str) = match sub {
        Some("add") => (&["--name"], "key add USER [--name NAME] FILE|-"),
        Some("list") => (&[], "key list USER"),
        Some("del") => (&[], "key del USER NAME|FINGERPRINT"),
        Some("reindex") => (&[], "key reindex"),
        Some(other) => {
            return usage_error(&format!(
                "unknown key subcommand {other:?}; use add, list, del or reindex"
            ))
        }
        None => return usage_error("key needs a subcommand: add, list, del or reindex"),
    };
    let a = match Args::parse(
        &words[1..],
        &[],
        options,
        &format!("key {}", sub.unwrap_or("")),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    match (sub, a.positional.as_slice()) {
        (Some("add"), [user, file]) => {
            with_config(config_path, |c| add(c, user, a.option("--name"), file))
        }
        (Some("list"), [user]) => with_config(config_path, |c| list(c, user)),
        (Some("del"), [user, which]) => with_config(config_path, |c| del(c, user, which)),
        (Some("reindex"), []) => with_config(config_path, reindex),
        _ => usage_error(&format!("expected: forgelet {form}")),
    }
}

/// `forgelet key add USER [--name NAME] FILE|-`: the key from a .pub file, or standard input.
fn add(config: &Config, user: &str, name: Option<&str>, file: &str) -> Outcome {
    let mut text = Vec::new();
    // One byte more than a key may have, so an overlong one is refused as such.
    let limit = keys::MAX_INPUT as u64 + 1;
    let read = if file == "-" {
        io::stdin().lock().take(limit).read_to_end(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut text))
    };
    let source = if file == "-" { "standard input" } else { file };
    read.map_err(|e| format!("cannot read {source}: {e}"))?;
    let text = String::from_utf8(text)
        .map_err(|_| format!("{source} is not text: give the public key's .pub file"))?;
    let accounts = open_accounts(config)?;
    let k = accounts::add_key(&accounts, user, name, &text).map_err(account_error)?;
    println!("added SSH key {} of {}: {}", k.name, k.user, k.summary);
    if config.ssh.host.is_none() {
        println!("note: the site does not offer SSH yet ([ssh] host is unset in {}); the key works once it does", config.file.display());
    }
    Ok(())
}

/// `forgelet key list USER`: `name<TAB>256 SHA256:... (ED25519)<TAB>added ...`.
fn list(config: &Config, user: &str) -> Outcome {
    let accounts = open_accounts(config)?;
    let u = accounts::user(&accounts, user).map_err(account_error)?;
    let mut out = io::stdout().lock();
    for k in &u.ssh_keys {
        let _ = writeln!(
            out,
            "{}\t{}\tadded {} UTC",
            k.name,
            accounts::key_summary(k),
            crate::time::date(k.added as i64, 0)
        );
    }
    Ok(())
}

/// `forgelet key del USER NAME|FINGERPRINT`: the key stops working at once.
fn del(config: &Config, user: &str, which: &str) -> Outcome {
    let accounts = open_accounts(config)?;
    let (owner, name, summary) =
        accounts::delete_key(&accounts, user, which).map_err(account_error)?;
    println!("deleted SSH key {name} of {owner}: {summary}");
    Ok(())
}

/// `forgelet key reindex`: the key index written again from users.toml (after a restore, or
/// after SSH is turned on or the index moved).
fn reindex(config: &Config) -> Outcome {
    let Some(path) = config.ssh.live_key_index() else {
        return Err(format!(
            "the site does not offer SSH, so it keeps no key index: set [ssh] host in {} first",
            config.file.display()
        ));
    };
    let accounts = open_accounts(config)?;
    let n = accounts::reindex_keys(&accounts, path).map_err(account_error)?;
    let keys = if n == 1 { "key" } else { "keys" };
    println!("wrote {} ({n} {keys})", path.display());
    Ok(())
}

/// `forgelet ssh-keys USER TYPE KEY`, sshd's `AuthorizedKeysCommand ... %u %t %k`: for a key
/// in the index, when USER is `[ssh] user` and the site offers SSH, one authorized_keys line
/// whose forced command serves git as the key's owner; nothing otherwise. It reads the config
/// and the index only (not users.toml, not the data directory), so it runs as any user that
/// may read those two, and writes nothing. The exit code: 0 answered (a line or nothing), 1
/// the index cannot be read, 2 malformed arguments.
pub(super) fn ssh_keys(config_path: &Path, words: &[String]) -> i32 {
    let [user, kind, key] = words else {
        eprintln!(
            "forgelet: expected: forgelet ssh-keys USER TYPE KEY (sshd's AuthorizedKeysCommand with %u %t %k), found {} arguments",
            words.len()
        );
        return 2;
    };
    let Some(id) = keys::id_of_base64(key) else {
        eprintln!(
            "forgelet: ssh-keys: the key is not base64: {:?}",
            short(key)
        );
        return 2;
    };
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_graphic()) {
        eprintln!("forgelet: ssh-keys: not a key type: {:?}", short(kind));
        return 2;
    }
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("forgelet: {e}");
            return 1;
        }
    };
    if config.ssh.host.is_none() || *user != config.ssh.user {
        return 0;
    }
    let index = &config.ssh.key_index;
    let text = match std::fs::read_to_string(index) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "forgelet: cannot read the SSH key index {}: {e}; write it with `forgelet key reindex` as the data directory's owner (and let sshd's AuthorizedKeysCommandUser read it)",
                index.display()
            );
            return 1;
        }
    };
    let Some(id) = key_index::find(&text, &id, kind, key) else {
        return 0;
    };
    // The config's path goes into a quoted command: absolute (sshd's working folder is not
    // ours), and nothing that would end the quotes. `[ssh] command` is checked by the config.
    let config_file = match std::path::absolute(config_path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "forgelet: ssh-keys: cannot make {} absolute: {e}",
                config_path.display()
            );
            return 1;
        }
    };
    let shown = config_file.display().to_string();
    if shown.contains(['"', '\\']) || shown.contains(char::is_whitespace) {
        eprintln!("forgelet: ssh-keys: the config's path {shown:?} holds a space, quote or backslash, which a forced command cannot carry; move the config file");
        return 1;
    }
    println!(
        "restrict,command=\"{} --config {shown} ssh-serve {id}\" {kind} {key}",
        config.ssh.command.display()
    );
    0
}

/// At most 40 characters of `s`, for a message.
fn short(s: &str) -> String {
    s.chars().take(40).collect()
}
