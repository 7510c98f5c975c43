//! Repository pages that must stay fast on large repositories: the branch and tag selector shows
//! a few refs and links to the full lists, which are paginated; pages kept in forgelet's memory
//! follow pushes, force-pushes and repositories deleted and made again, and are never shown to
//! someone who may not read the repository; a path's history lists what `git log -- path` lists.

use std::path::Path;

use crate::util::*;

/// Feeds `stream` to `git fast-import` in the bare repository `repo`.
fn fast_import(repo: &Path, stream: &str) {
    let out = run_with_stdin(
        git(repo).args(["fast-import", "--quiet"]),
        stream.as_bytes(),
    );
    assert!(out.status.success(), "fast-import: {}", all_output(&out));
}

/// `n` commits on main, one a minute, the i-th tagged `t-{i:03}` (annotated for even i), and
/// `branches` branches `b-{i:03}` on the first commits.
fn many_refs_stream(n: usize, branches: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let msg = format!("commit number {i}\n");
        s.push_str(&format!(
            "commit refs/heads/main\nmark :{}\ncommitter C <c@example.org> {} +0000\ndata {}\n{msg}",
            i + 1,
            1_700_000_000 + i * 60,
            msg.len()
        ));
        if i > 0 {
            s.push_str(&format!("from :{i}\n"));
        }
        s.push_str(&format!(
            "M 644 inline file.txt\ndata {}\nversion {i}\n\n",
            format!("version {i}\n").len()
        ));
        if i % 2 == 0 {
            let m = format!("release {i}\n");
            s.push_str(&format!(
                "tag t-{i:03}\nfrom :{}\ntagger T <t@example.org> {} +0000\ndata {}\n{m}\n",
                i + 1,
                1_700_000_000 + i * 60,
                m.len()
            ));
        } else {
            s.push_str(&format!("reset refs/tags/t-{i:03}\nfrom :{}\n\n", i + 1));
        }
        if i < branches {
            s.push_str(&format!("reset refs/heads/b-{i:03}\nfrom :{}\n\n", i + 1));
        }
    }
    s
}

/// The names a refs page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("<li><a href=")
        .skip(1)
        .filter_map(|li| {
            let rest = li.split_once("<strong>")?.1;
            Some(rest.split_once("</strong>")?.0.to_string())
        })
        .collect()
}

/// The pager's links (newer, older).
fn pager(page: &str) -> (Option<String>, Option<String>) {
    let Some(nav) = page
        .split_once("<nav class=\"pager\">")
        .and_then(|(_, rest)| rest.split_once("</nav>"))
        .map(|(nav, _)| nav.to_string())
    else {
        return (None, None);
    };
    let link = |label: &str| {
        nav.split("<a href=\"")
            .skip(1)
            .find(|a| a.contains(label))
            .and_then(|a| a.split_once('"'))
            .map(|(u, _)| u.to_string())
    };
    (link("Newer"), link("Older"))
}

/// Every page of a paginated list at `path` (following the older links, checking each link and
/// page size), the names listed, in order; the page past the last answers 404.
fn walk(site: &Site, srv: &Server, path: &str) -> Vec<String> {
    let mut b = Browser::default();
    let mut all = Vec::new();
    let mut target = site.target(path);
    let mut page = 1;
    loop {
        let r = b.get(srv, &target);
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        let text = r.text();
        let names = listed(&text);
        let (newer, older) = pager(&text);
        let want_newer = match page {
            1 => None,
            2 => Some(site.target(path)),
            _ => Some(format!("{}?page={}", site.target(path), page - 1)),
        };
        assert_eq!(newer, want_newer, "{target}");
        all.extend(names.iter().cloned());
        match older {
            Some(next) => {
                assert_eq!(names.len(), 50, "{target}: a full page before the last");
                assert_eq!(next, format!("{}?page={}", site.target(path), page + 1));
                target = next;
                page += 1;
            }
            None => {
                assert!(!names.is_empty() && names.len() <= 50, "{target}: {text}");
                let past = format!("{}?page={}", site.target(path), page + 1);
                assert_eq!(b.get(srv, &past).status, 404, "{past}");
                return all;
            }
        }
    }
}

