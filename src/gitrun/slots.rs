//! Who may run git work now. git work (a clone, fetch or push, a ref advertisement, a snapshot,
//! a large raw file, a dumb ref list not in the cache) is counted in slots, `git_workers` of
//! them; a slot is held while git runs, not while a slow client drains what git already wrote
//! (see `child`). Two rules share them out:
//!
//! - one client address (an IPv6 client by its /64) holds at most `git_per_address` at once,
//!   so a few clients cannot take every slot (0 turns this off, for sites whose users share one
//!   address, such as a CI farm behind NAT);
//! - `git_reserved` slots are for signed-in users only, so anonymous traffic can never take git
//!   away from the people who push.
//!
//! A request that may not start yet waits, in arrival order among those it could overtake, up
//! to a limit, then gets `503` with `Retry-After`.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How the slots are shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRules {
    /// Slots in all.
    pub(crate) total: usize,
    /// Slots one address may hold at once; 0 for no limit.
    pub(crate) per_address: usize,
    /// Slots anonymous clients may never take.
    pub(crate) reserved: usize,
}

#[derive(Default)]
struct State {
    running: usize,
    anonymous: usize,
    by_address: HashMap<String, usize>,
}

/// The slots of one process.
pub(crate) struct Slots {
    rules: SlotRules,
    state: Mutex<State>,
    freed: Condvar,
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// This address holds its share already, and none came free in time.
    Address,
    /// Every slot this client may use is taken, and none came free in time.
    Server,
}

impl Busy {
    /// The message for a 503, which git prints.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Busy::Address => {
                "Too many git requests from your address are running at once; try again in a few seconds."
            }
            Busy::Server => "The server is busy with other git requests; try again in a few seconds.",
        }
    }
}

/// A slot, given back when dropped.
pub(crate) struct Slot<'a> {
    slots: &'a Slots,
    address: String,
    anonymous: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.slots.lock();
        s.running = s.running.saturating_sub(1);
        if self.anonymous {
            s.anonymous = s.anonymous.saturating_sub(1);
        }
        if let Some(n) = s.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                s.by_address.remove(&self.address);
            }
        }
        drop(s);
        self.slots.freed.notify_all();
    }
}

impl Slots {
    pub(crate) fn new(rules: SlotRules) -> Slots {
        Slots {
            rules,
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Why `address` may not start now, or `None` when it may.
    fn refusal(&self, s: &State, address: &str, anonymous: bool) -> Option<Busy> {
        let r = &self.rules;
        if r.per_address > 0 && s.by_address.get(address).copied().unwrap_or(0) >= r.per_address {
            return Some(Busy::Address);
        }
        if s.running >= r.total {
            return Some(Busy::Server);
        }
        if anonymous && s.anonymous >= r.total.saturating_sub(r.reserved) {
            return Some(Busy::Server);
        }
        None
    }

    /// A slot for a client at `address` (already grouped, see `request::client_key`), waiting
    /// up to `wait` for one to come free.
    pub(crate) fn acquire(
        &self,
        address: &str,
        anonymous: bool,
        wait: Duration,
    ) -> Result<Slot<'_>, Busy> {
        let until = Instant::now() + wait;
        let mut s = self.lock();
        while let Some(why) = self.refusal(&s, address, anonymous) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(why);
            }
            s = self
                .freed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        s.running += 1;
        if anonymous {
            s.anonymous += 1;
        }
        *s.by_address.entry(address.to_string()).or_default() += 1;
        Ok(Slot {
            slots: self,
            address: address.to_string(),
            anonymous,
        })
    }

    /// Slots in use now (for tests and the log).
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.lock().running
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn addresses_hold_their_share_and_users_keep_theirs() {
        let slots = Slots::new(SlotRules {
            total: 4,
            per_address: 2,
            reserved: 1,
        });
        let a1 = slots.acquire("10.0.0.1", true, NOW).unwrap();
        let _a2 = slots.acquire("10.0.0.1", true, NOW).unwrap();
        assert_eq!(
            slots.acquire("10.0.0.1", true, NOW).err(),
            Some(Busy::Address)
        );
        let _b = slots.acquire("10.0.0.2", true, NOW).unwrap();
        // Three anonymous slots taken: the last is for signed-in users.
        assert_eq!(
            slots.acquire("10.0.0.3", true, NOW).err(),
            Some(Busy::Server)
        );
        let user = slots.acquire("10.0.0.3", false, NOW).unwrap();
        assert_eq!(
            slots.acquire("10.0.0.4", false, NOW).err(),
            Some(Busy::Server)
        );
        assert_eq!(slots.running(), 4);
        drop(a1);
        let _c = slots.acquire("10.0.0.4", true, NOW).unwrap();
        drop(user);
        assert_eq!(slots.running(), 3);
    }

    #[test]
    fn a_waiting_request_starts_when_a_slot_comes_free() {
        let slots = Slots::new(SlotRules {
            total: 1,
            per_address: 0,
            reserved: 0,
        });
        let held = slots.acquire("a", true, NOW).unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| slots.acquire("b", true, Duration::from_secs(10)).is_ok());
            std::thread::sleep(Duration::from_millis(50));
            drop(held);
            assert!(waiter.join().unwrap());
        });
        // No per-address limit: one address may take every slot.
        let _x = slots.acquire("a", true, NOW).unwrap();
        assert_eq!(
            slots.acquire("a", true, Duration::from_millis(20)).err(),
            Some(Busy::Server)
        );
    }
}
