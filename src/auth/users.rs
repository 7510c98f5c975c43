//! The users file, `{data_dir}/users.toml`: parsed raw (serde, unknown keys refused), checked
//! into [`Users`], and written back whole. Errors name the file and the line.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::password;
use super::token;
use crate::config::line_of;
use crate::git::names::valid_owner;
use crate::keyed::constant_time_eq;

/// One account.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) admin: bool,
    /// Random hex, replaced by a password change: sessions and caches key on it, so they die
    /// with it.
    pub(crate) stamp: String,
    /// argon2 PHC string.
    pub(crate) password_hash: String,
    pub(crate) tokens: Vec<Token>,
    pub(crate) ssh_keys: Vec<SshKey>,
}

/// An SSH public key that signs in as its user, as stored.
#[derive(Debug, Clone)]
pub(crate) struct SshKey {
    /// 24 lower-case hex digits, from the key itself (`auth::keys`); unique on the site.
    pub(crate) id: String,
    /// The user's name for it, unique for the user ignoring case.
    pub(crate) name: String,
    /// The key as an authorized_keys line has it: type, space, base64; no options or comment.
    pub(crate) key: String,
    /// Unix seconds.
    pub(crate) added: u64,
}

/// Whether `id` has the form of an SSH key's id.
pub(crate) fn valid_key_id(id: &str) -> bool {
    id.len() == 24
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A personal access token, as stored: never the token itself.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) name: String,
    /// Hex HMAC-SHA256 of the token under the site secret.
    pub(crate) hash: String,
    /// Unix seconds.
    pub(crate) created: u64,
    pub(crate) expires: Option<u64>,
    pub(crate) last_used: Option<u64>,
}

impl Token {
    pub(crate) fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }
}

impl User {
    /// Checks a password against the stored hash (argon2: slow on purpose).
    pub(crate) fn verify_password(&self, password: &str) -> bool {
        password::verify(&self.password_hash, password)
    }

    /// The token named `name` (exactly, else ignoring ASCII case).
    pub(crate) fn token(&self, name: &str) -> Option<&Token> {
        let i = find_index(&self.tokens, |t| &t.name, name)?;
        Some(&self.tokens[i])
    }

    pub(crate) fn token_mut(&mut self, name: &str) -> Option<&mut Token> {
        let i = find_index(&self.tokens, |t| &t.name, name)?;
        Some(&mut self.tokens[i])
    }
}

/// Every user, in the order of the file.
#[derive(Debug, Clone, Default)]
pub(crate) struct Users {
    list: Vec<User>,
}

/// Index of the item named `want`: an exact match first, else one ignoring ASCII case.
fn find_index<T>(items: &[T], name: impl Fn(&T) -> &String, want: &str) -> Option<usize> {
    items.iter().position(|i| name(i) == want).or_else(|| {
        items
            .iter()
            .position(|i| name(i).eq_ignore_ascii_case(want))
    })
}

