//! Blame, code search and repository search through real nginx, checked against `git blame
//! --porcelain` and `git grep` run by the test: lines attributed to the right commits, the blame
//! before a commit across a rename, a blame kept once made; fixed strings, regular expressions,
//! case and paths found as git finds them, hostile and invalid queries answered with a message;
//! the caps on how many run at once; and repositories found only by those who may see them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::util::*;

/// A work tree whose history has three authors, a rename with changes, and files to search.
fn history(site: &Site) -> PathBuf {
    let work = site.dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    let mut clock = 1_710_000_000u64;
    let mut commit = |who: &str, subject: &str, files: &[(&str, &str)]| {
        for (name, text) in files {
            let path = work.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        clock += 3600;
        let date = format!("{clock} +0100");
        ok(git(&work).args(["add", "-A"]));
        ok(git(&work)
            .env("GIT_AUTHOR_NAME", who)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(["commit", "-q", "-m", subject]));
    };
    commit(
        "Alice Author",
        "first lines",
        &[("a.txt", "one\ntwo\nthree\nfour\nfive\n")],
    );
    commit(
        "Bob Builder",
        "second thoughts",
        &[("a.txt", "one\nTWO\nthree\nfour\nfive\nsix\n")],
    );
    commit(
        "Carol Coder",
        "code to search",
        &[
            (
                "src/lib.rs",
                "fn needle() {}\n// Needle in caps\nlet foo123 = 1;\nlet x = 2;\n",
            ),
            ("src/deep/mod.rs", "const NEEDLE: u8 = 0;\nfoo9\n"),
            (
                "docs/guide.md",
                "# Guide\nthe needle is here\n<script>alert(1)</script>\n",
            ),
        ],
    );
    // A rename that changes a line: git blame follows it.
    git_ok(&work, &["mv", "a.txt", "b.txt"]);
    commit(
        "Alice Author",
        "rename and change",
        &[("b.txt", "one\nTWO\nthree\nFOUR\nfive\nsix\n")],
    );
    work
}

/// The commit each line of a blame page is attributed to, by line number.
fn blamed(page: &str) -> BTreeMap<usize, String> {
    let mut out = BTreeMap::new();
    let mut current = String::new();
    for row in page.split("<tr id=\"L").skip(1) {
        let n: usize = row[..row.find('"').unwrap()].parse().unwrap();
        if let Some(at) = row.find("class=\"sha\" href=\"") {
            let href = &row[at + 18..];
            let href = &href[..href.find('"').unwrap()];
            current = href[href.len() - 40..].to_string();
        }
        out.insert(n, current.clone());
    }
    out
}

/// What `git blame --porcelain` says of each line.
fn porcelain(repo: &Path, rev: &str, path: &str) -> BTreeMap<usize, String> {
    let out = git_ok(repo, &["blame", "--porcelain", rev, "--", path]);
    let mut lines = BTreeMap::new();
    for line in out.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() >= 3
            && parts[0].len() == 40
            && parts[0].bytes().all(|b| b.is_ascii_hexdigit())
        {
            lines.insert(parts[2].parse().unwrap(), parts[0].to_string());
        }
    }
    lines
}

