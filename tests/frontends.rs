//! Several frontends on one data directory: two forgelet FastCGI processes, each on a socket of
//! its own and with a pack cache of its own (`[pack_cache] dir`), behind one nginx whose
//! `upstream` takes them in turn (round robin). The nginx lines and the config lines are the
//! README's own (its section "Several frontends and several machines"), only their paths set for
//! the test. What one process writes (a session, a change to the users file, a collaborator, a
//! push) the other sees at the next request; two pushes to one branch through both leave one
//! winner and a sound repository; each process answers clones from its own cache folder.
//!
//! The two processes stand for two machines sharing the data directory. Not tested: that sharing
//! over NFS. The machine the tests were written on runs a kernel without NFS (no `nfs` in
//! `/proc/filesystems`, no `/lib/modules` to load it from, no `modprobe`), so no loopback NFS
//! mount can be made, and a container in CI cannot mount one either without privileges it does
//! not have. What NFS changes (locks, attribute caching that delays another machine's view of a
//! rename, `ESTALE` on files deleted under another machine) is in the README, marked as not
//! tested, rather than in a test that would pass without having mounted anything.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use crate::packcache::pack_of;
use crate::util::*;
use crate::web::new_token_of;

/// The README's section these tests follow.
const SECTION: &str = "### Several frontends and several machines";

/// The README's values the tests replace: the sockets, the pack cache's folder and prefix.
const README_SOCKETS: [&str; 2] = [
    "unix:/run/forgelet/forgelet-1.sock",
    "unix:/run/forgelet/forgelet-2.sock",
];
const README_CACHE: &str = "/var/cache/forgelet/packs";
const README_PREFIX: &str = "/.forgelet-pack-cache/";

/// The code blocks of the README's section in `lang` (```` ```lang ````), in order.
fn readme_blocks(lang: &str) -> Vec<String> {
    let readme = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("read README.md");
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    let mut in_other_code = false;
    for line in readme.lines().skip_while(|l| *l != SECTION).skip(1) {
        match &mut block {
            Some(b) if line == "```" => {
                blocks.push(std::mem::take(b));
                block = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None if line.starts_with("```") => {
                if line == format!("```{lang}") {
                    block = Some(String::new());
                } else {
                    in_other_code = !in_other_code;
                }
            }
            None if !in_other_code && (line.starts_with("## ") || line.starts_with("### ")) => {
                break
            }
            None => {}
        }
    }
    assert!(
        !blocks.is_empty(),
        "README.md's section {SECTION:?} has no ```{lang} block"
    );
    blocks
}

/// `text` with `from` (which must be in it) replaced by `to`.
fn set(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "the README's block no longer holds {from:?}; update tests/frontends.rs:\n{text}"
    );
    text.replace(from, to)
}

/// Two frontends on one site, as the README sets them up.
struct Two {
    // The server first: it stops before the site's files are removed.
    srv: Server,
    site: Site,
    /// nginx's name for each frontend (`unix:SOCKET`), in order.
    upstreams: [String; 2],
    /// Each frontend's pack cache folder.
    caches: [PathBuf; 2],
}

impl Two {
    /// The frontends that answered the requests nginx logged after the first `from`, whose
    /// method and URI hold `what`.
    fn answered(&self, from: usize, what: &str) -> BTreeSet<String> {
        self.srv.upstreams()[from..]
            .iter()
            .filter(|(_, _, request)| request.contains(what))
            .map(|(_, upstream, _)| upstream.clone())
            .collect()
    }

    /// Fails unless both frontends answered requests holding `what` after the first `from`.
    fn assert_both_answered(&self, from: usize, what: &str) {
        let both: BTreeSet<String> = self.upstreams.iter().cloned().collect();
        assert_eq!(
            self.answered(from, what),
            both,
            "requests holding {what:?} were not answered by both frontends: {:?}",
            &self.srv.upstreams()[from..]
        );
    }

    /// How many requests nginx has logged.
    fn logged(&self) -> usize {
        self.srv.upstreams().len()
    }
}

