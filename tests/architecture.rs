//! The architecture's rules, checked by reading `src/` and `templates/` (ARCHITECTURE.md explains
//! each): which module may use which, read from every `crate::` path in code that is not a
//! test; that only `request.rs` reads CGI variables; that the one value printed unescaped is the
//! markup renderers' trusted HTML; that request code does not panic or exit; that code cites
//! no document outside the repository; and that every README section a message or a document
//! sends the reader to exists. A rule broken names the file and the line.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first: each top-level module and the modules it may use. A module may
/// use only modules listed above it, so the list itself shows there is no cycle. Adding a
/// module or an import is a deliberate edit here (and in ARCHITECTURE.md).
const LAYERS: &[(&str, &[&str])] = &[
    // Foundations: each knows only its own job.
    ("time", &[]),
    ("fsfile", &[]),
    ("log_limit", &[]),
    ("gateway", &[]),
    ("response", &[]),
    ("error", &["response"]),
    ("request", &["error", "gateway"]),
    ("forms", &["request"]),
    ("urls", &[]),
    ("config", &[]),
    ("keyed", &["fsfile"]),
    ("assets", &["keyed"]),
    ("markup", &[]),
    ("packcache", &["fsfile"]),
    // Data: repositories on disk (knowing nothing of users or access), users and access,
    // running git.
    ("git", &["fsfile", "packcache", "time"]),
    (
        "auth",
        &[
            "config",
            "fsfile",
            "git",
            "keyed",
            "log_limit",
            "request",
            "time",
        ],
    ),
    ("gitrun", &["config", "request", "response"]),
    // Services: the operations the command line and the pages share.
    (
        "repos",
        &["auth", "config", "fsfile", "git", "packcache", "time"],
    ),
    ("accounts", &["auth", "git", "repos"]),
    // What every request shares.
    (
        "site",
        &[
            "assets",
            "auth",
            "config",
            "error",
            "git",
            "gitrun",
            "packcache",
        ],
    ),
    // Answers: downloads git streams, git over HTTP, pages.
    (
        "downloads",
        &["config", "error", "git", "gitrun", "response", "site"],
    ),
    (
        "git_http",
        &[
            "config",
            "downloads",
            "error",
            "fsfile",
            "git",
            "gitrun",
            "keyed",
            "log_limit",
            "packcache",
            "repos",
            "request",
            "response",
            "site",
        ],
    ),
    // Git LFS: the batch API and the objects, sent like git's files.
    (
        "lfs",
        &[
            "downloads",
            "error",
            "fsfile",
            "git",
            "keyed",
            "request",
            "response",
            "site",
            "time",
            "urls",
        ],
    ),
    // git over SSH: one session, with the same access rules and the same way of running git.
    (
        "ssh",
        &[
            "auth", "config", "fsfile", "git", "gitrun", "lfs", "repos", "time", "urls",
        ],
    ),
    (
        "pages",
        &[
            "accounts",
            "assets",
            "auth",
            "config",
            "downloads",
            "error",
            "forms",
            "git",
            "lfs",
            "markup",
            "repos",
            "request",
            "response",
            "site",
            "time",
            "urls",
        ],
    ),
    // The route table and the dispatcher.
    (
        "routes",
        &["error", "git", "git_http", "lfs", "pages", "request"],
    ),
    (
        "app",
        &[
            "auth", "config", "error", "forms", "gateway", "git", "git_http", "keyed", "lfs",
            "pages", "request", "response", "routes", "site", "time", "urls",
        ],
    ),
    // Servers: they know the gateway interface and nothing of git, HTML or users.
    ("fcgi", &["gateway"]),
    ("cgi", &["gateway"]),
    // The command line: parses, calls the services or starts a server, prints.
    (
        "cli",
        &[
            "accounts",
            "auth",
            "cgi",
            "config",
            "fcgi",
            "git",
            "gitrun",
            "packcache",
            "repos",
            "site",
            "ssh",
            "time",
        ],
    ),
    // The fuzz targets: each parser fed whatever bytes, its promises checked.
    (
        "fuzzing",
        &[
            "auth",
            "config",
            "fcgi",
            "forms",
            "gateway",
            "git",
            "git_http",
            "lfs",
            "markup",
            "packcache",
            "pages",
            "request",
            "routes",
            "ssh",
        ],
    ),
];