#[test]
fn blame_attributes_lines_as_git_blame_does_and_goes_back_across_a_rename() {
    let site = Site::new(
        "blame_lines",
        SiteOptions {
            // One process: a blame made is kept for the next request.
            server_extra: "workers = 1",
            ..SiteOptions::default()
        },
    );
    let work = history(&site);
    let bare = import_work_tree(&site, &work, "alice/proj");
    let srv = site.start();
    let mut b = Browser::default();
    let r = b.get(&srv, &site.target("/alice/proj/blame/main/b.txt"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let page = r.text();
    let want = porcelain(&bare, "main", "b.txt");
    assert_eq!(want.len(), 6);
    assert_eq!(blamed(&page), want);
    // Three commits: grouped, each once per run of lines, with author and date.
    assert!(
        page.contains("Bob Builder") && page.contains("Alice Author"),
        "{page}"
    );
    // Dates as every page shows them: the exact time in the author's zone.
    assert!(page.contains("title=\"2024-03-09 18:00 +0100\""), "{page}");
    assert_eq!(page.matches("class=\"sha\"").count(), 6, "{page}");

    // The rename's lines: "before" is the blame at its parent, under the old name.
    let head = git_ok(&bare, &["rev-parse", "main"]).trim().to_string();
    let parent = git_ok(&bare, &["rev-parse", "main~1"]).trim().to_string();
    let before = format!("/git/alice/proj/blame/{parent}/a.txt");
    assert!(page.contains(&format!("href=\"{before}\"")), "{page}");
    let r = b.get(&srv, &before);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(blamed(&r.text()), porcelain(&bare, &parent, "a.txt"));
    // A line first written in the root commit has nothing before it.
    let root = git_ok(&bare, &["rev-list", "--max-parents=0", "main"]);
    let root_page = b
        .get(
            &srv,
            &site.target(&format!("/alice/proj/blame/{}/a.txt", root.trim())),
        )
        .text();
    assert!(!root_page.contains("class=\"before\""), "{root_page}");

    // Binary, missing and folder paths.
    let missing = b.get(&srv, &site.target("/alice/proj/blame/main/nothing.txt"));
    assert_eq!(missing.status, 404);
    assert_eq!(
        b.get(&srv, &site.target("/alice/proj/blame/main/src"))
            .status,
        404
    );
    assert_eq!(
        b.get(&srv, &site.target("/alice/proj/blame/nobranch/b.txt"))
            .status,
        404
    );

    // Kept: once made, the page is shown without git or the file's objects. Every object but
    // the head commit is removed; the blame still comes, while a page never made fails.
    let commit = run(git(&bare).args(["cat-file", "commit", &head])).stdout;
    // The repository's own folder is left as it is (its identity keys what is kept).
    for entry in std::fs::read_dir(bare.join("objects")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
            std::fs::create_dir(&p).unwrap();
        }
    }
    let written = run_with_stdin(
        git(&bare).args([
            "hash-object",
            "-t",
            "commit",
            "-w",
            "--stdin",
            "--literally",
        ]),
        &commit,
    );
    assert_eq!(String::from_utf8_lossy(&written.stdout).trim(), head);
    let again = b.get(&srv, &site.target("/alice/proj/blame/main/b.txt"));
    assert_eq!(again.status, 200, "{}", again.describe());
    assert_eq!(blamed(&again.text()), want);
    assert_eq!(
        b.get(&srv, &site.target("/alice/proj/blob/main/src/lib.rs"))
            .status,
        500
    );
    // A search git cannot run (the tree is gone) says so, rather than that nothing was found.
    let r = b.get(&srv, &site.target("/alice/proj/search?q=one"));
    assert_eq!(r.status, 500, "{}", r.describe());
    let page = r.text();
    assert!(
        page.contains("git could not run this search") && !page.contains("Nothing found"),
        "{page}"
    );
    srv.finish();
}

#[test]
fn blame_of_a_binary_file_says_so() {
    let site = Site::new("blame_binary", SiteOptions::default());
    let work = site.dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("blob.bin"), b"\x00\x01\x02binary").unwrap();
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "binary"]);
    import_work_tree(&site, &work, "alice/bin");
    let srv = site.start();
    let r = srv.get(&site.target("/alice/bin/blame/main/blob.bin"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("binary file"), "{}", r.text());
    srv.finish();
}

/// The matching lines a search page lists, as `path:line`.
fn found(page: &str) -> BTreeSet<String> {
    page.split("<tr class=\"match")
        .skip(1)
        .map(|row| {
            let at = row.find("href=\"").unwrap() + 6;
            let href = &row[at..];
            let href = &href[..href.find('"').unwrap()];
            let (file, line) = href.split_once("#L").unwrap();
            let path = file.split_once("/blob/main/").unwrap().1;
            format!("{path}:{line}")
        })
        .collect()
}

