//! Syntax highlighting of files (blob pages) and of diff lines (commit pages): each line becomes
//! escaped text in `<span class="hl-...">` elements, one small set of classes the stylesheet
//! colours for light and dark schemes.
//!
//! The grammars are syntect's, with the extra syntaxes of `two-face` (TOML, TypeScript,
//! Dockerfile, PowerShell, ...). Measured on a 2-core host for a 6,000-line C file, release
//! builds: syntect 5.3 + two-face 0.5 (Oniguruma): ~140 ms, +1.8 MB stripped binary, 35 s clean
//! build, 37 of 37 checked languages found by name or first line; the same with fancy-regex:
//! ~340 ms, 36/37; lumis 0.19 (tree-sitter) with only the 36 needed languages: ~70 ms, but +65 MB
//! and 180 s of build, 36/37. syntect is the one a 2-core CI builds and a package ships at ease.
//!
//! What reaches the page is built here from escaped parts: every byte of text goes through
//! [`escape`] (the same five characters askama escapes, the same way), and the only markup added
//! is `<span class="hl-X">` and `</span>` with `X` from [`RULES`], balanced within each line, so a
//! line can be put in a table cell alone. Lines longer than [`MAX_LINE_BYTES`], lines after the
//! time budget, and everything after the grammar fails are shown plain (still escaped).
//!
//! A file's highlighted lines are kept per process (an LRU of [`CACHE_BYTES`]), by blob id and
//! language: a blob id names its content, and pages look up only after the access check, so a
//! blob shown from another commit, branch or repository is the same text. Memory rather than disk:
//! the page cache around it is in memory too, a miss costs less than a page of a few milliseconds
//! per hundred lines, and nothing needs cleaning up or sharing between processes.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use syntect::parsing::{ParseState, Scope, ScopeStack, SyntaxReference, SyntaxSet};

use super::TrustedHtml;

/// Files larger than this are shown plain ("too large to highlight").
pub(crate) const MAX_BYTES: usize = 512 << 10;
/// Files with more lines than this are shown plain.
pub(crate) const MAX_LINES: usize = 10_000;
/// A line longer than this is shown plain (minified code would cost far more than it shows).
pub(crate) const MAX_LINE_BYTES: usize = 4096;
/// How long one page may spend highlighting; the lines after it are shown plain.
pub(crate) const BUDGET: Duration = Duration::from_secs(2);
/// Bytes of highlighted files a process keeps at most.
const CACHE_BYTES: usize = 16 << 20;

/// The class of a token by the first (innermost) scope that starts with one of these, in this
/// order. `hl-` and one or two letters, coloured by the stylesheet.
const RULES: &[(&str, &str)] = &[
    ("comment", "hl-c"),
    ("punctuation.definition.comment", "hl-c"),
    ("constant.character.escape", "hl-e"),
    ("string.regexp", "hl-e"),
    ("string", "hl-s"),
    ("punctuation.definition.string", "hl-s"),
    ("constant.numeric", "hl-n"),
    ("constant", "hl-n"),
    ("entity.name.tag", "hl-g"),
    ("entity.other.attribute-name", "hl-a"),
    ("entity.name.function", "hl-f"),
    ("support.function", "hl-f"),
    ("variable.function", "hl-f"),
    ("entity.name.type", "hl-t"),
    ("entity.name.class", "hl-t"),
    ("entity.name.struct", "hl-t"),
    ("entity.name.enum", "hl-t"),
    ("entity.other.inherited-class", "hl-t"),
    ("support.type", "hl-t"),
    ("support.class", "hl-t"),
    ("storage.type", "hl-k"),
    ("storage", "hl-k"),
    ("keyword.operator", "hl-o"),
    ("keyword", "hl-k"),
    ("markup.heading", "hl-h"),
    ("entity.name.section", "hl-h"),
    ("markup.bold", "hl-b"),
    ("markup.italic", "hl-i"),
    ("markup.inserted", "hl-ins"),
    ("markup.deleted", "hl-del"),
    ("markup.raw", "hl-s"),
    ("markup.underline.link", "hl-e"),
    ("meta.mapping.key", "hl-a"),
    ("variable.parameter", "hl-v"),
    ("variable.language", "hl-k"),
    ("entity.name", "hl-t"),
    ("meta.preprocessor", "hl-m"),
    ("meta.annotation", "hl-m"),
];