/// Crates only some layers may use: libgit2 stays below the pages' views, templates in the
/// pages, SSH key parsing in `auth` (`auth::keys`), the highlighter's grammars in `markup`
/// (`markup::highlight`), the only maker of trusted HTML.
const CRATES: &[(&str, &[&str])] = &[
    (
        "git2",
        &["git", "repos", "site", "downloads", "git_http", "pages"],
    ),
    ("askama", &["pages"]),
    ("ssh_key", &["auth"]),
    ("ammonia", &["markup"]),
    ("pulldown_cmark", &["markup"]),
    ("serde_json", &["lfs", "ssh", "cli"]),
    ("syntect", &["markup"]),
    ("two_face", &["markup"]),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// A source file, as code with its comments and the contents of its string and character
/// literals blanked (so that a word in a comment or a message is not taken for code), test
/// items (`#[cfg(test)]`) removed, and the literals kept aside for the rules about them.
struct Source {
    /// `src/`-relative path.
    path: String,
    /// The top-level module it belongs to (`pages` for `src/pages/tree.rs`).
    module: String,
    /// The code, line by line (line numbers kept: blanked text stays, as spaces).
    code: Vec<String>,
    /// Each string literal's text with its line number.
    strings: Vec<(usize, String)>,
}

/// Every `.rs` file under `src/` that is not test code.
fn sources() -> Vec<Source> {
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files.sort();
    // Files declared as `#[cfg(test)] mod x;` are test code entirely.
    let mut test_files = BTreeSet::new();
    let mut out = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).unwrap();
        let (code, strings) = blank(&text);
        let (code, test_mods) = drop_test_items(&code);
        // A literal is test code when its line was dropped with a test item.
        let kept: Vec<&str> = code.lines().collect();
        let strings: Vec<(usize, String)> = strings
            .into_iter()
            .filter(|(n, _)| kept.get(n - 1).is_some_and(|l| !l.trim().is_empty()))
            .collect();
        let dir = if file.file_name().unwrap() == "mod.rs"
            || file.file_name().unwrap() == "lib.rs"
            || file.file_name().unwrap() == "main.rs"
        {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for m in test_mods {
            test_files.insert(dir.join(format!("{m}.rs")));
            test_files.insert(dir.join(&m).join("mod.rs"));
        }
        let rel = file
            .strip_prefix(src())
            .unwrap()
            .to_string_lossy()
            .to_string();
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        out.push((
            file.clone(),
            Source {
                path: format!("src/{rel}"),
                module,
                code: code.lines().map(str::to_string).collect(),
                strings,
            },
        ));
    }
    out.into_iter()
        .filter(|(f, _)| !test_files.contains(f))
        .map(|(_, s)| s)
        .collect()
}

/// Every `.rs` file under `dir`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut all = Vec::new();
    walk_all(dir, &mut all);
    out.extend(
        all.into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "rs")),
    );
}

