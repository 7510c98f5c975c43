//! Atom feeds (RFC 4287): `GET feeds/commits/{ref}.atom`, a branch's (or tag's) newest commits,
//! and `GET feeds/tags.atom`, the newest tags. Feed readers cannot sign in with a form, so these
//! rows take a personal access token by HTTP Basic as well as the session cookie (`app::feed`);
//! the handlers here only write the XML. Every URL in a feed is absolute, on the site's address
//! (`base_url`, as the clone box's), and every text is XML-escaped with the characters XML
//! cannot hold removed.

use askama::Template;

use super::cache::{self, Fragment, Key};
use super::repo_head::{git_err, open, refs_of, FeedLink};
use super::PageCall;
use crate::error::{Error, Result};
use crate::git::browse::{self};
use crate::git::{RepoDir, Visibility};
use crate::response::{Answer, Response};
use crate::site::Site;
use crate::time::date;
use crate::urls::{browse_url, commit_feed_url, repo_tab_url, repo_url, tags_feed_url};

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

/// `GET feeds/commits/{ref}.atom`. Kept like a history page, once per commit the ref resolved
/// to and the ref's name.
pub(crate) fn commits<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let repo = c.repo()?;
    let segments = c.rest_bytes();
    let name = std::str::from_utf8(&segments.join(&b'/'))
        .map_err(|_| Error::NotFound)?
        .to_string();
    let rev = name.strip_suffix(SUFFIX).ok_or(Error::NotFound)?;
    let git = open(repo)?;
    let at = browse::resolve_ref(&git, rev).map_err(git_err(repo))?;
    let key = Key::new(site, "feed-commits", repo).map(|k| {
        k.part(at.commit.as_bytes())
            .part(at.name.as_bytes())
            .part(&site.config.base_url)
    });
    let fragment = cache::fragment(key, || commits_xml(site, &git, repo, &at))?;
    Ok(answer(repo, &fragment.fill(cache::MARK)?).into())
}

/// The commits feed of `at`, as a fragment the pages' cache can keep.
fn commits_xml(
    site: &Site,
    git: &git2::Repository,
    repo: &RepoDir,
    at: &browse::ResolvedRef,
) -> Result<Fragment> {
    let log = browse::log(git, at.commit, "", 0, FEED_ENTRIES).map_err(git_err(repo))?;
    let base_url = &site.config.base_url;
    let title = format!("Commits on {} \u{b7} {}/{}", at.name, repo.owner, repo.name);
    let mut feed = FeedXml::new(
        &title,
        &commit_feed_url(base_url, &repo.owner, &repo.name, &at.name),
        &browse_url(base_url, &repo.owner, &repo.name, "commits", &at.name, ""),
        log.commits.first().map_or(0, |c| c.committer_time),
    );
    for summary in &log.commits {
        let url = format!(
            "{}/commit/{}",
            repo_url(base_url, &repo.owner, &repo.name),
            summary.id
        );
        // The whole message as the entry's text; its first line is the title.
        let message = browse::message(git, summary.id).map_err(git_err(repo))?;
        feed.entry(
            &url,
            &summary.summary,
            summary.committer_time,
            &summary.author.name,
            &url,
            message.trim_end(),
        );
    }
    Fragment::render(title, &feed)
}

/// `GET feeds/tags.atom`.
pub(crate) fn tags<'s>(site: &'s Site, c: &PageCall<'_>) -> Result<Answer<'s>> {
    let repo = c.repo()?;
    let git = open(repo)?;
    let snap = refs_of(repo)?;
    let list = browse::tags(&git, &snap, 0, FEED_ENTRIES).map_err(git_err(repo))?;
    let base_url = &site.config.base_url;
    let mut feed = FeedXml::new(
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
        feed.entry(&id, &tag.name, tag.time, &author, &url, &content);
    }
    let xml = feed
        .render()
        .map_err(|e| Error::internal("rendering a feed", e))?;
    Ok(answer(repo, &xml).into())
}

/// One entry of a feed, its text made fit for XML ([`xml_text`]); the template escapes it.
struct Entry {
    /// A URL that names the entry for good.
    id: String,
    title: String,
    updated: String,
    author: String,
    link: String,
    content: String,
}

/// An Atom document (`feed.xml`).
#[derive(Template)]
#[template(path = "feed.xml")]
struct FeedXml {
    title: String,
    self_url: String,
    page_url: String,
    updated: String,
    entries: Vec<Entry>,
}

impl FeedXml {
    fn new(title: &str, self_url: &str, page_url: &str, updated: i64) -> FeedXml {
        FeedXml {
            title: xml_text(title),
            self_url: xml_text(self_url),
            page_url: xml_text(page_url),
            updated: rfc3339(updated),
            entries: Vec::new(),
        }
    }

    fn entry(
        &mut self,
        id: &str,
        title: &str,
        updated: i64,
        author: &str,
        link: &str,
        content: &str,
    ) {
        // Atom requires an author's name; a commit may have an empty one.
        let author = if author.trim().is_empty() {
            "unknown"
        } else {
            author
        };
        self.entries.push(Entry {
            id: xml_text(id),
            title: xml_text(title),
            updated: rfc3339(updated),
            author: xml_text(author),
            link: xml_text(link),
            content: xml_text(content),
        });
    }
}

/// The feed as the client gets it: XML, kept by no shared cache when the repository is private.
fn answer(repo: &RepoDir, xml: &str) -> Response {
    let mut r = Response::bytes(
        200,
        "application/atom+xml; charset=utf-8",
        xml.as_bytes().to_vec(),
    );
    if repo.settings().visibility == Visibility::Private {
        r.no_store();
    } else {
        r.no_cache();
    }
    r
}

/// Text for XML: every character XML 1.0 cannot hold (controls other than tab, newline and
/// carriage return, U+FFFE, U+FFFF) removed, since a commit message may hold any of them and a
/// reader refuses a feed with one. The template escapes the rest (`&`, `<`, `>`, quotes).
fn xml_text(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
        })
        .collect()
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
    fn what_xml_forbids_is_removed_and_the_rest_escaped() {
        assert_eq!(
            xml_text("a <b> & \u{0}\u{1b}[31m\u{7}\te\r\n\u{fffe}\u{ffff}f"),
            "a <b> & [31m\te\r\nf"
        );
        // U+0085 and U+007F are allowed in XML 1.0 (only discouraged), and kept.
        assert_eq!(xml_text("x\u{7f}\u{85}y"), "x\u{7f}\u{85}y");
        let mut feed = FeedXml::new("t <&>", "https://e.com/a?b=1&c=2", "https://e.com/p", 0);
        feed.entry("i", "\"q\" 'a' \u{1}", 0, " ", "l", "");
        let xml = feed.render().unwrap();
        assert!(xml.contains("<title>t &#60;&#38;&#62;</title>"), "{xml}");
        assert!(
            xml.contains("href=\"https://e.com/a?b=1&#38;c=2\""),
            "{xml}"
        );
        assert!(
            xml.contains("<title>&#34;q&#34; &#39;a&#39; </title>"),
            "{xml}"
        );
        assert!(
            xml.contains("<author><name>unknown</name></author>"),
            "{xml}"
        );
        assert!(!xml.contains("<content"), "{xml}");
    }

    #[test]
    fn dates_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_710_000_007), "2024-03-09T16:00:07Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
