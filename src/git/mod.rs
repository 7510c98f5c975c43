//! Repositories on disk: names, resolving `owner/name` to a directory safely, opening it isolated
//! from the host's git configuration, and the per-repo settings kept in the repo's own config.

pub(crate) mod browse;
pub(crate) mod names;
pub(crate) mod store;

pub(crate) use store::{RepoDir, RepoStore, Settings, Visibility};

/// Shuts libgit2 off from the host's git configuration (system, global, XDG files) and from
/// `safe.directory` ownership checks: forgelet's repositories are its own data, resolved by forgelet.
/// Called once at start, before any thread opens a repository.
pub(crate) fn isolate_libgit2() -> Result<(), git2::Error> {
    use git2::ConfigLevel;
    for level in [
        ConfigLevel::System,
        ConfigLevel::XDG,
        ConfigLevel::Global,
        ConfigLevel::ProgramData,
    ] {
        // SAFETY: called from main before any other thread exists or uses libgit2.
        unsafe { git2::opts::set_search_path(level, "")? };
    }
    // SAFETY: as above.
    unsafe { git2::opts::set_verify_owner_validation(false)? };
    Ok(())
}
