//! Downloads git streams for the web pages: a snapshot of a tree (`git archive`, its size added
//! up from object headers before git starts) and a file too large to read whole into forgelet
//! (`git cat-file`). Each holds a git slot while it runs and is a [`crate::response::Stream`]
//! the gateway drives; the pages (`pages::downloads`) decide what is asked for and who may have
//! it.

pub(crate) mod archive;
pub(crate) mod blob;
pub(crate) mod file;
