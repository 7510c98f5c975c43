//! Markup forgelet turns into HTML itself: Markdown (READMEs) and highlighted code (files and diff
//! lines). The HTML these renderers make is the only HTML a page inserts without escaping it, and
//! [`TrustedHtml`] says so in the types: only the renderers in this module can make one, and it is
//! the only value a template prints unescaped (`|safe`; the architecture test holds templates to
//! that).

pub(crate) mod highlight;
pub(crate) mod markdown;

use std::fmt;

/// HTML made by one of this module's renderers from escaped parts. It has no constructor outside
/// this module, so no page can pass a string of its own off as trusted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TrustedHtml(String);

impl TrustedHtml {
    /// For the renderers below this module only.
    fn new(html: String) -> TrustedHtml {
        TrustedHtml(html)
    }
}

impl fmt::Display for TrustedHtml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
