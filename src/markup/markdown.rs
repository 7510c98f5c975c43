//! README rendering: Markdown to HTML that is safe to insert into a page. This is the one place in
//! forgelet that turns user content into raw HTML: pulldown-cmark writes the Markdown as HTML (raw
//! HTML in the README included, as GitHub renders it), and the whole of that is then parsed and
//! rebuilt by ammonia from an allowlist, so what reaches the page is only what the list below names.
//!
//! What the sanitizer keeps (see [`sanitizer`]):
//! - Elements a README uses for layout and text: paragraphs and headings (with `align`, for centred
//!   logos), `<img>`, `<a>`, `<details>`/`<summary>`, tables, lists, `<br>`, `<sub>`, `<sup>`,
//!   `<kbd>`, `<picture>` and the like. Everything else (`<script>` and `<style>` with their content;
//!   `<iframe>`, `<form>`, `<button>`, `<base>`, `<meta>`, `<link>`, `<svg>`, `<object>` without
//!   their tag) is dropped; comments too.
//! - No `style` (the page's Content-Security-Policy would block it anyway; table alignment is
//!   written as `align`), no event handlers, no `data-` attributes (the page's script reads one), no
//!   `target`, no `form` or other attribute that could reach the page's own elements. Classes only
//!   from the few the renderer itself writes (`language-…`, `markdown-alert-…`, `footnote-…`,
//!   `anchor`), so a README cannot dress up as the page's own parts.
//! - Every `id` and `name` gets the prefix `user-content-` (unless it has it already), so a README
//!   cannot take over an element of the page (`id="csrf"`, `name="next"`); a same-page link
//!   `#install` is rewritten to `#user-content-install` so it still reaches its heading.
//! - Checkboxes (task lists) only as disabled checkboxes: every `<input>` is made one.
//! - Every `<a href>` and `<img src>`, whether written in Markdown or in raw HTML, goes through
//!   [`resolve`], which allows only `http:`, `https:`, `mailto:` (links only) and relative URLs. A
//!   URL with any other scheme (`javascript:`, `data:` images included, as on GitHub, `vbscript:`,
//!   `file:`, …) is dropped: a Markdown link keeps its text as plain text, a Markdown image shows its
//!   alt text, and a raw HTML element loses the attribute. The scheme is looked for after removing
//!   every ASCII space and control character, case-insensitively, so `java\tscript:` and
//!   ` JAVASCRIPT:` are caught.
//! - Relative URLs resolve inside the repository (see [`Context`]): `./` and `../` are normalised and
//!   clamped at the repository root, a leading `/` means the repository root (as on GitHub), a
//!   trailing `/` (or a path ending in `.`/`..`) opens the tree page, anything else the blob page;
//!   image sources load from raw. `//host/path` (or `\\host`) is taken as `https://host/path`.
//! - Every link gets `rel="nofollow noopener noreferrer"`: a README's links are its author's, not
//!   the site's.
//! - Every URL is percent-encoded where it is not URL-safe (controls, space, quotes, `<`, `>`, `\`,
//!   non-ASCII, a `%` not starting an escape) and then HTML-escaped, so it cannot leave its attribute.
//! - Headings get GitHub-style ids (`user-content-getting-started`, a repeated heading `-1`, `-2`)
//!   and an anchor link to themselves. Footnote ids get the same prefix.
//! - Extensions: tables, strikethrough, task lists, footnotes, GFM alerts (`> [!NOTE]`). Heading
//!   attributes (`{#id .class attr=x}`) stay off: they would let a README set attributes.
//!
//! pulldown-cmark is linear in practice, and so is everything here (one pass over the events, one
//! hash lookup per heading, and ammonia's parse and walk, which use no recursion, so a deeply nested
//! README cannot exhaust a worker's stack), so a README at the caller's size cap renders quickly.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use pulldown_cmark::{
    Alignment, CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd,
};

use super::TrustedHtml;

/// Where the README lives, for resolving relative links and images.
///
/// The three bases are the URL prefixes of the repository's *root* at the ref being shown, already
/// URL-encoded by the caller (a branch name with `#`, `?` or `%` must arrive encoded), with or without
/// a trailing `/`. They cannot include the README's directory because refs may contain `/`, so the
/// root could not be found again for `..` and `/` links: the directory goes in `dir` instead.
pub(crate) struct Context<'a> {
    /// e.g. "/git/alice/proj/blob/main": links to files open the blob page.
    pub(crate) blob_base: &'a str,
    /// e.g. "/git/alice/proj/tree/main": links ending in `/` (directories) open the tree page.
    /// A link cannot be known to name a directory otherwise, so without the `/` it goes to blob.
    pub(crate) tree_base: &'a str,
    /// e.g. "/git/alice/proj/raw/main": relative images load from raw.
    pub(crate) raw_base: &'a str,
    /// The README's directory inside the repository, `/`-separated and not URL-encoded: "" for a
    /// README at the root, "docs" for docs/README.md. Relative links start from here.
    pub(crate) dir: &'a [u8],
}

/// Renders Markdown to HTML that is safe to insert into a page: the one place in forgelet that
/// produces raw HTML from user content.
pub(crate) fn render(markdown: &str, ctx: &Context) -> TrustedHtml {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_GFM;
    let mut renderer = Renderer {
        ctx,
        out: Vec::new(),
        links: Vec::new(),
        image: None,
        heading: None,
        ids: HashSet::new(),
        id_counts: HashMap::new(),
        table: Table::default(),
    };
    for event in Parser::new_ext(markdown, options) {
        renderer.event(event);
    }
    let mut html = String::with_capacity(markdown.len() + markdown.len() / 2);
    pulldown_cmark::html::push_html(&mut html, renderer.out.into_iter());
    TrustedHtml::new(sanitizer(ctx).clean(&html).to_string())
}

