//! Syntax highlighting through real nginx: files found by name, extension and first line show
//! token classes, their text escaped exactly as a plain file's; hostile content stays text; a
//! commit's diff is highlighted hunk by hunk; a file past the bounds is plain with a note; a blob
//! seen again comes from the highlighter's cache (its debug log line says so).

use std::path::Path;

use crate::util::*;

/// The rows of a page's code table, with the highlighter's spans taken out: what a plain page
/// would show of the same text.
fn rows_without_spans(page: &str) -> String {
    let start = page.find("<table class=\"code").expect("a code table");
    let end = start + page[start..].find("</table>").expect("the table's end");
    let table = &page[start..end];
    let rows = &table[table.find('\n').unwrap()..];
    let mut out = String::new();
    let mut rest = rows.replace("</span>", "");
    while let Some(i) = rest.find("<span class=\"hl-") {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        rest = after[after.find("\">").unwrap() + 2..].to_string();
    }
    out.push_str(&rest);
    out
}

fn write(work: &Path, name: &str, data: &[u8]) {
    let p = work.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, data).unwrap();
}

#[test]
fn files_are_highlighted_by_language_escaped_as_plain_text_and_cached_by_blob() {
    let site = Site::new("highlight_files", SiteOptions::default());
    let work = site.dir().join("work-hl");
    let hostile: &[u8] = b"fn main() {\n    let s = \"</span><script>alert(1)</script>\";\n    let q = '\"'; // & \"quoted\" <b>\n    /* \xff\xfe not UTF-8 */\n}\n";
    write(&work, "src/main.rs", hostile);
    // The same bytes in a file no grammar claims: the plain page as it always was.
    write(&work, "src/main.rs.txt", hostile);
    write(
        &work,
        "tools/release",
        b"#!/usr/bin/env python3\nimport sys\n\ndef main():\n    return 0\n",
    );
    write(&work, "Makefile", b"all: build\n\nbuild:\n\tcargo build\n");
    write(
        &work,
        "Cargo.toml",
        b"[package]\nname = \"demo\"\nversion = \"0.1.0\"\n",
    );
    // A NUL past the 8,000 bytes git looks at for binary files, and a line of 20,000 bytes.
    let mut c = "int x;\n".repeat(1_200).into_bytes();
    c.extend_from_slice(b"char s[] = \"a\0b\";\n");
    c.extend_from_slice(format!("int y = {};\n", "1+".repeat(10_000) + "1").as_bytes());
    write(&work, "nul.c", &c);
    // Past the highlighter's bound of 10,000 lines.
    write(&work, "big.rs", "let x = 1;\n".repeat(12_000).as_bytes());
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "files"]);
    let repo = import_work_tree(&site, &work, "alice/hl");
    let srv = site.start();
    let mut b = Browser::default();
    let page = |b: &mut Browser, path: &str| {
        let r = b.get(&srv, &site.target(&format!("/alice/hl/blob/{path}")));
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        r.text()
    };

    for (path, class) in [
        ("main/src/main.rs", "hl-k"),
        ("main/tools/release", "hl-k"),
        ("main/Makefile", "hl-"),
        ("main/Cargo.toml", "hl-"),
        ("main/nul.c", "hl-k"),
    ] {
        let t = page(&mut b, path);
        assert!(
            t.contains("<table class=\"code hl\">")
                && t.contains(&format!("<span class=\"{class}")),
            "{path} is not highlighted:\n{t}"
        );
        assert!(
            t.contains("<tr id=\"L1\"><td class=\"ln\"><a href=\"#L1\">1</a></td>"),
            "{path} lost its line anchors:\n{t}"
        );
    }

    // Every byte escaped as on the plain page; nothing of the file becomes markup.
    let rust = page(&mut b, "main/src/main.rs");
    let plain = page(&mut b, "main/src/main.rs.txt");
    assert!(!plain.contains("hl-"), "a .txt file is highlighted");
    assert_eq!(
        rows_without_spans(&rust),
        rows_without_spans(&plain),
        "highlighted text differs from the plain text"
    );
    assert!(!rust.contains("<script>alert(1)"), "{rust}");
    assert!(rust.contains("&#60;/span&#62;&#60;script&#62;"), "{rust}");
    assert!(
        rust.contains("&#38; &#34;quoted&#34; &#60;b&#62;"),
        "{rust}"
    );
    assert!(rust.contains("\u{fffd}\u{fffd} not UTF-8"), "{rust}");
    assert!(rust.contains("id=\"L5\""), "{rust}");

    // The NUL and the long line are there, the long line plain; the page is whole.
    let nul = page(&mut b, "main/nul.c");
    assert!(nul.contains("a\0b"), "the NUL byte is gone");
    assert!(
        nul.contains(&format!("<pre>int y = {}1;</pre>", "1+".repeat(10_000))),
        "the long line is not shown plain"
    );
    assert!(nul.contains("id=\"L1202\""));

    // Past the bound: plain, with a quiet note, every line still there.
    let big = page(&mut b, "main/big.rs");
    assert!(big.contains("too large to highlight"), "no note");
    assert!(!big.contains("hl-"), "a file past the bound is highlighted");
    assert!(big.contains("<tr id=\"L12000\">"), "lines are missing");
    let small = page(&mut b, "main/Makefile");
    assert!(!small.contains("too large to highlight"));

    // The same blob from another name of the commit: a page not kept yet, the highlighted
    // lines kept from the first view (forgelet's debug log says which).
    let blob = git_ok(&repo, &["rev-parse", "main:src/main.rs"]);
    let blob = blob.trim();
    let commit = git_ok(&repo, &["rev-parse", "main"]);
    let log = srv.forgelet_stderr();
    assert!(
        log.contains(&format!("highlight: Rust blob {blob} made")),
        "{log}"
    );
    assert!(!log.contains(&format!("highlight: Rust blob {blob} from the cache")));
    let again = page(&mut b, &format!("{}/src/main.rs", commit.trim()));
    assert_eq!(rows_without_spans(&again), rows_without_spans(&rust));
    let log = srv.forgelet_stderr();
    assert!(
        log.contains(&format!("highlight: Rust blob {blob} from the cache")),
        "the second view made the lines again:\n{log}"
    );
    assert_eq!(
        log.matches(&format!("highlight: Rust blob {blob} made"))
            .count(),
        1,
        "{log}"
    );
    // A blame shows the file's lines as its page does: highlighted (from the same cache),
    // every byte escaped the same.
    let blame = |b: &mut Browser, path: &str| {
        let r = b.get(&srv, &site.target(&format!("/alice/hl/blame/{path}")));
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        r.text()
    };
    let rust_blame = blame(&mut b, "main/src/main.rs");
    let plain_blame = blame(&mut b, "main/src/main.rs.txt");
    assert!(rust_blame.contains("<span class=\"hl-k"), "{rust_blame}");
    assert!(
        !plain_blame.contains("hl-"),
        "a .txt file's blame is highlighted"
    );
    let src_cells = |page: &str| -> Vec<String> {
        page.split("<td class=\"src\"><pre>")
            .skip(1)
            .map(|c| {
                let cell = &c[..c.find("</pre>").unwrap()];
                let mut out = cell.replace("</span>", "");
                while let Some(i) = out.find("<span class=\"hl-") {
                    let end = i + out[i..].find("\">").unwrap() + 2;
                    out.replace_range(i..end, "");
                }
                out
            })
            .collect()
    };
    assert_eq!(src_cells(&rust_blame), src_cells(&plain_blame));
    assert_eq!(src_cells(&rust_blame).len(), 5);
    assert!(!rust_blame.contains("<script>alert(1)"), "{rust_blame}");
    assert!(
        rust_blame.contains("&#60;/span&#62;&#60;script&#62;"),
        "{rust_blame}"
    );

    assert_eq!(
        srv.forgelet_stderr()
            .matches(&format!("highlight: Rust blob {blob} made"))
            .count(),
        1,
        "the blame highlighted the file again"
    );
    srv.finish();
}