impl Users {
    /// The user named `name`: exactly, else ignoring ASCII case (names are unique that way).
    pub(crate) fn get(&self, name: &str) -> Option<&User> {
        let i = find_index(&self.list, |u| &u.name, name)?;
        Some(&self.list[i])
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut User> {
        let i = find_index(&self.list, |u| &u.name, name)?;
        Some(&mut self.list[i])
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &User> {
        self.list.iter()
    }

    /// The user and the token name a presented token's hash belongs to, if the token exists
    /// and has not expired. Hashes are compared in constant time.
    pub(crate) fn find_token(&self, hash: &str, now: u64) -> Option<(&User, &str)> {
        let mut found = None;
        for user in &self.list {
            for t in &user.tokens {
                // Every stored hash is compared, found or not: the time says nothing of where.
                if constant_time_eq(t.hash.as_bytes(), hash.as_bytes()) && found.is_none() {
                    found = Some((user, t));
                }
            }
        }
        let (user, t) = found?;
        (!t.expired(now)).then_some((user, t.name.as_str()))
    }

    /// The user an SSH key id belongs to, and the key.
    pub(crate) fn find_ssh_key(&self, id: &str) -> Option<(&User, &SshKey)> {
        self.list
            .iter()
            .find_map(|u| u.ssh_keys.iter().find(|k| k.id == id).map(|k| (u, k)))
    }

    /// Adds a user, refusing a name taken (ignoring case) or invalid.
    pub(crate) fn add(&mut self, user: User) -> Result<(), String> {
        if !valid_owner(&user.name) {
            return Err(invalid_name_message(&user.name));
        }
        if let Some(u) = self.get(&user.name) {
            return Err(format!(
                "there is already a user named {} (names are unique ignoring case)",
                u.name
            ));
        }
        self.list.push(user);
        Ok(())
    }

    /// Removes the user named `name` (ignoring case), returning it.
    pub(crate) fn remove(&mut self, name: &str) -> Option<User> {
        let i = find_index(&self.list, |u| &u.name, name)?;
        Some(self.list.remove(i))
    }

    /// Parses the text of users.toml; `file` is only used in messages.
    pub(crate) fn parse(file: &Path, text: &str) -> Result<Users, String> {
        let at = |offset: usize, message: String| {
            format!("{}:{}: {message}", file.display(), line_of(text, offset))
        };
        let raw: RawFile = toml::from_str(text).map_err(|e| match e.span() {
            Some(span) => at(span.start, e.message().trim().to_string()),
            None => format!("{}: {}", file.display(), e.message().trim()),
        })?;
        let mut users = Users::default();
        for ru in raw.user {
            let name = ru.name.get_ref();
            let line = |s: &Spanned<String>, m: String| at(s.span().start, m);
            if !valid_owner(name) {
                return Err(line(&ru.name, invalid_name_message(name)));
            }
            if let Some(u) = users.get(name) {
                return Err(line(
                    &ru.name,
                    format!(
                        "user {name:?} appears twice (as {:?} before; names are unique ignoring case)",
                        u.name
                    ),
                ));
            }
            if !password::is_valid_hash(ru.password.get_ref()) {
                return Err(line(
                    &ru.password,
                    format!("the password of {name} is not an argon2 hash (a PHC string \"$argon2id$...\"); set one with `forgelet user passwd {name}`"),
                ));
            }
            if ru.stamp.get_ref().is_empty() {
                return Err(line(&ru.stamp, format!("the stamp of {name} is empty")));
            }
            let mut tokens: Vec<Token> = Vec::new();
            for rt in ru.token {
                let tname = rt.name.get_ref();
                if !token::valid_name(tname) {
                    return Err(line(
                        &rt.name,
                        format!("token name {tname:?} of {name} is not valid (1-64 letters, digits, '.', '_' or '-')"),
                    ));
                }
                if tokens.iter().any(|t| t.name.eq_ignore_ascii_case(tname)) {
                    return Err(line(
                        &rt.name,
                        format!("{name} has two tokens named {tname:?}"),
                    ));
                }
                if !token::valid_hash(rt.hash.get_ref()) {
                    return Err(line(
                        &rt.hash,
                        format!(
                            "the hash of token {tname:?} of {name} is not 64 lower-case hex digits"
                        ),
                    ));
                }
                tokens.push(Token {
                    name: rt.name.into_inner(),
                    hash: rt.hash.into_inner(),
                    created: rt.created,
                    expires: rt.expires,
                    last_used: rt.last_used,
                });
            }
            let mut ssh_keys: Vec<SshKey> = Vec::new();
            for rk in ru.ssh_key {
                let id = rk.id.get_ref();
                if !valid_key_id(id) {
                    return Err(line(
                        &rk.id,
                        format!(
                            "the id of SSH key {:?} of {name} is not 24 lower-case hex digits",
                            rk.name.get_ref()
                        ),
                    ));
                }
                if let Some((owner, _)) = users.find_ssh_key(id) {
                    return Err(line(
                        &rk.id,
                        format!("SSH key {id} of {name} is also a key of {} (a key belongs to one user)", owner.name),
                    ));
                }
                if ssh_keys.iter().any(|k| k.id == *id) {
                    return Err(line(&rk.id, format!("{name} has SSH key {id} twice")));
                }
                let kname = rk.name.get_ref();
                if ssh_keys.iter().any(|k| k.name.eq_ignore_ascii_case(kname)) {
                    return Err(line(
                        &rk.name,
                        format!("{name} has two SSH keys named {kname:?}"),
                    ));
                }
                ssh_keys.push(SshKey {
                    id: rk.id.into_inner(),
                    name: rk.name.into_inner(),
                    key: rk.key.into_inner(),
                    added: rk.added,
                });
            }
            users.list.push(User {
                name: ru.name.into_inner(),
                admin: ru.admin,
                stamp: ru.stamp.into_inner(),
                password_hash: ru.password.into_inner(),
                tokens,
                ssh_keys,
            });
        }
        Ok(users)
    }

    /// The file's text, as written by every change.
    pub(crate) fn to_toml(&self) -> Result<String, String> {
        let out = OutFile {
            user: self
                .list
                .iter()
                .map(|u| OutUser {
                    name: &u.name,
                    password: &u.password_hash,
                    admin: u.admin,
                    stamp: &u.stamp,
                    token: u
                        .tokens
                        .iter()
                        .map(|t| OutToken {
                            name: &t.name,
                            hash: &t.hash,
                            created: t.created,
                            expires: t.expires,
                            last_used: t.last_used,
                        })
                        .collect(),
                    ssh_key: u
                        .ssh_keys
                        .iter()
                        .map(|k| OutSshKey {
                            id: &k.id,
                            name: &k.name,
                            key: &k.key,
                            added: k.added,
                        })
                        .collect(),
                })
                .collect(),
        };
        let body =
            toml::to_string(&out).map_err(|e| format!("cannot write the users file: {e}"))?;
        Ok(format!("{HEADER}{body}"))
    }
}

const HEADER: &str = "\
# forgelet users: change them with `forgelet user ...` and `forgelet token ...`.
# Each change rewrites this file whole; comments other than these lines are not kept.
# password: argon2id hash. stamp: changes with the password, ending sessions.
# token.hash: keyed hash of a personal access token (the token itself is never stored).
# ssh_key: a public key that signs in over SSH (`forgelet key ...`); id comes from the key.
# Times are Unix seconds.

";

fn invalid_name_message(name: &str) -> String {
    format!("invalid user name {name:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .git or .lock, and not a name forgelet's pages use")
}

/// A fresh stamp: 16 random bytes in hex.
pub(crate) fn new_stamp() -> Result<String, String> {
    let mut r = [0u8; 16];
    getrandom::getrandom(&mut r).map_err(|e| format!("no randomness: {e}"))?;
    Ok(crate::fsfile::hex(&r))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    user: Vec<RawUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: Spanned<String>,
    password: Spanned<String>,
    #[serde(default)]
    admin: bool,
    stamp: Spanned<String>,
    #[serde(default)]
    token: Vec<RawToken>,
    #[serde(default)]
    ssh_key: Vec<RawSshKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSshKey {
    id: Spanned<String>,
    name: Spanned<String>,
    key: Spanned<String>,
    added: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: Spanned<String>,
    hash: Spanned<String>,
    created: u64,
    expires: Option<u64>,
    last_used: Option<u64>,
}

#[derive(Serialize)]
struct OutFile<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user: Vec<OutUser<'a>>,
}

#[derive(Serialize)]
struct OutUser<'a> {
    name: &'a str,
    password: &'a str,
    admin: bool,
    stamp: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    token: Vec<OutToken<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ssh_key: Vec<OutSshKey<'a>>,
}

#[derive(Serialize)]
struct OutSshKey<'a> {
    id: &'a str,
    name: &'a str,
    key: &'a str,
    added: u64,
}

