//! The pages that list repositories (the front page, the dashboard, owners' pages): a page at a
//! time, for each kind of viewer, never listing a private repository to someone who may not read
//! it, and following visibility and collaborator changes at once.

use std::collections::BTreeSet;
use std::process::Command;

use crate::util::*;

/// The repositories a page lists, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("<li><a href=")
        .skip(1)
        .filter_map(|li| {
            let rest = li.split_once("<strong>")?.1;
            Some(rest.split_once("</strong>")?.0.to_string())
        })
        .collect()
}

/// The pager's links (newer, older), as printed (`&amp;` and all).
fn pager(page: &str) -> (Option<String>, Option<String>) {
    let link = |label: &str| {
        let nav = page
            .split_once("<nav class=\"pager\">")?
            .1
            .split_once("</nav>")?
            .0;
        nav.split("<a href=\"")
            .skip(1)
            .find(|a| a.contains(label))
            .and_then(|a| a.split_once('"'))
            .map(|(u, _)| u.to_string())
    };
    (link("Newer"), link("Older"))
}

/// Every page of `path` (following the older links), checking each link and page size; the
/// repositories listed, in order.
fn walk(site: &Site, srv: &Server, b: &mut Browser, path: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut target = site.target(path);
    let mut page = 1;
    loop {
        let r = b.get(srv, &target);
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        let text = r.text();
        let names = listed(&text);
        let (newer, older) = pager(&text);
        if page == 1 {
            assert_eq!(newer, None, "{target}");
        } else {
            let want = if page == 2 {
                site.target(path)
            } else {
                format!("{}?page={}", site.target(path), page - 1)
            };
            assert_eq!(newer.as_deref(), Some(want.as_str()), "{target}");
        }
        all.extend(names.iter().cloned());
        match older {
            Some(next) => {
                assert_eq!(names.len(), 50, "{target}: a full page before the last");
                assert_eq!(next, format!("{}?page={}", site.target(path), page + 1));
                target = next;
                page += 1;
            }
            None => {
                assert!(
                    names.len() <= 50,
                    "{target}: {} listed, no older link: {text}",
                    names.len()
                );
                // Past the last page: nothing to show.
                let past = format!("{}?page={}", site.target(path), page + 1);
                assert_eq!(b.get(srv, &past).status, 404, "{past}");
                return all;
            }
        }
    }
}

fn names(owner: &str, prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{owner}/{prefix}{i:02}")).collect()
}

#[test]
fn repository_lists_are_paginated_and_show_each_viewer_what_it_may_read() {
    let site = Site::new("lists", SiteOptions::default());
    for u in ["alice", "bob", "carol"] {
        site.ensure_user(u);
    }
    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "add", "root", "--admin", "--password-stdin"]),
        format!("{TEST_PASSWORD}\n").as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    // alice: p00..p54 public, s00..s04 private (bob reads s00); bob: b00..b02 public.
    let seed = site.place_fixture("mixed", "alice/p00");
    let copy = |to: &str| {
        let dest = site.repo_path(to);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        ok(Command::new("cp").arg("-a").arg(&seed).arg(&dest));
    };
    let alice_public = names("alice", "p", 0..55);
    let alice_private = names("alice", "s", 0..5);
    let bobs = names("bob", "b", 0..3);
    for n in alice_public[1..].iter().chain(&alice_private).chain(&bobs) {
        copy(n);
    }
    for n in &alice_private {
        ok(site
            .forgelet()
            .args(["repo", "set", n, "--visibility", "private"]));
    }
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/s00", "bob", "read"]));
    let srv = site.start();

    let cat = |parts: &[&[String]]| -> Vec<String> { parts.concat() };
    let public = cat(&[&alice_public, &bobs]);
    let mut anon = Browser::default();
    assert_eq!(walk(&site, &srv, &mut anon, "/"), public, "anonymous");
    assert_eq!(
        walk(&site, &srv, &mut anon, "/alice"),
        alice_public,
        "anonymous, alice's page"
    );
    assert_eq!(walk(&site, &srv, &mut anon, "/bob"), bobs);

    let mut alice = Browser::default();
    sign_in_as(&site, &srv, &mut alice, "alice");
    let alice_all = cat(&[&alice_public, &alice_private]);
    // Sorted by name: p.. before s...
    assert_eq!(
        walk(&site, &srv, &mut alice, "/"),
        cat(&[&alice_all, &bobs]),
        "the owner: her own first"
    );
    let first = alice.get(&srv, &site.target("/")).text();
    assert!(first.contains("Your repositories <span class=\"muted\">(60)</span>"));
    assert_eq!(walk(&site, &srv, &mut alice, "/alice"), alice_all);

    let mut bob = Browser::default();
    sign_in_as(&site, &srv, &mut bob, "bob");
    let bob_sees = cat(&[&bobs, &alice_public, &alice_private[..1]]);
    assert_eq!(
        walk(&site, &srv, &mut bob, "/"),
        bob_sees,
        "a collaborator: his own first, then what he may read"
    );
    assert_eq!(
        walk(&site, &srv, &mut bob, "/alice"),
        cat(&[&alice_public, &alice_private[..1]])
    );

    let mut carol = Browser::default();
    sign_in_as(&site, &srv, &mut carol, "carol");
    assert_eq!(walk(&site, &srv, &mut carol, "/"), public, "another user");
    assert_eq!(walk(&site, &srv, &mut carol, "/alice"), alice_public);
    let page = carol.get(&srv, &site.target("/")).text();
    assert!(page.contains("You have no repositories yet."), "{page}");

    let mut root = Browser::default();
    sign_in_as(&site, &srv, &mut root, "root");
    let everything = cat(&[&alice_all, &bobs]);
    assert_eq!(walk(&site, &srv, &mut root, "/"), everything, "an admin");
    assert_eq!(walk(&site, &srv, &mut root, "/alice"), alice_all);

    // Changes are seen at once: a private repository made public, a public one made private,
    // a new collaborator.
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/s01", "--visibility", "public"]));
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/p00", "--visibility", "private"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/s02", "carol", "read"]));
    let now_public: Vec<String> = alice_public[1..]
        .iter()
        .chain(&alice_private[1..2])
        .chain(&bobs)
        .cloned()
        .collect();
    assert_eq!(walk(&site, &srv, &mut anon, "/"), now_public);
    let carol_sees: BTreeSet<String> = walk(&site, &srv, &mut carol, "/").into_iter().collect();
    let mut want: BTreeSet<String> = now_public.into_iter().collect();
    want.insert("alice/s02".into());
    assert_eq!(carol_sees, want);
    for hidden in ["alice/p00", "alice/s03", "alice/s04"] {
        for path in ["/", "/alice", "/alice?page=2"] {
            let page = carol.get(&srv, &site.target(path)).text();
            assert!(!page.contains(hidden), "{hidden} listed on {path}");
            let page = anon.get(&srv, &site.target(path)).text();
            assert!(!page.contains(hidden), "{hidden} listed on {path}");
        }
    }
    // A repository made private by hand (not through forgelet) is never listed either.
    ok(Command::new("git")
        .arg("--git-dir")
        .arg(site.repo_path("bob/b00"))
        .args(["config", "forgelet.visibility", "private"]));
    for path in ["/", "/bob", "/?page=2"] {
        let page = anon.get(&srv, &site.target(path)).text();
        assert!(!page.contains("bob/b00"), "bob/b00 listed on {path}");
    }
    srv.finish();
}