/// Blanks comments and the insides of string and character literals (keeping newlines), and
/// returns the string literals' contents by line.
fn blank(text: &str) -> (String, Vec<(usize, String)>) {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let keep = |out: &mut Vec<u8>, c: u8| out.push(if c == b'\n' { b'\n' } else { b' ' });
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b' ');
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    out.extend(b"  ");
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    out.extend(b"  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == b'\n');
                    keep(&mut out, b[i]);
                    i += 1;
                }
            }
        } else if c == b'"' || ((c == b'r' || c == b'b') && raw_or_byte_string(b, i)) {
            // Prefixes (b, r, br) and hashes stay; the contents go.
            let start_line = line;
            let mut hashes = 0;
            let mut raw = false;
            while b[i] != b'"' {
                raw |= b[i] == b'r';
                hashes += usize::from(b[i] == b'#');
                out.push(b[i]);
                i += 1;
            }
            out.push(b'"');
            i += 1;
            let mut s = Vec::new();
            while let Some(&d) = b.get(i) {
                if !raw && d == b'\\' {
                    s.extend(&b[i..(i + 2).min(b.len())]);
                    out.extend(b"  ");
                    line += usize::from(b.get(i + 1) == Some(&b'\n'));
                    i += 2;
                    continue;
                }
                if d == b'"'
                    && b.len() >= i + 1 + hashes
                    && b[i + 1..].iter().take(hashes).all(|&h| h == b'#')
                {
                    out.push(b'"');
                    out.extend(std::iter::repeat(b'#').take(hashes));
                    i += 1 + hashes;
                    break;
                }
                line += usize::from(d == b'\n');
                keep(&mut out, d);
                s.push(d);
                i += 1;
            }
            strings.push((start_line, String::from_utf8_lossy(&s).into_owned()));
        } else if c == b'\'' && char_literal_len(&b[i..]).is_some() {
            let n = char_literal_len(&b[i..]).unwrap();
            out.push(b'\'');
            out.extend(std::iter::repeat(b' ').take(n - 2));
            out.push(b'\'');
            i += n;
        } else {
            if c.is_ascii_alphanumeric() || c == b'_' {
                // An identifier or number: copied whole, so `br` in `abr"` is not a prefix.
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    out.push(b[i]);
                    i += 1;
                }
                continue;
            }
            line += usize::from(c == b'\n');
            out.push(c);
            i += 1;
        }
    }
    (String::from_utf8(out).unwrap(), strings)
}

/// At a word's start: whether `r"`, `r#"`, `b"`, `br"` or `br#"` begins here.
fn raw_or_byte_string(b: &[u8], i: usize) -> bool {
    if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
        return false;
    }
    let mut j = i;
    if b[j] == b'b' {
        j += 1;
    }
    if b.get(j) == Some(&b'r') {
        j += 1;
        while b.get(j) == Some(&b'#') {
            j += 1;
        }
    }
    j > i && b.get(j) == Some(&b'"')
}

/// The length of a character literal starting here (`'a'`, `'\n'`, `'\u{1F600}'`), or `None`
/// for a lifetime.
fn char_literal_len(b: &[u8]) -> Option<usize> {
    match b.get(1)? {
        b'\\' => {
            let end = b.iter().skip(2).position(|&c| c == b'\'')? + 2;
            (end <= 12).then_some(end + 1)
        }
        _ => {
            // One character, possibly several bytes.
            let s = std::str::from_utf8(&b[1..b.len().min(6)])
                .ok()
                .or_else(|| {
                    (2..6)
                        .rev()
                        .find_map(|n| std::str::from_utf8(&b[1..b.len().min(n)]).ok())
                })?;
            let ch = s.chars().next()?;
            let n = ch.len_utf8();
            (b.get(1 + n) == Some(&b'\'')).then_some(n + 2)
        }
    }
}