fn syntaxes() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(two_face::syntax::extra_newlines)
}

fn rules() -> &'static [(Scope, &'static str)] {
    static PARSED: OnceLock<Vec<(Scope, &'static str)>> = OnceLock::new();
    PARSED.get_or_init(|| {
        RULES
            .iter()
            .filter_map(|&(s, class)| Scope::new(s).ok().map(|s| (s, class)))
            .collect()
    })
}

/// Loads the grammars and the class rules, and runs a line of a few common languages through
/// them, so that the first highlighted page a long-lived process serves does not pay for it
/// (the grammars' dump is decoded, and each grammar's patterns compiled, on first use). Run by
/// the FastCGI server on a thread of its own at start; a CGI process, which serves one request,
/// does not.
pub(crate) fn warm() {
    let started = Instant::now();
    rules();
    const SAMPLES: [(&str, &str); 6] = [
        (
            "a.c",
            "#include <stdio.h>\nint main(void) { return 0; /* x */ }",
        ),
        ("a.rs", "fn main() { let s = \"x\"; } // x"),
        ("a.py", "def f(x):\n    return 'x'  # x"),
        ("a.js", "const f = (x) => `x${x}`; // x"),
        ("a.sh", "#!/bin/sh\nif [ -n \"$x\" ]; then echo x; fi"),
        ("README.md", "# x\n\n*x* `x`"),
    ];
    for (name, text) in SAMPLES {
        if let Some(language) = language(name.as_bytes(), text) {
            let mut h = Highlighter::new(language, started + BUDGET);
            for line in text.lines() {
                h.line(line);
            }
        }
    }
    log::debug!(
        "highlight: grammars loaded in {} ms",
        started.elapsed().as_millis()
    );
}

/// A language the highlighter knows: one of its grammars.
#[derive(Clone, Copy)]
pub(crate) struct Language(&'static SyntaxReference);

impl Language {
    /// The grammar's name ("Rust", "Python", "Makefile", ...).
    pub(crate) fn name(self) -> &'static str {
        &self.0.name
    }
}

/// The language of a file, by its name (a whole name such as `Makefile`, then its extension),
/// then by its first line (`#!/usr/bin/env python3`, an editor's mode line, `<?xml`). `None` for
/// plain text and anything unknown.
pub(crate) fn language(path: &[u8], first_line: &str) -> Option<Language> {
    let set = syntaxes();
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    let name = String::from_utf8_lossy(name);
    let by_name = set.find_syntax_by_extension(&name).or_else(|| {
        let (stem, ext) = name.rsplit_once('.')?;
        // `.bashrc` is a name, not an empty stem with an extension; it was tried whole above.
        (!stem.is_empty()).then(|| set.find_syntax_by_extension(ext))?
    });
    let found = by_name.or_else(|| {
        let line = first_line.lines().next().unwrap_or_default();
        // The first-line rules are written for a line, not a whole file of one line.
        (line.len() <= MAX_LINE_BYTES)
            .then(|| set.find_syntax_by_first_line(line))
            .flatten()
    })?;
    (found.name != "Plain Text").then_some(Language(found))
}

/// Whether a file of `bytes` bytes and `lines` lines is highlighted at all.
pub(crate) fn fits(bytes: usize, lines: usize) -> bool {
    bytes <= MAX_BYTES && lines <= MAX_LINES
}

/// The text of a line escaped as the page's templates escape text.
pub(crate) fn plain(line: &str) -> TrustedHtml {
    let mut html = String::with_capacity(line.len() + 8);
    escape(&mut html, line);
    TrustedHtml::new(html)
}

/// Escapes `text` onto `out` exactly as askama's HTML escaper does (`&#34;` `&#38;` `&#39;`
/// `&#60;` `&#62;`), so a highlighted line holds the same characters as a plain one.
fn escape(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(i) = rest.find(['"', '&', '\'', '<', '>']) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'"' => "&#34;",
            b'&' => "&#38;",
            b'\'' => "&#39;",
            b'<' => "&#60;",
            _ => "&#62;",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Highlights consecutive lines of one text (a file, or one side of a diff hunk): the grammar's
/// state carries from one line to the next.
pub(crate) struct Highlighter {
    state: ParseState,
    stack: ScopeStack,
    deadline: Instant,
    /// The grammar failed (or the time ran out): the remaining lines are plain.
    stopped: bool,
    buf: String,
}

impl Highlighter {
    /// A highlighter for `language` that gives plain lines once `deadline` has passed.
    pub(crate) fn new(language: Language, deadline: Instant) -> Highlighter {
        Highlighter {
            state: ParseState::new(language.0),
            stack: ScopeStack::new(),
            deadline,
            stopped: false,
            buf: String::new(),
        }
    }

    /// Whether every line so far was highlighted (none given plain by the budget or a failure).
    pub(crate) fn complete(&self) -> bool {
        !self.stopped
    }

    /// The next line (without its line break), highlighted.
    pub(crate) fn line(&mut self, line: &str) -> TrustedHtml {
        if self.stopped || line.len() > MAX_LINE_BYTES {
            return plain(line);
        }
        if Instant::now() > self.deadline {
            self.stopped = true;
            return plain(line);
        }
        match catch_unwind(AssertUnwindSafe(|| self.spans(line))) {
            Ok(Some(html)) => TrustedHtml::new(html),
            _ => {
                self.stopped = true;
                plain(line)
            }
        }
    }

    fn spans(&mut self, line: &str) -> Option<String> {
        self.buf.clear();
        self.buf.push_str(line);
        self.buf.push('\n');
        let ops = self.state.parse_line(&self.buf, syntaxes()).ok()?;
        let mut out = Spans {
            html: String::with_capacity(line.len() * 2 + 16),
            open: None,
        };
        let mut class = self.class();
        let mut at = 0;
        for (pos, op) in ops {
            let pos = pos.min(line.len());
            if pos > at {
                out.text(class, line.get(at..pos)?);
                at = pos;
            }
            self.stack.apply(&op).ok()?;
            class = self.class();
        }
        out.text(class, line.get(at..)?);
        Some(out.finish())
    }

    /// The class of text under the current scopes: the innermost scope a rule matches.
    fn class(&self) -> Option<&'static str> {
        let rules = rules();
        self.stack.as_slice().iter().rev().find_map(|&scope| {
            rules
                .iter()
                .find(|(prefix, _)| prefix.is_prefix_of(scope))
                .map(|&(_, class)| class)
        })
    }
}

/// One line's HTML as it is written: at most one span open at a time.
struct Spans {
    html: String,
    open: Option<&'static str>,
}

impl Spans {
    fn text(&mut self, class: Option<&'static str>, text: &str) {
        if text.is_empty() {
            return;
        }
        if class != self.open {
            if self.open.is_some() {
                self.html.push_str("</span>");
            }
            if let Some(c) = class {
                self.html.push_str("<span class=\"");
                self.html.push_str(c);
                self.html.push_str("\">");
            }
            self.open = class;
        }
        escape(&mut self.html, text);
    }

    fn finish(mut self) -> String {
        if self.open.is_some() {
            self.html.push_str("</span>");
        }
        self.html
    }
}

/// A file's lines highlighted: from the cache when this blob was highlighted as `language`
/// before, else made (and kept, when every line could be). `id` is the blob's id: it names the
/// content, so `lines` must be that blob's lines. The caller checks [`fits`] first.
pub(crate) fn file(id: &[u8], language: Language, lines: &[&str]) -> Arc<[TrustedHtml]> {
    let key = (id.to_vec(), language.name());
    if let Some(hit) = cache_get(&key) {
        log::debug!(
            "highlight: {} blob {} from the cache",
            language.name(),
            hex(id)
        );
        return hit;
    }
    let started = Instant::now();
    let mut h = Highlighter::new(language, started + BUDGET);
    let html: Arc<[TrustedHtml]> = lines.iter().map(|l| h.line(l)).collect();
    log::debug!(
        "highlight: {} blob {} made: {} lines in {} ms{}",
        language.name(),
        hex(id),
        lines.len(),
        started.elapsed().as_millis(),
        if h.complete() {
            ""
        } else {
            " (not all: not kept)"
        }
    );
    if h.complete() {
        cache_put(key, Arc::clone(&html));
    }
    html
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

type Key = (Vec<u8>, &'static str);

struct Lru {
    entries: HashMap<Key, (Arc<[TrustedHtml]>, u64, usize)>,
    /// Keys by the tick they were last used at: the first is the least recently used.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    tick: u64,
}

static CACHE: Mutex<Option<Lru>> = Mutex::new(None);

fn with<T>(f: impl FnOnce(&mut Lru) -> T) -> T {
    let mut guard = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    let lru = guard.get_or_insert_with(|| Lru {
        entries: HashMap::new(),
        order: BTreeMap::new(),
        bytes: 0,
        tick: 0,
    });
    f(lru)
}

fn cache_get(key: &Key) -> Option<Arc<[TrustedHtml]>> {
    with(|lru| {
        lru.tick += 1;
        let tick = lru.tick;
        let (html, used, _) = lru.entries.get_mut(key)?;
        let html = Arc::clone(html);
        let was = std::mem::replace(used, tick);
        if let Some(k) = lru.order.remove(&was) {
            lru.order.insert(tick, k);
        }
        Some(html)
    })
}

fn cache_put(key: Key, html: Arc<[TrustedHtml]>) {
    let size = html.iter().map(|l| l.0.len() + 24).sum::<usize>() + key.0.len() + 64;
    if size > CACHE_BYTES / 4 {
        return;
    }
    with(|lru| {
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((_, used, old)) = lru.entries.remove(&key) {
            lru.order.remove(&used);
            lru.bytes = lru.bytes.saturating_sub(old);
        }
        while lru.bytes + size > CACHE_BYTES {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            if let Some((_, _, old)) = lru.entries.remove(&oldest) {
                lru.bytes = lru.bytes.saturating_sub(old);
            }
        }
        lru.bytes += size;
        lru.order.insert(tick, key.clone());
        lru.entries.insert(key, (html, tick, size));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(path: &str, first: &str) -> Option<&'static str> {
        language(path.as_bytes(), first).map(Language::name)
    }

    #[test]
    fn languages_are_found_by_name_extension_and_first_line() {
        assert_eq!(named("src/main.rs", ""), Some("Rust"));
        assert_eq!(named("a/b/Makefile", "all:"), Some("Makefile"));
        assert_eq!(named("Cargo.toml", ""), Some("TOML"));
        assert_eq!(named("ci.yml", ""), Some("YAML"));
        assert_eq!(named("package.json", ""), Some("JSON"));
        assert_eq!(named("README.md", ""), Some("Markdown"));
        assert_eq!(named("x.ts", ""), Some("TypeScript"));
        assert_eq!(named("MAIN.RS", ""), Some("Rust"), "extensions ignore case");
        assert_eq!(named(".bashrc", ""), Some("Bourne Again Shell (bash)"));
        assert_eq!(
            named("tools/release", "#!/usr/bin/env python3\nimport os\n"),
            Some("Python")
        );
        assert_eq!(
            named("configure", "#!/bin/sh"),
            Some("Bourne Again Shell (bash)")
        );
        // The name wins over the first line.
        assert_eq!(named("x.rb", "#!/bin/sh"), Some("Ruby"));
    }

    #[test]
    fn plain_text_and_unknown_files_have_no_language() {
        assert_eq!(named("notes.txt", "hello"), None);
        assert_eq!(named("LICENSE", "MIT License"), None);
        assert_eq!(named("data.xyzzy", ""), None);
        assert_eq!(named("\u{fffd}", "\0\0"), None);
    }

    fn line(lang: &str, text: &str) -> String {
        let l = language(lang.as_bytes(), "").unwrap();
        Highlighter::new(l, Instant::now() + BUDGET)
            .line(text)
            .to_string()
    }

    #[test]
    fn tokens_get_classes_and_text_stays_escaped() {
        let html = line("a.rs", "fn main() { let s = \"<b>&\"; } // '");
        assert!(html.contains("<span class=\"hl-k\">fn</span>"), "{html}");
        assert!(html.contains("&#60;b&#62;&#38;"), "{html}");
        assert!(
            html.contains("<span class=\"hl-c\">// &#39;</span>"),
            "{html}"
        );
        assert!(!html.contains("<b>"), "{html}");
    }

    #[test]
    fn hostile_lines_come_out_inert() {
        for text in [
            "</span><script>alert(1)</script>",
            "\" onmouseover=\"x",
            "a\0b",
            "\u{fffd}\u{fffd}<",
        ] {
            for lang in ["a.html", "a.c", "a.py", "a.md"] {
                let html = line(lang, text);
                let stripped = html
                    .replace("</span>", "")
                    .split("<span class=\"")
                    .map(|s| s.split_once("\">").map_or(s, |(_, rest)| rest))
                    .collect::<String>();
                assert_eq!(stripped, plain(text).to_string(), "{lang}: {html}");
                assert!(!stripped.contains(['<', '>', '"']), "{lang}: {html}");
                assert_eq!(
                    html.matches("<span").count(),
                    html.matches("</span>").count()
                );
            }
        }
    }

    #[test]
    fn spans_close_on_every_line_of_a_block_comment() {
        let l = language(b"a.c", "").unwrap();
        let mut h = Highlighter::new(l, Instant::now() + BUDGET);
        let a = h.line("/* one").to_string();
        let b = h.line("two */ int x;").to_string();
        assert_eq!(a, "<span class=\"hl-c\">/* one</span>");
        assert!(b.starts_with("<span class=\"hl-c\">two */</span>"), "{b}");
    }

    #[test]
    fn long_lines_and_a_spent_budget_are_plain() {
        let l = language(b"a.c", "").unwrap();
        let long = "int x;".repeat(MAX_LINE_BYTES);
        let mut h = Highlighter::new(l, Instant::now() + BUDGET);
        assert_eq!(h.line(&long).to_string(), long);
        let mut late = Highlighter::new(l, Instant::now() - Duration::from_secs(1));
        assert_eq!(late.line("int <x>;").to_string(), "int &#60;x&#62;;");
        assert!(!late.complete());
    }

    #[test]
    fn escaping_is_askamas() {
        assert_eq!(plain("\"&'<>x").to_string(), "&#34;&#38;&#39;&#60;&#62;x");
    }

    #[test]
    fn warming_up_leaves_highlighting_as_it_was() {
        let before = line("a.c", "int x = 1; /* <b> */");
        warm();
        assert_eq!(line("a.c", "int x = 1; /* <b> */"), before);
        assert!(before.contains("hl-"), "{before}");
    }

    #[test]
    fn a_file_is_kept_by_blob_id_and_language() {
        let l = language(b"a.rs", "").unwrap();
        let id = b"highlight-test-blob-id";
        let a = file(id, l, &["fn a() {}"]);
        // The same id is the same content: the kept lines come back.
        let b = file(id, l, &["not looked at"]);
        assert!(Arc::ptr_eq(&a, &b));
        let py = language(b"a.py", "").unwrap();
        assert!(!Arc::ptr_eq(&a, &file(id, py, &["def a(): pass"])));
    }
}
