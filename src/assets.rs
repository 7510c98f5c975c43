//! The stylesheet and the script the pages use.

/// The stylesheet and the script, embedded so an upgrade never mixes old pages with new assets,
/// and served under names that change with their content, so they can be cached forever.
pub(crate) const CSS: &str = include_str!("../static/forgelet.css");
pub(crate) const JS: &str = include_str!("../static/forgelet.js");

/// The embedded assets' content-hashed names, computed once at start.
pub(crate) struct Assets {
    pub(crate) css_name: String,
    pub(crate) js_name: String,
}

impl Assets {
    pub(crate) fn new() -> Assets {
        let name = |stem: &str, ext: &str, text: &str| {
            let hash = crate::keyed::keyed_hash(b"forgelet-static", ext, text.as_bytes());
            format!("{stem}-{}.{ext}", &hash[..12])
        };
        Assets {
            css_name: name("forgelet", "css", CSS),
            js_name: name("forgelet", "js", JS),
        }
    }
}

impl Default for Assets {
    fn default() -> Assets {
        Assets::new()
    }
}
