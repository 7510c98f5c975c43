//! Git over HTTP: the dumb protocol's files, generated from the repository on each request.

pub(crate) mod dumb;
pub(crate) mod files;
