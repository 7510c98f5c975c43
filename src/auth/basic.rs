//! HTTP Basic authentication for git clients: a password or a personal access token in the
//! password field. Every password check passes the limiters before any hashing: one per client
//! address, and one per user name that only clients not known for that user share (a client is
//! known once it has signed in as that user: its address for a while, and a browser by a signed
//! cookie), so a stranger guessing from many addresses cannot lock the real user out. Unknown
//! names cost a dummy hash; at most as many argon2 runs at once as cores (the rest get 429).
//! A verified password is remembered briefly, keyed by a keyed hash of the name, the password and
//! the user's stamp, so a dumb clone of a private repository does not cost an argon2 run per
//! object, and a password change ends it at once; only clients known for that user are answered
//! from that memory (for anyone else, a right guess answered at once beside wrong ones refused by
//! the limiters would say which guess was right). Tokens are checked by
//! keyed hash on every request, so a revoked token stops working on the next one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{dummy_verify, now, token, Accounts, User, Users};
use crate::keyed::keyed_hash;

/// Password attempts refused by the limiters are logged at most once a minute.
static SLOWED_LOG: crate::log_limit::LogLimit = crate::log_limit::LogLimit::new(60);

/// How long a verified password is remembered in this process.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// Entries at most in the credential cache and in each limiter table.
const MAX_ENTRIES: usize = 10_000;

/// A bucket of password attempts: `burst` at once, then one every `every`.
#[derive(Clone, Copy)]
struct Rate {
    burst: f64,
    every: Duration,
}

/// Per client address: a person mistyping is never slowed; a guesser is, soon.
const PER_CLIENT: Rate = Rate {
    burst: 10.0,
    every: Duration::from_secs(6),
};
/// Per user name, for clients not known for that user: guessing one account from many
/// addresses.
const PER_USER: Rate = Rate {
    burst: 20.0,
    every: Duration::from_secs(3),
};
/// How long an address that signed in as a user stays known for that user.
const KNOWN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Known addresses kept per user (the oldest goes first).
const KNOWN_PER_USER: usize = 16;

/// What the credentials of a request say.
pub(crate) enum Outcome {
    /// No credentials were sent.
    Anonymous,
    User(User),
    Refused(Refusal),
}

/// Why credentials were not accepted; each message is safe to show (git prints it).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// 401: wrong or malformed credentials.
    Bad(&'static str),
    /// 429: too many password attempts; retry after this many seconds.
    Slow(u64),
    /// 429: every argon2 slot is busy.
    Busy,
    /// The users file could not be read (logged); 500.
    Broken(String),
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, bounded in size.
struct Limiter {
    rate: Rate,
    buckets: HashMap<String, Bucket>,
}

impl Limiter {
    fn new(rate: Rate) -> Limiter {
        Limiter {
            rate,
            buckets: HashMap::new(),
        }
    }

    fn refilled(&self, b: Bucket, now: Instant) -> Bucket {
        let gained = now.duration_since(b.at).as_secs_f64() / self.rate.every.as_secs_f64();
        Bucket {
            tokens: (b.tokens + gained).min(self.rate.burst),
            at: now,
        }
    }

    /// Seconds until `key` may try again, or `None` when it may now (one attempt is taken).
    fn take(&mut self, key: &str, now: Instant) -> Option<u64> {
        let fresh = Bucket {
            tokens: self.rate.burst,
            at: now,
        };
        let b = self.buckets.get(key).copied().unwrap_or(fresh);
        let mut b = self.refilled(b, now);
        if b.tokens < 1.0 {
            let wait = (1.0 - b.tokens) * self.rate.every.as_secs_f64();
            return Some(wait.ceil().max(1.0) as u64);
        }
        b.tokens -= 1.0;
        if self.buckets.len() >= MAX_ENTRIES && !self.buckets.contains_key(key) {
            // Full buckets carry no information: forget them first.
            let full = self.rate.burst;
            let snapshot: Vec<(String, Bucket)> =
                self.buckets.iter().map(|(k, v)| (k.clone(), *v)).collect();
            for (k, v) in snapshot {
                if self.refilled(v, now).tokens >= full {
                    self.buckets.remove(&k);
                }
            }
            if self.buckets.len() >= MAX_ENTRIES {
                self.buckets.clear();
            }
        }
        self.buckets.insert(key.to_string(), b);
        None
    }

    /// Gives back the attempt a successful sign-in took.
    fn give_back(&mut self, key: &str) {
        let burst = self.rate.burst;
        if let Some(b) = self.buckets.get_mut(key) {
            b.tokens = (b.tokens + 1.0).min(burst);
        }
    }
}

/// The per-process state of Basic authentication.
pub(crate) struct Gate {
    clients: Mutex<Limiter>,
    names: Mutex<Limiter>,
    hashing: AtomicUsize,
    max_hashing: usize,
    cache: Mutex<HashMap<String, Instant>>,
    /// Per user name (lower case): the client addresses (grouped, see `client_key`) that signed
    /// in as that user, and when they last did.
    known: Mutex<HashMap<String, Vec<(String, Instant)>>>,
}

/// Whether a client is known for the user it tries to sign in as, apart from its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Device {
    /// Nothing else is known (git clients, a browser without the cookie).
    Unknown,
    /// A browser that carries a genuine device cookie for this user.
    Known,
}

