//! Account operations, the same for the command line and the pages: add a user, set a password
//! (which ends the user's sessions), sign out everywhere, delete a user (giving their
//! repositories to another user), create and revoke personal access tokens. Each refusal or
//! failure is an [`AccountError`], whose message is written here once, in the command line's
//! lower-case style; the command line adds its own hints, the pages make a sentence of it.
//!
//! Every change is made under the users lock (see `auth`): read fresh, changed, written whole.

use std::fmt;

use crate::auth::{self, password, token, users::new_stamp, Accounts, Token, User, Users};
use crate::git::names::{valid_name, valid_owner};
use crate::git::{RepoDir, RepoStore};
use crate::repos::{self, RepoError};

/// Longest lifetime a token may be given, in days (about ten years). A token given no lifetime
/// lasts until it is revoked.
pub(crate) const MAX_TOKEN_DAYS: u64 = 3650;

/// Why an account operation was refused, or failed.
#[derive(Debug)]
pub(crate) enum AccountError {
    InvalidName(String),
    /// A name the first segment of forgelet's own URLs takes (a user's name is the first
    /// segment of their repositories' URLs).
    ReservedName(String),
    /// There is a user of that name (names are unique ignoring case): as spelled in users.toml.
    Exists(String),
    NoSuchUser(String),
    WeakPassword(password::Weak),
    /// A user to be deleted owns repositories, and no one was named to take them.
    OwnsRepos {
        user: String,
        repos: Vec<String>,
    },
    /// The repositories of a user being deleted were to go to that same user.
    HeirIsUser(String),
    /// The user named to take the repositories does not exist.
    NoSuchHeir(String),
    /// The heir has repositories of the same names; nothing was changed.
    HeirHasSameNames {
        user: String,
        heir: String,
        clashes: Vec<String>,
    },
    /// A user to be deleted could not be removed from every collaborator list; they were kept.
    StillCollaborator {
        user: String,
        failures: Vec<String>,
    },
    InvalidTokenName(String),
    /// A token's lifetime that is not 1 to [`MAX_TOKEN_DAYS`] days, as given.
    TokenLifetime(String),
    TokenExists {
        user: String,
        token: String,
    },
    NoSuchToken {
        user: String,
        token: String,
    },
    /// Giving a deleted user's repositories away failed.
    Repo(RepoError),
    /// Something broke that is not the caller's doing (the users file cannot be written, no
    /// randomness); the detail.
    Failed(String),
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AccountError::*;
        match self {
            InvalidName(n) => write!(
                f,
                "invalid user name {n:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock"
            ),
            ReservedName(n) => write!(
                f,
                "{n:?} cannot be a user name: it is reserved for forgelet's own pages (a user's name is the first part of their repositories' URLs)"
            ),
            Exists(n) => write!(
                f,
                "there is already a user named {n} (names are unique ignoring case)"
            ),
            NoSuchUser(n) => write!(f, "there is no user named {n}"),
            WeakPassword(w) => write!(f, "{w}"),
            OwnsRepos { user, repos } => write!(
                f,
                "{user} owns {} ({})",
                plural(repos.len(), "repository", "repositories"),
                repos.join(", ")
            ),
            HeirIsUser(user) => write!(
                f,
                "{user} is the user being deleted; their repositories must go to another user"
            ),
            NoSuchHeir(heir) => write!(
                f,
                "there is no user named {heir} to give the repositories to"
            ),
            HeirHasSameNames {
                user,
                heir,
                clashes,
            } => write!(
                f,
                "cannot move the repositories of {user} to {heir}: {heir} already has {} of the same name ({}); rename or delete those first. Nothing was changed",
                if clashes.len() == 1 { "one" } else { "some" },
                clashes.join(", ")
            ),
            StillCollaborator { user, failures } => write!(
                f,
                "{}\n{user} was not deleted, because they could not be removed from every collaborator list; fix the above and run the command again",
                failures.join("\n")
            ),
            InvalidTokenName(n) => write!(
                f,
                "invalid token name {n:?}: use 1-64 letters, digits, '.', '_' or '-' (e.g. laptop)"
            ),
            TokenLifetime(days) => write!(
                f,
                "a token's lifetime is a number of days from 1 to {MAX_TOKEN_DAYS}, or none for a token that lasts until revoked; not {days:?}"
            ),
            TokenExists { user, token } => write!(
                f,
                "user {user} already has a token named {token}; choose another name, or revoke that one first"
            ),
            NoSuchToken { user, token } => write!(f, "user {user} has no token named {token}"),
            Repo(e) => write!(f, "{e}"),
            Failed(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for AccountError {}

/// A failure to read, lock or write the users file (see `Accounts::update`).
impl From<String> for AccountError {
    fn from(detail: String) -> AccountError {
        AccountError::Failed(detail)
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn user_mut<'u>(users: &'u mut Users, name: &str) -> Result<&'u mut User, AccountError> {
    users
        .get_mut(name)
        .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Users

/// Refuses a name a new user cannot have (before anything else is asked for).
pub(crate) fn check_user_name(name: &str) -> Result<(), AccountError> {
    if valid_name(name) && !valid_owner(name) {
        return Err(AccountError::ReservedName(name.to_string()));
    }
    if !valid_owner(name) {
        return Err(AccountError::InvalidName(name.to_string()));
    }
    Ok(())
}

/// The user named `name` (exactly, else ignoring case).
pub(crate) fn user(accounts: &Accounts, name: &str) -> Result<User, AccountError> {
    let users = accounts.users().map_err(AccountError::Failed)?;
    users
        .get(name)
        .cloned()
        .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))
}

/// Refuses a name a new user cannot have, or another user has.
pub(crate) fn check_new_user(accounts: &Accounts, name: &str) -> Result<(), AccountError> {
    check_user_name(name)?;
    let users = accounts.users().map_err(AccountError::Failed)?;
    match users.get(name) {
        Some(u) => Err(AccountError::Exists(u.name.clone())),
        None => Ok(()),
    }
}

/// Adds a user with the password `password` (checked for strength).
pub(crate) fn add_user(
    accounts: &Accounts,
    name: &str,
    admin: bool,
    password: &str,
) -> Result<(), AccountError> {
    check_new_user(accounts, name)?;
    password::check_new(password).map_err(AccountError::WeakPassword)?;
    // Hashing is slow: done before the lock is taken, so others do not wait for it.
    let hash = password::hash(password).map_err(AccountError::Failed)?;
    let user = User {
        name: name.to_string(),
        admin,
        stamp: new_stamp().map_err(AccountError::Failed)?,
        password_hash: hash,
        tokens: Vec::new(),
        ssh_keys: Vec::new(),
    };
    accounts.update(|users| {
        if let Some(u) = users.get(name) {
            return Err(AccountError::Exists(u.name.clone()));
        }
        users.add(user).map_err(AccountError::Failed)
    })
}

/// Gives `name` a new password (checked for strength) and a new stamp, which ends every session
/// of theirs. Returns the name as spelled in users.toml.
pub(crate) fn set_password(
    accounts: &Accounts,
    name: &str,
    password: &str,
) -> Result<String, AccountError> {
    password::check_new(password).map_err(AccountError::WeakPassword)?;
    let hash = password::hash(password).map_err(AccountError::Failed)?;
    let stamp = new_stamp().map_err(AccountError::Failed)?;
    accounts.update(|users| {
        let u = user_mut(users, name)?;
        u.password_hash = hash;
        u.stamp = stamp;
        Ok(u.name.clone())
    })
}

/// A new stamp for `name`: every session of theirs ends.
pub(crate) fn sign_out_everywhere(accounts: &Accounts, name: &str) -> Result<(), AccountError> {
    let stamp = new_stamp().map_err(AccountError::Failed)?;
    accounts.update(|users| {
        user_mut(users, name)?.stamp = stamp;
        Ok(())
    })
}

/// A user deleted.
pub(crate) struct Deleted {
    /// As spelled in users.toml.
    pub(crate) user: String,
    /// How many repositories' collaborator lists named them.
    pub(crate) collaborator_of: usize,
}

/// Deletes the user `name`: refused while they own repositories, unless `heir` is a user to give
/// them to (refused before anything moves when the heir has one of the same name); `given` is
/// told of each repository given, as it goes. The user leaves every collaborator list, so a
/// later user of that name inherits nothing. The users lock is held throughout, so no grant or
/// repository for them slips in meanwhile.
pub(crate) fn delete_user(
    accounts: &Accounts,
    store: &RepoStore,
    name: &str,
    heir: Option<&str>,
    mut given: impl FnMut(&RepoDir, &RepoDir),
) -> Result<Deleted, AccountError> {
    let mut locked = accounts.lock().map_err(AccountError::Failed)?;
    let user = locked
        .users
        .get(name)
        .ok_or_else(|| AccountError::NoSuchUser(name.to_string()))?
        .name
        .clone();
    let owned = repos::owned_by(store, &user).map_err(AccountError::Repo)?;
    if !owned.is_empty() {
        let Some(heir) = heir else {
            return Err(AccountError::OwnsRepos {
                user,
                repos: owned
                    .iter()
                    .map(|r| format!("{}/{}", r.owner, r.name))
                    .collect(),
            });
        };
        let heir = match locked.users.get(heir) {
            Some(h) if h.name.eq_ignore_ascii_case(&user) => {
                return Err(AccountError::HeirIsUser(user))
            }
            Some(h) => h.name.clone(),
            None => return Err(AccountError::NoSuchHeir(heir.to_string())),
        };
        let clashes = repos::name_clashes(store, &owned, &heir).map_err(AccountError::Repo)?;
        if !clashes.is_empty() {
            return Err(AccountError::HeirHasSameNames {
                user,
                heir,
                clashes,
            });
        }
        for r in &owned {
            let moved = repos::give(store, r, &heir).map_err(AccountError::Repo)?;
            given(r, &moved);
        }
        if let Some(old) = owned[0].path.parent() {
            let _ = std::fs::remove_dir(old);
        }
    }
    let mut failures = Vec::new();
    let mut collaborator_of = 0;
    for r in repos::list(store).map_err(AccountError::Repo)? {
        match r.set_collaborator(&user, None) {
            Ok(true) => collaborator_of += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(AccountError::StillCollaborator { user, failures });
    }
    locked.users.remove(&user);
    locked.save().map_err(AccountError::Failed)?;
    Ok(Deleted {
        user,
        collaborator_of,
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens

/// Checks a new token's name and lifetime (`days`: none for a token that lasts until revoked),
/// returning the lifetime in days.
pub(crate) fn check_token(name: &str, days: Option<&str>) -> Result<Option<u64>, AccountError> {
    if !token::valid_name(name) {
        return Err(AccountError::InvalidTokenName(name.to_string()));
    }
    match days {
        None => Ok(None),
        Some(d) => match d.parse::<u64>() {
            Ok(n) if (1..=MAX_TOKEN_DAYS).contains(&n) => Ok(Some(n)),
            _ => Err(AccountError::TokenLifetime(d.to_string())),
        },
    }
}

/// A token made: the plaintext exists only here, to be shown once.
pub(crate) struct NewToken {
    /// The owner's name as spelled in users.toml.
    pub(crate) user: String,
    pub(crate) name: String,
    pub(crate) plaintext: String,
    /// Unix seconds, if it expires.
    pub(crate) expires: Option<u64>,
}

/// Makes a personal access token `name` for `user`, lasting `days` (see [`check_token`]).
pub(crate) fn create_token(
    accounts: &Accounts,
    user: &str,
    name: &str,
    days: Option<&str>,
) -> Result<NewToken, AccountError> {
    let days = check_token(name, days)?;
    let plaintext = token::generate().map_err(AccountError::Failed)?;
    let hash = accounts.token_hash(&plaintext);
    let now = auth::now();
    let expires = days.map(|d| now + d * 86_400);
    let owner = accounts.update(|users| {
        let u = user_mut(users, user)?;
        if let Some(t) = u.token(name) {
            return Err(AccountError::TokenExists {
                user: u.name.clone(),
                token: t.name.clone(),
            });
        }
        u.tokens.push(Token {
            name: name.to_string(),
            hash,
            created: now,
            expires,
            last_used: None,
        });
        Ok(u.name.clone())
    })?;
    Ok(NewToken {
        user: owner,
        name: name.to_string(),
        plaintext,
        expires,
    })
}

/// Revokes `user`'s token `name` (exactly, else ignoring case): it stops working at the next
/// request. Returns the user's and the token's names as spelled in users.toml.
pub(crate) fn revoke_token(
    accounts: &Accounts,
    user: &str,
    name: &str,
) -> Result<(String, String), AccountError> {
    accounts.update(|users| {
        let u = user_mut(users, user)?;
        let Some(i) = u.tokens.iter().position(|t| t.name == name).or_else(|| {
            u.tokens
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(name))
        }) else {
            return Err(AccountError::NoSuchToken {
                user: u.name.clone(),
                token: name.to_string(),
            });
        };
        let t = u.tokens.remove(i);
        Ok((u.name.clone(), t.name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lifetimes_are_one_day_to_ten_years_or_none() {
        assert_eq!(check_token("laptop", None).unwrap(), None);
        assert_eq!(check_token("laptop", Some("1")).unwrap(), Some(1));
        assert_eq!(check_token("laptop", Some("3650")).unwrap(), Some(3650));
        for bad in ["0", "3651", "36500", "-1", "", "ten", "1.5"] {
            let e = check_token("laptop", Some(bad)).unwrap_err();
            assert!(
                matches!(&e, AccountError::TokenLifetime(d) if d == bad),
                "{bad}: {e:?}"
            );
            assert!(e.to_string().contains("from 1 to 3650"), "{e}");
        }
        assert!(matches!(
            check_token("a b", Some("3651")),
            Err(AccountError::InvalidTokenName(_))
        ));
    }

    #[test]
    fn user_names_are_checked_for_rules_and_routes() {
        assert!(check_user_name("alice").is_ok());
        assert!(matches!(
            check_user_name("new"),
            Err(AccountError::ReservedName(_))
        ));
        assert!(matches!(
            check_user_name("a/b"),
            Err(AccountError::InvalidName(_))
        ));
    }
}
