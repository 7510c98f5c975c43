//! The pack cache: git's answer to a fetch, kept so that the same request on the same
//! repository state is answered from a file (by the web server, with the sendfile header)
//! instead of by git again. A clone storm then costs one pack.
//!
//! This module is used by every transport that runs `git upload-pack` (smart HTTP now, SSH
//! later). What it holds so far: [`key`], the canonical form of a fetch request and the cache key
//! made of it and of everything else that changes the answer (the repository, its refs, git's
//! version and settings, the object format, the purge generation); and [`store`], the entries on
//! disk, written whole or not at all and evicted without pulling a file from under a reader.
//! Public, so fuzz targets and benchmarks can feed it requests: the request reader faces whatever
//! a client sends.

pub mod key;
pub mod store;