/// What `git grep` finds at `main`, as `path:line`.
fn grep(repo: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["grep", "-n", "-I"];
    all.extend_from_slice(args);
    let out = run(git(repo).args(&all));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let l = l.strip_prefix("main:").unwrap();
            let mut parts = l.splitn(3, ':');
            format!("{}:{}", parts.next().unwrap(), parts.next().unwrap())
        })
        .collect()
}

#[test]
fn code_search_finds_what_git_grep_finds() {
    let site = Site::new("code_search", SiteOptions::default());
    let work = history(&site);
    let bare = import_work_tree(&site, &work, "alice/proj");
    let srv = site.start();
    let mut b = Browser::default();
    let search = |b: &mut Browser, query: &str| {
        let r = b.get(&srv, &site.target(&format!("/alice/proj/search?{query}")));
        (r.status, r.text())
    };
    let cases: [(&str, &[&str]); 5] = [
        ("q=needle", &["-i", "-F", "-e", "needle", "main"]),
        ("q=Needle&case=1", &["-F", "-e", "Needle", "main"]),
        (
            "q=foo%5B0-9%5D%2B&regex=1",
            &["-i", "-E", "-e", "foo[0-9]+", "main"],
        ),
        (
            "q=needle&path=src",
            &["-i", "-F", "-e", "needle", "main", "--", "src"],
        ),
        (
            "q=needle&path=%2Fsrc%2Fdeep%2F",
            &["-i", "-F", "-e", "needle", "main", "--", "src/deep"],
        ),
    ];
    for (query, args) in cases {
        let (status, page) = search(&mut b, &format!("{query}&ref=main"));
        assert_eq!(status, 200, "{query}: {page}");
        let want = grep(&bare, args);
        assert!(!want.is_empty(), "{query}");
        assert_eq!(found(&page), want, "{query}");
        // Each result links to its line on the file's page, with its context.
        assert!(
            page.contains("/git/alice/proj/blob/main/src/"),
            "{query}: {page}"
        );
    }
    // The default branch is searched when no ref is given; a missing ref is a message.
    let (status, page) = search(&mut b, "q=needle");
    assert_eq!(status, 200);
    assert_eq!(
        found(&page),
        grep(&bare, &["-i", "-F", "-e", "needle", "main"])
    );
    let (status, page) = search(&mut b, "q=needle&ref=nowhere");
    assert_eq!(status, 404, "{page}");
    assert!(
        page.contains("There is no branch, tag or commit nowhere"),
        "{page}"
    );

    // An empty query shows the form only.
    let (status, page) = search(&mut b, "q=");
    assert_eq!(status, 200);
    assert!(
        page.contains("name=\"q\"") && !page.contains("Nothing found"),
        "{page}"
    );
    let (status, page) = search(&mut b, "");
    assert_eq!(status, 200);
    assert!(page.contains("name=\"q\""), "{page}");

    // Hostile text is escaped wherever it is shown, found as the fixed string it is.
    let (status, page) = search(&mut b, "q=%3Cscript%3Ealert(1)%3C%2Fscript%3E");
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&#60;script&#62;alert(1)"), "{page}");
    assert_eq!(
        found(&page),
        BTreeSet::from(["docs/guide.md:3".to_string()])
    );
    for query in ["q=a%00b", "q=a%0Ab", "q=a&path=x%00y"] {
        let (status, page) = search(&mut b, query);
        assert_eq!(status, 400, "{query}: {page}");
        assert!(page.contains("one line each"), "{query}: {page}");
    }
    // An option-like query is text to find, never an option of git's.
    let (status, page) = search(&mut b, "q=--open-files-in-pager%3Dtouch+%2Ftmp%2Fx");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Nothing found"), "{page}");

    // A path is a literal path, never pathspec magic; a ref is a name, never an option.
    let (status, page) = search(&mut b, "q=needle&path=%3A(exclude)src");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Nothing found"), "{page}");
    let (status, page) = search(&mut b, "q=needle&ref=--output%3D%2Ftmp%2Fx");
    assert_eq!(status, 404, "{page}");
    assert!(
        page.contains("There is no branch, tag or commit --output=/tmp/x"),
        "{page}"
    );

    // An invalid regular expression is a clear message, not an error of the server's.
    let (status, page) = search(&mut b, "q=a(b&regex=1");
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("This is not a valid regular expression"),
        "{page}"
    );
    assert!(page.contains("value=\"a(b\""), "{page}");
    srv.finish();
}

