//! The site: everything a request may need, built once at start and shared by every worker.

use crate::assets::Assets;
use crate::auth::basic::Gate;
use crate::auth::Accounts;
use crate::config::Config;
use crate::git::{RepoDir, RepoStore};
use crate::gitrun::{DeltaGate, GitRunner, Snapshots};
use crate::packcache::{Cache, Settings};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Everything a request may need, built once at start.
pub(crate) struct Site {
    pub(crate) config: Config,
    pub(crate) repos: RepoStore,
    pub(crate) git: GitRunner,
    pub(crate) accounts: Accounts,
    pub(crate) gate: Gate,
    /// The embedded stylesheet's and script's content-hashed names.
    pub(crate) assets: Assets,
    /// Snapshots being made.
    pub(crate) archives: Snapshots,
    /// Whether a large raw file stored as a delta is being rebuilt.
    pub(crate) raw_deltas: DeltaGate,
    /// Answers to fetches kept for the next identical request; `None` when turned off.
    pub(crate) pack_cache: Option<Cache>,
    /// Compare pages being worked out.
    pub(crate) compares: AtOnce,
}

/// Compare pages worked out at once by one process: each may walk much history and diff two
/// trees, so a few clients asking for many cannot take every worker.
pub(crate) const COMPARES_AT_ONCE: usize = 2;

/// A cap on work of one kind done at once in this process; past it the request is told to come
/// back later (503 with `Retry-After`).
pub(crate) struct AtOnce {
    running: AtomicUsize,
    max: usize,
}

/// One turn of an [`AtOnce`], given back when dropped.
pub(crate) struct Turn<'a>(&'a AtomicUsize);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl AtOnce {
    pub(crate) const fn new(max: usize) -> AtOnce {
        AtOnce {
            running: AtomicUsize::new(0),
            max,
        }
    }

    /// A turn, unless `max` are taken.
    pub(crate) fn enter(&self) -> Option<Turn<'_>> {
        let prev = self.running.fetch_add(1, Ordering::SeqCst);
        let turn = Turn(&self.running);
        (prev < self.max).then_some(turn)
    }
}

impl Site {
    /// Fails (with a message for the sysadmin) when the users file or the secret cannot be read.
    pub(crate) fn new(config: Config) -> std::result::Result<Site, String> {
        let repos = RepoStore::new(config.repos_dir());
        let git = GitRunner::new(&config);
        let c = &config.pack_cache;
        let pack_cache = Cache::new(
            &config.repos_dir(),
            Settings {
                max_bytes: c.max_bytes,
                min_hits: c.min_hits,
                free_bytes: c.free_bytes,
                follow_wait: c.follow_wait,
                max_age: c.max_age,
            },
        );
        let accounts = Accounts::open(&config.data_dir, config.ssh.live_key_index())?;
        Ok(Site {
            config,
            repos,
            git,
            accounts,
            gate: Gate::new(),
            assets: Assets::new(),
            archives: Snapshots::default(),
            raw_deltas: DeltaGate::default(),
            pack_cache,
            compares: AtOnce::new(COMPARES_AT_ONCE),
        })
    }
}

/// Opens a repository for a request (an error is logged, the client told only that it failed).
pub(crate) fn open(repo: &RepoDir) -> crate::error::Result<std::rc::Rc<git2::Repository>> {
    repo.open().map_err(|e| {
        crate::error::Error::internal(
            &format!("opening {}/{}", repo.owner, repo.name),
            e.message(),
        )
    })
}

/// The repository's refs (see `git::refs`).
pub(crate) fn refs_of(
    repo: &RepoDir,
) -> crate::error::Result<std::sync::Arc<crate::git::refs::RefSnapshot>> {
    crate::git::refs::snapshot(&repo.path).map_err(|e| {
        crate::error::Error::internal(
            &format!("reading the refs of {}/{}", repo.owner, repo.name),
            e,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::AtOnce;

    #[test]
    fn turns_are_capped_and_given_back() {
        let cap = AtOnce::new(2);
        let a = cap.enter();
        let b = cap.enter();
        assert!(a.is_some() && b.is_some());
        assert!(cap.enter().is_none(), "a third at once");
        drop(a);
        assert!(cap.enter().is_some(), "a turn given back");
    }
}
