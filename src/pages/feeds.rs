//! Atom feeds (RFC 4287): `GET feeds/commits/{ref}.atom`, a branch's (or tag's) newest commits,
//! and `GET feeds/tags.atom`, the newest tags. Feed readers cannot sign in with a form, so these
//! rows take a personal access token by HTTP Basic as well as the session cookie (`app::feed`);
//! the handlers here only write the XML. Every URL in a feed is absolute, on the site's address
//! (`base_url`, as the clone box's), and every text is XML-escaped with the characters XML
//! cannot hold removed.

use std::fmt::Write as _;

use super::repo_head::{git_err, open, refs_of, FeedLink};
use super::PageCall;
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::git::{RepoDir, Visibility};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;
use crate::urls::{browse_url, commit_feed_url, repo_tab_url, tags_feed_url};

/// Entries in a feed: the newest, as many as a page of history lists.
pub(crate) const FEED_ENTRIES: usize = browse::LOG_PAGE_SIZE;

/// The suffix of a commits feed's last segment: `feeds/commits/main.atom` is the branch `main`,
/// `feeds/commits/x.atom.atom` the branch `x.atom` (only the last `.atom` is taken off).
const SUFFIX: &str = ".atom";

/// The feed a commits page links to, for the ref it shows.
pub(crate) fn commits_link(site: &Site, repo: &RepoDir, rev: &str) -> FeedLink {
    FeedLink {
        title: format!("Commits on {rev} \u{b7} {}/{}", repo.owner, repo.name),
        url: commit_feed_url(&site.config.base_path, &repo.owner, &repo.name, rev),
    }
}

/// The feed the tags page links to.
pub(crate) fn tags_link(site: &Site, repo: &RepoDir) -> FeedLink {
    FeedLink {
        title: format!("Tags \u{b7} {}/{}", repo.owner, repo.name),
        url: tags_feed_url(&site.config.base_path, &repo.owner, &repo.name),
    }
}

/// `GET feeds/commits/{ref}.atom`.
pub(crate) fn commits<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let repo = c.repo()?;
    let segments = c.rest_bytes();
    let mut name = Vec::new();
    for (i, seg) in segments.iter().enumerate() {
        if i > 0 {
            name.push(b'/');
        }
        name.extend_from_slice(seg);
    }
    let name = std::str::from_utf8(&name).map_err(|_| Error::NotFound)?;
    let rev = name.strip_suffix(SUFFIX).ok_or(Error::NotFound)?;
    let git = open(repo)?;
    let at = browse::resolve_ref(&git, rev).map_err(git_err(repo))?;
    let log = browse::log(&git, at.commit, "", 0, FEED_ENTRIES).map_err(git_err(repo))?;
    let base_url = &site.config.base_url;
    let mut feed = Feed::new(
        &format!("Commits on {} \u{b7} {}/{}", at.name, repo.owner, repo.name),
        &commit_feed_url(base_url, &repo.owner, &repo.name, &at.name),
        &browse_url(base_url, &repo.owner, &repo.name, "commits", &at.name, ""),
        log.commits.first().map_or(0, |c| c.committer_time),
    );
    for summary in &log.commits {
        let url = format!(
            "{}/commit/{}",
            crate::urls::repo_url(base_url, &repo.owner, &repo.name),
            summary.id
        );
        // The whole message as the entry's text; its first line is the title.
        let message = browse::message(&git, summary.id).map_err(git_err(repo))?;
        feed.entry(Entry {
            id: &url,
            title: &summary.summary,
            updated: summary.committer_time,
            author: &summary.author.name,
            link: &url,
            content: message.trim_end(),
        });
    }
    Ok(feed.finish(repo).into())
}

