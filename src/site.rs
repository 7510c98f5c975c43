//! The site: everything a request may need, built once at start and shared by every worker.

use crate::assets::Assets;
use crate::auth::basic::Gate;
use crate::auth::Accounts;
use crate::config::Config;
use crate::git::RepoStore;
use crate::gitrun::{DeltaGate, GitRunner, Snapshots};

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
}

impl Site {
    /// Fails (with a message for the sysadmin) when the users file or the secret cannot be read.
    pub(crate) fn new(config: Config) -> std::result::Result<Site, String> {
        let repos = RepoStore::new(config.repos_dir());
        let git = GitRunner::new(&config);
        let accounts = Accounts::open(&config.data_dir)?;
        Ok(Site {
            config,
            repos,
            git,
            accounts,
            gate: Gate::new(),
            assets: Assets::new(),
            archives: Snapshots::default(),
            raw_deltas: DeltaGate::default(),
        })
    }
}