#[test]
fn searches_and_blames_past_their_caps_are_told_to_come_back_and_cut_short_say_so() {
    let site = Site::new(
        "search_caps",
        SiteOptions {
            server_extra: "[limits]\nsearch_at_once = 1\nsearch_deadline = 3\nblame_at_once = 1\nblame_deadline = 3",
            ..SiteOptions::default()
        },
    );
    let work = site.dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(
        work.join("a.txt"),
        format!("{}\n", "a".repeat(60)).repeat(200),
    )
    .unwrap();
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "many a"]);
    import_work_tree(&site, &work, "alice/slow");
    let srv = site.start();
    std::thread::scope(|s| {
        // A regular expression the C library takes exponential time over: it runs until the
        // deadline, holding the one search allowed.
        let slow = s.spawn(|| {
            let started = std::time::Instant::now();
            let r = srv.get(&site.target("/alice/slow/search?regex=1&q=(a*)*(a*)*%5C2%5C1b"));
            (r, started.elapsed())
        });
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let r = srv.get(&site.target("/alice/slow/search?q=a"));
        assert_eq!(r.status, 503, "{}", r.describe());
        assert_eq!(r.header("Retry-After"), Some("5"));
        assert!(
            r.text().contains("Other searches are running"),
            "{}",
            r.text()
        );
        let (r, took) = slow.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(
            r.text().contains("The search stopped after 3 seconds"),
            "{}",
            r.text()
        );
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    });
    // Its turn is given back.
    let r = srv.get(&site.target("/alice/slow/search?q=a"));
    assert_eq!(r.status, 200, "{}", r.describe());

    // A short expression of nested repeats: the C library writes repeats out, so compiling
    // `(a{32767}){32767}` to check it made forgelet allocate 24 GB until the kernel killed it.
    // Only git compiles it now, under its memory limit: refused when git gives up within the
    // deadline, cut short by the deadline when git is still at it (a busy machine), and the
    // site goes on either way.
    for q in [
        "%28a%7B32767%7D%29%7B32767%7D",
        "%28a%7B%2C32767%7D%29%7B%2C32767%7D",
    ] {
        let r = srv.get(&site.target(&format!("/alice/slow/search?regex=1&q={q}")));
        let text = r.text();
        match r.status {
            400 => assert!(
                text.contains("not a valid regular expression, or git could not compile it"),
                "{text}"
            ),
            200 => assert!(
                text.contains("The search stopped after 3 seconds")
                    && text.contains("Nothing found."),
                "{text}"
            ),
            _ => panic!("{}", r.describe()),
        }
    }
    let r = srv.get(&site.target("/alice/slow/search?q=a"));
    assert_eq!(r.status, 200, "{}", r.describe());

    // Blames: git blame reads the files a repository's config names in blame.ignoreRevsFile
    // (a setting only someone with a shell on the server can make); a FIFO no one writes holds
    // it until its deadline, with the one blame allowed.
    let repo = site.repo_path("alice/slow");
    let fifo = site.dir().join("revs.fifo");
    ok(std::process::Command::new("mkfifo").arg(&fifo));
    git_ok(
        &repo,
        &["config", "blame.ignoreRevsFile", fifo.to_str().unwrap()],
    );
    std::thread::scope(|s| {
        let slow = s.spawn(|| srv.get(&site.target("/alice/slow/blame/main/a.txt")));
        std::thread::sleep(std::time::Duration::from_millis(1000));
        let r = srv.get(&site.target("/alice/slow/blame/main/a.txt"));
        assert_eq!(r.status, 503, "{}", r.describe());
        assert_eq!(r.header("Retry-After"), Some("5"));
        assert!(
            r.text().contains("Other blames are being worked out"),
            "{}",
            r.text()
        );
        // Cut short: every line shown, none attributed, and a note saying why.
        let r = slow.join().unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        let page = r.text();
        assert!(page.contains("git blame stopped after 3 seconds"), "{page}");
        assert!(
            page.contains("id=\"L200\"") && !page.contains("class=\"sha\""),
            "{page}"
        );
    });
    // Not kept: once git can finish, the whole blame comes.
    git_ok(&repo, &["config", "--unset", "blame.ignoreRevsFile"]);
    let r = srv.get(&site.target("/alice/slow/blame/main/a.txt"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let page = r.text();
    assert!(
        !page.contains("git blame stopped") && page.contains("class=\"sha\""),
        "{page}"
    );
    srv.finish();
}

#[test]
fn repository_search_shows_only_what_the_viewer_may_read() {
    let site = Site::new("repo_search", SiteOptions::default());
    site.ensure_user("alice");
    site.ensure_user("bob");
    ok(site.forgelet().args([
        "repo",
        "create",
        "alice/open-widget",
        "--description",
        "A shiny widget",
    ]));
    ok(site.forgelet().args([
        "repo",
        "create",
        "alice/hidden-widget",
        "--private",
        "--description",
        "classified-marker widget",
    ]));
    let srv = site.start();
    let mut stranger = Browser::default();
    let front = stranger.get(&srv, &site.target("/")).text();
    assert!(front.contains("action=\"/git/-/search\""), "{front}");
    let page = stranger
        .get(&srv, &site.target("/-/search?q=WIDGET"))
        .text();
    assert!(page.contains("alice/open-widget"), "{page}");
    assert!(page.contains("1 repository found"), "{page}");
    for query in ["WIDGET", "hidden", "classified", "classified-marker"] {
        let r = stranger.get(&srv, &site.target(&format!("/-/search?q={query}")));
        assert_eq!(r.status, 200);
        let page = r.text();
        assert!(!page.contains("hidden-widget"), "{query}: {page}");
        assert!(
            !page.contains("classified-marker widget"),
            "{query}: {page}"
        );
    }
    // By description, with its text escaped.
    let page = stranger
        .get(&srv, &site.target("/-/search?q=shiny+%3Cb%3E"))
        .text();
    assert!(page.contains("value=\"shiny &#60;b&#62;\""), "{page}");
    let page = stranger.get(&srv, &site.target("/-/search?q=shiny")).text();
    assert!(page.contains("alice/open-widget"), "{page}");

    // Bob, signed in but no reader of it, does not see it either; its owner does.
    let mut bob = Browser::default();
    sign_in_as(&site, &srv, &mut bob, "bob");
    let page = bob.get(&srv, &site.target("/-/search?q=widget")).text();
    assert!(
        page.contains("alice/open-widget") && !page.contains("hidden-widget"),
        "{page}"
    );
    let mut alice = Browser::default();
    sign_in_as(&site, &srv, &mut alice, "alice");
    let page = alice
        .get(&srv, &site.target("/-/search?q=classified"))
        .text();
    assert!(page.contains("alice/hidden-widget"), "{page}");
    let dash = alice.get(&srv, &site.target("/")).text();
    assert!(dash.contains("action=\"/git/-/search\""), "{dash}");
    srv.finish();
}