/// A site with the private repository `alice/project` (the `mixed` fixture) and the user `bob`,
/// served by two forgelet processes behind one nginx, configured with the README's blocks: the
/// `upstream` listing both sockets, and for each process a pack cache folder of its own with
/// its internal location (a prefix each, since both share the one nginx here).
fn two_frontends(test: &str) -> Two {
    let site = Site::new(test, SiteOptions::default());
    site.import_fixture("mixed", "alice/project");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/project", "--visibility", "private"]));
    site.ensure_user("bob");

    let toml = readme_blocks("toml");
    let nginx = readme_blocks("nginx");
    assert_eq!(
        (toml.len(), nginx.len()),
        (1, 2),
        "the README's section should have one config block and two nginx blocks (upstream, location)"
    );
    let dir_line = toml[0]
        .lines()
        .find(|l| l.starts_with("dir = "))
        .expect("the README's config block sets [pack_cache] dir");
    assert!(
        toml[0].contains(&format!("listen = \"{}\"", README_SOCKETS[0])),
        "the README's config block should name the first socket:\n{}",
        toml[0]
    );
    let mut http = nginx[0].clone();
    let mut locations = String::new();
    let mut frontends = Vec::new();
    let mut upstreams = Vec::new();
    let mut caches = Vec::new();
    for n in 1..=2 {
        let mut f = site.frontend(n);
        let cache = site.dir().join(format!("cache-{n}"));
        fs::create_dir_all(&cache).unwrap();
        let prefix = format!("/.forgelet-pack-cache-{n}/");
        let upstream = format!("unix:{}", f.socket.display());
        http = set(&http, README_SOCKETS[n - 1], &upstream);
        let location = set(&nginx[1], README_PREFIX, &prefix);
        locations.push_str(&set(
            &location,
            &format!("alias {README_CACHE}/;"),
            &format!("alias {}/;", cache.display()),
        ));
        // The site's config ends with its [pack_cache] table.
        assert!(
            f.config.trim_end().ends_with("free_mib = 0"),
            "{}",
            f.config
        );
        f.config
            .push_str(&set(dir_line, README_CACHE, &cache.display().to_string()));
        f.config.push_str(&format!(
            "\ninternal_prefix = \"{}\"\n",
            prefix.trim_end_matches('/')
        ));
        frontends.push(f);
        upstreams.push(upstream);
        caches.push(cache);
    }
    let srv = site.start_frontends(&frontends, &http, &locations);
    Two {
        srv,
        site,
        upstreams: upstreams.try_into().unwrap(),
        caches: caches.try_into().unwrap(),
    }
}

/// A personal access token for `user`, made with the command line.
fn token_for(site: &Site, user: &str, name: &str) -> String {
    let out = ok(site
        .forgelet()
        .args(["token", "create", user, "--name", name]));
    out.lines().last().unwrap().trim().to_string()
}

/// The ref advertisement of alice/project asked with `authorization`: its status.
fn advertise(t: &Two, authorization: &str) -> u16 {
    let target = t
        .site
        .target("/alice/project.git/info/refs?service=git-upload-pack");
    t.srv
        .http(
            "GET",
            target.as_bytes(),
            &[("Authorization", authorization)],
        )
        .status
}