/// Elements a README may use; anything else is dropped (its content kept, as text and allowed
/// elements), except [`DROPPED_WITH_CONTENT`].
const ELEMENTS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "bdi",
    "bdo",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "details",
    "dfn",
    "div",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "input",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "picture",
    "pre",
    "q",
    "rp",
    "rt",
    "ruby",
    "s",
    "samp",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "summary",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "tt",
    "u",
    "ul",
    "var",
    "wbr",
];
/// Elements dropped with everything inside them: their content is code or style, not text.
const DROPPED_WITH_CONTENT: &[&str] = &["script", "style", "template", "noscript", "title"];
/// Attributes any allowed element may have (`id` and `class` are rewritten by [`attribute`]).
const GENERIC_ATTRIBUTES: &[&str] = &["id", "class", "title", "lang", "dir", "align"];
/// Attributes of particular elements.
const ELEMENT_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "name"]),
    ("img", &["src", "alt", "width", "height", "loading"]),
    ("details", &["open"]),
    ("td", &["colspan", "rowspan", "valign"]),
    ("th", &["colspan", "rowspan", "valign", "scope"]),
    ("col", &["span"]),
    ("colgroup", &["span"]),
    ("ol", &["start", "type", "reversed"]),
    ("li", &["value"]),
    ("input", &["type", "checked", "disabled"]),
    ("time", &["datetime"]),
];
/// Classes a README keeps: those the renderer writes, by prefix, and `anchor`.
const CLASS_PREFIXES: &[&str] = &["language-", "markdown-alert-", "footnote-"];

/// The allowlist the rendered HTML is rebuilt from, with this README's URL resolution.
fn sanitizer(ctx: &Context) -> ammonia::Builder<'static> {
    let mut builder = ammonia::Builder::empty();
    builder
        .tags(ELEMENTS.iter().copied().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .tag_attributes(
            ELEMENT_ATTRIBUTES
                .iter()
                .map(|(element, names)| (*element, names.iter().copied().collect()))
                .collect(),
        )
        // A checkbox that cannot be ticked is all a README gets of a form.
        .set_tag_attribute_value("input", "type", "checkbox")
        .set_tag_attribute_value("input", "disabled", "")
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::PassThrough)
        .link_rel(Some(EXTERNAL_REL))
        .strip_comments(true);
    let bases = Bases {
        blob: ctx.blob_base.to_string(),
        tree: ctx.tree_base.to_string(),
        raw: ctx.raw_base.to_string(),
        dir: ctx.dir.to_vec(),
    };
    builder.attribute_filter(move |element, name, value| attribute(&bases, element, name, value));
    builder
}

/// An owned [`Context`], for the sanitizer's attribute filter, which must own what it uses.
struct Bases {
    blob: String,
    tree: String,
    raw: String,
    dir: Vec<u8>,
}

/// An allowed attribute's value as the page gets it, or None to drop the attribute.
fn attribute<'v>(bases: &Bases, element: &str, name: &str, value: &'v str) -> Option<Cow<'v, str>> {
    let ctx = Context {
        blob_base: &bases.blob,
        tree_base: &bases.tree,
        raw_base: &bases.raw,
        dir: &bases.dir,
    };
    match (element, name) {
        ("a", "href") => resolve(value, Kind::Link, &ctx).map(|url| url.href.into()),
        ("img", "src") => resolve(value, Kind::Image, &ctx).map(|url| url.href.into()),
        (_, "id") | (_, "name") if value.is_empty() => None,
        (_, "id") | (_, "name") if value.starts_with(ID_PREFIX) => Some(value.into()),
        (_, "id") | (_, "name") => Some(format!("{ID_PREFIX}{value}").into()),
        (_, "class") => {
            let kept: Vec<&str> = value
                .split_ascii_whitespace()
                .filter(|class| {
                    *class == "anchor" || CLASS_PREFIXES.iter().any(|p| class.starts_with(p))
                })
                .collect();
            (!kept.is_empty()).then(|| kept.join(" ").into())
        }
        _ => Some(value.into()),
    }
}

/// Prefix of every id the rendered README defines.
const ID_PREFIX: &str = "user-content-";
/// The `rel` of links that leave the site.
const EXTERNAL_REL: &str = "nofollow noopener noreferrer";

/// Rewrites the parser's events into ones pulldown-cmark's HTML writer may print as they are.
struct Renderer<'a, 'c> {
    ctx: &'c Context<'c>,
    out: Vec<Event<'a>>,
    /// One entry per open link: whether an `<a>` was written for it (and so needs a `</a>`).
    links: Vec<bool>,
    /// The image whose alt text is being collected.
    image: Option<PendingImage<'a>>,
    /// The open heading: its start event's index in `out` and its text so far.
    heading: Option<(usize, String)>,
    /// Heading ids given out so far, and per slug how many times it was asked for.
    ids: HashSet<String>,
    id_counts: HashMap<String, usize>,
    /// The table being written, for its cells' alignment.
    table: Table,
}

/// Where the renderer is in a table: pulldown-cmark's writer would align cells with `style`, which
/// the page's Content-Security-Policy blocks (and the sanitizer drops), so cells are written here
/// with `align`.
#[derive(Default)]
struct Table {
    alignments: Vec<Alignment>,
    head: bool,
    column: usize,
}

struct PendingImage<'a> {
    src: CowStr<'a>,
    title: CowStr<'a>,
    alt: String,
    /// Images nested in the alt text (`![a ![b](c)](d)`), whose ends are not this image's end.
    depth: usize,
}

/// What a URL is for: links may be `mailto:`, same-page `#…` or `?…`; images may not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Link,
    Image,
}

