//! Accounts and access: the users file and the site secret ([`Accounts`]), passwords, personal
//! access tokens, and the rule for "may this viewer read or write this repository" ([`access`]).
//!
//! [`Accounts`] lives in the site for the process's lifetime. Reading users costs one `stat` per
//! call while the file is unchanged; every change is written whole and atomically under a lock
//! file, so concurrent admin commands and server processes never lose one another's changes.
//! When the site offers SSH, a change to anyone's SSH keys also rewrites the key index
//! ([`key_index`]) sshd's key lookup reads.

pub(crate) mod access;
pub(crate) mod basic;
pub(crate) mod key_index;
pub(crate) mod keys;
pub(crate) mod password;
pub(crate) mod secret;

use crate::fsfile;
pub(crate) use crate::time::now;
pub(crate) mod session;
pub(crate) mod token;
pub(crate) mod users;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub(crate) use access::{access, may_manage};
pub(crate) use password::dummy_verify;
pub(crate) use users::{Token, User, Users};

/// How often a token's `last_used` is written at most: a clone makes many requests, and each
/// must not rewrite the users file.
const TOUCH_INTERVAL_SECS: u64 = 3600;

/// The users file and the secret of one data directory.
pub(crate) struct Accounts {
    file: PathBuf,
    lock_file: PathBuf,
    secret: Vec<u8>,
    /// The SSH key index to keep in step with the keys; `None` when the site offers no SSH.
    key_index: Option<PathBuf>,
    /// The users as last read, with the identity of the file they came from.
    cache: Mutex<Option<(FileId, Arc<Users>)>>,
}

/// What tells one version of the users file from another without reading it. Every write
/// replaces the file (new inode); times and size guard against an inode number reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileId {
    Missing,
    Present {
        dev: u64,
        ino: u64,
        size: u64,
        mtime: (i64, i64),
        ctime: (i64, i64),
    },
}

impl FileId {
    fn of(m: &fs::Metadata) -> FileId {
        FileId::Present {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The users file held under its lock, for a change: fresh from disk, written back by `save`.
pub(crate) struct Locked<'a> {
    accounts: &'a Accounts,
    _lock: fsfile::FileLock,
    pub(crate) users: Users,
    /// The SSH keys as read, to tell whether the key index must be rewritten.
    keys_before: Vec<(String, String)>,
}

impl Locked<'_> {
    /// Writes the users back (atomic replace, mode 0600, owner kept). When the SSH keys
    /// changed, the key index is written first: if it cannot be, nothing is changed and the
    /// error says why; if the users file then cannot be written, the index is put back.
    pub(crate) fn save(&self) -> Result<(), String> {
        let text = self.users.to_toml()?;
        let index = match &self.accounts.key_index {
            Some(path) => {
                let keys = key_index::entries(&self.users);
                (keys != self.keys_before).then_some((path, keys))
            }
            None => None,
        };
        if let Some((path, keys)) = &index {
            key_index::write(path, keys)?;
        }
        let saved = fsfile::replace(&self.accounts.file, text.as_bytes(), 0o600);
        if let (Err(_), Some((path, _))) = (&saved, &index) {
            // A line for a key users.toml does not have lets no one in (ssh-serve looks the
            // key up there), but the index should say what the users file says.
            if let Err(e) = key_index::write(path, &self.keys_before) {
                log::error!("{e}");
            }
        }
        saved
    }
}

impl Accounts {
    /// Loads the secret (making it on first use) and the users (a missing file means none).
    /// `key_index`: the SSH key index to rewrite whenever a key changes, when the site offers
    /// SSH.
    pub(crate) fn open(data_dir: &Path, key_index: Option<&Path>) -> Result<Accounts, String> {
        let secret = secret::load_or_create(data_dir)?;
        let accounts = Accounts {
            file: data_dir.join("users.toml"),
            lock_file: data_dir.join("users.toml.lock"),
            secret,
            key_index: key_index.map(Path::to_path_buf),
            cache: Mutex::new(None),
        };
        accounts.users()?;
        Ok(accounts)
    }