/// Signing in on one frontend is signing in on both: every page after it is signed in,
/// whichever answers; signing out removes the cookie on both, and "Sign out everywhere" through
/// one ends another browser's session on both.
#[test]
fn sessions_are_shared_by_the_frontends() {
    let t = two_frontends("frontends_sessions");
    let (site, srv) = (&t.site, &t.srv);
    let pages = site.target("/-/settings/tokens");
    let mut b = Browser::default();
    let start = t.logged();
    sign_in_as(site, srv, &mut b, "alice");
    // nginx takes the frontends in turn: two requests in a row of each page reach both.
    for _ in 0..2 {
        let r = b.get(srv, &pages);
        assert_eq!(r.status, 200, "signed in: {}", r.describe());
        assert!(r.text().contains("Sign out everywhere"), "{}", r.text());
    }
    for _ in 0..2 {
        let r = b.get(srv, &site.target("/alice/project"));
        assert_eq!(
            r.status,
            200,
            "alice's private repository: {}",
            r.describe()
        );
    }
    t.assert_both_answered(start, "/-/settings/tokens");
    t.assert_both_answered(start, "/alice/project");

    // Signing out, on one: the cookie is gone for both.
    let csrf = csrf_of(&b.get(srv, &pages));
    let r = b.post(srv, &site.target("/-/logout"), &[("csrf", &csrf)]);
    assert_eq!(r.status, 303, "{}", r.describe());
    let from = t.logged();
    for _ in 0..2 {
        let r = b.get(srv, &pages);
        assert_eq!(r.status, 303, "signed out: {}", r.describe());
    }
    t.assert_both_answered(from, "/-/settings/tokens");

    // Two browsers signed in; one signs out everywhere through one frontend: the other's
    // cookie, still held, is refused by both.
    let mut other = Browser::default();
    sign_in_as(site, srv, &mut b, "alice");
    sign_in_as(site, srv, &mut other, "alice");
    let from = t.logged();
    for _ in 0..2 {
        assert_eq!(other.get(srv, &pages).status, 200);
    }
    t.assert_both_answered(from, "/-/settings/tokens");
    let csrf = csrf_of(&b.get(srv, &pages));
    let r = b.post(srv, &pages, &[("csrf", &csrf), ("action", "signout_all")]);
    assert_eq!(r.status, 303, "{}", r.describe());
    let from = t.logged();
    for _ in 0..2 {
        let r = other.get(srv, &pages);
        assert_eq!(r.status, 303, "signed out everywhere: {}", r.describe());
    }
    t.assert_both_answered(from, "/-/settings/tokens");
    t.srv.finish();
}

/// Two clients push different commits to one branch at the same moment, through nginx to both
/// frontends: one push wins, the other is refused with git's reason, the branch is the winner's
/// commit, and the repository is sound. Five rounds.
#[test]
fn concurrent_pushes_through_both_frontends_leave_one_winner() {
    let t = two_frontends("frontends_pushes");
    let site = &t.site;
    let repo = site.repo_path("alice/project");
    // A token: pushes cost no argon2 run and meet no sign-in limiter.
    let token = token_for(site, "alice", "push");
    let url = site
        .url("/alice/project.git")
        .replace("://", &format!("://alice:{token}@"));
    let start = t.logged();
    let clients: Vec<PathBuf> = ["one", "two"]
        .iter()
        .map(|name| {
            let dir = site.dir().join(name);
            let out = run(smart_git(site.dir()).args(["clone", "-q", &url, name]));
            assert!(out.status.success(), "{}", all_output(&out));
            dir
        })
        .collect();
    for round in 0..5 {
        for (i, dir) in clients.iter().enumerate() {
            let out = run(smart_git(dir).args(["fetch", "-q", "origin"]));
            assert!(out.status.success(), "{}", all_output(&out));
            git_ok(dir, &["reset", "-q", "--hard", "origin/main"]);
            fs::write(
                dir.join(format!("client-{i}.txt")),
                format!("round {round}\n"),
            )
            .unwrap();
            git_ok(dir, &["add", "."]);
            git_ok(
                dir,
                &["commit", "-q", "-m", &format!("client {i}, round {round}")],
            );
        }
        let heads: Vec<String> = clients
            .iter()
            .map(|d| git_ok(d, &["rev-parse", "HEAD"]).trim().to_string())
            .collect();
        let barrier = Arc::new(Barrier::new(2));
        let pushes: Vec<_> = clients
            .iter()
            .map(|dir| {
                let (dir, barrier) = (dir.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    run(smart_git(&dir).args(["push", "origin", "HEAD:refs/heads/main"]))
                })
            })
            .collect();
        let outs: Vec<_> = pushes.into_iter().map(|h| h.join().unwrap()).collect();
        let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
        let said: Vec<String> = outs.iter().map(all_output).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one push should win:\n{}\n---\n{}",
            said[0],
            said[1]
        );
        let (winner, loser) = (won[0], 1 - won[0]);
        let told = &said[loser];
        assert!(
            [
                "fetch first",
                "non-fast-forward",
                "failed to update ref",
                "cannot lock ref"
            ]
            .iter()
            .any(|why| told.contains(why)),
            "round {round}: the losing push was not told why:\n{told}"
        );
        let main = refs_of(&repo)
            .get("refs/heads/main")
            .cloned()
            .expect("main on the server");
        assert_eq!(
            main, heads[winner],
            "round {round}: main is not the winning push's commit"
        );
        let fsck = run(git(&repo).args(["fsck", "--full", "--no-progress", "--no-dangling"]));
        assert!(
            fsck.status.success() && all_output(&fsck).trim().is_empty(),
            "round {round}: git fsck: {}",
            all_output(&fsck)
        );
    }
    t.assert_both_answered(start, "/git-receive-pack");
    t.srv.finish();
}