impl<'a> Renderer<'a, '_> {
    fn event(&mut self, event: Event<'a>) {
        if let Some(image) = &mut self.image {
            // Inside an image everything is alt text, as pulldown-cmark's own writer does it.
            match event {
                Event::Start(Tag::Image { .. }) => image.depth += 1,
                Event::End(TagEnd::Image) if image.depth > 0 => image.depth -= 1,
                Event::End(TagEnd::Image) => self.finish_image(),
                Event::Text(text)
                | Event::Code(text)
                | Event::Html(text)
                | Event::InlineHtml(text)
                | Event::InlineMath(text)
                | Event::DisplayMath(text) => image.alt.push_str(&text),
                Event::SoftBreak | Event::HardBreak => image.alt.push(' '),
                _ => {}
            }
            return;
        }
        if let Some((_, text)) = &mut self.heading {
            // Tags are not part of a heading's name, as on GitHub.
            if let Event::Text(t) | Event::Code(t) = &event {
                text.push_str(t);
            }
        }
        match event {
            // Raw HTML goes out as it is written: the sanitizer rebuilds all of the output.
            Event::Start(Tag::Table(alignments)) => {
                self.table = Table {
                    alignments: alignments.to_vec(),
                    head: false,
                    column: 0,
                };
                self.out.push(Event::Start(Tag::Table(Vec::new())));
            }
            Event::Start(Tag::TableHead) => {
                self.table.head = true;
                self.table.column = 0;
                self.out.push(Event::Start(Tag::TableHead));
            }
            Event::End(TagEnd::TableHead) => {
                self.table.head = false;
                self.out.push(Event::End(TagEnd::TableHead));
            }
            Event::Start(Tag::TableRow) => {
                self.table.column = 0;
                self.out.push(Event::Start(Tag::TableRow));
            }
            Event::Start(Tag::TableCell) => {
                let element = if self.table.head { "th" } else { "td" };
                let align = match self.table.alignments.get(self.table.column) {
                    Some(Alignment::Left) => " align=\"left\"",
                    Some(Alignment::Center) => " align=\"center\"",
                    Some(Alignment::Right) => " align=\"right\"",
                    _ => "",
                };
                self.out
                    .push(Event::InlineHtml(format!("<{element}{align}>").into()));
            }
            Event::End(TagEnd::TableCell) => {
                let element = if self.table.head { "th" } else { "td" };
                self.table.column += 1;
                self.out
                    .push(Event::InlineHtml(format!("</{element}>").into()));
            }
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let lang = code_language(&info);
                self.out
                    .push(Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(
                        lang.into(),
                    ))));
            }
            Event::Start(Tag::Heading { level, .. }) => {
                self.heading = Some((self.out.len(), String::new()));
                self.out.push(Event::Start(Tag::Heading {
                    level,
                    id: None,
                    classes: Vec::new(),
                    attrs: Vec::new(),
                }));
            }
            Event::End(TagEnd::Heading(level)) => {
                if let Some((index, text)) = self.heading.take() {
                    if let Some(id) = self.heading_id(&text) {
                        // A link to the heading itself, for its address (the sanitizer adds the
                        // prefix to both, as to every id and same-page link).
                        let mut anchor = String::from(" <a class=\"anchor\" href=\"#");
                        escape_attr(&mut anchor, &id);
                        anchor.push_str("\" title=\"Link to this section\">#</a>");
                        self.out.push(Event::InlineHtml(anchor.into()));
                        if let Some(Event::Start(Tag::Heading { id: slot, .. })) =
                            self.out.get_mut(index)
                        {
                            *slot = Some(id.into());
                        }
                    }
                }
                self.out.push(Event::End(TagEnd::Heading(level)));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                ..
            }) => {
                let dest = if link_type == LinkType::Email {
                    CowStr::from(format!("mailto:{dest_url}"))
                } else {
                    dest_url
                };
                // The URL as written: the sanitizer resolves every link, Markdown's and raw
                // HTML's alike; one it would refuse is not written at all.
                match resolve(&dest, Kind::Link, self.ctx) {
                    Some(_) => {
                        let mut a = String::from("<a href=\"");
                        escape_attr(&mut a, &dest);
                        a.push('"');
                        if !title.is_empty() {
                            a.push_str(" title=\"");
                            escape_attr(&mut a, &title);
                            a.push('"');
                        }
                        a.push('>');
                        self.out.push(Event::InlineHtml(a.into()));
                        self.links.push(true);
                    }
                    // A refused link keeps its text, as plain text.
                    None => self.links.push(false),
                }
            }
            Event::End(TagEnd::Link) => {
                if self.links.pop() == Some(true) {
                    self.out.push(Event::InlineHtml("</a>".into()));
                }
            }
            Event::Start(Tag::Image {
                dest_url, title, ..
            }) => {
                self.image = Some(PendingImage {
                    src: dest_url,
                    title,
                    alt: String::new(),
                    depth: 0,
                });
            }
            Event::FootnoteReference(label) => {
                self.out.push(Event::FootnoteReference(footnote_id(&label)))
            }
            Event::Start(Tag::FootnoteDefinition(label)) => self
                .out
                .push(Event::Start(Tag::FootnoteDefinition(footnote_id(&label)))),
            // Not enabled, so not expected; written safely anyway (pulldown-cmark escapes them).
            Event::Start(Tag::MetadataBlock(_)) | Event::End(TagEnd::MetadataBlock(_)) => {}
            other => self.out.push(other),
        }
    }

    /// Writes the image being collected: an `<img>` if its source is allowed, else its alt text.
    fn finish_image(&mut self) {
        let Some(image) = self.image.take() else {
            return;
        };
        match resolve(&image.src, Kind::Image, self.ctx) {
            Some(_) => {
                let mut img = String::from("<img src=\"");
                escape_attr(&mut img, &image.src);
                img.push_str("\" alt=\"");
                escape_attr(&mut img, &image.alt);
                img.push('"');
                if !image.title.is_empty() {
                    img.push_str(" title=\"");
                    escape_attr(&mut img, &image.title);
                    img.push('"');
                }
                img.push_str(" loading=\"lazy\">");
                self.out.push(Event::InlineHtml(img.into()));
            }
            None => self.out.push(Event::Text(image.alt.into())),
        }
    }

    /// A unique GitHub-style id (the sanitizer prefixes it) for a heading with this text; None if it has no letters.
    fn heading_id(&mut self, text: &str) -> Option<String> {
        let slug = slug(text);
        if slug.is_empty() {
            return None;
        }
        let count = self.id_counts.entry(slug.clone()).or_insert(0);
        loop {
            let candidate = if *count == 0 {
                slug.clone()
            } else {
                format!("{slug}-{count}")
            };
            *count += 1;
            if self.ids.insert(candidate.clone()) {
                return Some(candidate);
            }
        }
    }
}

/// GitHub's heading slug: lower case, letters, digits, `-` and `_` kept, spaces made `-`, the rest
/// dropped.
fn slug(text: &str) -> String {
    text.trim()
        .chars()
        .flat_map(char::to_lowercase)
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// A footnote's id (the sanitizer prefixes it, and the links to it).
fn footnote_id(label: &str) -> CowStr<'static> {
    format!("fn-{label}").into()
}

