//! `forgelet user ...`: add, passwd, del and list, each parsing its arguments (and reading a
//! password), calling `accounts` and printing what it did.

use std::io::{self, Write};
use std::path::Path;

use super::args::{read_new_password, Args};
use super::{account_error, open_accounts, usage_error, with_config, Outcome};
use crate::accounts;
use crate::config::Config;
use crate::git::RepoStore;

/// `forgelet user SUBCOMMAND ...`, with `words` the words after `user`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let sub = words.first().map(String::as_str);
    let (flags, options, form): (&[&str], &[&str], &str) = match sub {
        Some("add") => (
            &["--admin", "--password-stdin"],
            &[],
            "user add NAME [--admin] [--password-stdin]",
        ),
        Some("passwd") => (
            &["--password-stdin"],
            &[],
            "user passwd NAME [--password-stdin]",
        ),
        Some("del") => (&[], &["--reassign"], "user del NAME [--reassign USER]"),
        Some("list") => (&[], &[], "user list"),
        Some(other) => {
            return usage_error(&format!(
                "unknown user subcommand {other:?}; use add, passwd, del or list"
            ))
        }
        None => return usage_error("user needs a subcommand: add, passwd, del or list"),
    };
    let a = match Args::parse(
        &words[1..],
        flags,
        options,
        &format!("user {}", sub.unwrap_or("")),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    match (sub, a.positional.as_slice()) {
        (Some("add"), [name]) => with_config(config_path, |c| {
            add(c, name, a.flag("--admin"), a.flag("--password-stdin"))
        }),
        (Some("passwd"), [name]) => {
            with_config(config_path, |c| passwd(c, name, a.flag("--password-stdin")))
        }
        (Some("del"), [name]) => with_config(config_path, |c| del(c, name, a.option("--reassign"))),
        (Some("list"), []) => with_config(config_path, list),
        _ => usage_error(&format!("expected: forgelet {form}")),
    }
}

/// `forgelet user add NAME [--admin] [--password-stdin]`: the name is checked before the
/// password is asked for.
fn add(config: &Config, name: &str, admin: bool, password_stdin: bool) -> Outcome {
    accounts::check_user_name(name).map_err(account_error)?;
    let accounts = open_accounts(config)?;
    accounts::check_new_user(&accounts, name).map_err(account_error)?;
    let password = read_new_password(name, password_stdin)?;
    accounts::add_user(&accounts, name, admin, &password).map_err(account_error)?;
    let role = if admin { " (site admin)" } else { "" };
    println!("added user {name}{role}");
    Ok(())
}

/// `forgelet user passwd NAME [--password-stdin]`: a new password and a new stamp, which ends
/// the user's sessions.
fn passwd(config: &Config, name: &str, password_stdin: bool) -> Outcome {
    let accounts = open_accounts(config)?;
    let shown = accounts::user(&accounts, name).map_err(account_error)?.name;
    let password = read_new_password(&shown, password_stdin)?;
    let shown = accounts::set_password(&accounts, name, &password).map_err(account_error)?;
    println!("changed the password of {shown}; their web sessions have ended");
    Ok(())
}

/// `forgelet user list`: `name<TAB>admin|user<TAB>N tokens`.
fn list(config: &Config) -> Outcome {
    let accounts = open_accounts(config)?;
    let users = accounts.users()?;
    let mut out = io::stdout().lock();
    for u in users.iter() {
        let role = if u.admin { "admin" } else { "user" };
        let n = u.tokens.len();
        let noun = if n == 1 { "token" } else { "tokens" };
        let _ = writeln!(out, "{}\t{role}\t{n} {noun}", u.name);
    }
    Ok(())
}

/// `forgelet user del NAME [--reassign USER]`: refused while NAME owns repositories, unless they
/// move to USER (see `accounts::delete_user`).
fn del(config: &Config, name: &str, reassign: Option<&str>) -> Outcome {
    let accounts = open_accounts(config)?;
    let store = RepoStore::new(config.repos_dir());
    let deleted = accounts::delete_user(&accounts, &store, name, reassign, |from, to| {
        println!(
            "moved {}/{} to {}/{}",
            from.owner, from.name, to.owner, to.name
        )
    })
    .map_err(account_error)?;
    let user = deleted.user;
    if deleted.collaborator_of > 0 {
        let n = deleted.collaborator_of;
        println!(
            "removed {user} from the collaborators of {n} {}",
            if n == 1 { "repository" } else { "repositories" }
        );
    }
    println!("deleted user {user}");
    Ok(())
}