/// A change to the users file made through one frontend (a token made and revoked, a password
/// changed) and a collaborator added through one are seen by both at the next request: the
/// README says "at once" (each process looks at the file on every request and reads it again
/// when it was replaced).
#[test]
fn a_users_file_write_by_one_frontend_is_seen_by_the_other_at_once() {
    let t = two_frontends("frontends_users_file");
    let (site, srv) = (&t.site, &t.srv);
    let pages = site.target("/-/settings/tokens");
    let mut b = Browser::default();
    sign_in_as(site, srv, &mut b, "alice");
    let csrf = csrf_of(&b.get(srv, &pages));

    // A token made through one frontend works at once on both; revoked, at once on neither.
    let r = b.post(
        srv,
        &pages,
        &[("csrf", &csrf), ("action", "create"), ("name", "laptop")],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let token = new_token_of(&r);
    let from = t.logged();
    for _ in 0..4 {
        assert_eq!(advertise(&t, &basic("alice", &token)), 200, "the new token");
    }
    t.assert_both_answered(from, "/info/refs");
    let r = b.post(
        srv,
        &pages,
        &[("csrf", &csrf), ("action", "revoke"), ("name", "laptop")],
    );
    assert!(r.text().contains("revoked"), "{}", r.text());
    let from = t.logged();
    for _ in 0..4 {
        assert_eq!(
            advertise(&t, &basic("alice", &token)),
            401,
            "a revoked token"
        );
    }
    t.assert_both_answered(from, "/info/refs");

    // A collaborator added through one frontend reads at once through both.
    let bob = token_for(site, "bob", "reader");
    let from = t.logged();
    for _ in 0..2 {
        assert_eq!(
            advertise(&t, &basic("bob", &bob)),
            404,
            "bob before the grant"
        );
    }
    t.assert_both_answered(from, "/info/refs");
    let settings = site.target("/alice/project/settings");
    let csrf = csrf_of(&b.get(srv, &settings));
    let r = b.post(
        srv,
        &settings,
        &[
            ("csrf", &csrf),
            ("action", "add_collaborator"),
            ("user", "bob"),
            ("perm", "read"),
        ],
    );
    assert!(r.status < 400, "{}", r.describe());
    let from = t.logged();
    for _ in 0..2 {
        assert_eq!(
            advertise(&t, &basic("bob", &bob)),
            200,
            "bob after the grant"
        );
    }
    t.assert_both_answered(from, "/info/refs");

    // A password changed through one frontend: the new one works on both at once, the old one
    // on neither.
    let csrf = csrf_of(&b.get(srv, &pages));
    let new = "a-new-password-7";
    let r = b.post(
        srv,
        &pages,
        &[
            ("csrf", &csrf),
            ("action", "password"),
            ("old", TEST_PASSWORD),
            ("new", new),
            ("again", new),
        ],
    );
    assert!(r.status < 400, "{}", r.describe());
    let from = t.logged();
    for _ in 0..2 {
        assert_eq!(advertise(&t, &basic("alice", new)), 200, "the new password");
    }
    t.assert_both_answered(from, "/info/refs");
    let from = t.logged();
    for _ in 0..2 {
        assert_eq!(
            advertise(&t, &basic("alice", TEST_PASSWORD)),
            401,
            "the old password"
        );
    }
    t.assert_both_answered(from, "/info/refs");
    t.srv.finish();
}

/// Each frontend keeps its pack cache in its own folder (`[pack_cache] dir`) and answers clones
/// from it through its own internal location: clones through both are answered from the cache
/// by both, the two folders hold the same answer byte for byte, nothing is written to the
/// shared data directory's default cache, and no URL reaches an entry.
#[test]
fn each_frontend_answers_clones_from_a_pack_cache_of_its_own() {
    let t = two_frontends("frontends_pack_cache");
    let site = &t.site;
    let repo = site.repo_path("alice/project");
    let token = token_for(site, "alice", "clones");
    let url = site
        .url("/alice/project.git")
        .replace("://", &format!("://alice:{token}@"));
    let start = t.logged();
    // Clones until each frontend has answered a clone's fetch from its cache (the first one
    // each makes writes its entry; min_hits = 1).
    let mut n = 0;
    while t.caches.iter().any(|c| pack_cache_counts_in(c)[0] == 0) && n < 8 {
        let name = format!("clone-{n}");
        let before = t.logged();
        let out = run(smart_git(site.dir()).args(["clone", "-q", &url, &name]));
        assert!(out.status.success(), "{}", all_output(&out));
        assert_clone_matches(&repo, &site.dir().join(&name));
        // nginx takes the frontends in turn: a clone of an even number of requests would send
        // every clone's fetch to the same one. One request more makes the next clone's go to
        // the other.
        if (t.logged() - before) % 2 == 0 {
            assert_eq!(t.srv.get(&site.target("/")).status, 200);
        }
        n += 1;
    }
    assert_eq!(
        pack_cache_counts(site),
        [0; 4],
        "the shared default cache was used"
    );
    for cache in &t.caches {
        // A hit is counted once forgelet's answer is written, which may be after git is done.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut mine = pack_cache_counts_in(cache);
        while !(mine[0] >= 1 && mine[3] >= 1) && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
            mine = pack_cache_counts_in(cache);
        }
        assert!(
            mine[0] >= 1 && mine[3] >= 1,
            "{} stored and answered nothing after {n} clones (hits, misses, passes, stored): {mine:?}",
            cache.display()
        );
    }
    t.assert_both_answered(start, "/git-upload-pack");
    assert!(
        !site.data_dir.join("repos/.cache").exists(),
        "an entry was written under the shared data directory"
    );

    // The same answers in both folders: the same keys, carrying the same pack byte for byte
    // (git's pkt-line framing of it follows the timing of its writes, so it may differ).
    let entries = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for group in fs::read_dir(dir).unwrap().flatten() {
            if !group.path().is_dir() {
                continue;
            }
            for e in fs::read_dir(group.path()).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".pack") {
                    let rel = format!("{}/{name}", group.file_name().to_string_lossy());
                    v.push((rel, pack_of(&fs::read(e.path()).unwrap())));
                }
            }
        }
        v.sort();
        v
    };
    let (one, two) = (entries(&t.caches[0]), entries(&t.caches[1]));
    assert!(!one.is_empty() && !two.is_empty());
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&one),
        names(&two),
        "the two caches hold different answers"
    );
    for ((name, a), (_, b)) in one.iter().zip(&two) {
        assert!(a.starts_with(b"PACK"), "{name} carries no pack");
        assert!(a == b, "{name} carries another pack in each cache");
    }

    // No URL reaches an entry: not the internal location, not a path under the base path.
    let (entry, _) = &one[0];
    for target in [
        format!("/.forgelet-pack-cache-1/{entry}"),
        format!("/.forgelet-pack-cache-2/{entry}"),
        site.target(&format!("/.forgelet-pack-cache-1/{entry}")),
        site.target(&format!("/{entry}")),
        site.target(&format!("/alice/project.git/../../{entry}")),
    ] {
        let r = t.srv.get(&target);
        assert!(
            r.status == 404 || r.status == 400,
            "GET {target}: {}",
            r.describe()
        );
        assert!(!contains(&r.body, b"PACK"), "GET {target} sent a pack");
    }
    t.srv.finish();
}