    /// `{data_dir}/users.toml`.
    #[cfg(test)]
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// The current users. Re-reads users.toml only when it changed since the last look
    /// (one `stat` per call otherwise).
    pub(crate) fn users(&self) -> Result<Arc<Users>, String> {
        let id = match fs::metadata(&self.file) {
            Ok(m) => FileId::of(&m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => FileId::Missing,
            Err(e) => return Err(format!("cannot read {}: {e}", self.file.display())),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached_id, users)) = cache.as_ref() {
            if *cached_id == id {
                return Ok(Arc::clone(users));
            }
        }
        // Read under the mutex, so a burst of requests after a change reads the file once.
        let (id, users) = self.load()?;
        let users = Arc::new(users);
        *cache = Some((id, Arc::clone(&users)));
        Ok(users)
    }

    /// Reads and parses the file; the identity comes from the open file itself, so it always
    /// describes the text that was parsed.
    fn load(&self) -> Result<(FileId, Users), String> {
        let mut f = match fs::File::open(&self.file) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok((FileId::Missing, Users::default()))
            }
            Err(e) => return Err(format!("cannot read {}: {e}", self.file.display())),
        };
        let what = |e: io::Error| format!("cannot read {}: {e}", self.file.display());
        let meta = f.metadata().map_err(what)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        f.read_to_end(&mut bytes).map_err(what)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{}: the file is not UTF-8 text", self.file.display()))?;
        let users = Users::parse(&self.file, &text)?;
        if meta.permissions().mode() & 0o077 != 0 {
            log::warn!(
                "{} can be read by other users (mode {:o}); it should be 0600",
                self.file.display(),
                meta.permissions().mode() & 0o7777
            );
        }
        Ok((FileId::of(&meta), users))
    }

    /// Takes the users file's lock and reads it fresh, for a change ([`Locked::save`]).
    /// Waits while another process holds the lock.
    pub(crate) fn lock(&self) -> Result<Locked<'_>, String> {
        let lock = fsfile::lock(&self.lock_file)?;
        let (_, users) = self.load()?;
        Ok(Locked {
            accounts: self,
            _lock: lock,
            keys_before: key_index::entries(&users),
            users,
        })
    }

    /// Reads the users, changes them with `change` and writes them back, all under the lock.
    /// Nothing is written when `change` fails. `change` fails with an error of its own type,
    /// which also carries a failure to read, lock or write the file.
    pub(crate) fn update<T, E: From<String>>(
        &self,
        change: impl FnOnce(&mut Users) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut locked = self.lock()?;
        let out = change(&mut locked.users)?;
        locked.save()?;
        Ok(out)
    }

    /// Marks a token used now. Writes users.toml only when the recorded use is older than an
    /// hour, and skips the write when another process holds the lock (a later request will do
    /// it). Errors are logged, not returned: a request never fails for this.
    pub(crate) fn touch_token(&self, user: &str, token_name: &str) {
        let now = now();
        let stale = |t: &Token| {
            !t.last_used
                .is_some_and(|used| now.saturating_sub(used) < TOUCH_INTERVAL_SECS)
        };
        match self.users() {
            Ok(users) => match users.get(user).and_then(|u| u.token(token_name)) {
                Some(t) if stale(t) => {}
                _ => return,
            },
            Err(e) => {
                log::warn!("cannot record the use of token {token_name} of {user}: {e}");
                return;
            }
        }
        let result = (|| {
            let Some(lock) = fsfile::try_lock(&self.lock_file)? else {
                return Ok(());
            };
            let (_, mut users) = self.load()?;
            let Some(t) = users.get_mut(user).and_then(|u| u.token_mut(token_name)) else {
                return Ok(());
            };
            if !stale(t) {
                return Ok(());
            }
            t.last_used = Some(now);
            let locked = Locked {
                accounts: self,
                _lock: lock,
                keys_before: key_index::entries(&users),
                users,
            };
            locked.save()
        })();
        if let Err(e) = result {
            log::warn!("cannot record the use of token {token_name} of {user}: {e}");
        }
    }

    /// The keyed hash a token is stored and looked up by (hex HMAC-SHA256 under the secret).
    pub(crate) fn token_hash(&self, plaintext: &str) -> String {
        crate::keyed::keyed_hash(&self.secret, "token", plaintext.as_bytes())
    }

    /// The site secret, for other keyed hashes (credential cache keys, cookies); give each use
    /// its own label, as [`secret::keyed_hash`] does.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$ZmFrZWZha2VmYWtlZmFrZWZha2VmYWtlZmFrZWZha2U";

    fn scratch(name: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let d = std::env::temp_dir().join(format!(
            "forgelet-accounts-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn user(name: &str) -> User {
        User {
            name: name.into(),
            admin: false,
            stamp: users::new_stamp().unwrap(),
            password_hash: HASH.into(),
            tokens: Vec::new(),
            ssh_keys: Vec::new(),
        }
    }

    #[test]
    fn accounts_are_sync_and_send() {
        fn both<T: Send + Sync>() {}
        both::<Accounts>();
    }

    #[test]
    fn concurrent_updates_lose_nothing() {
        let d = scratch("concurrent");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let d = d.clone();
                std::thread::spawn(move || {
                    // Each thread its own Accounts, as separate processes would be.
                    let a = Accounts::open(&d, None).unwrap();
                    a.update(|u| u.add(user(&format!("user{i}")))).unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let a = Accounts::open(&d, None).unwrap();
        let users = a.users().unwrap();
        for i in 0..8 {
            assert!(users.get(&format!("user{i}")).is_some(), "user{i} lost");
        }
        let mode = fs::metadata(d.join("users.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o600);
        // Only users.toml, its lock and the secret: no temp files left.
        let mut names: Vec<String> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["secret", "users.toml", "users.toml.lock"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn users_are_reread_only_after_a_change() {
        let d = scratch("cache");
        let a = Accounts::open(&d, None).unwrap();
        let first = a.users().unwrap();
        assert!(first.is_empty());
        assert!(
            Arc::ptr_eq(&first, &a.users().unwrap()),
            "re-read an unchanged (missing) file"
        );
        // Another process (another Accounts) adds a user: seen at the next call.
        Accounts::open(&d, None)
            .unwrap()
            .update(|u| u.add(user("alice")))
            .unwrap();
        let second = a.users().unwrap();
        assert!(second.get("alice").is_some());
        assert!(Arc::ptr_eq(&second, &a.users().unwrap()));
        // A failed change writes nothing.
        let e = a.update(|u| u.add(user("ALICE"))).unwrap_err();
        assert!(e.contains("already"), "{e}");
        assert!(Arc::ptr_eq(&second, &a.users().unwrap()));
        // A broken file is an error naming it; fixing it recovers.
        let good = fs::read_to_string(a.file()).unwrap();
        fs::write(a.file(), format!("{good}\nnonsense\n")).unwrap();
        let e = a.users().unwrap_err();
        assert!(e.contains("users.toml:"), "{e}");
        fs::write(a.file(), &good).unwrap();
        assert!(a.users().unwrap().get("alice").is_some());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn tokens_hash_with_the_secret_and_touch_at_most_hourly() {
        let d = scratch("tokens");
        let a = Accounts::open(&d, None).unwrap();
        let plain = token::generate().unwrap();
        let hash = a.token_hash(&plain);
        assert_eq!(hash.len(), 64);
        assert_eq!(
            hash,
            Accounts::open(&d, None).unwrap().token_hash(&plain),
            "same secret"
        );
        assert_eq!(a.secret().len(), secret::SECRET_LEN);
        a.update(|u| {
            let mut alice = user("alice");
            alice.tokens.push(Token {
                name: "laptop".into(),
                hash: hash.clone(),
                created: now(),
                expires: None,
                last_used: None,
            });
            u.add(alice)
        })
        .unwrap();
        let users = a.users().unwrap();
        let (u, t) = users.find_token(&hash, now()).unwrap();
        assert_eq!((u.name.as_str(), t), ("alice", "laptop"));
        assert!(users
            .find_token(&a.token_hash("flt_other"), now())
            .is_none());

        a.touch_token("alice", "laptop");
        let used = a.users().unwrap().get("alice").unwrap().tokens[0].last_used;
        assert!(used.is_some_and(|t| t + 5 >= now()), "{used:?}");
        let before = fs::metadata(a.file()).unwrap().ino();
        a.touch_token("alice", "laptop");
        assert_eq!(
            fs::metadata(a.file()).unwrap().ino(),
            before,
            "rewritten within the hour"
        );
        // Unknown users and tokens are ignored.
        a.touch_token("alice", "nosuch");
        a.touch_token("nobody", "laptop");
        fs::remove_dir_all(&d).unwrap();
    }
}
