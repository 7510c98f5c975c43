//! Account operations, the same for the command line and the pages: add a user, set a password
//! (which ends the user's sessions), sign out everywhere, delete a user (giving their
//! repositories to another user), create and revoke personal access tokens, add and delete SSH
//! keys and rewrite the SSH key index. Each refusal or
//! failure is an [`AccountError`], whose message is written here once, in the command line's
//! lower-case style; the command line adds its own hints, the pages make a sentence of it.
//!
//! Every change is made under the users lock (see `auth`): read fresh, changed, written whole.

use std::fmt;
use std::path::Path;

use crate::auth::keys::{self, KeyError};
use crate::auth::users::SshKey;
use crate::auth::{
    self, key_index, password, token, users::new_stamp, Accounts, Token, User, Users,
};
use crate::git::names::{valid_name, valid_owner};
use crate::git::{RepoDir, RepoStore};
use crate::repos::{self, RepoError};

/// Longest lifetime a token may be given, in days (about ten years). A token given no lifetime
/// lasts until it is revoked.
pub(crate) const MAX_TOKEN_DAYS: u64 = 3650;

/// The most SSH keys one user may have (GitHub has no such limit, but a list of hundreds is a
/// mistake, and every key is a line sshd's lookup reads).
pub(crate) const MAX_SSH_KEYS: usize = 100;

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
    /// A pasted SSH key refused.
    Key(KeyError),
    InvalidKeyName(String),
    KeyNameExists {
        user: String,
        name: String,
    },
    /// The key is another user's; who is not said.
    KeyInUse,
    /// The user has the key already, under this name.
    KeyAlreadyTheirs {
        user: String,
        name: String,
    },
    TooManyKeys(String),
    /// No key of the user has this name or fingerprint.
    NoSuchKey {
        user: String,
        key: String,
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
            Key(e) => write!(f, "{e}"),
            InvalidKeyName(n) => write!(
                f,
                "invalid key name {n:?}: use 1-64 letters, digits, '.', '_' or '-' (e.g. laptop)"
            ),
            KeyNameExists { user, name } => write!(
                f,
                "user {user} already has an SSH key named {name}; choose another name, or delete that key first"
            ),
            KeyInUse => write!(
                f,
                "this key is already in use by another account: a key signs in as one account only, so make a new key for this one (`ssh-keygen -t ed25519`)"
            ),
            KeyAlreadyTheirs { user, name } => {
                write!(f, "user {user} already has this key, named {name}")
            }
            TooManyKeys(user) => write!(
                f,
                "user {user} has {MAX_SSH_KEYS} SSH keys, the most one user may have; delete one first"
            ),
            NoSuchKey { user, key } => write!(
                f,
                "user {user} has no SSH key named {key} (give a key's name or its SHA256:... fingerprint)"
            ),
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

// ---------------------------------------------------------------------------------------------
// SSH keys

/// An SSH key added.
#[derive(Debug)]
pub(crate) struct AddedKey {
    /// The owner's name as spelled in users.toml.
    pub(crate) user: String,
    pub(crate) name: String,
    /// `256 SHA256:... (ED25519)`.
    pub(crate) summary: String,
}

/// Adds the SSH key pasted as `text` (see `auth::keys`) to `user`, named `name`, or when none
/// is given after the key's comment (or its type), made unique among the user's keys. A key
/// belongs to one user: another user's key is refused without saying whose.
pub(crate) fn add_key(
    accounts: &Accounts,
    user: &str,
    name: Option<&str>,
    text: &str,
) -> Result<AddedKey, AccountError> {
    let key = keys::parse(text).map_err(AccountError::Key)?;
    if let Some(n) = name {
        if !token::valid_name(n) {
            return Err(AccountError::InvalidKeyName(n.to_string()));
        }
    }
    let id = key.id();
    accounts.update(|users| {
        let owner = users
            .get(user)
            .ok_or_else(|| AccountError::NoSuchUser(user.to_string()))?
            .name
            .clone();
        if let Some((holder, k)) = users.find_ssh_key(&id) {
            return Err(if holder.name == owner {
                AccountError::KeyAlreadyTheirs {
                    user: owner,
                    name: k.name.clone(),
                }
            } else {
                AccountError::KeyInUse
            });
        }
        let u = user_mut(users, &owner)?;
        if u.ssh_keys.len() >= MAX_SSH_KEYS {
            return Err(AccountError::TooManyKeys(owner));
        }
        let taken = |n: &str| u.ssh_keys.iter().any(|k| k.name.eq_ignore_ascii_case(n));
        let name = match name {
            Some(n) if taken(n) => {
                let existing = u
                    .ssh_keys
                    .iter()
                    .find(|k| k.name.eq_ignore_ascii_case(n))
                    .map_or(n.to_string(), |k| k.name.clone());
                return Err(AccountError::KeyNameExists {
                    user: owner,
                    name: existing,
                });
            }
            Some(n) => n.to_string(),
            None => {
                let base = Some(keys::name_from_comment(&key.comment))
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| key.label().to_ascii_lowercase());
                let mut n = base.clone();
                let mut i = 2;
                while taken(&n) {
                    let suffix = format!("-{i}");
                    let keep = base.len().min(64 - suffix.len());
                    n = format!("{}{suffix}", &base[..keep]);
                    i += 1;
                }
                n
            }
        };
        u.ssh_keys.push(SshKey {
            id: id.clone(),
            name: name.clone(),
            key: key.line(),
            added: auth::now(),
        });
        Ok(AddedKey {
            user: owner,
            name,
            summary: key.summary(),
        })
    })
}