/// The language of a fenced code block's info string, reduced to characters a class name can hold.
fn code_language(info: &str) -> String {
    info.split(|c: char| c.is_ascii_whitespace() || c == ',' || c == '{')
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.' | '#'))
        .take(40)
        .collect()
}

/// A URL that may be written into the page.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    /// Percent-encoded where not URL-safe; still to be HTML-escaped.
    href: String,
}

/// Decides where a link or image URL from the README goes, or None if it must not be followed.
fn resolve(raw: &str, kind: Kind, ctx: &Context) -> Option<Url> {
    // What a browser does first: tabs and newlines vanish anywhere, controls and spaces at the ends.
    let no_breaks: String = raw
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let url = no_breaks.trim_matches(|c: char| c <= ' ' || c == '\x7f');
    // The scheme is looked for with every ASCII space and control character gone, which is stricter
    // than any browser: `java\x01script:` is refused too.
    let compact: String = url
        .chars()
        .filter(|c| !c.is_ascii_control() && *c != ' ')
        .collect();
    if let Some(scheme) = scheme(&compact) {
        let allowed = match kind {
            Kind::Link => matches!(scheme.as_str(), "http" | "https" | "mailto"),
            Kind::Image => matches!(scheme.as_str(), "http" | "https"),
        };
        // The URL as written must start with that scheme itself (not `ht tp:`).
        let written = url
            .get(..scheme.len() + 1)
            .is_some_and(|s| s.eq_ignore_ascii_case(&format!("{scheme}:")));
        if !allowed || !written {
            return None;
        }
        return Some(Url {
            href: encode_url(url),
        });
    }
    let mut chars = url.chars();
    if let (Some('/' | '\\'), Some('/' | '\\')) = (chars.next(), chars.next()) {
        // Protocol-relative (browsers read `\` as `/` here): taken as https.
        let rest = &url[2..];
        if rest.is_empty() {
            return None;
        }
        return Some(Url {
            href: encode_url(&format!("https://{rest}")),
        });
    }
    if url.is_empty() {
        return None;
    }
    if let Some(fragment) = url.strip_prefix('#') {
        if kind == Kind::Image {
            return None;
        }
        // Same page: to the heading ids, which carry the prefix (footnote links already do).
        let href = if fragment.is_empty() || fragment.starts_with(ID_PREFIX) {
            format!("#{fragment}")
        } else {
            format!("#{ID_PREFIX}{fragment}")
        };
        return Some(Url {
            href: encode_url(&href),
        });
    }
    if url.starts_with('?') {
        if kind == Kind::Image {
            return None;
        }
        return Some(Url {
            href: encode_url(url),
        });
    }
    Some(Url {
        href: encode_url(&resolve_path(url, kind, ctx)),
    })
}