#[test]
fn tags_and_branches_are_paginated_and_the_selector_lists_a_few() {
    let site = Site::new("large_refs", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/many"]));
    let repo = site.repo_path("alice/many");
    fast_import(&repo, &many_refs_stream(120, 60));
    git_ok(&repo, &["pack-refs", "--all"]);
    let srv = site.start();

    // Tags: newest first, 50 a page.
    let tags = walk(&site, &srv, "/alice/many/tags");
    let want: Vec<String> = (0..120).rev().map(|i| format!("t-{i:03}")).collect();
    assert_eq!(tags, want);
    // Page 2 on its own: the 51st to the 100th newest.
    let mut b = Browser::default();
    let page2 = b.get(&srv, &site.target("/alice/many/tags?page=2")).text();
    assert_eq!(listed(&page2), want[50..100].to_vec());
    assert!(page2.contains("release 68"), "an annotated tag's message");

    // Branches: the default first, then the most recently committed to.
    let branches = walk(&site, &srv, "/alice/many/branches");
    let mut want = vec!["main".to_string()];
    want.extend((0..60).rev().map(|i| format!("b-{i:03}")));
    assert_eq!(branches, want);

    // The home page's selector: a few of each and links to the full lists, not every tag.
    let home = b.get(&srv, &site.target("/alice/many")).text();
    let tag_links = home.matches("/alice/many/tree/t-").count();
    assert_eq!(tag_links, 10, "tags in the selector");
    assert_eq!(
        home.matches("/alice/many/tree/b-").count(),
        9,
        "branches besides main"
    );
    assert!(home.contains(&format!(
        "<a href=\"{}\">All 120 tags</a>",
        site.target("/alice/many/tags")
    )));
    assert!(home.contains(&format!(
        "<a href=\"{}\">All 61 branches</a>",
        site.target("/alice/many/branches")
    )));
    srv.finish();
}

/// Pushes `work`'s main to `bare` (forced when `force`).
fn push(work: &Path, bare: &Path, force: bool) {
    let mut args = vec!["push", "-q"];
    if force {
        args.push("-f");
    }
    let bare = bare.to_str().unwrap();
    args.extend([bare, "main"]);
    git_ok(work, &args);
}

fn commit_file(work: &Path, name: &str, text: &str, subject: &str, amend: bool) -> String {
    let path = work.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    git_ok(work, &["add", "-A"]);
    if amend {
        git_ok(work, &["commit", "-q", "--amend", "-m", subject]);
    } else {
        git_ok(work, &["commit", "-q", "-m", subject]);
    }
    git_ok(work, &["rev-parse", "HEAD"]).trim().to_string()
}

#[test]
fn kept_pages_follow_force_pushes_and_repositories_made_again() {
    let site = Site::new(
        "large_kept",
        SiteOptions {
            // One page worker: every request meets the same process and its kept pages.
            server_extra: "workers = 1",
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/live"]));
    let bare = site.repo_path("alice/live");
    let work = site.dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    let first = commit_file(&work, "notes.txt", "first-text\n", "first-subject", false);
    push(&work, &bare, false);
    let srv = site.start();
    let mut b = Browser::default();
    let page = |b: &mut Browser, path: &str| -> String {
        let r = b.get(&srv, &site.target(path));
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        r.text()
    };
    let pages = [
        "/alice/live",
        "/alice/live/tree/main",
        "/alice/live/blob/main/notes.txt",
        "/alice/live/commits/main",
        "/alice/live/commits/main/notes.txt",
        "/alice/live/branches",
    ];
    // Each twice: made, then kept.
    for _ in 0..2 {
        for p in pages {
            assert!(page(&mut b, p).contains("first-"), "{p}");
        }
        assert!(page(&mut b, &format!("/alice/live/commit/{first}")).contains("first-subject"));
        assert!(page(&mut b, "/alice/live/tags").contains("None yet."));
    }

    // A force-push: the ref names another commit; no page shows the old one as main's.
    let second = commit_file(&work, "notes.txt", "second-text\n", "second-subject", true);
    push(&work, &bare, true);
    git_ok(&work, &["tag", "v1"]);
    git_ok(&work, &["push", "-q", bare.to_str().unwrap(), "v1"]);
    for p in pages {
        let text = page(&mut b, p);
        assert!(text.contains("second-"), "{p} after the force-push: {text}");
        assert!(!text.contains("first-"), "{p} after the force-push: {text}");
    }
    assert!(page(&mut b, "/alice/live/tags").contains(">v1<"));
    // The old commit is still an object of the repository: its own page is unchanged.
    assert!(page(&mut b, &format!("/alice/live/commit/{first}")).contains("first-subject"));
    assert!(page(&mut b, &format!("/alice/live/commit/{second}")).contains("second-subject"));

    // Deleted (moved to a trash folder, as forgelet deletes) and made again under the same name
    // with other content.
    let trash = site.dir().join("trash-live.git");
    std::fs::rename(&bare, &trash).unwrap();
    ok(site.forgelet().args(["repo", "create", "alice/live"]));
    let other = site.dir().join("other");
    std::fs::create_dir_all(&other).unwrap();
    git_ok(&other, &["init", "-q", "-b", "main"]);
    let third = commit_file(&other, "notes.txt", "third-text\n", "third-subject", false);
    push(&other, &bare, false);
    for p in pages {
        let text = page(&mut b, p);
        assert!(text.contains("third-"), "{p} after recreation: {text}");
        assert!(!text.contains("second-"), "{p} after recreation: {text}");
    }
    for old in [&first, &second] {
        let r = b.get(&srv, &site.target(&format!("/alice/live/commit/{old}")));
        assert_eq!(r.status, 404, "old commit {old} after recreation");
    }
    assert!(page(&mut b, &format!("/alice/live/commit/{third}")).contains("third-subject"));
    assert!(!page(&mut b, "/alice/live/tags").contains(">v1<"));
    srv.finish();
}

#[test]
fn kept_pages_of_a_private_repository_reach_only_its_readers() {
    let site = Site::new(
        "large_private",
        SiteOptions {
            server_extra: "workers = 1",
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    site.ensure_user("bob");
    // The same repository twice: a private one, and a public copy (equal commit ids).
    let secret = site.import_fixture("mixed", "alice/secret");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/secret", "--visibility", "private"]));
    // (import_fixture built it here first.)
    let source = site.dir().join("src").join("alice-secret.git");
    ok(site
        .forgelet()
        .args(["repo", "import", "alice/open"])
        .arg(&source));
    let head = git_ok(&secret, &["rev-parse", "HEAD"]).trim().to_string();
    let file = "README.md";
    let srv = site.start();
    let mut alice = Browser::default();
    sign_in_as(&site, &srv, &mut alice, "alice");
    let paths = |repo: &str| {
        vec![
            format!("/alice/{repo}"),
            format!("/alice/{repo}/tree/main"),
            format!("/alice/{repo}/blob/main/{file}"),
            format!("/alice/{repo}/commits/main"),
            format!("/alice/{repo}/commits/main/{file}"),
            format!("/alice/{repo}/commit/{head}"),
            format!("/alice/{repo}/tags"),
            format!("/alice/{repo}/branches"),
        ]
    };
    // alice reads the private repository: its pages are made and kept.
    for p in paths("secret") {
        let r = alice.get(&srv, &site.target(&p));
        assert_eq!(r.status, 200, "{p}: {}", r.describe());
        assert!(r.text().contains("Sign out"), "{p}");
    }
    // Anyone else: the same 404 as a missing repository, kept pages or not.
    let mut anonymous = Browser::default();
    let mut bob = Browser::default();
    sign_in_as(&site, &srv, &mut bob, "bob");
    for p in paths("secret") {
        assert_eq!(anonymous.get(&srv, &site.target(&p)).status, 404, "{p}");
        assert_eq!(bob.get(&srv, &site.target(&p)).status, 404, "{p} for bob");
    }
    // The public copy holds the same commits: its pages are its own, never the private one's
    // (whose links name alice/secret), and never carry alice's menu or form token.
    for p in paths("open") {
        let r = anonymous.get(&srv, &site.target(&p));
        assert_eq!(r.status, 200, "{p}: {}", r.describe());
        let text = r.text();
        assert!(
            !text.contains("alice/secret"),
            "{p} shows the private repository: {text}"
        );
        assert!(!text.contains("Sign out"), "{p} shows a signed-in menu");
        assert!(text.contains("Sign in"), "{p}");
    }
    // And the other way: alice's view of the public copy after an anonymous one is hers.
    for p in paths("open") {
        let r = alice.get(&srv, &site.target(&p));
        assert!(r.text().contains("Sign out"), "{p}");
        assert!(
            r.text().contains("Settings"),
            "{p}: the owner's Settings tab"
        );
        let r = bob.get(&srv, &site.target(&p));
        assert!(
            !r.text().contains(">Settings<"),
            "{p}: bob has no Settings tab"
        );
    }
    srv.finish();
}

/// The commit ids a history page lists, in order.
fn history_ids(page: &str) -> Vec<String> {
    let Some(list) = page
        .split_once("<ul class=\"repos commits\">")
        .and_then(|(_, rest)| rest.split_once("</ul>"))
        .map(|(list, _)| list.to_string())
    else {
        return Vec::new();
    };
    list.split("/commit/")
        .skip(1)
        .filter_map(|s| s.split_once('"').map(|(id, _)| id.to_string()))
        .collect()
}

#[test]
fn path_history_lists_what_git_log_lists() {
    let site = Site::new("large_history", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/hist"]));
    let bare = site.repo_path("alice/hist");
    let work = site.dir().join("work");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    let mut clock = 1_710_000_000u64;
    let mut step = |work: &Path, args: &[&str]| {
        clock += 60;
        let date = format!("{clock} +0000");
        ok(git(work)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .args(args));
    };
    let write = |name: &str, text: &str| {
        let path = work.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    // 70 commits on a.txt (two pages), others on src/ and b.txt; a side branch that changes
    // a.txt and one that does not, merged; a file deleted; a file renamed.
    for i in 0..70 {
        write("a.txt", &format!("{i}\n"));
        if i % 3 == 0 {
            write("src/lib.rs", &format!("{i}\n"));
        }
        if i % 5 == 0 {
            write("b.txt", &format!("{i}\n"));
        }
        step(&work, &["add", "-A"]);
        step(&work, &["commit", "-q", "-m", &format!("change {i}")]);
    }
    step(&work, &["checkout", "-q", "-b", "side"]);
    write("a.txt", "side\n");
    write("src/side.rs", "side\n");
    step(&work, &["add", "-A"]);
    step(&work, &["commit", "-q", "-m", "side changes a"]);
    step(&work, &["checkout", "-q", "main"]);
    write("b.txt", "main meanwhile\n");
    step(&work, &["add", "-A"]);
    step(&work, &["commit", "-q", "-m", "main meanwhile"]);
    step(
        &work,
        &["merge", "-q", "--no-ff", "-m", "merge side", "side"],
    );
    step(&work, &["checkout", "-q", "-b", "quiet", "main~3"]);
    write("c.txt", "quiet\n");
    step(&work, &["add", "-A"]);
    step(&work, &["commit", "-q", "-m", "quiet side"]);
    step(&work, &["checkout", "-q", "main"]);
    step(
        &work,
        &["merge", "-q", "--no-ff", "-m", "merge quiet", "quiet"],
    );
    step(&work, &["rm", "-q", "b.txt"]);
    step(&work, &["commit", "-q", "-m", "remove b"]);
    step(&work, &["mv", "src/lib.rs", "src/core.rs"]);
    step(&work, &["commit", "-q", "-m", "rename lib"]);
    git_ok(&work, &["push", "-q", bare.to_str().unwrap(), "main"]);
    // What maintenance writes: a commit-graph with changed-path Bloom filters.
    git_ok(
        &bare,
        &["commit-graph", "write", "--reachable", "--changed-paths"],
    );
    let srv = site.start();
    let mut b = Browser::default();
    for path in [
        "a.txt",
        "b.txt",
        "c.txt",
        "src",
        "src/lib.rs",
        "src/core.rs",
        "src/side.rs",
        "nothing-here",
    ] {
        let want: Vec<String> = git_ok(&bare, &["log", "--format=%H", "main", "--", path])
            .lines()
            .map(str::to_string)
            .collect();
        let mut got = Vec::new();
        let mut target = site.target(&format!("/alice/hist/commits/main/{path}"));
        loop {
            let r = b.get(&srv, &target);
            assert_eq!(r.status, 200, "{target}: {}", r.describe());
            let text = r.text();
            got.extend(history_ids(&text));
            match pager(&text).1 {
                Some(next) => target = next.replace("&amp;", "&"),
                None => break,
            }
        }
        assert_eq!(got, want, "history of {path}");
    }
    // a.txt has two pages; the page past them is a 404.
    let past = site.target("/alice/hist/commits/main/a.txt?page=3");
    assert_eq!(b.get(&srv, &past).status, 404);
    srv.finish();
}
