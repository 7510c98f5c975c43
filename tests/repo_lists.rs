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

/// What a test expects of a site where every repository is alice's: each one's visibility and
/// read collaborators (bob or nobody) and description.
#[derive(Clone, Default)]
struct Model {
    repos: std::collections::BTreeMap<String, (bool, bool, String)>,
}

impl Model {
    fn set(&mut self, name: &str, private: bool, bob_reads: bool, description: &str) {
        self.repos.insert(
            name.to_string(),
            (private, bob_reads, description.to_string()),
        );
    }

    /// What `viewer` may see on the front page (or alice's page): names in order.
    fn seen_by(&self, viewer: &str) -> Vec<String> {
        self.repos
            .iter()
            .filter(|(_, (private, bob_reads, _))| {
                viewer == "alice" || !private || (viewer == "bob" && *bob_reads)
            })
            .map(|(n, _)| format!("alice/{n}"))
            .collect()
    }

    /// What `forgelet repo list` prints.
    fn repo_list(&self) -> String {
        self.repos
            .iter()
            .map(|(n, (private, _, d))| {
                let vis = if *private { "private" } else { "public" };
                format!("alice/{n}\t{vis}\t{d}\n")
            })
            .collect()
    }
}

/// The repositories `path` lists to `b`, over FastCGI (through nginx) and as a CGI program
/// with the same cookies, which must agree.
fn seen_both(site: &Site, srv: &Server, b: &mut Browser, path: &str) -> Vec<String> {
    let target = site.target(path);
    let r = b.get(srv, &target);
    assert_eq!(r.status, 200, "FastCGI {path}: {}", r.describe());
    let fcgi = listed(&r.text());
    let cookie = b.header();
    let headers: Vec<(&str, &[u8])> = if cookie.is_empty() {
        Vec::new()
    } else {
        vec![("Cookie", cookie.as_bytes())]
    };
    let r = site.cgi("GET", target.as_bytes(), &headers);
    assert_eq!(r.status, 200, "CGI {path}: {}", r.describe());
    assert_eq!(
        listed(&r.text()),
        fcgi,
        "{path}: CGI and FastCGI list the same"
    );
    fcgi
}

struct Viewers {
    anon: Browser,
    carol: Browser,
    bob: Browser,
    alice: Browser,
}

impl Viewers {
    /// Every viewer's front page and alice's page, both ways, and `forgelet repo list`, against
    /// `model`, after `step`.
    fn check(&mut self, site: &Site, srv: &Server, model: &Model, step: &str) {
        for (who, b) in [
            ("anonymous", &mut self.anon),
            ("carol", &mut self.carol),
            ("bob", &mut self.bob),
            ("alice", &mut self.alice),
        ] {
            let want = model.seen_by(who);
            assert_eq!(
                seen_both(site, srv, b, "/"),
                want,
                "{step}: {who}, front page"
            );
            if want.is_empty() && who == "anonymous" {
                continue;
            }
            assert_eq!(
                seen_both(site, srv, b, "/alice"),
                want,
                "{step}: {who}, alice's page"
            );
        }
        assert_eq!(
            ok(site.forgelet().args(["repo", "list"])),
            model.repo_list(),
            "{step}: repo list"
        );
    }
}

fn listing_file(site: &Site) -> std::path::PathBuf {
    site.data_dir.join("repos/.listing/listing")
}