/// `GET feeds/tags.atom`.
pub(crate) fn tags<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let repo = c.repo()?;
    let git = open(repo)?;
    let snap = refs_of(repo)?;
    let list = browse::tags(&git, &snap, 0, FEED_ENTRIES).map_err(git_err(repo))?;
    let base_url = &site.config.base_url;
    let mut feed = Feed::new(
        &format!("Tags \u{b7} {}/{}", repo.owner, repo.name),
        &tags_feed_url(base_url, &repo.owner, &repo.name),
        &repo_tab_url(base_url, &repo.owner, &repo.name, "tags"),
        list.items.first().map_or(0, |t| t.time),
    );
    for tag in &list.items {
        let url = browse_url(base_url, &repo.owner, &repo.name, "tree", &tag.rev, "");
        // An annotated tag's own message and tagger; a lightweight one's commit's.
        let (author, content) = match (&tag.annotation, &tag.commit) {
            (Some(a), commit) => (
                a.tagger
                    .as_ref()
                    .map(|t| t.name.clone())
                    .or_else(|| commit.as_ref().map(|c| c.author.name.clone()))
                    .unwrap_or_default(),
                a.message.trim_end().to_string(),
            ),
            (None, Some(c)) => (c.author.name.clone(), c.summary.clone()),
            (None, None) => (String::new(), String::new()),
        };
        // The tag's object too: a tag deleted and made again elsewhere is a new entry.
        let id = format!(
            "{url}#{}",
            tag.annotation.as_ref().map_or(tag.target, |a| a.id)
        );
        feed.entry(Entry {
            id: &id,
            title: &tag.name,
            updated: tag.time,
            author: &author,
            link: &url,
            content: &content,
        });
    }
    Ok(feed.finish(repo).into())
}

/// One entry of a feed.
struct Entry<'a> {
    /// A URL that names the entry for good.
    id: &'a str,
    title: &'a str,
    updated: i64,
    author: &'a str,
    link: &'a str,
    content: &'a str,
}

/// An Atom document being written.
struct Feed {
    xml: String,
}

impl Feed {
    fn new(title: &str, self_url: &str, page_url: &str, updated: i64) -> Feed {
        let mut xml = String::from(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n",
        );
        let _ = writeln!(xml, "<id>{}</id>", escape(self_url));
        let _ = writeln!(xml, "<title>{}</title>", escape(title));
        let _ = writeln!(xml, "<updated>{}</updated>", rfc3339(updated));
        let _ = writeln!(
            xml,
            "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>",
            escape(self_url)
        );
        let _ = writeln!(
            xml,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            escape(page_url)
        );
        Feed { xml }
    }

    fn entry(&mut self, e: Entry<'_>) {
        let xml = &mut self.xml;
        xml.push_str("<entry>\n");
        let _ = writeln!(xml, "<id>{}</id>", escape(e.id));
        let _ = writeln!(xml, "<title>{}</title>", escape(e.title));
        let _ = writeln!(xml, "<updated>{}</updated>", rfc3339(e.updated));
        // Atom requires an author's name; a commit may have an empty one.
        let author = if e.author.trim().is_empty() {
            "unknown"
        } else {
            e.author
        };
        let _ = writeln!(xml, "<author><name>{}</name></author>", escape(author));
        let _ = writeln!(
            xml,
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>",
            escape(e.link)
        );
        if !e.content.is_empty() {
            let _ = writeln!(
                xml,
                "<content type=\"text\">{}</content>",
                escape(e.content)
            );
        }
        xml.push_str("</entry>\n");
    }

    fn finish(mut self, repo: &RepoDir) -> Response {
        self.xml.push_str("</feed>\n");
        let mut r = Response::bytes(
            200,
            "application/atom+xml; charset=utf-8",
            self.xml.into_bytes(),
        );
        // A private repository's feed is for its reader only: kept by no cache.
        if repo.settings().visibility == Visibility::Private {
            r.no_store();
        } else {
            r.no_cache();
        }
        r
    }
}

/// Text for XML content or a double-quoted attribute: `&`, `<`, `>`, `"` and `'` escaped, and
/// every character XML 1.0 cannot hold (controls other than tab, newline and carriage return,
/// U+FFFE, U+FFFF) removed: a commit message may hold any of them, and a reader refuses a feed
/// with one.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// An RFC 3339 time in UTC, as Atom's dates are written: `2024-03-09T16:00:07Z`.
fn rfc3339(unix: i64) -> String {
    let minutes = date(unix, 0).replacen(' ', "T", 1);
    format!("{minutes}:{:02}Z", unix.rem_euclid(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_what_xml_forbids_is_removed() {
        assert_eq!(
            escape("a <b> & \"c\" 'd'\u{0}\u{1b}[31m\u{7}\te\r\n\u{fffe}\u{ffff}f"),
            "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;[31m\te\r\nf"
        );
        // U+0085 and U+007F are allowed in XML 1.0 (only discouraged), and kept.
        assert_eq!(escape("x\u{7f}\u{85}y"), "x\u{7f}\u{85}y");
    }

    #[test]
    fn dates_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_710_000_007), "2024-03-09T16:00:07Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
