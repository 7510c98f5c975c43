//! Repositories on disk: names, resolving `owner/name` to a directory safely, opening it isolated
//! from the host's git configuration, and the per-repo settings kept in the repo's own config.

pub(crate) mod browse;
pub(crate) mod cache;
pub(crate) mod check;
pub(crate) mod lfs;
pub(crate) mod listing;
pub(crate) mod maintenance;
pub(crate) mod names;
pub(crate) mod refs;
pub(crate) mod store;

pub(crate) use store::{Perm, RepoDir, RepoStore, Settings, Visibility};

/// The most libgit2's object cache (parsed commits and trees, for all threads) may hold.
const OBJECT_CACHE_BYTES: usize = 32 << 20;

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
    // Objects are checked when they arrive (receive-pack's fsck); hashing each one again on
    // every read was a tenth of a history page's cost.
    git2::opts::strict_hash_verification(false);
    // Workers keep repositories open between requests (`cache`), so libgit2's object cache,
    // shared by all of them, lives as long as the process: keep it small.
    // SAFETY: GIT_OPT_SET_CACHE_MAX_SIZE takes one ssize_t; called before other threads exist.
    libgit2_sys::init();
    let rc = unsafe {
        libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_SET_CACHE_MAX_SIZE as libc::c_int,
            OBJECT_CACHE_BYTES as libc::ssize_t,
        )
    };
    if rc < 0 {
        return Err(git2::Error::last_error(rc));
    }
    Ok(())
}