/// The lists follow every change, made with the command line or on the web, at once, in CGI
/// mode (a process per request, which loads the listing file) and over FastCGI (which keeps
/// the listing), with the listing file in place; changes made by hand are seen within the
/// times the README gives; a damaged listing file is ignored and written again.
#[test]
fn lists_follow_every_change_in_cgi_and_fastcgi_modes() {
    let site = Site::new("lists-changes", SiteOptions::default());
    for u in ["alice", "bob", "carol"] {
        site.ensure_user(u);
    }
    let mut model = Model::default();
    ok(site
        .forgelet()
        .args(["repo", "create", "alice/one", "--description", "the first"]));
    model.set("one", false, false, "the first");
    ok(site
        .forgelet()
        .args(["repo", "create", "alice/two", "--private"]));
    model.set("two", true, false, "");
    let srv = site.start();
    let mut v = Viewers {
        anon: Browser::default(),
        carol: Browser::default(),
        bob: Browser::default(),
        alice: Browser::default(),
    };
    sign_in_as(&site, &srv, &mut v.carol, "carol");
    sign_in_as(&site, &srv, &mut v.bob, "bob");
    sign_in_as(&site, &srv, &mut v.alice, "alice");
    v.check(&site, &srv, &model, "at first");
    let text = std::fs::read_to_string(listing_file(&site)).expect("the listing file is written");
    assert!(text.contains("\nrepo\talice\tone\t"), "{text}");

    // The command line. Over FastCGI, the owners' folders were just looked at (the pages
    // were just asked for), so only what the command does to the listing can tell the server.
    let change = |args: &[&str]| {
        let r = Browser::default().get(&srv, &site.target("/"));
        assert_eq!(r.status, 200);
        ok(site.forgelet().args(args));
    };
    change(&["repo", "create", "alice/three"]);
    model.set("three", false, false, "");
    v.check(&site, &srv, &model, "created by the command line");
    change(&["repo", "set", "alice/one", "--visibility", "private"]);
    model.set("one", true, false, "the first");
    v.check(&site, &srv, &model, "made private by the command line");
    change(&["repo", "grant", "alice/two", "bob", "read"]);
    model.set("two", true, true, "");
    v.check(&site, &srv, &model, "a collaborator by the command line");
    change(&["repo", "set", "alice/one", "--visibility", "public"]);
    change(&["repo", "revoke", "alice/two", "bob"]);
    model.set("one", false, false, "the first");
    model.set("two", true, false, "");
    v.check(&site, &srv, &model, "made public, collaborator removed");

    // The web.
    let csrf = csrf_of(&v.alice.get(&srv, &site.target("/-/new")));
    let r = v.alice.post(
        &srv,
        &site.target("/-/new"),
        &[("csrf", &csrf), ("name", "four"), ("visibility", "private")],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    model.set("four", true, false, "");
    v.check(&site, &srv, &model, "created on the web");
    let settings = |v: &mut Viewers, repo: &str, form: &[(&str, &str)]| {
        let target = site.target(&format!("/alice/{repo}/settings"));
        let csrf = csrf_of(&v.alice.get(&srv, &target));
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        let r = v.alice.post(&srv, &target, &all);
        assert!(
            matches!(r.status, 200 | 303),
            "{repo} {form:?}: {}",
            r.describe()
        );
    };
    settings(
        &mut v,
        "four",
        &[
            ("action", "general"),
            ("visibility", "public"),
            ("description", "number four"),
        ],
    );
    model.set("four", false, false, "number four");
    v.check(&site, &srv, &model, "made public on the web, described");
    settings(
        &mut v,
        "two",
        &[
            ("action", "add_collaborator"),
            ("user", "bob"),
            ("perm", "read"),
        ],
    );
    model.set("two", true, true, "");
    v.check(&site, &srv, &model, "a collaborator on the web");
    settings(&mut v, "three", &[("action", "rename"), ("name", "five")]);
    model.repos.remove("three");
    model.set("five", false, false, "");
    v.check(&site, &srv, &model, "renamed on the web");
    settings(&mut v, "five", &[("action", "delete"), ("confirm", "five")]);
    model.repos.remove("five");
    v.check(&site, &srv, &model, "deleted on the web");
    settings(
        &mut v,
        "four",
        &[
            ("action", "general"),
            ("visibility", "private"),
            ("description", "number four"),
        ],
    );
    model.set("four", true, false, "number four");
    v.check(&site, &srv, &model, "made private on the web");
    settings(
        &mut v,
        "two",
        &[("action", "remove_collaborator"), ("user", "bob")],
    );
    model.set("two", true, false, "");
    v.check(&site, &srv, &model, "collaborator removed on the web");

    // By hand: a repository made private with git, with the listing (kept, and in the file)
    // out of date, is never listed to those who may not read it, and `repo list` says so.
    ok(Command::new("git")
        .arg("--git-dir")
        .arg(site.repo_path("alice/one"))
        .args(["config", "forgelet.visibility", "private"]));
    model.set("one", true, false, "the first");
    v.check(&site, &srv, &model, "made private by hand");
    // `repo list` reads again a description edited by hand.
    std::fs::write(
        site.repo_path("alice/one").join("description"),
        "edited by hand\n",
    )
    .unwrap();
    model.set("one", true, false, "edited by hand");
    v.check(&site, &srv, &model, "described by hand");
    // A repository put in place by hand: at once in a new process (CGI, the command line),
    // within a second over FastCGI.
    let seed = site.repo_path("alice/two");
    ok(Command::new("cp")
        .arg("-a")
        .arg(&seed)
        .arg(site.repo_path("alice/six")));
    ok(Command::new("git")
        .arg("--git-dir")
        .arg(site.repo_path("alice/six"))
        .args(["config", "--unset-all", "forgelet.visibility"]));
    model.set("six", false, false, "");
    let r = site.cgi("GET", site.target("/").as_bytes(), &[]);
    assert_eq!(
        listed(&r.text()),
        model.seen_by("anonymous"),
        "CGI, at once"
    );
    let start = std::time::Instant::now();
    while listed(&v.anon.get(&srv, &site.target("/")).text()) != model.seen_by("anonymous") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(3),
            "a repository put in place by hand is listed over FastCGI within a second"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    v.check(&site, &srv, &model, "put in place by hand");

    // A damaged listing file is ignored and written again: truncated, garbage, or not a file.
    let file = listing_file(&site);
    let whole = std::fs::read(&file).unwrap();
    for (what, bytes) in [
        ("truncated", whole[..whole.len() / 2].to_vec()),
        (
            "cut before its last line",
            whole[..whole.len() - 3].to_vec(),
        ),
        ("garbage", b"\xff\xfe not a listing\n".to_vec()),
        ("empty", Vec::new()),
    ] {
        std::fs::write(&file, &bytes).unwrap();
        v.check(&site, &srv, &model, what);
        let again = std::fs::read_to_string(&file).unwrap();
        assert!(
            again
                .lines()
                .last()
                .unwrap_or_default()
                .starts_with("end\t"),
            "{what}: written again whole"
        );
    }
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    v.check(&site, &srv, &model, "a folder where the file goes");
    std::fs::remove_dir(&file).unwrap();
    v.check(&site, &srv, &model, "deleted");
    assert!(file.is_file(), "written again");
    srv.finish();
}