/// Holds one argon2 slot while alive.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    pub(crate) fn new() -> Gate {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Gate {
            clients: Mutex::new(Limiter::new(PER_CLIENT)),
            names: Mutex::new(Limiter::new(PER_USER)),
            hashing: AtomicUsize::new(0),
            max_hashing: cores,
            cache: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` (already grouped) signed in as `name_key` within [`KNOWN_TTL`].
    fn is_known(&self, name_key: &str, client: &str, now: Instant) -> bool {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.get(name_key).is_some_and(|list| {
            list.iter()
                .any(|(c, at)| c == client && now.duration_since(*at) < KNOWN_TTL)
        })
    }

    /// Remembers that `client` signed in as `name_key`.
    fn remember(&self, name_key: &str, client: &str, now: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= MAX_ENTRIES && !known.contains_key(name_key) {
            known.retain(|_, list| {
                list.retain(|(_, at)| now.duration_since(*at) < KNOWN_TTL);
                !list.is_empty()
            });
            if known.len() >= MAX_ENTRIES {
                known.clear();
            }
        }
        let list = known.entry(name_key.to_string()).or_default();
        list.retain(|(c, at)| c != client && now.duration_since(*at) < KNOWN_TTL);
        if list.len() >= KNOWN_PER_USER {
            list.remove(0);
        }
        list.push((client.to_string(), now));
    }

    fn slot(&self) -> Option<Slot<'_>> {
        let prev = self.hashing.fetch_add(1, Ordering::SeqCst);
        let slot = Slot(&self.hashing);
        (prev < self.max_hashing).then_some(slot)
    }

    /// Checks the `Authorization` header of a git request from `client` (its address).
    pub(crate) fn check(
        &self,
        accounts: &Accounts,
        header: Option<&str>,
        client: &str,
        tokens_only: bool,
    ) -> Outcome {
        let Some(header) = header else {
            return Outcome::Anonymous;
        };
        let Some((name, secret)) = parse_basic(header) else {
            return Outcome::Refused(Refusal::Bad(
                "The Authorization header is not HTTP Basic authentication.",
            ));
        };
        if token::looks_like_token(&name) {
            return Outcome::Refused(Refusal::Bad(
                "Give your user name as the user name and the token as the password.",
            ));
        }
        let users = match accounts.users() {
            Ok(u) => u,
            Err(e) => return Outcome::Refused(Refusal::Broken(e)),
        };

        if token::looks_like_token(&secret) {
            let hash = accounts.token_hash(&secret);
            return match users.find_token(&hash, now()) {
                Some((user, token_name)) if user.name.eq_ignore_ascii_case(&name) => {
                    accounts.touch_token(&user.name, token_name);
                    Outcome::User(user.clone())
                }
                _ => Outcome::Refused(Refusal::Bad("Invalid user name or token.")),
            };
        }
        if tokens_only {
            return Outcome::Refused(Refusal::Bad(
                "This server accepts personal access tokens only for git, not passwords.",
            ));
        }

        self.password(accounts, &users, &name, &secret, client, Device::Unknown)
    }

    /// Checks a user name and password (from Basic auth or the sign-in form): the limiters
    /// first, then at most one argon2 run per core; a recent success for the same name, password
    /// and stamp is taken from the cache. `client` is the client's address; `device` says whether
    /// the browser is known for this user.
    pub(crate) fn password(
        &self,
        accounts: &Accounts,
        users: &Users,
        name: &str,
        secret: &str,
        client: &str,
        device: Device,
    ) -> Outcome {
        let client = crate::request::client_key(client);
        let client = client.as_str();
        let user = users.get(name);
        let cache_key = user.map(|u| {
            let data = format!("{}\0{}\0{}", u.name, secret, u.stamp);
            keyed_hash(accounts.secret(), "basic-cache", data.as_bytes())
        });
        let now_i = Instant::now();
        let name_key = name.to_ascii_lowercase();
        let known = device == Device::Known || self.is_known(&name_key, client, now_i);
        // The memory of recent successes is for clients known for this user only: for anyone
        // else it would answer a right guess at once where the limiters refuse wrong ones.
        if let (true, Some(u), Some(key)) = (known, user, &cache_key) {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if cache.get(key).is_some_and(|&until| now_i < until) {
                drop(cache);
                self.remember(&name_key, client, now_i);
                return Outcome::User(u.clone());
            }
        }

        // The limiters come before any hashing. A client known for this user does not share
        // the user's limiter with strangers.
        let wait_client = self
            .clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(client, now_i);
        let wait_name = if known {
            None
        } else {
            self.names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(&name_key, now_i)
        };
        if let Some(wait) = wait_client.max(wait_name) {
            SLOWED_LOG.warn(&format!(
                "password attempts for {name_key:?} from {client} refused for {wait} s: too many {}",
                if wait_client.is_some() {
                    "from this address"
                } else {
                    "for this user from addresses it has not signed in from"
                }
            ));
            return Outcome::Refused(Refusal::Slow(wait));
        }
        let Some(_slot) = self.slot() else {
            return Outcome::Refused(Refusal::Busy);
        };
        let ok = match user {
            Some(u) => u.verify_password(secret),
            None => {
                dummy_verify(secret);
                false
            }
        };
        match (ok, user, cache_key) {
            (true, Some(u), Some(key)) => {
                self.clients
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .give_back(client);
                if !known {
                    self.names
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .give_back(&name_key);
                }
                self.remember(&name_key, client, now_i);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= MAX_ENTRIES {
                    cache.retain(|_, until| now_i < *until);
                    if cache.len() >= MAX_ENTRIES {
                        cache.clear();
                    }
                }
                cache.insert(key, now_i + CACHE_TTL);
                Outcome::User(u.clone())
            }
            _ => Outcome::Refused(Refusal::Bad("Invalid user name or password.")),
        }
    }
}

/// `Basic base64(name:secret)` → (name, secret).
pub(crate) fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64_decode(rest.trim())?;
    let text = String::from_utf8(raw).ok()?;
    let (name, secret) = text.split_once(':')?;
    if name.is_empty() || name.len() > 256 || secret.len() > 1024 {
        return None;
    }
    Some((name.to_string(), secret.to_string()))
}

/// Standard base64 with padding (what HTTP Basic uses).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let b = s.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 || b.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i + 1 == b.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_basic() {
        assert_eq!(base64_decode("YWxpY2U6cHc=").unwrap(), b"alice:pw");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert_eq!(base64_decode("YWI=").unwrap(), b"ab");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        for bad in ["", "YQ=", "Y===", "YQ==YQ==", "Y!==", "YWJj\n"] {
            assert!(base64_decode(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            parse_basic("Basic YWxpY2U6cDpx"),
            Some(("alice".into(), "p:q".into()))
        );
        assert_eq!(
            parse_basic("basic YWxpY2U6cHc="),
            Some(("alice".into(), "pw".into()))
        );
        assert!(parse_basic("Bearer YWxpY2U6cHc=").is_none());
        assert!(parse_basic("Basic OnB3").is_none()); // ":pw": no name
        assert!(parse_basic("Basic YWxpY2U=").is_none()); // no colon
    }

    #[test]
    fn limiter_allows_a_burst_then_slows() {
        let mut l = Limiter::new(Rate {
            burst: 3.0,
            every: Duration::from_secs(10),
        });
        let t = Instant::now();
        assert_eq!(l.take("a", t), None);
        assert_eq!(l.take("a", t), None);
        assert_eq!(l.take("a", t), None);
        let wait = l.take("a", t).unwrap();
        assert!((1..=10).contains(&wait), "{wait}");
        // Other keys are not affected; time refills.
        assert_eq!(l.take("b", t), None);
        assert_eq!(l.take("a", t + Duration::from_secs(10)), None);
        // A success gives its attempt back.
        l.give_back("b");
        assert_eq!(l.buckets["b"].tokens, 3.0);
    }

    fn describe(o: &Outcome) -> String {
        match o {
            Outcome::Anonymous => "anonymous".into(),
            Outcome::User(u) => format!("user {}", u.name),
            Outcome::Refused(r) => format!("refused: {r:?}"),
        }
    }

    #[test]
    fn strangers_cannot_lock_out_a_known_client() {
        let dir = std::env::temp_dir().join(format!(
            "forgelet-basic-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Accounts::open(&dir, None).unwrap();
        a.update(|u| {
            u.add(User {
                name: "alice".into(),
                admin: false,
                stamp: "s1".into(),
                password_hash: super::super::password::hash("right password").unwrap(),
                tokens: Vec::new(),
                ssh_keys: Vec::new(),
            })
        })
        .unwrap();
        let users = a.users().unwrap();
        let g = Gate::new();
        let ok = |o: Outcome| matches!(o, Outcome::User(_));
        // Alice signs in from her address once.
        assert!(ok(g.password(
            &a,
            &users,
            "alice",
            "right password",
            "10.0.0.1",
            Device::Unknown
        )));
        // Strangers use up the user's limit from many addresses.
        let mut slowed = false;
        for i in 0..40 {
            let o = g.password(
                &a,
                &users,
                "alice",
                "guess",
                &format!("10.1.0.{i}"),
                Device::Unknown,
            );
            slowed |= matches!(o, Outcome::Refused(Refusal::Slow(_)));
        }
        assert!(slowed, "the per-user limit never applied");
        // (Not from the cache of recent successes.)
        g.cache.lock().unwrap().clear();
        // A new address is slowed; alice's own address and a known browser are not.
        assert!(matches!(
            g.password(
                &a,
                &users,
                "alice",
                "right password",
                "10.2.0.1",
                Device::Unknown
            ),
            Outcome::Refused(Refusal::Slow(_))
        ));
        assert!(ok(g.password(
            &a,
            &users,
            "Alice",
            "right password",
            "10.0.0.1",
            Device::Unknown
        )));
        assert!(ok(g.password(
            &a,
            &users,
            "alice",
            "right password",
            "10.3.0.1",
            Device::Known
        )));
        // An IPv6 client is known by its /64.
        assert!(ok(g.password(
            &a,
            &users,
            "alice",
            "right password",
            "2001:db8::1",
            Device::Known
        )));
        g.cache.lock().unwrap().clear();
        let o = g.password(
            &a,
            &users,
            "alice",
            "right password",
            "2001:db8::2",
            Device::Unknown,
        );
        assert!(matches!(o, Outcome::User(_)), "{}", describe(&o));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// While alice's password was remembered after her sign-in, a stranger's wrong guesses got
    /// 429 and the right one 200 at once: the memory answered before the limiters.
    #[test]
    fn a_right_guess_is_not_answered_from_memory_for_a_stranger() {
        let dir =
            std::env::temp_dir().join(format!("forgelet-basic-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Accounts::open(&dir, None).unwrap();
        a.update(|u| {
            u.add(User {
                name: "alice".into(),
                admin: false,
                stamp: "s1".into(),
                password_hash: super::super::password::hash("right password").unwrap(),
                tokens: Vec::new(),
                ssh_keys: Vec::new(),
            })
        })
        .unwrap();
        let users = a.users().unwrap();
        let g = Gate::new();
        let pw = |secret: &str, client: &str| {
            g.password(&a, &users, "alice", secret, client, Device::Unknown)
        };
        assert!(matches!(pw("right password", "10.0.0.1"), Outcome::User(_)));
        // The stranger uses up their address's attempts...
        let mut slowed = false;
        for _ in 0..15 {
            slowed |= matches!(pw("guess", "10.9.0.1"), Outcome::Refused(Refusal::Slow(_)));
        }
        assert!(slowed);
        // ...and the right password is refused the same way, not let through from memory.
        assert!(matches!(
            pw("right password", "10.9.0.1"),
            Outcome::Refused(Refusal::Slow(_))
        ));
        // Alice herself is still answered from memory.
        assert!(matches!(pw("right password", "10.0.0.1"), Outcome::User(_)));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn argon2_slots_are_capped() {
        let g = Gate::new();
        let held: Vec<_> = (0..g.max_hashing).map(|_| g.slot()).collect();
        assert!(held.iter().all(Option::is_some));
        assert!(g.slot().is_none());
        drop(held);
        assert!(g.slot().is_some());
    }
}
