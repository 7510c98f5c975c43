//! Rendered content of repository pages, kept per process: the part of a page below the
//! repository's title and tabs, rendered once for what it shows and reused by every viewer.
//!
//! What is kept is only what the page's address and the repository's objects decide: a commit's
//! page once per commit id, a file or folder page once per commit the ref resolved to (and the
//! ref name, which its links carry), a history page once per commit, path and page, a list of
//! tags or branches once per state of those refs. The layout around it (who is signed in, the
//! form token, the Settings tab, the private badge, the description) is rendered for each
//! request and is never kept.
//!
//! Correctness does not depend on the cache: the key holds everything that changes the
//! fragment (the kind of page, the repository folder's identity, which changes when a repository
//! is deleted and made again under the same name, its owner and name, the site's base path, and
//! the ids, ref name, path, page number and options the page was made from), compared whole, not
//! by a hash. Ids are resolved from the repository before the cache is asked, so a push, a
//! force-push or a purge is seen at once, and access is checked before the handler runs. Entries
//! are dropped least recently used first past [`MAX_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::{Error, Result};
use crate::git::RepoDir;
use crate::site::Site;

/// Bytes of rendered pages a process keeps at most.
const MAX_BYTES: usize = 32 << 20;
/// A fragment larger than this is not kept (it would push out many others).
const MAX_ENTRY_BYTES: usize = 4 << 20;

/// The mark in a page's template where its fragment goes. Escaped text cannot hold `<`, so the
/// first one in a rendered page is the template's own.
pub(crate) const MARK: &str = "<!--forgelet:fragment-->";

/// A part of a page rendered by an askama template (escaping on, as every template), and the
/// page's title that goes with it (plain text, escaped when the layout prints it).
pub(crate) struct Fragment {
    pub(crate) title: String,
    html: String,
}

impl Fragment {
    /// Renders `t`, the page's content below its title and tabs.
    pub(crate) fn render(title: String, t: &impl askama::Template) -> Result<Fragment> {
        let html = t
            .render()
            .map_err(|e| Error::internal("rendering a page", e))?;
        Ok(Fragment { title, html })
    }

    fn bytes(&self) -> usize {
        self.html.len() + self.title.len() + 64
    }

    /// `page`, rendered with [`MARK`] where this fragment goes, with the fragment in its place.
    pub(crate) fn fill(&self, page: &str) -> Result<String> {
        let (before, after) = page
            .split_once(MARK)
            .ok_or_else(|| Error::Internal("a page template has no fragment mark".into()))?;
        let mut out = String::with_capacity(before.len() + self.html.len() + after.len());
        out.push_str(before);
        out.push_str(&self.html);
        out.push_str(after);
        Ok(out)
    }
}

/// What a fragment was made from, every part length-prefixed, compared whole.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    /// A key for a page of `kind` of `repo`; `None` when the repository folder cannot be looked
    /// at (the page is then made afresh, not kept).
    pub(crate) fn new(site: &Site, kind: &str, repo: &RepoDir) -> Option<Key> {
        let identity = crate::git::cache::folder_identity(&repo.path)?;
        Some(
            Key(Vec::with_capacity(160))
                .part(kind)
                .part(identity)
                .part(&repo.owner)
                .part(&repo.name)
                .part(&site.config.base_path),
        )
    }

    /// The key with one more part.
    pub(crate) fn part(mut self, bytes: impl AsRef<[u8]>) -> Key {
        let bytes = bytes.as_ref();
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self
    }
}

/// What a store may say about the size of what it keeps.
pub(crate) trait Weigh {
    /// Bytes the value holds, roughly.
    fn bytes(&self) -> usize;
}

impl Weigh for Fragment {
    fn bytes(&self) -> usize {
        Fragment::bytes(self)
    }
}

struct Lru<V> {
    entries: HashMap<Key, (Arc<V>, u64)>,
    /// Keys by the tick they were last used at: the first is the least recently used.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    tick: u64,
}

/// Values kept per process by [`Key`], the least recently used dropped first past a budget.
/// Rendered fragments are one store; what several pages share (a folder's last changes) is
/// kept in stores of its own.
pub(crate) struct Store<V> {
    lru: Mutex<Option<Lru<V>>>,
    max_bytes: usize,
    /// A value larger than this is not kept (it would push out many others).
    max_entry_bytes: usize,
}

impl<V: Weigh> Store<V> {
    pub(crate) const fn new(max_bytes: usize, max_entry_bytes: usize) -> Store<V> {
        Store {
            lru: Mutex::new(None),
            max_bytes,
            max_entry_bytes,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Lru<V>) -> T) -> T {
        let mut guard = self.lru.lock().unwrap_or_else(PoisonError::into_inner);
        let lru = guard.get_or_insert_with(|| Lru {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            bytes: 0,
            tick: 0,
        });
        f(lru)
    }

