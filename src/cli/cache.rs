//! `forgelet cache`: what the pack cache holds and has done; `forgelet cache clear`: every
//! answer taken out of it, including those being made (it waits for them; a web server about to
//! send one still can: they are deleted by maintenance after a grace period).

use super::Outcome;
use crate::config::Config;
use crate::packcache::{self, store::Store};

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// `forgelet cache`.
pub(super) fn status(config: &Config) -> Outcome {
    let store = Store::new(&config.pack_cache.dir);
    let (bytes, entries) = store.usage();
    let c = &config.pack_cache;
    if c.max_bytes == 0 {
        println!("pack cache: off ([pack_cache] max_mib = 0)");
    } else {
        println!("pack cache: {}", store.dir().display());
    }
    println!(
        "answers kept: {entries}, {} of {}",
        mib(bytes),
        mib(c.max_bytes)
    );
    let n = packcache::counts(&config.pack_cache.dir);
    let answered = n.hits + n.misses + n.passes;
    let share = if answered == 0 {
        0.0
    } else {
        100.0 * n.hits as f64 / answered as f64
    };
    println!("fetches from the cache: {} ({share:.0}%)", n.hits);
    println!(
        "fetches by git, the answer written for the cache: {}",
        n.misses
    );
    println!("fetches by git alone: {}", n.passes);
    println!("answers stored: {}", n.stored);
    Ok(())
}

/// `forgelet cache clear`.
pub(super) fn clear(config: &Config) -> Outcome {
    super::check_owner(config)?;
    let store = Store::new(&config.pack_cache.dir);
    // Answers being made now would appear after the clear: wait for them (a minute at most).
    let busy = store.wait_for_writers(std::time::Duration::from_secs(60));
    if busy > 0 {
        println!("pack cache: {busy} answers still being made after a minute are left to appear");
    }
    let (_, before) = store.usage();
    let evicted = store.trim(0);
    println!("pack cache: {evicted} of {before} answers taken out");
    Ok(())
}
