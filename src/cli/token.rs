//! `forgelet token ...`: create, list and revoke personal access tokens, each parsing its
//! arguments, calling `accounts` and printing; a new token alone on the last line.

use std::io::{self, Write};
use std::path::Path;

use super::args::Args;
use super::{account_error, open_accounts, usage_error, with_config, Outcome};
use crate::accounts;
use crate::auth;
use crate::config::Config;

/// `forgelet token SUBCOMMAND ...`, with `words` the words after `token`; the exit code.
pub(super) fn run(config_path: &Path, words: &[String]) -> i32 {
    let sub = words.first().map(String::as_str);
    let (options, form): (&[&str], &str) = match sub {
        Some("create") => (
            &["--name", "--expires"],
            "token create USER --name N [--expires DAYS]",
        ),
        Some("list") => (&[], "token list USER"),
        Some("revoke") => (&[], "token revoke USER NAME"),
        Some(other) => {
            return usage_error(&format!(
                "unknown token subcommand {other:?}; use create, list or revoke"
            ))
        }
        None => return usage_error("token needs a subcommand: create, list or revoke"),
    };
    let a = match Args::parse(
        &words[1..],
        &[],
        options,
        &format!("token {}", sub.unwrap_or("")),
    ) {
        Ok(a) => a,
        Err(e) => return usage_error(&e),
    };
    match (sub, a.positional.as_slice(), a.option("--name")) {
        (Some("create"), [user], Some(name)) => with_config(config_path, |c| {
            create(c, user, name, a.option("--expires"))
        }),
        (Some("list"), [user], _) => with_config(config_path, |c| list(c, user)),
        (Some("revoke"), [user, name], _) => with_config(config_path, |c| revoke(c, user, name)),
        _ => usage_error(&format!("expected: forgelet {form}")),
    }
}

/// `forgelet token create USER --name N [--expires DAYS]`: the token is printed once, alone on
/// the last line, so a script can take it with `tail -n 1`.
fn create(config: &Config, user: &str, name: &str, expires_days: Option<&str>) -> Outcome {
    accounts::check_token(name, expires_days).map_err(account_error)?;
    let accounts = open_accounts(config)?;
    let t = accounts::create_token(&accounts, user, name, expires_days).map_err(account_error)?;
    let until = match t.expires {
        Some(at) => format!("valid until {}", format_time(at)),
        None => "valid until revoked".to_string(),
    };
    println!("created token {} for {}, {until}.", t.name, t.user);
    println!("Copy it now: only a hash of it is kept, so it cannot be shown again.");
    println!("{}", t.plaintext);
    Ok(())
}

/// `forgelet token list USER`: `name<TAB>created ...<TAB>expires ...<TAB>last used ...`.
fn list(config: &Config, user: &str) -> Outcome {
    let accounts = open_accounts(config)?;
    let u = accounts::user(&accounts, user).map_err(account_error)?;
    let now = auth::now();
    let mut out = io::stdout().lock();
    for t in &u.tokens {
        let expires = match t.expires {
            Some(e) if t.expired(now) => format!("expired {}", format_time(e)),
            Some(e) => format!("expires {}", format_time(e)),
            None => "never expires".to_string(),
        };
        let used = match t.last_used {
            Some(l) => format!("last used {}", format_time(l)),
            None => "never used".to_string(),
        };
        let _ = writeln!(
            out,
            "{}\tcreated {}\t{expires}\t{used}",
            t.name,
            format_time(t.created)
        );
    }
    Ok(())
}

/// `forgelet token revoke USER NAME`: effective at the server's next request.
fn revoke(config: &Config, user: &str, name: &str) -> Outcome {
    let accounts = open_accounts(config)?;
    let (owner, token) = accounts::revoke_token(&accounts, user, name).map_err(account_error)?;
    println!("revoked token {token} of {owner}");
    Ok(())
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
fn format_time(secs: u64) -> String {
    format!("{} UTC", crate::time::date(secs as i64, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_700_000_000), "2023-11-14 22:13 UTC");
        assert_eq!(format_time(4_102_444_799), "2099-12-31 23:59 UTC");
    }
}