#[test]
fn a_commit_diff_is_highlighted_hunk_by_hunk() {
    let site = Site::new("highlight_diff", SiteOptions::default());
    let work = site.dir().join("work-diff");
    let body = |changed: &str| {
        let mut s = String::from("/* a long file */\n#include <stdio.h>\n");
        for i in 0..3_000 {
            if i == 1_500 {
                s.push_str(changed);
            }
            s.push_str(&format!("static int f{i}(void) {{ return {i}; }}\n"));
        }
        s
    };
    write(&work, "lib.c", body("int old_value = 1;\n").as_bytes());
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "first"]);
    write(
        &work,
        "lib.c",
        body("const char *new_value = \"<i>&</i>\"; /* changed */\n").as_bytes(),
    );
    git_ok(&work, &["commit", "-q", "-am", "change one line"]);
    let repo = import_work_tree(&site, &work, "alice/diff");
    let srv = site.start();
    let mut b = Browser::default();
    let id = git_ok(&repo, &["rev-parse", "main"]);
    let r = b.get(
        &srv,
        &site.target(&format!("/alice/diff/commit/{}", id.trim())),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let t = r.text();
    assert!(
        t.contains("<tr class=\"add\">")
            && t.contains("<pre>+<span class=\"hl-k\">const</span>")
            && t.contains("<span class=\"hl-s\">&#34;&#60;i&#62;&#38;&#60;/i&#62;&#34;</span>")
            && t.contains("<span class=\"hl-c\">/* changed */</span>"),
        "the added line is not highlighted:\n{t}"
    );
    assert!(
        t.contains("<tr class=\"del\">") && t.contains("<pre>-<span class=\"hl-k\">int</span>"),
        "the removed line is not highlighted:\n{t}"
    );
    assert!(
        t.contains("<tr class=\"ctx\">") && t.contains("<pre> <span class=\"hl-k\">static</span>"),
        "context lines are not highlighted:\n{t}"
    );
    assert!(
        !t.contains("f100(void)") && !t.contains("f2900(void)"),
        "the page shows more than the hunk"
    );
    // The hunk's lines were highlighted, not the file.
    let log = srv.forgelet_stderr();
    assert!(!log.contains("highlight: C blob"), "{log}");
    srv.finish();
}