/// The scheme of a URL (lower case), if it has one: letters, digits, `+`, `-` and `.` after a
/// leading letter, up to a `:` that comes before any `/`, `?` or `#`.
fn scheme(url: &str) -> Option<String> {
    let end = url.find([':', '/', '?', '#'])?;
    if !url[end..].starts_with(':') {
        return None;
    }
    let name = &url[..end];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        // Not a scheme: a browser reads this as a relative path, and so do we.
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// Resolves a relative path (with its `?query#fragment`) inside the repository, clamped at its root.
fn resolve_path(url: &str, kind: Kind, ctx: &Context) -> String {
    let split = url.find(['?', '#']).unwrap_or(url.len());
    let (path, suffix) = url.split_at(split);
    let mut segments: Vec<String> = Vec::new();
    if !path.starts_with('/') {
        // The README's directory is a path in the repository, not a URL: encode all of it.
        segments.extend(
            ctx.dir
                .split(|&b| b == b'/')
                .filter(|s| !s.is_empty() && *s != b".")
                .map(encode_segment),
        );
    }
    let mut last = "";
    for part in path.split('/') {
        last = part;
        match dots(part) {
            1 => {}
            2 => {
                // Above the root stays at the root.
                segments.pop();
            }
            _ if part.is_empty() => {}
            _ => segments.push(part.to_string()),
        }
    }
    let directory = last.is_empty() || dots(last) > 0 || segments.is_empty();
    let base = match kind {
        Kind::Image => ctx.raw_base,
        Kind::Link if directory => ctx.tree_base,
        Kind::Link => ctx.blob_base,
    };
    let mut out = base.trim_end_matches('/').to_string();
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    out.push_str(suffix);
    out
}

/// 1 for a `.` segment, 2 for `..`, 0 otherwise; `%2e` counts as a dot, as browsers count it.
fn dots(segment: &str) -> usize {
    let lower = segment.to_ascii_lowercase();
    match lower.as_str() {
        "." | "%2e" => 1,
        ".." | ".%2e" | "%2e." | "%2e%2e" => 2,
        _ => 0,
    }
}

/// Percent-encodes what is not URL-safe in a URL as written: controls, space, non-ASCII, the
/// characters that could end an attribute or a tag (`"`, `'`, `<`, `>`, `` ` ``), `\` (which browsers
/// read as `/`), `{}|^`, and a `%` that does not begin an escape. Escapes already there stay.
fn encode_url(url: &str) -> String {
    let bytes = url.as_bytes();
    let mut out = String::with_capacity(url.len());
    for (i, &b) in bytes.iter().enumerate() {
        let keep = match b {
            b'%' => {
                bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            }
            b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\' | b'{' | b'}' | b'|' | b'^' => false,
            b => b > b' ' && b < 0x7f,
        };
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Percent-encodes a file or directory name for use as one path segment.
fn encode_segment(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'+' | b'@') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Escapes text for a double- or single-quoted HTML attribute value.
fn escape_attr(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: Context<'static> = Context {
        blob_base: "/git/alice/proj/blob/main",
        tree_base: "/git/alice/proj/tree/main",
        raw_base: "/git/alice/proj/raw/main",
        dir: b"",
    };
    /// A README in docs/ on a branch whose name has a slash.
    const DOCS: Context<'static> = Context {
        blob_base: "/git/alice/proj/blob/feature/x",
        tree_base: "/git/alice/proj/tree/feature/x",
        raw_base: "/git/alice/proj/raw/feature/x/",
        dir: b"docs",
    };

    /// The rendered HTML as text.
    fn render(text: &str, ctx: &Context) -> String {
        super::render(text, ctx).to_string()
    }

    fn md(text: &str) -> String {
        render(text, &ROOT)
    }

    /// The href of the first link in the output.
    fn href(html: &str) -> Option<&str> {
        let start = html.find("<a href=\"")? + 9;
        let end = start + html[start..].find('"')?;
        Some(&html[start..end])
    }

    fn src(html: &str) -> Option<&str> {
        let start = html.find("<img src=\"")? + 10;
        let end = start + html[start..].find('"')?;
        Some(&html[start..end])
    }

    fn link_in(text: &str, ctx: &Context) -> Option<String> {
        href(&render(text, ctx)).map(str::to_string)
    }

    #[test]
    fn plain_markdown() {
        assert_eq!(
            md("Hello *world* and **bold** `code`"),
            "<p>Hello <em>world</em> and <strong>bold</strong> <code>code</code></p>\n"
        );
        assert_eq!(md(""), "");
    }

    #[test]
    fn scripts_are_dropped_with_their_content() {
        let html = md("<script>alert(1)</script>\n\ntext <script>alert(2)</script> more");
        assert!(
            !html.contains("<script") && !html.contains("alert"),
            "{html}"
        );
        assert!(html.contains("text  more"), "{html}");
        let html =
            md("<style>body{display:none}</style>\n\n<SCRIPT SRC=//evil.example/x.js></SCRIPT>");
        assert!(
            !html.contains("display") && !html.contains("evil"),
            "{html}"
        );
        assert!(
            !html.contains("<style") && !html.contains("<SCRIPT"),
            "{html}"
        );
    }

    /// What a README's own HTML may be, tag by tag: the hostile parts go, the rest stays.
    #[test]
    fn raw_html_is_sanitized() {
        let cases: &[(&str, &str)] = &[
            ("<img src=x onerror=alert(1)>", "<img src=\"/git/alice/proj/raw/main/x\">"),
            ("para <img src=x onerror=alert(1)> end", "<img src=\"/git/alice/proj/raw/main/x\">"),
            ("<svg onload=alert(1)>x</svg>", "<p>x</p>"),
            ("<a href=\"javascript:alert(1)\">x</a>", "<a rel=\"nofollow noopener noreferrer\">x</a>"),
            ("<a href=\"java&#9;script:alert(1)\">x</a>", "<a rel=\"nofollow noopener noreferrer\">x</a>"),
            ("<a href=\" JAVASCRIPT:alert(1)\">x</a>", "<a rel=\"nofollow noopener noreferrer\">x</a>"),
            ("<a href=\"vbscript:x\">x</a>", "<a rel=\"nofollow noopener noreferrer\">x</a>"),
            ("<a href=\"data:text/html,<script>alert(1)</script>\">x</a>", "<a rel=\"nofollow noopener noreferrer\">x</a>"),
            ("<img src=\"data:image/png;base64,iVBORw0KGgo=\">", "<img>"),
            ("<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">", "<img>"),
            ("<!-- <img src=x onerror=alert(1)> -->", ""),
            ("<iframe src=\"https://evil.example\">in</iframe>", ""),
            ("<object data=\"x.swf\"></object><embed src=\"x.swf\">", ""),
            ("<base href=\"https://evil.example/\">", ""),
            ("<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">", ""),
            ("<link rel=\"stylesheet\" href=\"https://evil.example/x.css\">", ""),
            ("<p style=\"position:fixed;top:0\" onclick=\"x()\" onmouseover=x>p</p>", "<p>p</p>"),
            ("<div data-copy=\"#csrf\">d</div>", "<div>d</div>"),
            ("<a href=\"https://e.com\" target=\"_blank\" rel=\"opener\">t</a>",
             "<a href=\"https://e.com\" rel=\"nofollow noopener noreferrer\">t</a>"),
            ("<form action=\"/-/logout\" method=\"post\"><input type=\"hidden\" name=\"csrf\" value=\"x\"><button>Go</button></form>",
             "<input type=\"checkbox\" disabled=\"\">Go"),
            ("<input type=\"submit\" form=\"logout\" formaction=\"/-/logout\">", "<input type=\"checkbox\" disabled=\"\">"),
            ("<textarea>t</textarea><select><option>o</option></select>", "to"),
            ("<p id=\"csrf\">i</p>", "<p id=\"user-content-csrf\">i</p>"),
            ("<a name=\"next\">n</a>", "<a name=\"user-content-next\" rel=\"nofollow noopener noreferrer\">n</a>"),
            ("<p id=\"\">e</p>", "<p>e</p>"),
            ("<p class=\"flash error titlebar\">c</p>", "<p>c</p>"),
            ("<code class=\"language-rust evil\">c</code>", "<code class=\"language-rust\">c</code>"),
            // The namespace trick: an <iframe> inside <svg> holds elements, not text.
            ("<svg><iframe><a title=\"</iframe><img src onerror=alert(1)>\">test</a></iframe></svg>", ""),
            ("<math><mi><mglyph><style><img src=x onerror=alert(1)></style></mglyph></mi></math>", ""),
        ];
        for (input, want) in cases {
            let html = md(input);
            assert!(html.contains(want), "{input:?} gave {html}");
            for bad in [
                "onerror",
                "onclick",
                "onload",
                "onmouseover",
                "javascript",
                "script",
                "style",
                "<iframe",
                "<form",
                "<base",
                "<meta",
                "<link",
                "<svg",
                "<math",
                "<object",
                "<embed",
                "data:",
                "data-",
                "target",
                "hidden",
                "id=\"csrf",
                "\"next",
                "<!--",
                "flash",
                "evil",
                "<textarea",
                "<select",
                "<button",
                "formaction",
            ] {
                assert!(!html.contains(bad), "{input:?} gave {html}");
            }
        }
    }

    /// What READMEs on GitHub are made of: centred logos, badges, folded sections, tables, keys.
    #[test]
    fn readme_html_renders() {
        let html = md("<p align=\"center\">\n  <img src=\"logo.png\" width=\"200\" alt=\"Logo\">\n  <br>\n  \
             <a href=\"https://ci.example.com\"><img src=\"https://ci.example.com/badge.svg\"></a>\n</p>\n\n\
             <details open><summary>More</summary>\n\nHidden *text*\n\n</details>\n\n\
             <table><tr><th colspan=\"2\">h</th></tr><tr><td align=\"right\">1</td><td>2</td></tr></table>\n\n\
             Press <kbd>Ctrl</kbd>+<kbd>C</kbd>, H<sub>2</sub>O, x<sup>2</sup>.\n\n\
             <h2 align=\"center\">Centred</h2>\n\n<a href=\"docs/\">docs</a> <a href=\"#centred\">up</a>\n");
        for want in [
            "<p align=\"center\">",
            "<img src=\"/git/alice/proj/raw/main/logo.png\" width=\"200\" alt=\"Logo\">",
            "<br>",
            "<a href=\"https://ci.example.com\" rel=\"nofollow noopener noreferrer\"><img src=\"https://ci.example.com/badge.svg\"></a>",
            "<details open=\"\"><summary>More</summary>",
            "<p>Hidden <em>text</em></p>",
            "<th colspan=\"2\">h</th>",
            "<td align=\"right\">1</td>",
            "<kbd>Ctrl</kbd>",
            "H<sub>2</sub>O",
            "x<sup>2</sup>",
            "<h2 align=\"center\">Centred</h2>",
            "<a href=\"/git/alice/proj/tree/main/docs\" rel=\"nofollow noopener noreferrer\">docs</a>",
            "<a href=\"#user-content-centred\"",
        ] {
            assert!(html.contains(want), "no {want:?} in {html}");
        }
        // From a README in a folder, raw HTML resolves from that folder, as Markdown does.
        let html = render(
            "<img src=\"../img/a b.png\"> <a href=\"guide.md\">g</a>",
            &DOCS,
        );
        assert!(
            html.contains("src=\"/git/alice/proj/raw/feature/x/img/a%20b.png\""),
            "{html}"
        );
        assert!(
            html.contains("href=\"/git/alice/proj/blob/feature/x/docs/guide.md\""),
            "{html}"
        );
        // An unclosed element ends with the README.
        assert_eq!(
            md("<details>\n\n*x*"),
            "<details>\n<p><em>x</em></p>\n</details>"
        );
    }

    #[test]
    fn dangerous_link_schemes_become_text() {
        for url in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "java&#9;script:alert(1)",
            "java&#x0A;script:alert(1)",
            "&#106;avascript:alert(1)",
            "java\\u0000script:alert(1)",
            "\u{1}javascript:alert(1)",
            "vbscript:msgbox(1)",
            "data:text/html,%3Cscript%3Ealert(1)%3C/script%3E",
            "DATA:text/html;base64,PHNjcmlwdD4=",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "custom+scheme:foo",
        ] {
            let input = format!("[click](<{url}>)");
            let html = md(&input);
            if url.contains("\\u0000") {
                // Not a control character once parsed: just a relative path with a backslash.
                assert!(html.contains("/git/alice/proj/blob/main/java%5Cu0000script:alert(1)"));
                continue;
            }
            assert_eq!(html, "<p>click</p>\n", "{input:?}");
        }
        // A real control character inside the scheme.
        assert_eq!(md("[c](<java\u{1}script:alert(1)>)"), "<p>c</p>\n");
        // Autolinks are checked as well.
        assert_eq!(md("<javascript:alert(1)>"), "<p>javascript:alert(1)</p>\n");
        // Reference links too.
        assert_eq!(md("[x][r]\n\n[r]: javascript:alert(1)"), "<p>x</p>\n");
        // What's inside the refused link is kept and still rendered.
        assert_eq!(
            md("[**bold** <b>b</b>](javascript:x)"),
            "<p><strong>bold</strong> <b>b</b></p>\n"
        );
    }

    #[test]
    fn dangerous_image_sources_become_alt_text() {
        for url in [
            "javascript:alert(1)",
            "JAVASCRIPT:alert(1)",
            "java\tscript:alert(1)",
            "data:image/png;base64,iVBORw0KGgo=",
            "data:image/svg+xml,%3Csvg%20onload=alert(1)%3E",
            "mailto:a@example.com",
            "file:///etc/passwd",
            "#top",
            "?x=1",
        ] {
            let html = md(&format!("![the <alt>](<{url}>)"));
            assert_eq!(html, "<p>the &lt;alt&gt;</p>\n", "{url:?}");
        }
    }

    #[test]
    fn allowed_schemes() {
        let html = md("[x](https://example.com/a?b=1&c=2#d)");
        assert_eq!(
            html,
            "<p><a href=\"https://example.com/a?b=1&amp;c=2#d\" \
             rel=\"nofollow noopener noreferrer\">x</a></p>\n"
        );
        let html = md("[x](HTTP://Example.com)");
        assert_eq!(href(&html), Some("HTTP://Example.com"));
        assert!(html.contains("rel=\"nofollow noopener noreferrer\""));
        let html = md("[mail](mailto:bob@example.com)");
        assert_eq!(
            html,
            "<p><a href=\"mailto:bob@example.com\" rel=\"nofollow noopener noreferrer\">mail</a></p>\n"
        );
        let html = md("<bob@example.com> and <https://example.com/x>");
        assert!(html.contains(
            "<a href=\"mailto:bob@example.com\" rel=\"nofollow noopener noreferrer\">bob@example.com</a>"
        ));
        assert!(html
            .contains("<a href=\"https://example.com/x\" rel=\"nofollow noopener noreferrer\">"));
        // A scheme broken up by a space is not the scheme it looks like.
        assert_eq!(md("[x](<ht tp://example.com>)"), "<p>x</p>\n");
        // With a title.
        assert_eq!(
            md("[x](https://e.com \"the \\\"title\\\" <b>\")"),
            "<p><a href=\"https://e.com\" title=\"the &quot;title&quot; &lt;b&gt;\" \
             rel=\"nofollow noopener noreferrer\">x</a></p>\n"
        );
    }

    #[test]
    fn protocol_relative_is_https() {
        let html = md("[x](//example.com/a) ![b](//img.example.com/b.svg)");
        assert_eq!(href(&html), Some("https://example.com/a"));
        assert!(html.contains("rel=\"nofollow noopener noreferrer\""));
        assert_eq!(src(&html), Some("https://img.example.com/b.svg"));
        assert_eq!(
            link_in("[x](<\\\\\\\\evil.example/x>)", &ROOT).as_deref(),
            Some("https://evil.example/x")
        );
        assert_eq!(
            link_in("[x](/\\evil.example)", &ROOT).as_deref(),
            Some("https://evil.example")
        );
        assert_eq!(md("[x](//)"), "<p>x</p>\n");
    }

    #[test]
    fn relative_links() {
        let cases = [
            ("guide.md", "/git/alice/proj/blob/main/guide.md"),
            ("./guide.md", "/git/alice/proj/blob/main/guide.md"),
            (
                "src/main.rs#L10",
                "/git/alice/proj/blob/main/src/main.rs#L10",
            ),
            (
                "src/./a/../main.rs",
                "/git/alice/proj/blob/main/src/main.rs",
            ),
            ("../guide.md", "/git/alice/proj/blob/main/guide.md"),
            (
                "../../../etc/passwd",
                "/git/alice/proj/blob/main/etc/passwd",
            ),
            ("%2e%2e/%2E%2e/x", "/git/alice/proj/blob/main/x"),
            ("/src/lib.rs", "/git/alice/proj/blob/main/src/lib.rs"),
            ("/../../x", "/git/alice/proj/blob/main/x"),
            ("docs/", "/git/alice/proj/tree/main/docs"),
            ("./", "/git/alice/proj/tree/main"),
            (".", "/git/alice/proj/tree/main"),
            ("/", "/git/alice/proj/tree/main"),
            ("a/..", "/git/alice/proj/tree/main"),
            ("../../..", "/git/alice/proj/tree/main"),
            (
                "file.md?plain=1",
                "/git/alice/proj/blob/main/file.md?plain=1",
            ),
            ("my%20file.md", "/git/alice/proj/blob/main/my%20file.md"),
            ("<my file.md>", "/git/alice/proj/blob/main/my%20file.md"),
            ("a/b:c", "/git/alice/proj/blob/main/a/b:c"),
            ("a:b/c", ""),
            ("1abc:x", "/git/alice/proj/blob/main/1abc:x"),
            ("?tab=x", "?tab=x"),
        ];
        for (url, want) in cases {
            let got = link_in(&format!("[x]({url})"), &ROOT);
            if want.is_empty() {
                // A scheme other than the allowed ones.
                assert_eq!(got, None, "{url:?}");
                continue;
            }
            assert_eq!(got.as_deref(), Some(want), "{url:?}");
        }
    }

    #[test]
    fn relative_links_from_a_subdirectory() {
        let cases = [
            ("guide.md", "/git/alice/proj/blob/feature/x/docs/guide.md"),
            ("./img/", "/git/alice/proj/tree/feature/x/docs/img"),
            (
                "../src/main.rs",
                "/git/alice/proj/blob/feature/x/src/main.rs",
            ),
            ("../../../../x", "/git/alice/proj/blob/feature/x/x"),
            ("..", "/git/alice/proj/tree/feature/x"),
            ("/README.md", "/git/alice/proj/blob/feature/x/README.md"),
        ];
        for (url, want) in cases {
            let got = link_in(&format!("[x]({url})"), &DOCS);
            assert_eq!(got.as_deref(), Some(want), "{url:?}");
        }
        let odd = Context {
            dir: b"my docs/#1?",
            ..DOCS
        };
        assert_eq!(
            link_in("[x](a.md)", &odd).as_deref(),
            Some("/git/alice/proj/blob/feature/x/my%20docs/%231%3F/a.md")
        );
    }

    #[test]
    fn anchors_reach_the_headings() {
        let html = md("# Getting Started\n\n## Getting Started\n\n## Getting Started\n\n[go](#getting-started)");
        assert!(
            html.contains(
                "<h1 id=\"user-content-getting-started\">Getting Started \
             <a class=\"anchor\" href=\"#user-content-getting-started\""
            ),
            "{html}"
        );
        assert!(
            html.contains("<h2 id=\"user-content-getting-started-1\">"),
            "{html}"
        );
        assert!(
            html.contains("href=\"#user-content-getting-started-1\""),
            "{html}"
        );
        assert!(
            html.contains("<h2 id=\"user-content-getting-started-2\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"#user-content-getting-started\" rel="),
            "{html}"
        );
        assert_eq!(link_in("[top](#)", &ROOT).as_deref(), Some("#"));
        assert_eq!(
            link_in("[x](#\"onmouseover=alert(1))", &ROOT).as_deref(),
            Some("#user-content-%22onmouseover=alert(1)")
        );
        // Ids from headings with links, code and punctuation; a heading with no letters has none.
        let html = md("## The `render()` [API](x.md)!\n\n### ???");
        assert!(
            html.contains("<h2 id=\"user-content-the-render-api\">"),
            "{html}"
        );
        assert!(html.contains("<h3>???</h3>"), "{html}");
        // Tags in a heading are not part of its id.
        let html = md("## <img src=\"i.png\"> Install");
        assert!(html.contains("<h2 id=\"user-content-install\">"), "{html}");
        // Heading attributes are not parsed, so no attribute can be set.
        let html = md("# Title {#x onclick=alert(1)}");
        assert!(!html.contains("onclick=\""), "{html}");
        assert!(!html.contains("id=\"x\""), "{html}");
    }

    #[test]
    fn footnotes() {
        let html = md("Text[^1].\n\n[^1]: The note.");
        assert!(html.contains("<a href=\"#user-content-fn-1\""), "{html}");
        assert!(html.contains("id=\"user-content-fn-1\""), "{html}");
        let html = md("x[^\"><i>]\n\n[^\"><i>]: y");
        assert!(!html.contains("<i>"), "{html}");
    }

    #[test]
    fn images() {
        let html = md("![logo](logo.png)");
        assert_eq!(
            html,
            "<p><img src=\"/git/alice/proj/raw/main/logo.png\" alt=\"logo\" loading=\"lazy\"></p>\n"
        );
        assert_eq!(
            src(&render("![x](../img/a b.png \"t\")", &DOCS)),
            None,
            "a space ends the destination: not an image"
        );
        let html = render("![x](<../img/a b.png> \"t\")", &DOCS);
        assert_eq!(
            src(&html),
            Some("/git/alice/proj/raw/feature/x/img/a%20b.png")
        );
        assert!(html.contains("title=\"t\""));
        assert_eq!(
            src(&render("![x](/a/../../../b.png)", &DOCS)),
            Some("/git/alice/proj/raw/feature/x/b.png")
        );
        // Badges: external images, inside external links.
        let html =
            md("[![CI](https://ci.example.com/badge.svg?branch=main)](https://ci.example.com)");
        assert_eq!(
            src(&html),
            Some("https://ci.example.com/badge.svg?branch=main")
        );
        assert_eq!(href(&html), Some("https://ci.example.com"));
        assert!(html.ends_with("loading=\"lazy\"></a></p>\n"), "{html}");
        // Alt text is flattened, escaped, and nested images do not end the outer one.
        let html = md("![a *b* <i> \"q\" ![c](d.png)](e.png)");
        assert_eq!(
            html,
            "<p><img src=\"/git/alice/proj/raw/main/e.png\" \
             alt=\"a b &lt;i&gt; &quot;q&quot; c\" loading=\"lazy\"></p>\n"
        );
    }

    #[test]
    fn quotes_in_urls_cannot_leave_the_attribute() {
        for input in [
            "[x](<a\" onmouseover=\"alert(1)>)",
            "[x](a\"onmouseover=\"alert(1))",
            "[x](https://e.com/\"onmouseover=\"alert(1))",
            "[x](https://e.com/'onmouseover='alert(1))",
            "[x](<https://e.com/> onmouseover=alert(1)>)",
            "![x](<a\" onerror=\"alert(1)>)",
            "![x](https://e.com/\"onerror=\"alert(1))",
            "[x](a&quot;onmouseover=&quot;alert(1))",
            "[x](<a`onmouseover=alert(1)>)",
        ] {
            let html = md(input);
            assert!(!html.contains("\" on"), "{input:?} gave {html}");
            assert!(!html.contains("\"on"), "{input:?} gave {html}");
            assert!(!html.contains("'on"), "{input:?} gave {html}");
            assert!(!html.contains("`on"), "{input:?} gave {html}");
            // Every attribute value is a run of safe characters.
            for value in html.split("=\"").skip(1) {
                let value = &value[..value.find('"').unwrap()];
                assert!(!value.contains(['<', '>', '\'']), "{input:?} gave {html}");
            }
        }
        assert_eq!(
            link_in("[x](<a\" b>)", &ROOT).as_deref(),
            Some("/git/alice/proj/blob/main/a%22%20b")
        );
        assert_eq!(
            link_in("[x](https://e.com/a<b>'\\c%zz%41)", &ROOT).as_deref(),
            Some("https://e.com/a%3Cb%3E%27%5Cc%25zz%41")
        );
    }

    #[test]
    fn tables_task_lists_strikethrough() {
        let html =
            md("| a | b |\n|---|:-:|\n| 1 | <i>2</i> |\n\n- [x] done\n- [ ] todo\n\n~~old~~");
        assert!(html.contains("<table>"), "{html}");
        assert!(html.contains("<th>a</th>"), "{html}");
        // Aligned with `align`: the page's Content-Security-Policy blocks `style`.
        assert!(html.contains("<th align=\"center\">b</th>"), "{html}");
        assert!(
            html.contains("<td align=\"center\"><i>2</i></td>"),
            "{html}"
        );
        assert!(html.contains("<input disabled=\"\" type=\"checkbox\" checked=\"\">"));
        assert!(html.contains("<input disabled=\"\" type=\"checkbox\">"));
        assert!(!html.contains("style"), "{html}");
        assert!(html.contains("<del>old</del>"), "{html}");
    }

    #[test]
    fn code_blocks() {
        let html = md("```rust\nfn main() { \"<script>\" }\n```");
        assert_eq!(
            html,
            "<pre><code class=\"language-rust\">fn main() { \"&lt;script&gt;\" }\n</code></pre>\n"
        );
        let html = md("```\"><script>x\n</script>\n```");
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.starts_with("<pre><code class=\"language-scriptx\">"),
            "{html}"
        );
    }

    #[test]
    fn non_ascii_text() {
        let html =
            md("# Überblick\n\nÇa marche — 日本語 🎉\n\n[lien](docs/café.md) [x](#überblick)");
        assert!(html.contains("Ça marche — 日本語 🎉"), "{html}");
        assert!(html.contains("href=\"/git/alice/proj/blob/main/docs/caf%C3%A9.md\""));
        assert!(
            html.contains("<h1 id=\"user-content-überblick\">Überblick <a"),
            "{html}"
        );
        assert!(html.contains("href=\"#user-content-%C3%BCberblick\""));
    }

    #[test]
    fn alerts_and_quotes() {
        let html = md("> [!WARNING]\n> Careful <b>now</b>");
        assert!(
            html.contains("<blockquote class=\"markdown-alert-warning\">"),
            "{html}"
        );
        assert!(html.contains("Careful <b>now</b>"), "{html}");
    }

    #[test]
    fn large_hostile_input_renders() {
        // About the caller's 512 KiB cap of things that cost other renderers dearly.
        let mut input = String::new();
        input.push_str(&"# same\n".repeat(20_000));
        input.push_str(&"[".repeat(50_000));
        input.push_str(&"*a ".repeat(20_000));
        input.push_str(&"<b>".repeat(20_000));
        input.push_str(&"![x](".repeat(20_000));
        input.push_str(&"> ".repeat(10_000));
        input.push_str(&"<div><span><table><tr><td>".repeat(2_000));
        input.push_str(&"<a href=x>".repeat(5_000));
        input.push_str("<script>");
        assert!(input.len() < 600 * 1024);
        let start = std::time::Instant::now();
        // On a thread with a small stack: nesting this deep must not recurse.
        let html = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || render(&input, &ROOT))
            .unwrap()
            .join()
            .unwrap();
        assert!(html.contains("user-content-same-19999"));
        assert!(!html.contains("<script"));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }
}
