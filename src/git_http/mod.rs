//! Git over HTTP: the dumb protocol's files, generated from the repository on each request, and
//! the smart protocol, run by git itself; git's children (`child`) and the slots they share
//! (`slots`).

pub(crate) mod archive;
pub(crate) mod blob;
pub(crate) mod dumb;
pub(crate) mod files;
pub(crate) mod smart;