#[derive(Serialize)]
struct OutToken<'a> {
    name: &'a str,
    hash: &'a str,
    created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real argon2 hash, made once for these tests (hashing is slow in debug builds).
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U";

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            admin: false,
            stamp: "00ff".into(),
            password_hash: HASH.into(),
            tokens: Vec::new(),
            ssh_keys: Vec::new(),
        }
    }

    fn parse(text: &str) -> Result<Users, String> {
        Users::parse(Path::new("/d/users.toml"), text)
    }

    fn key(id: &str, name: &str) -> SshKey {
        SshKey {
            id: id.into(),
            name: name.into(),
            key: format!("ssh-ed25519 AAAA{id}"),
            added: 1_700_000_000,
        }
    }

    #[test]
    fn ssh_keys_survive_a_write_and_belong_to_one_user() {
        let mut users = Users::default();
        let mut ada = user("ada");
        ada.ssh_keys.push(key("0123456789abcdef01234567", "laptop"));
        users.add(ada).unwrap();
        users.add(user("bob")).unwrap();
        let text = users.to_toml().unwrap();
        let back = parse(&text).unwrap();
        let (owner, k) = back.find_ssh_key("0123456789abcdef01234567").unwrap();
        assert_eq!((owner.name.as_str(), k.name.as_str()), ("ada", "laptop"));
        assert!(back.find_ssh_key("ffffffffffffffffffffffff").is_none());

        // The same key under a second user is refused, naming both.
        // bob is the last user: a table appended to the file is his.
        let twice = format!(
            "{text}\n[[user.ssh_key]]\nid = \"0123456789abcdef01234567\"\nname = \"x\"\nkey = \"ssh-ed25519 AAAA\"\nadded = 1\n"
        );
        let e = parse(&twice).unwrap_err();
        assert!(e.contains("also a key of ada"), "{e}");

        let bad = text.replace("0123456789abcdef01234567", "XYZ");
        let e = parse(&bad).unwrap_err();
        assert!(e.contains("24 lower-case hex"), "{e}");
    }

    #[test]
    fn round_trip() {
        let mut users = Users::default();
        let mut a = user("alice");
        a.admin = true;
        a.tokens.push(Token {
            name: "laptop".into(),
            hash: "ab".repeat(32),
            created: 1_700_000_000,
            expires: Some(1_800_000_000),
            last_used: None,
        });
        a.tokens.push(Token {
            name: "ci".into(),
            hash: "cd".repeat(32),
            created: 1_700_000_001,
            expires: None,
            last_used: Some(1_700_000_500),
        });
        users.add(a).unwrap();
        users.add(user("bob")).unwrap();
        let text = users.to_toml().unwrap();
        let back = parse(&text).unwrap();
        assert_eq!(format!("{:?}", back.list), format!("{:?}", users.list));
        assert_eq!(back.to_toml().unwrap(), text);
        assert!(text.starts_with("# forgelet users"));
        // No users at all, and an empty file.
        let none = Users::default().to_toml().unwrap();
        assert!(parse(&none).unwrap().is_empty());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn lookups_ignore_case_but_prefer_exact() {
        let mut users = Users::default();
        users.add(user("Alice")).unwrap();
        users.add(user("bob")).unwrap();
        assert_eq!(users.get("alice").unwrap().name, "Alice");
        assert_eq!(users.get("BOB").unwrap().name, "bob");
        assert!(users.get("carol").is_none());
        assert!(users.add(user("ALICE")).unwrap_err().contains("already"));
        assert!(users
            .add(user("new"))
            .unwrap_err()
            .contains("invalid user name"));
        assert_eq!(users.remove("ALICE").unwrap().name, "Alice");
        assert!(users.get("alice").is_none());
    }

    #[test]
    fn tokens_are_found_by_hash_until_they_expire() {
        let mut users = Users::default();
        let mut a = user("alice");
        a.tokens.push(Token {
            name: "short".into(),
            hash: "11".repeat(32),
            created: 100,
            expires: Some(200),
            last_used: None,
        });
        a.tokens.push(Token {
            name: "forever".into(),
            hash: "22".repeat(32),
            created: 100,
            expires: None,
            last_used: None,
        });
        users.add(a).unwrap();
        users.add(user("bob")).unwrap();
        let (u, t) = users.find_token(&"11".repeat(32), 199).unwrap();
        assert_eq!((u.name.as_str(), t), ("alice", "short"));
        assert!(users.find_token(&"11".repeat(32), 200).is_none());
        assert_eq!(
            users.find_token(&"22".repeat(32), u64::MAX).unwrap().1,
            "forever"
        );
        assert!(users.find_token(&"33".repeat(32), 0).is_none());
        assert!(users.find_token("", 0).is_none());
    }

    #[test]
    fn broken_files_name_the_line() {
        let good = format!("[[user]]\nname = \"alice\"\npassword = \"{HASH}\"\nstamp = \"ab\"\n");
        assert!(parse(&good).is_ok());
        let cases = [
            // (text, line, words in the message)
            (format!("{good}colour = \"red\"\n"), 5, "unknown field"),
            (good.replace("name = \"alice\"", "name = alice"), 2, ""),
            (good.replace("\"alice\"", "\"a/b\""), 2, "invalid user name"),
            (good.replace(HASH, "plain"), 3, "not an argon2 hash"),
            (
                format!(
                    "{good}\n[[user]]\nname = \"ALICE\"\npassword = \"{HASH}\"\nstamp = \"cd\"\n"
                ),
                7,
                "twice",
            ),
            (format!("{good}admin = \"yes\"\n"), 5, ""),
            (
                format!("{good}[[user.token]]\nname = \"t\"\nhash = \"xyz\"\ncreated = 1\n"),
                7,
                "64 lower-case hex",
            ),
            (
                format!(
                    "{good}[[user.token]]\nname = \"t\"\nhash = \"{}\"\ncreated = -1\n",
                    "ab".repeat(32)
                ),
                8,
                "",
            ),
            ("[[user]\n".to_string(), 1, ""),
        ];
        for (text, line, words) in cases {
            let e = parse(&text).unwrap_err();
            assert!(
                e.starts_with(&format!("/d/users.toml:{line}: ")),
                "{text}\n=> {e}"
            );
            assert!(e.contains(words), "{e}");
        }
        // A missing field names the user's table.
        let e = parse("[[user]]\nname = \"alice\"\n").unwrap_err();
        assert!(
            e.contains("/d/users.toml:") && e.contains("password"),
            "{e}"
        );
    }
}