/// Deletes `user`'s SSH key `which`: its name (exactly, else ignoring case) or its fingerprint
/// (`SHA256:...`, the prefix optional). Returns the owner's and the key's names as spelled in
/// users.toml, and the key's summary.
pub(crate) fn delete_key(
    accounts: &Accounts,
    user: &str,
    which: &str,
) -> Result<(String, String, String), AccountError> {
    let fingerprint = format!("SHA256:{}", which.strip_prefix("SHA256:").unwrap_or(which));
    accounts.update(|users| {
        let u = user_mut(users, user)?;
        let at = u
            .ssh_keys
            .iter()
            .position(|k| k.name == which)
            .or_else(|| {
                u.ssh_keys
                    .iter()
                    .position(|k| k.name.eq_ignore_ascii_case(which))
            })
            .or_else(|| {
                u.ssh_keys
                    .iter()
                    .position(|k| keys::parse(&k.key).is_ok_and(|p| p.fingerprint() == fingerprint))
            });
        let Some(at) = at else {
            return Err(AccountError::NoSuchKey {
                user: u.name.clone(),
                key: which.to_string(),
            });
        };
        let k = u.ssh_keys.remove(at);
        let summary = key_summary(&k);
        Ok((u.name.clone(), k.name, summary))
    })
}

/// A stored key as `ssh-keygen -l` shows it: `256 SHA256:... (ED25519)`; for a key users.toml
/// holds that does not parse (edited by hand), why.
pub(crate) fn key_summary(key: &SshKey) -> String {
    match keys::parse(&key.key) {
        Ok(k) => k.summary(),
        Err(e) => format!("unusable key ({e})"),
    }
}