/// Removes items marked `#[cfg(test)]` (blanking them, lines kept), and returns the names of
/// the modules so declared in their own files.
fn drop_test_items(code: &str) -> (String, Vec<String>) {
    let mut b = code.as_bytes().to_vec();
    let mut test_mods = Vec::new();
    let marker = b"#[cfg(test)]";
    let mut from = 0;
    while let Some(at) = find(&b[from..], marker).map(|k| k + from) {
        // The item runs to its first `;` at depth 0 or to the close of its first `{`.
        let mut i = at + marker.len();
        let mut depth = 0usize;
        let mut end = b.len();
        while i < b.len() {
            match b[i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let item = String::from_utf8_lossy(&b[at + marker.len()..end]).into_owned();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(k) = words.iter().position(|w| *w == "mod") {
            if let Some(name) = words.get(k + 1) {
                if let Some(name) = name.strip_suffix(';') {
                    test_mods.push(name.to_string());
                }
            }
        }
        for c in &mut b[at..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
        from = end;
    }
    (String::from_utf8(b).unwrap(), test_mods)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The top-level modules a line of code names: `crate::x::...`, and each first name inside
/// `crate::{a, b::c, d::{e}}`.
fn modules_named(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        // `$crate::` and `mycrate::` are not ours.
        if before
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$')
        {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => {
                        if !name.is_empty() {
                            out.push(std::mem::take(&mut name));
                        }
                        item_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 1 && item_start {
                    if c.is_alphanumeric() || c == '_' {
                        name.push(c);
                    } else if !name.is_empty() {
                        out.push(std::mem::take(&mut name));
                        item_start = false;
                    }
                }
            }
            if !name.is_empty() {
                out.push(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// The lines of code that break a rule, as `path:line: what`.
type Broken = Vec<String>;

fn report(what: &str, broken: Broken) {
    assert!(
        broken.is_empty(),
        "{what}:\n  {}\n(the rules and why: ARCHITECTURE.md)",
        broken.join("\n  ")
    );
}

fn declared_modules() -> BTreeSet<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

#[test]
fn every_module_has_a_layer_below_the_modules_that_use_it() {
    let declared = declared_modules();
    let listed: BTreeSet<String> = LAYERS.iter().map(|(m, _)| m.to_string()).collect();
    assert_eq!(
        declared, listed,
        "the modules in src/lib.rs and those in LAYERS differ"
    );
    let mut seen = BTreeSet::new();
    for (module, uses) in LAYERS {
        for u in *uses {
            assert!(
                seen.contains(u),
                "{module} may use {u}, which is not listed above it: that would allow a cycle"
            );
        }
        seen.insert(*module);
    }
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let rules: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let declared = declared_modules();
    let mut broken = Vec::new();
    for s in sources() {
        if s.path == "src/lib.rs" {
            continue;
        }
        let allowed: &[&str] = match s.path.as_str() {
            // The binary starts the command line and nothing else.
            "src/main.rs" => &[],
            _ => rules
                .get(s.module.as_str())
                .unwrap_or_else(|| panic!("{} is in no layer", s.path)),
        };
        for (n, line) in s.code.iter().enumerate() {
            for m in modules_named(line) {
                if m == s.module || !declared.contains(&m) {
                    continue;
                }
                if !allowed.contains(&m.as_str()) {
                    broken.push(format!(
                        "{}:{}: {} uses {m}, which its layer may not",
                        s.path,
                        n + 1,
                        s.module
                    ));
                }
            }
        }
        if s.path == "src/main.rs" {
            let calls: Vec<&String> = s
                .code
                .iter()
                .filter(|l| l.contains("forgelet::") && !l.contains("forgelet::cli::run"))
                .collect();
            assert!(
                calls.is_empty(),
                "main.rs does more than start cli::run: {calls:?}"
            );
        }
    }
    report("modules using a layer they may not", broken);
}

#[test]
fn crates_are_used_only_by_their_layers() {
    let mut broken = Vec::new();
    for s in sources() {
        for (krate, layers) in CRATES {
            if layers.contains(&s.module.as_str()) {
                continue;
            }
            for (n, line) in s.code.iter().enumerate() {
                let named = line.match_indices(&format!("{krate}::")).any(|(at, _)| {
                    !line[..at]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                });
                if named {
                    broken.push(format!("{}:{}: uses {krate}", s.path, n + 1));
                }
            }
        }
    }
    report("crates used outside their layers", broken);
}

/// The CGI variables and FastCGI params forgelet reads, by name.
const CGI_VARIABLES: &[&str] = &[
    "REQUEST_METHOD",
    "REQUEST_URI",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_USER",
    "HTTPS",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "SCRIPT_NAME",
    "PATH_INFO",
    "DOCUMENT_URI",
];

#[test]
fn only_request_reads_cgi_variables() {
    // Elsewhere, a name is used for something else: the command line tells CGI mode from the
    // variable's presence, and git's hooks are told who pushed.
    let elsewhere: &[(&str, &str)] = &[
        ("src/cli/mod.rs", "GATEWAY_INTERFACE"),
        ("src/gitrun/service.rs", "REMOTE_USER"),
        // The fuzz target for request parsing builds the params a web server would send.
        ("src/fuzzing.rs", "REQUEST_METHOD"),
        ("src/fuzzing.rs", "REQUEST_URI"),
    ];
    let mut broken = Vec::new();
    for s in sources() {
        if s.path == "src/request.rs" {
            continue;
        }
        for (n, text) in &s.strings {
            let named = CGI_VARIABLES.contains(&text.as_str()) || text.starts_with("HTTP_");
            if named && !elsewhere.contains(&(s.path.as_str(), text.as_str())) {
                broken.push(format!("{}:{n}: reads {text}", s.path));
            }
        }
        // The params themselves (`gateway::Params`) reach only the modules whose layer may use
        // `gateway`: the servers, `request`, and the dispatcher, which hands them to
        // `Request::parse`.
    }
    report("CGI variables read outside src/request.rs", broken);
}

#[test]
fn the_only_html_printed_unescaped_is_trusted_html() {
    let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut unescaped = Vec::new();
    for e in fs::read_dir(&templates).unwrap() {
        let p = e.unwrap().path();
        let text = fs::read_to_string(&p).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("|safe") || line.contains("| safe") {
                unescaped.push(format!(
                    "templates/{}:{}: {}",
                    p.file_name().unwrap().to_string_lossy(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    unescaped.sort();
    assert_eq!(
        unescaped,
        [
            "templates/blame_body.html:8: {% for g in groups %}{% for (n, line) in g.lines %}<tr id=\"L{{ n }}\"{% if loop.first %} class=\"first\"{% endif %}>{% if loop.first %}<td class=\"who\" rowspan=\"{{ g.lines.len() }}\">{% if let Some(c) = g.commit %}<a class=\"sha\" href=\"{{ c.url }}\" title=\"{{ c.summary }}\">{{ c.short_id }}</a> <span class=\"author\">{{ c.author }}</span> <time datetime=\"{{ c.date.iso }}\" title=\"{{ c.date.text }}\">{{ c.date.text }}</time>{% if let Some(u) = c.before_url %} <a class=\"before\" href=\"{{ u }}\" title=\"Blame before this commit\">&#8617;</a>{% endif %}<div class=\"summary muted\">{{ c.summary }}</div>{% else %}<span class=\"muted\">not blamed</span>{% endif %}</td>{% endif %}<td class=\"ln\"><a href=\"#L{{ n }}\">{{ n }}</a></td><td class=\"src\"><pre>{{ line|safe }}</pre></td></tr>",
            "templates/blob_body.html:11: {% for html in code.iter() %}<tr id=\"L{{ loop.index }}\"><td class=\"ln\"><a href=\"#L{{ loop.index }}\">{{ loop.index }}</a></td><td class=\"src\"><pre>{{ html|safe }}</pre></td></tr>",
            "templates/diff.html:11: {% for row in f.lines %}<tr class=\"{{ row.class }}\"><td class=\"ln\">{{ row.old }}</td><td class=\"ln\">{{ row.new }}</td><td class=\"src\"><pre>{{ row.origin }}{% if let Some(html) = row.html %}{{ html|safe }}{% else %}{{ row.text }}{% endif %}</pre></td></tr>",
            "templates/readme.html:11: {{ html|safe }}",
        ],
        "templates printing a value unescaped"
    );
    // Those values are the markup renderers' type, which only they can make: a README
    // (markdown), a file's lines (its page and its blame) and a diff's lines (highlight).
    for (file, field) in [
        ("pages/readme.rs", "html: TrustedHtml"),
        ("pages/blob.rs", "code: std::sync::Arc<[TrustedHtml]>"),
        ("pages/blame.rs", "lines: Vec<(usize, TrustedHtml)>"),
        ("pages/commit.rs", "html: Option<TrustedHtml>"),
    ] {
        let code = fs::read_to_string(src().join(file)).unwrap();
        assert!(code.contains(field), "{file} has no `{field}`");
    }
    let mut broken = Vec::new();
    for s in sources() {
        for (n, line) in s.code.iter().enumerate() {
            if line.contains("TrustedHtml(") && s.module != "markup" {
                broken.push(format!("{}:{}: makes a TrustedHtml", s.path, n + 1));
            }
            // A template with escaping turned off.
            if line.contains("escape") && line.contains("template(") {
                broken.push(format!("{}:{}: turns escaping off", s.path, n + 1));
            }
        }
    }
    report("trusted HTML made outside the markup renderers", broken);
}

#[test]
fn request_code_does_not_panic_or_exit() {
    // Where a panic would be a bug forgelet cannot recover from, said once.
    let allowed: &[(&str, &str)] = &[("src/keyed.rs", ".expect(")];
    let mut broken = Vec::new();
    for s in sources() {
        // The command line runs once and exits with a status.
        if s.module == "cli" || s.path == "src/main.rs" {
            continue;
        }
        for (n, line) in s.code.iter().enumerate() {
            for bad in [
                ".unwrap()",
                ".expect(",
                "panic!",
                "unreachable!",
                "todo!",
                "unimplemented!",
                "process::exit",
            ] {
                if line.contains(bad) && !allowed.contains(&(s.path.as_str(), bad)) {
                    broken.push(format!("{}:{}: {bad}", s.path, n + 1));
                }
            }
        }
    }
    report("code a request runs that can panic or exit", broken);
}

/// Processes are started in two places: `gitrun`, which runs git for requests isolated and
/// limited, and `repos`, which starts a purge or a maintenance run (forgelet itself) and checks
/// git is there. The
/// command line may start what it likes.
#[test]
fn processes_start_only_in_gitrun_and_repos() {
    let mut broken = Vec::new();
    for s in sources() {
        if matches!(s.module.as_str(), "gitrun" | "repos" | "cli") {
            continue;
        }
        for (n, line) in s.code.iter().enumerate() {
            if line.contains("Command::new") {
                broken.push(format!("{}:{}: starts a process", s.path, n + 1));
            }
        }
    }
    report("processes started outside gitrun and repos", broken);
}

/// A merge once left its conflict markers in ARCHITECTURE.md, committed unnoticed: no file of
/// the repository may hold them.
#[test]
fn no_file_holds_merge_conflict_markers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
        .expect("git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    let mut broken = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let Ok(text) = fs::read_to_string(root.join(&name)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let marker = line.starts_with(concat!("<<<<<<", "< "))
                || line.starts_with(concat!(">>>>>>", "> "))
                || line == concat!("=====", "==");
            if marker {
                broken.push(format!("{name}:{}", n + 1));
            }
        }
    }
    report("merge conflict markers", broken);
}

#[test]
fn code_cites_no_document_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    walk(&src(), &mut files);
    walk(&root.join("tests"), &mut files);
    let mut broken = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            // Spelled in two pieces so that this line does not cite it.
            if line.contains(concat!("DESIGN", ".md")) || line.contains(concat!("../", "shared")) {
                broken.push(format!(
                    "{}:{}",
                    f.strip_prefix(root).unwrap().display(),
                    n + 1
                ));
            }
        }
    }
    report(
        "citations of a document that is not in the repository (cite ARCHITECTURE.md)",
        broken,
    );
    assert!(
        root.join("ARCHITECTURE.md").is_file(),
        "ARCHITECTURE.md is missing"
    );
}

/// The checker itself: comments and strings are not code, test items are dropped, and both
/// forms of `use crate::` are read.
#[test]
fn the_checker_reads_code_as_code() {
    let (code, strings) = blank(
        "use crate::{a, b::c, d::{e, f}};\n// crate::g\nlet s = \"crate::h\"; let r = r#\"x\"#;\nlet c = '\"'; fn f<'a>() {}\n",
    );
    let names: Vec<String> = code.lines().flat_map(modules_named).collect();
    assert_eq!(names, ["a", "b", "d"]);
    assert_eq!(strings.len(), 2, "{strings:?}");
    assert_eq!(strings[0].1, "crate::h");
    assert!(code.contains("fn f<'a>()"), "{code}");
    let (code, mods) = drop_test_items(
        "fn a() {}\n#[cfg(test)]\nmod tests {\n use crate::x;\n}\n#[cfg(test)]\nmod fixture;\nfn b() { crate::y::z() }\n",
    );
    assert_eq!(mods, ["fixture"]);
    let names: Vec<String> = code.lines().flat_map(modules_named).collect();
    assert_eq!(names, ["y"]);
    assert_eq!(code.lines().count(), 8);
}

fn architecture_md() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap()
}

/// ARCHITECTURE.md's table of layers says what `LAYERS` says, row for row.
#[test]
fn the_documented_layers_are_the_checked_ones() {
    let doc = architecture_md();
    let mut documented = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `module` | what it is | may use |
        if cells.len() == 5 && cells[1].starts_with('`') && cells[1].ends_with('`') {
            let module = cells[1].trim_matches('`');
            if !declared_modules().contains(module) {
                continue;
            }
            let uses: Vec<String> = cells[3]
                .split(',')
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty())
                .collect();
            documented.push((module.to_string(), uses));
        }
    }
    let checked: Vec<(String, Vec<String>)> = LAYERS
        .iter()
        .map(|(m, u)| (m.to_string(), u.iter().map(|u| u.to_string()).collect()))
        .collect();
    assert_eq!(
        documented, checked,
        "ARCHITECTURE.md's layers differ from LAYERS"
    );
}

/// Every row of the route table is in ARCHITECTURE.md's URL map, by name.
#[test]
fn the_url_map_names_every_route() {
    let doc = architecture_md();
    let missing: Vec<&str> = forgelet::routes::ROUTES
        .iter()
        .map(|r| r.name)
        .filter(|name| {
            let listed = doc.contains(&format!("`{name}`"));
            let moved = name.ends_with(".moved") && doc.contains("`*.moved`");
            !(listed || moved)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from the URL map: {missing:?}"
    );
}

/// SECURITY.md names the test behind each protection (`tests/FILE.rs::NAME`,
/// `src/PATH.rs::tests::NAME`) and the code (`src/PATH.rs::NAME`): each must be a function (or a
/// constant) in that file, so renaming or removing one cannot leave the document pointing at
/// nothing.
#[test]
fn every_test_security_md_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let mut named = 0;
    let mut missing = Vec::new();
    for quoted in doc.split('`').skip(1).step_by(2) {
        let Some((file, rest)) = quoted.split_once(".rs::") else {
            continue;
        };
        if !(file.starts_with("tests/") || file.starts_with("src/")) {
            continue;
        }
        let name = rest.strip_prefix("tests::").unwrap_or(rest);
        // (`FILE::FUNCTION` in capitals is the document's pattern, not a name.)
        if !name.chars().any(|c| c.is_ascii_lowercase())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        named += 1;
        let path = root.join(format!("{file}.rs"));
        let text = fs::read_to_string(&path).unwrap_or_default();
        let defined = [
            format!("fn {name}("),
            format!("fn {name}<"),
            format!("const {name}:"),
            format!("static {name}:"),
        ]
        .iter()
        .any(|d| text.contains(d.as_str()));
        if !defined {
            missing.push(format!("{file}.rs::{rest}"));
        }
    }
    assert!(named > 50, "SECURITY.md names only {named} tests");
    assert!(
        missing.is_empty(),
        "SECURITY.md names what is not a function there: {missing:#?}"
    );
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`, other punctuation dropped.
fn anchor_of(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a Markdown document, outside fenced code blocks.
fn headings(doc: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in doc.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            out.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    out
}

/// The titles of the README's sections a reader can be sent to: its headings and the bold
/// words that open a paragraph (`**Who reads the repositories.**`), without their last stop.
fn readme_titles(readme: &str) -> Vec<String> {
    let mut titles = headings(readme);
    for line in readme.lines() {
        if let Some(bold) = line.strip_prefix("**").and_then(|l| l.split("**").next()) {
            titles.push(bold.trim_end_matches(['.', ':']).to_string());
        }
    }
    titles
}

/// The README titles `text` names as `README, "TITLE"` or `README's "TITLE"` (a title may run
/// over a line break).
fn readme_titles_named(text: &str) -> Vec<String> {
    let text = text.replace("\\\"", "\"");
    let mut out = Vec::new();
    for start in ["README, \"", "README's \""] {
        for (at, _) in text.match_indices(start) {
            let rest = &text[at + start.len()..];
            let title = rest.split('"').next().unwrap_or_default();
            out.push(title.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out
}

/// Messages and documents that send the reader to a section of the README (`see the README,
/// "TITLE"`, `the README's "TITLE"`) and the documents' links to a section (`](#anchor)`) name a
/// section that exists: maintain and doctor once sent sysadmins to a "Damaged repositories" the
/// README does not have (its title is "A full disk, and damaged repositories").
#[test]
fn every_section_the_messages_and_documents_send_the_reader_to_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(root.join("README.md")).unwrap();
    let titles = readme_titles(&readme);
    let mut broken = Vec::new();
    let mut named = 0;
    let mut check = |place: String, text: &str| {
        for title in readme_titles_named(text) {
            named += 1;
            if !titles.contains(&title) {
                broken.push(format!("{place}: {title:?}"));
            }
        }
    };
    for s in sources() {
        for (line, text) in &s.strings {
            check(format!("{}:{line}", s.path), text);
        }
    }
    let mut files = vec![
        root.join("README.md"),
        root.join("ARCHITECTURE.md"),
        root.join("SECURITY.md"),
    ];
    walk_all(&root.join("deploy"), &mut files);
    for f in &files {
        let Ok(text) = fs::read_to_string(f) else {
            continue;
        };
        // Comments' line breaks and leading `#` do not end a title.
        let joined: String = text
            .lines()
            .map(|l| l.trim_start().trim_start_matches('#'))
            .collect::<Vec<_>>()
            .join(" ");
        check(f.strip_prefix(root).unwrap().display().to_string(), &joined);
    }
    assert!(
        named >= 5,
        "only {named} references to README sections were found"
    );
    for doc in ["README.md", "ARCHITECTURE.md", "SECURITY.md"] {
        let text = fs::read_to_string(root.join(doc)).unwrap();
        let anchors: Vec<String> = headings(&text).iter().map(|h| anchor_of(h)).collect();
        for (at, _) in text.match_indices("](#") {
            let anchor = text[at + 3..].split(')').next().unwrap_or_default();
            if !anchors.iter().any(|a| a == anchor) {
                broken.push(format!("{doc}: a link to #{anchor}"));
            }
        }
    }
    report("sections named that do not exist", broken);
}

/// Every file under `dir`, whatever its kind.
fn walk_all(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk_all(&p, out);
        } else {
            out.push(p);
        }
    }
}
