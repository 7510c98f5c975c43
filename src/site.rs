//! The site: everything a request may need, built once at start and shared by every worker.

use crate::assets::Assets;
use crate::auth::basic::Gate;
use crate::auth::Accounts;
use crate::config::Config;
use crate::git::{RepoDir, RepoStore};
use crate::gitrun::{AtOnce, DeltaGate, GitRunner, Snapshots};
use crate::packcache::{Cache, Settings};

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
    /// Blame pages being made (`[limits] blame_at_once`).
    pub(crate) blames: AtOnce,
    /// Code searches running (`[limits] search_at_once`).
    pub(crate) searches: AtOnce,
    /// Answers to fetches kept for the next identical request; `None` when turned off.
    pub(crate) pack_cache: Option<Cache>,
    /// Compare pages being worked out.
    pub(crate) compares: AtOnce,
}

/// Compare pages worked out at once by one process: each may walk much history and diff two
/// trees, so a few clients asking for many cannot take every worker.
pub(crate) const COMPARES_AT_ONCE: usize = 2;

impl Site {
    /// Fails (with a message for the sysadmin) when the users file or the secret cannot be read.
    pub(crate) fn new(config: Config) -> std::result::Result<Site, String> {
        let repos = RepoStore::new(config.repos_dir());
        let git = GitRunner::new(&config);
        let c = &config.pack_cache;
        let pack_cache = Cache::new(
            &c.dir,
            Settings {
                max_bytes: c.max_bytes,
                min_hits: c.min_hits,
                free_bytes: c.free_bytes,
                follow_wait: c.follow_wait,
                max_age: c.max_age,
            },
        );
        let accounts = Accounts::open(&config.data_dir, config.ssh.live_key_index())?;
        let blames = AtOnce::new(config.limits.blame_at_once);
        let searches = AtOnce::new(config.limits.search_at_once);
        Ok(Site {
            config,
            repos,
            git,
            accounts,
            gate: Gate::new(),
            assets: Assets::new(),
            archives: Snapshots::default(),
            raw_deltas: DeltaGate::default(),
            blames,
            searches,
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