    /// The value kept for `key`, if any (and it becomes the most recently used).
    pub(crate) fn get(&self, key: &Key) -> Option<Arc<V>> {
        self.with(|lru| {
            lru.tick += 1;
            let tick = lru.tick;
            let (value, used) = lru.entries.get_mut(key)?;
            let value = Arc::clone(value);
            let was = std::mem::replace(used, tick);
            if let Some(k) = lru.order.remove(&was) {
                lru.order.insert(tick, k);
            }
            Some(value)
        })
    }

    /// Keeps `value` under `key` (unless it is too large), dropping the least recently used
    /// past the budget; gives it back to be used.
    pub(crate) fn put(&self, key: Key, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let size = value.bytes() + key.0.len();
        if size > self.max_entry_bytes {
            return value;
        }
        self.with(|lru| {
            lru.tick += 1;
            let tick = lru.tick;
            if let Some((old, used)) = lru.entries.remove(&key) {
                lru.order.remove(&used);
                lru.bytes = lru.bytes.saturating_sub(old.bytes() + key.0.len());
            }
            while lru.bytes + size > self.max_bytes {
                let Some((_, oldest)) = lru.order.pop_first() else {
                    break;
                };
                if let Some((old, _)) = lru.entries.remove(&oldest) {
                    lru.bytes = lru.bytes.saturating_sub(old.bytes() + oldest.0.len());
                }
            }
            lru.bytes += size;
            lru.order.insert(tick, key.clone());
            lru.entries.insert(key, (Arc::clone(&value), tick));
        });
        value
    }

    /// The value for `key`: kept, or made by `make` and kept. No key: made, not kept.
    pub(crate) fn get_or_make(
        &self,
        key: Option<Key>,
        make: impl FnOnce() -> Result<V>,
    ) -> Result<Arc<V>> {
        match key {
            Some(key) => match self.get(&key) {
                Some(hit) => Ok(hit),
                None => Ok(self.put(key, make()?)),
            },
            None => make().map(Arc::new),
        }
    }
}

static FRAGMENTS: Store<Fragment> = Store::new(MAX_BYTES, MAX_ENTRY_BYTES);

/// The fragment kept for `key`, if any (and it becomes the most recently used).
pub(crate) fn get(key: &Key) -> Option<Arc<Fragment>> {
    FRAGMENTS.get(key)
}

/// Keeps `fragment` under `key` (unless it is too large), dropping the least recently used
/// past the budget; gives it back to be shown.
pub(crate) fn put(key: Key, fragment: Fragment) -> Arc<Fragment> {
    FRAGMENTS.put(key, fragment)
}

/// The fragment for `key`: kept, or made by `make` and kept. No key: made, not kept.
pub(crate) fn fragment(
    key: Option<Key>,
    make: impl FnOnce() -> Result<Fragment>,
) -> Result<Arc<Fragment>> {
    FRAGMENTS.get_or_make(key, make)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_every_part_whole() {
        let a = Key(Vec::new()).part("ab").part("c");
        let b = Key(Vec::new()).part("a").part("bc");
        assert!(a != b, "parts are length-prefixed");
        assert!(a == Key(Vec::new()).part("ab").part("c"));
    }

    #[test]
    fn fill_puts_the_fragment_at_the_mark() {
        let f = Fragment {
            title: String::new(),
            html: "<p>x</p>".into(),
        };
        assert_eq!(f.fill(&format!("a{MARK}b")).unwrap(), "a<p>x</p>b");
        assert!(f.fill("no mark").is_err());
    }

    #[test]
    fn the_least_recently_used_go_first_past_the_budget() {
        let big = |n: u8| Fragment {
            title: String::new(),
            html: "x".repeat(MAX_ENTRY_BYTES - 100 + usize::from(n)),
        };
        let key = |n: u32| Key(Vec::new()).part("lru-test").part(n.to_le_bytes());
        let fits = MAX_BYTES / MAX_ENTRY_BYTES;
        for n in 0..fits as u32 {
            put(key(n), big(0));
        }
        // 0 used again: 1 is now the least recently used.
        assert!(get(&key(0)).is_some());
        put(key(1000), big(1));
        assert!(get(&key(0)).is_some(), "recently used is kept");
        assert!(get(&key(1)).is_none(), "least recently used is dropped");
        let bytes = FRAGMENTS.with(|lru| lru.bytes);
        assert!(bytes <= MAX_BYTES, "{bytes}");
        // Too large to keep: given back, not kept.
        let huge = Fragment {
            title: String::new(),
            html: "y".repeat(MAX_ENTRY_BYTES + 1),
        };
        put(key(2000), huge);
        assert!(get(&key(2000)).is_none());
    }
}