/// Rewrites the SSH key index at `path` from the users file; the number of keys it holds.
pub(crate) fn reindex_keys(accounts: &Accounts, path: &Path) -> Result<usize, AccountError> {
    let locked = accounts.lock().map_err(AccountError::Failed)?;
    let entries = key_index::entries(&locked.users);
    key_index::write(path, &entries).map_err(AccountError::Failed)?;
    Ok(entries.len())
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

    /// An ed25519 key line whose point is `n` repeated (a blob is not checked against the
    /// curve, so any 32 bytes make a key).
    fn ed_key(n: u8, comment: &str) -> String {
        let mut blob = Vec::new();
        blob.extend_from_slice(&11u32.to_be_bytes());
        blob.extend_from_slice(b"ssh-ed25519");
        blob.extend_from_slice(&32u32.to_be_bytes());
        blob.extend_from_slice(&[n; 32]);
        format!("ssh-ed25519 {} {comment}", keys::encode_base64(&blob))
    }

    fn scratch_accounts(name: &str) -> (std::path::PathBuf, Accounts) {
        let d = std::env::temp_dir().join(format!(
            "forgelet-account-keys-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let a = Accounts::open(&d, Some(&d.join("ssh").join("keys"))).unwrap();
        for u in ["ada", "bob"] {
            a.update(|users| {
                users.add(User {
                    name: u.into(),
                    admin: false,
                    stamp: "00ff".into(),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U".into(),
                    tokens: Vec::new(),
                    ssh_keys: Vec::new(),
                })
            })
            .unwrap();
        }
        (d, a)
    }

    fn index_of(d: &std::path::Path) -> String {
        std::fs::read_to_string(d.join("ssh").join("keys")).unwrap_or_default()
    }

    #[test]
    fn ssh_keys_are_added_once_named_and_deleted_with_the_index_in_step() {
        let (d, a) = scratch_accounts("ops");
        let added = add_key(&a, "ADA", None, &ed_key(1, "ada@laptop")).unwrap();
        assert_eq!(
            (added.user.as_str(), added.name.as_str()),
            ("ada", "ada-laptop")
        );
        assert!(added.summary.starts_with("256 SHA256:") && added.summary.ends_with("(ED25519)"));
        let id = keys::parse(&ed_key(1, "")).unwrap().id();
        assert!(
            index_of(&d).contains(&format!("{id} ssh-ed25519 ")),
            "{}",
            index_of(&d)
        );
        // The same comment again: a name made unique; no comment: the type.
        assert_eq!(
            add_key(&a, "ada", None, &ed_key(2, "ada@laptop"))
                .unwrap()
                .name,
            "ada-laptop-2"
        );
        assert_eq!(
            add_key(&a, "ada", None, &ed_key(3, "")).unwrap().name,
            "ed25519"
        );
        // Names are unique ignoring case, and follow the token names' rules.
        let e = add_key(&a, "ada", Some("ED25519"), &ed_key(4, "")).unwrap_err();
        assert!(
            e.to_string()
                .contains("already has an SSH key named ed25519"),
            "{e}"
        );
        let e = add_key(&a, "ada", Some("a b"), &ed_key(4, "")).unwrap_err();
        assert!(matches!(e, AccountError::InvalidKeyName(_)), "{e}");
        // A key added twice: the owner is told its name; anyone else only that it is in use.
        let e = add_key(&a, "ada", Some("again"), &ed_key(1, "")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "user ada already has this key, named ada-laptop"
        );
        let e = add_key(&a, "bob", Some("mine"), &ed_key(1, "")).unwrap_err();
        assert!(matches!(e, AccountError::KeyInUse), "{e}");
        assert!(!e.to_string().contains("ada"), "{e}");
        let e = add_key(&a, "carol", None, &ed_key(9, "")).unwrap_err();
        assert!(matches!(e, AccountError::NoSuchUser(_)), "{e}");
        let e = add_key(&a, "ada", None, "ssh-dss AAAA").unwrap_err();
        assert!(matches!(e, AccountError::Key(KeyError::Dsa)), "{e}");

        // Deleted by name (any case) or fingerprint, with or without its prefix.
        let fp = keys::parse(&ed_key(2, ""))
            .unwrap()
            .fingerprint()
            .to_string();
        let (user, name, summary) = delete_key(&a, "ada", "ADA-LAPTOP").unwrap();
        assert_eq!((user.as_str(), name.as_str()), ("ada", "ada-laptop"));
        assert!(summary.contains("SHA256:"));
        assert!(!index_of(&d).contains(&id));
        assert_eq!(delete_key(&a, "ada", &fp).unwrap().1, "ada-laptop-2");
        let fp3 = keys::parse(&ed_key(3, ""))
            .unwrap()
            .fingerprint()
            .to_string();
        assert_eq!(delete_key(&a, "ada", &fp3[7..]).unwrap().1, "ed25519");
        let e = delete_key(&a, "ada", "ed25519").unwrap_err();
        assert!(matches!(e, AccountError::NoSuchKey { .. }), "{e}");
        assert_eq!(index_of(&d).lines().count(), 1, "only the comment line");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_user_has_at_most_max_ssh_keys() {
        let (d, a) = scratch_accounts("cap");
        for n in 0..MAX_SSH_KEYS as u8 {
            add_key(&a, "ada", None, &ed_key(n, "")).unwrap();
        }
        let e = add_key(&a, "ada", None, &ed_key(200, "")).unwrap_err();
        assert!(e.to_string().contains("delete one first"), "{e}");
        assert_eq!(index_of(&d).lines().count(), MAX_SSH_KEYS + 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_key_index_that_cannot_be_written_changes_nothing() {
        let (d, a) = scratch_accounts("unwritable");
        add_key(&a, "ada", Some("first"), &ed_key(1, "")).unwrap();
        let before = std::fs::read_to_string(a.file()).unwrap();
        // A file where the index's folder is: the write fails, even as root.
        std::fs::rename(d.join("ssh"), d.join("ssh.away")).unwrap();
        std::fs::write(d.join("ssh"), "").unwrap();
        let e = add_key(&a, "ada", Some("second"), &ed_key(2, "")).unwrap_err();
        assert!(
            e.to_string().contains("cannot write the SSH key index"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(a.file()).unwrap(), before);
        assert_eq!(a.users().unwrap().get("ada").unwrap().ssh_keys.len(), 1);
        // Fixed, and the index rewritten by hand: the keys users.toml has.
        std::fs::remove_file(d.join("ssh")).unwrap();
        assert_eq!(reindex_keys(&a, &d.join("ssh").join("keys")).unwrap(), 1);
        assert!(index_of(&d).contains(&keys::parse(&ed_key(1, "")).unwrap().id()));
        std::fs::remove_dir_all(&d).unwrap();
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
