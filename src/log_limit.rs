//! Log lines a client can cause, at most one a period: enough for the sysadmin to see that
//! something happens, never a line per request for an attacker to fill the log with.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A warning logged at most once per period, with the number held back since the last one.
pub(crate) struct LogLimit {
    every_secs: u64,
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogLimit {
    pub(crate) const fn new(every_secs: u64) -> LogLimit {
        LogLimit {
            every_secs,
            state: Mutex::new((None, 0)),
        }
    }

    pub(crate) fn warn(&self, message: &str) {
        let now = Instant::now();
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match s.0 {
            Some(t) if now.duration_since(t) < Duration::from_secs(self.every_secs) => s.1 += 1,
            _ => {
                let held = std::mem::take(&mut s.1);
                s.0 = Some(now);
                drop(s);
                if held > 0 {
                    log::warn!("{message} ({held} more like it since the last such line)");
                } else {
                    log::warn!("{message}");
                }
            }
        }
    }
}
