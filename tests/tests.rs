//! Integration tests: the built forgelet binary behind real nginx (the shipped snippet), in CGI
//! mode and straight on its FastCGI socket, checked against what real git produces.

mod accounts;
mod hardening;
mod permissions;
mod push;
mod util;
mod web;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use util::*;

// ---------------------------------------------------------------------------------------------
// Helpers shared by the dumb-HTTP tests

/// A running site: the server is declared first so it stops before the files are removed.
struct Running {
    srv: Server,
    site: Site,
}

fn start_with_fixture(test: &str, fixture: &str, opts: SiteOptions) -> (Running, PathBuf) {
    let site = Site::new(test, opts);
    let repo = site.import_fixture(fixture, &format!("alice/{fixture}"));
    let srv = site.start();
    (Running { srv, site }, repo)
}

/// `git ls-remote` through forgelet (dumb) gives exactly what it gives on the repository itself.
fn assert_ls_remote_matches(url: &str, repo: &Path, tmp: &Path) {
    let over_http = git_ok(tmp, &["ls-remote", url]);
    let local = ok(git(tmp).arg("ls-remote").arg(repo));
    assert_eq!(
        over_http,
        local,
        "ls-remote {url} (dumb, through nginx) differs from ls-remote of {}",
        repo.display()
    );
}

/// Every branch and tag of the server repository is in the clone, with the same object, and
/// nothing else is.
fn assert_clone_matches(repo: &Path, clone: &Path) {
    let want: Vec<(String, String)> = refs_of(repo)
        .into_iter()
        .filter(|(r, _)| r.starts_with("refs/heads/") || r.starts_with("refs/tags/"))
        .collect();
    let got: Vec<(String, String)> = refs_of(clone)
        .into_iter()
        .filter_map(|(r, oid)| {
            if let Some(b) = r.strip_prefix("refs/remotes/origin/") {
                (b != "HEAD").then(|| (format!("refs/heads/{b}"), oid))
            } else if r.starts_with("refs/tags/") {
                Some((r, oid))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(got, want, "refs of the clone differ from the server's");
    let fsck = run(git(clone).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(
        fsck.status.success(),
        "git fsck of the clone: {}",
        all_output(&fsck)
    );
}

/// Adds history straight into the server's bare repository with git plumbing (no
/// `update-server-info`): a commit on main, an annotated tag, a new branch, one branch deleted.
fn add_history_on_server(repo: &Path) {
    let blob = run_with_stdin(
        git(repo).args(["hash-object", "-w", "--stdin"]),
        b"added on the server\n",
    );
    assert!(blob.status.success());
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = run_with_stdin(
        git(repo).arg("mktree"),
        format!("100644 blob {}\tadded.txt\n", blob.trim()).as_bytes(),
    );
    assert!(tree.status.success(), "{}", all_output(&tree));
    let tree = String::from_utf8(tree.stdout).unwrap();
    let parent = run(git(repo).args(["rev-parse", "-q", "--verify", "refs/heads/main^{commit}"]));
    let mut args = vec!["commit-tree".to_string(), tree.trim().to_string()];
    if parent.status.success() {
        args.push("-p".into());
        args.push(String::from_utf8(parent.stdout).unwrap().trim().to_string());
    }
    args.push("-m".into());
    args.push("added on the server".into());
    let commit = git_ok(repo, &args).trim().to_string();
    let refs = refs_of(repo);
    let to_delete = refs
        .keys()
        .find(|r| r.starts_with("refs/heads/") && r.as_str() != "refs/heads/main")
        .cloned();
    git_ok(repo, &["update-ref", "refs/heads/main", &commit]);
    git_ok(
        repo,
        &["update-ref", "refs/heads/server/new-branch", &commit],
    );
    git_ok(
        repo,
        &[
            "tag",
            "-a",
            "-m",
            "tagged on the server",
            "v9.9-server",
            &commit,
        ],
    );
    if let Some(r) = to_delete {
        git_ok(repo, &["update-ref", "-d", &r]);
    }
}

/// Every pack, index and (a few) loose objects of the repo, fetched through nginx and straight
/// from the FastCGI socket, are the files on disk with long-lived cache headers.
fn assert_object_files_served(run_: &Running, owner_repo: &str, repo: &Path) {
    let mut files: Vec<String> = Vec::new();
    let pack_dir = repo.join("objects/pack");
    if let Ok(rd) = fs::read_dir(&pack_dir) {
        for e in rd {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.ends_with(".pack") || name.ends_with(".idx") {
                files.push(format!("objects/pack/{name}"));
            }
        }
    }
    let mut loose = 0;
    for e in fs::read_dir(repo.join("objects")).unwrap() {
        let e = e.unwrap();
        let dir = e.file_name().into_string().unwrap();
        if dir.len() == 2 && loose < 3 {
            if let Some(f) = fs::read_dir(e.path()).unwrap().next() {
                let f = f.unwrap().file_name().into_string().unwrap();
                files.push(format!("objects/{dir}/{f}"));
                loose += 1;
            }
        }
    }
    files.sort();
    for rel in &files {
        let disk = fs::read(repo.join(rel)).unwrap();
        let target = run_.site.target(&format!("/{owner_repo}.git/{rel}"));
        let r = run_.srv.get(&target);
        assert_eq!(
            r.status,
            200,
            "GET {target} through nginx:\n{}",
            r.describe()
        );
        assert!(
            r.body == disk,
            "GET {target}: body differs from the file on disk"
        );
        assert_immutable(&r, &target);
        assert!(
            r.header("X-Accel-Redirect").is_none(),
            "nginx passed X-Accel-Redirect to the client"
        );
        let h = run_.srv.http("HEAD", target.as_bytes(), &[]);
        assert!(
            h.status == 200 && h.body.is_empty(),
            "HEAD {target}:\n{}",
            h.describe()
        );
        assert_eq!(
            h.header("Content-Length"),
            Some(disk.len().to_string().as_str()),
            "HEAD {target}"
        );

        let f = run_.srv.fcgi("GET", target.as_bytes(), &[]);
        assert_eq!(f.status, 200, "FastCGI GET {target}:\n{}", f.describe());
        assert_immutable(&f, &format!("FastCGI {target}"));
        if run_.site.opts.sendfile == "x-accel-redirect" {
            assert_eq!(
                f.header("X-Accel-Redirect"),
                Some(format!("/.forgelet-repos/{owner_repo}.git/{rel}").as_str()),
                "FastCGI GET {target}:\n{}",
                f.describe()
            );
            assert!(f.body.is_empty(), "x-accel answer with a body for {target}");
        } else {
            assert!(f.header("X-Accel-Redirect").is_none());
            assert!(
                f.body == disk,
                "FastCGI GET {target}: body differs from the file"
            );
        }
    }
    assert!(
        !files.is_empty() || refs_of(repo).is_empty(),
        "no object files found in {}",
        repo.display()
    );
}

fn assert_immutable(r: &Response, what: &str) {
    let cc = r
        .header("Cache-Control")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        cc.contains("max-age=") && cc.contains("immutable") && cc.contains("public"),
        "{what}: expected a long, public, immutable Cache-Control, got {cc:?}"
    );
}

fn assert_no_cache(r: &Response, what: &str) {
    let cc = r
        .header("Cache-Control")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        cc.contains("no-cache") || cc.contains("no-store") || cc.contains("max-age=0"),
        "{what}: expected Cache-Control no-cache, got {cc:?}"
    );
}

/// Clones a fixture with the dumb protocol through nginx, compares with the server, changes the
/// server repository, fetches, compares again.
fn dumb_clone_round_trip(test: &str, fixture: &str, opts: SiteOptions) -> (Running, PathBuf) {
    let (r, repo) = start_with_fixture(test, fixture, opts);
    let owner_repo = format!("alice/{fixture}");
    let url = r.site.url(&format!("/{owner_repo}.git"));
    let tmp = r.site.dir().to_path_buf();
    assert_ls_remote_matches(&url, &repo, &tmp);

    let clone = tmp.join("clone");
    let out = run(git(&tmp).args(["clone", &url]).arg(&clone));
    let text = all_output(&out);
    assert!(out.status.success(), "dumb clone of {url} failed:\n{text}");
    let empty = refs_of(&repo).is_empty();
    if empty {
        assert!(
            text.contains("You appear to have cloned an empty repository"),
            "no empty-repository warning:\n{text}"
        );
        assert!(!text.contains("error") && !text.contains("fatal"), "{text}");
    } else {
        let head = git_ok(&repo, &["symbolic-ref", "HEAD"]);
        assert_eq!(git_ok(&clone, &["symbolic-ref", "HEAD"]), head);
    }
    assert_clone_matches(&repo, &clone);
    assert_object_files_served(&r, &owner_repo, &repo);

    // Static dumb files written now go stale with the changes below: forgelet must not use them.
    git_ok(&repo, &["update-server-info"]);
    add_history_on_server(&repo);
    assert_ls_remote_matches(&url, &repo, &tmp);
    let fetch = run(git(&clone).args(["fetch", "--tags", "--prune", "origin"]));
    assert!(fetch.status.success(), "dumb fetch: {}", all_output(&fetch));
    assert_clone_matches(&repo, &clone);
    (r, repo)
}

// ---------------------------------------------------------------------------------------------
// 1. Dumb clones through nginx

#[test]
fn dumb_clone_empty() {
    let (r, _) = dumb_clone_round_trip("dumb_empty", "empty", SiteOptions::default());
    r.srv.finish();
}

#[test]
fn dumb_clone_loose_only() {
    let (r, _) = dumb_clone_round_trip("dumb_loose", "loose-only", SiteOptions::default());
    r.srv.finish();
}

#[test]
fn dumb_clone_packs_only() {
    let (r, repo) = dumb_clone_round_trip("dumb_packs", "packs-only", SiteOptions::default());
    // nginx answers ranges itself on the redirected file.
    let pack = largest_pack(&repo);
    let disk = fs::read(repo.join(&pack)).unwrap();
    let target = r.site.target(&format!("/alice/packs-only.git/{pack}"));
    let g = r
        .srv
        .http("GET", target.as_bytes(), &[("Range", "bytes=10-99")]);
    assert_eq!(g.status, 206, "{}", g.describe());
    assert!(g.body == disk[10..100]);
    // Another spelling of the names finds the same repository, and the redirect names the
    // directories as they are on disk (nginx's file system lookup is case-sensitive).
    let other = r.site.target(&format!("/Alice/PACKS-ONLY/{pack}"));
    let g = r.srv.get(&other);
    assert!(
        g.status == 200 && g.body == disk,
        "GET {other}:\n{}",
        g.describe()
    );
    r.srv.finish();
}

#[test]
fn dumb_clone_mixed() {
    let (r, repo) = dumb_clone_round_trip("dumb_mixed", "mixed", SiteOptions::default());
    // A clone that may use the smart protocol works too (today by falling back to dumb).
    let clone = r.site.dir().join("clone-smart-allowed");
    let out = run(git(r.site.dir())
        .env_remove("GIT_SMART_HTTP")
        .args(["clone", &r.site.url("/alice/mixed.git")])
        .arg(&clone));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&repo, &clone);
    r.srv.finish();
}

#[test]
fn parallel_dumb_clones() {
    let (r, repo) = start_with_fixture("dumb_parallel", "branches", SiteOptions::default());
    let url = r.site.url("/alice/branches");
    let tmp = r.site.dir().to_path_buf();
    let clones: Vec<PathBuf> = (0..8).map(|i| tmp.join(format!("clone{i}"))).collect();
    // Eight users cloning at once (each git also keeps up to 5 requests in flight).
    let outputs: Vec<std::process::Output> = std::thread::scope(|s| {
        let handles: Vec<_> = clones
            .iter()
            .map(|c| {
                let (url, tmp) = (&url, &tmp);
                s.spawn(move || run(git(tmp).args(["clone", "-q", url]).arg(c)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<String> = outputs
        .iter()
        .filter(|o| !o.status.success())
        .map(all_output)
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} concurrent dumb clones failed:\n{}",
        failed.len(),
        clones.len(),
        failed.join("\n")
    );
    for c in &clones {
        assert_clone_matches(&repo, c);
    }
    r.srv.finish();
}

#[test]
fn dumb_clone_tags_sendfile_none() {
    let opts = SiteOptions {
        sendfile: "none",
        ..SiteOptions::default()
    };
    let (r, _) = dumb_clone_round_trip("dumb_tags", "tags", opts);
    r.srv.finish();
}

#[test]
fn dumb_clone_branches_at_root_sendfile_none() {
    let opts = SiteOptions {
        base_path: "",
        sendfile: "none",
        ..SiteOptions::default()
    };
    let (r, _) = dumb_clone_round_trip("dumb_branches", "branches", opts);
    r.srv.finish();
}

#[test]
fn dumb_clone_at_root_x_accel() {
    let opts = SiteOptions {
        base_path: "",
        ..SiteOptions::default()
    };
    let (r, _) = dumb_clone_round_trip("dumb_root", "mixed", opts);
    let front = r.srv.get("/");
    assert!(
        front.status == 200 && front.text().contains("mixed"),
        "front page at the root:\n{}",
        front.describe()
    );
    r.srv.finish();
}

fn largest_pack(repo: &Path) -> String {
    let mut best = (0, String::new());
    for e in fs::read_dir(repo.join("objects/pack")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let len = e.metadata().unwrap().len();
        if name.ends_with(".pack") && len > best.0 {
            best = (len, format!("objects/pack/{name}"));
        }
    }
    assert!(best.0 > 100, "no pack over 100 bytes in {}", repo.display());
    best.1
}

#[test]
fn dumb_clone_sendfile_none_and_ranges() {
    let opts = SiteOptions {
        sendfile: "none",
        ..SiteOptions::default()
    };
    let (r, repo) = dumb_clone_round_trip("dumb_none", "mixed", opts);
    let pack = largest_pack(&repo);
    let disk = fs::read(repo.join(&pack)).unwrap();
    let len = disk.len();
    assert!(
        len > 150_000,
        "the pack should span several FastCGI records"
    );
    let target = r.site.target(&format!("/alice/mixed.git/{pack}"));
    let mut failures = Vec::new();
    // A range across FastCGI's 64 KiB record boundary.
    for (via, resp) in [
        (
            "nginx",
            r.srv
                .http("GET", target.as_bytes(), &[("Range", "bytes=65000-140000")]),
        ),
        (
            "FastCGI",
            r.srv.fcgi(
                "GET",
                target.as_bytes(),
                &[("Range", b"bytes=65000-140000")],
            ),
        ),
    ] {
        if resp.status != 206
            || resp.body != disk[65000..140001]
            || resp.header("Content-Range") != Some(format!("bytes 65000-140000/{len}").as_str())
        {
            failures.push(format!(
                "{via} Range bytes=65000-140000:\n{}",
                resp.describe()
            ));
        }
    }
    for (via, resp) in [
        (
            "nginx",
            r.srv
                .http("GET", target.as_bytes(), &[("Range", "bytes=10-99")]),
        ),
        (
            "FastCGI",
            r.srv
                .fcgi("GET", target.as_bytes(), &[("Range", b"bytes=10-99")]),
        ),
    ] {
        if resp.status != 206
            || resp.body != disk[10..100]
            || resp.header("Content-Range") != Some(format!("bytes 10-99/{len}").as_str())
        {
            failures.push(format!("{via} Range bytes=10-99:\n{}", resp.describe()));
        }
    }
    for (via, resp) in [
        (
            "nginx",
            r.srv
                .http("GET", target.as_bytes(), &[("Range", "bytes=-5")]),
        ),
        (
            "FastCGI",
            r.srv
                .fcgi("GET", target.as_bytes(), &[("Range", b"bytes=-5")]),
        ),
    ] {
        let want_range = format!("bytes {}-{}/{len}", len - 5, len - 1);
        if resp.status != 206
            || resp.body != disk[len - 5..]
            || resp.header("Content-Range") != Some(want_range.as_str())
        {
            failures.push(format!("{via} Range bytes=-5:\n{}", resp.describe()));
        }
    }
    let unsatisfiable = format!("bytes={}-", len + 10);
    for (via, resp) in [
        (
            "nginx",
            r.srv.http(
                "GET",
                target.as_bytes(),
                &[("Range", unsatisfiable.as_str())],
            ),
        ),
        (
            "FastCGI",
            r.srv.fcgi(
                "GET",
                target.as_bytes(),
                &[("Range", unsatisfiable.as_bytes())],
            ),
        ),
    ] {
        if resp.status != 416 || contains(&resp.body, &disk[..64]) {
            failures.push(format!("{via} Range {unsatisfiable}:\n{}", resp.describe()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    r.srv.finish();
}

#[test]
fn routes_statuses_and_cache_headers() {
    let site = Site::new("routes", SiteOptions::default());
    site.import_fixture("mixed", "alice/mixed");
    let private = site.import_fixture("loose-only", "alice/private");
    git_ok(&private, &["config", "forgelet.visibility", "private"]);
    let srv = site.start();
    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, r: &Response, ok: bool| {
        if !ok {
            failures.push(format!("{what}:\n{}", r.describe()));
        }
    };

    let front = srv.get(&site.target("/"));
    check(
        "front page lists the public repo",
        &front,
        front.status == 200
            && front
                .header("Content-Type")
                .is_some_and(|t| t.starts_with("text/html"))
            && front.text().contains("mixed"),
    );

    for p in [
        "/alice/mixed.git/info/refs",
        "/alice/mixed.git/HEAD",
        "/alice/mixed.git/objects/info/packs",
    ] {
        let r = srv.get(&site.target(p));
        check(&format!("GET {p}"), &r, r.status == 200);
        assert_no_cache(&r, p);
        // HEAD: the same status and headers, no body.
        let h = srv.http("HEAD", site.target(p).as_bytes(), &[]);
        check(
            &format!("HEAD {p} (nginx)"),
            &h,
            h.status == 200 && h.body.is_empty(),
        );
        let fh = srv.fcgi("HEAD", site.target(p).as_bytes(), &[]);
        let fg = srv.fcgi("GET", site.target(p).as_bytes(), &[]);
        check(
            &format!("HEAD {p} (FastCGI) like GET without a body"),
            &fh,
            fh.status == 200 && fh.body.is_empty() && fh.headers == fg.headers,
        );
    }
    let head = srv.get(&site.target("/alice/mixed.git/HEAD"));
    check(
        "HEAD file",
        &head,
        head.body == fs::read(site.repo_path("alice/mixed").join("HEAD")).unwrap(),
    );

    // The `.git` suffix is optional.
    let with = srv.get(&site.target("/alice/mixed.git/info/refs"));
    let without = srv.get(&site.target("/alice/mixed/info/refs"));
    check(
        "info/refs without .git",
        &without,
        without.status == 200 && without.body == with.body,
    );

    for p in [
        "/alice/mixed.git/nope",
        "/alice/mixed.git/info/nope",
        "/alice/mixed.git/objects/info/nope",
        &format!("/alice/mixed.git/objects/ab/{}", "0".repeat(38)),
        &format!("/alice/mixed.git/objects/pack/pack-{}.pack", "0".repeat(40)),
        &format!("/alice/mixed.git/objects/pack/pack-{}.idx", "0".repeat(40)),
        "/alice/nosuchrepo.git/nope",
    ] {
        let r = srv.get(&site.target(p));
        check(&format!("GET {p} is 404"), &r, r.status == 404);
    }
    for (method, p) in [
        ("POST", "/alice/mixed.git/HEAD"),
        ("PUT", "/alice/mixed.git/info/refs"),
        ("DELETE", "/alice/mixed.git/objects/info/packs"),
    ] {
        let r = srv.http(
            method,
            site.target(p).as_bytes(),
            &[("Content-Length", "0")],
        );
        check(
            &format!("{method} {p} is 405 with Allow: GET"),
            &r,
            r.status == 405 && r.header("Allow").is_some_and(|a| a.contains("GET")),
        );
    }

    // A private repo and a missing one get the same 401 with a challenge.
    let p = srv.get(&site.target("/alice/private.git/info/refs"));
    let m = srv.get(&site.target("/alice/missing.git/info/refs"));
    check(
        "private repo: 401 with WWW-Authenticate",
        &p,
        p.status == 401 && p.header("WWW-Authenticate").is_some(),
    );
    check(
        "missing repo answers like a private one",
        &m,
        m.status == p.status
            && m.header("WWW-Authenticate") == p.header("WWW-Authenticate")
            && m.text().replace("missing", "X") == p.text().replace("private", "X"),
    );
    let packs = fs::read_dir(private.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|d| d.len() == 2)
        .unwrap();
    let obj = fs::read_dir(private.join("objects").join(&packs))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .into_string()
        .unwrap();
    let o = srv.get(&site.target(&format!("/alice/private.git/objects/{packs}/{obj}")));
    check("private repo object: 401", &o, o.status == 401);
    check(
        "front page does not list the private repo",
        &front,
        !front.text().contains("alice/private"),
    );
    let clone = run(git(site.dir())
        .args(["clone", &site.url("/alice/private.git")])
        .arg(site.dir().join("private-clone")));
    assert!(
        !clone.status.success(),
        "anonymous dumb clone of a private repo succeeded"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    srv.finish();
}

// ---------------------------------------------------------------------------------------------
// 2. CGI mode answers as FastCGI does, and as git does

#[test]
fn cgi_mode_matches_fastcgi_nginx_and_git() {
    let site = Site::new("cgi", SiteOptions::default());
    let fixtures = [
        "empty",
        "loose-only",
        "packs-only",
        "mixed",
        "tags",
        "branches",
    ];
    // Some adopted with `repo import`, some built in place as an admin's script would.
    let repos: Vec<PathBuf> = fixtures
        .iter()
        .map(|f| match *f {
            "tags" | "branches" => site.place_fixture(f, &format!("alice/{f}")),
            _ => site.import_fixture(f, &format!("alice/{f}")),
        })
        .collect();
    let srv = site.start();
    for (f, repo) in fixtures.iter().zip(&repos) {
        // What git itself writes for dumb clients, on a copy of the repository.
        let copy = site.dir().join(format!("copy-{f}.git"));
        ok(std::process::Command::new("cp")
            .arg("-a")
            .arg(repo)
            .arg(&copy));
        git_ok(&copy, &["update-server-info"]);
        let git_refs = fs::read(copy.join("info/refs")).unwrap();
        let git_packs = fs::read(copy.join("objects/info/packs")).unwrap();

        for (file, from_git) in [("info/refs", &git_refs), ("objects/info/packs", &git_packs)] {
            let target = site.target(&format!("/alice/{f}.git/{file}"));
            let cgi = site.cgi("GET", target.as_bytes(), &[]);
            let fcgi = srv.fcgi("GET", target.as_bytes(), &[]);
            let nginx = srv.get(&target);
            for (via, r) in [("CGI", &cgi), ("FastCGI", &fcgi), ("nginx", &nginx)] {
                assert_eq!(r.status, 200, "{via} GET {target}:\n{}", r.describe());
            }
            assert!(
                cgi.body == fcgi.body,
                "{target}: CGI and FastCGI bodies differ:\nCGI: {:?}\nFastCGI: {:?}",
                cgi.text(),
                fcgi.text()
            );
            if file == "info/refs" {
                // Made once, into a file nginx sends: CGI and FastCGI name the same file.
                let handoff = cgi.header("X-Accel-Redirect").unwrap_or_else(|| {
                    panic!("{target}: no X-Accel-Redirect:\n{}", cgi.describe())
                });
                assert_eq!(fcgi.header("X-Accel-Redirect"), Some(handoff));
                let name = handoff.rsplit('/').next().unwrap();
                let kept = fs::read(repo.join("forgelet-cache").join(name)).unwrap();
                for (via, body) in [("nginx", &nginx.body), ("the kept file", &kept)] {
                    assert!(
                        body == from_git,
                        "{target} from {via} differs from git update-server-info:\nforgelet: {:?}\ngit:      {:?}",
                        String::from_utf8_lossy(body),
                        String::from_utf8_lossy(from_git)
                    );
                }
            } else {
                assert!(
                    cgi.body == nginx.body,
                    "{target}: CGI and nginx bodies differ"
                );
                // git lists packs in an order of its own; compare the lists and the framing.
                let lines = |b: &[u8]| -> BTreeSet<String> {
                    String::from_utf8_lossy(b)
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                };
                assert_eq!(lines(&cgi.body), lines(from_git), "{target} pack list");
                assert!(
                    cgi.body.ends_with(b"\n\n") || (cgi.body == b"\n" && *from_git == b"\n"),
                    "{target}: pack list must end with a blank line: {:?}",
                    cgi.text()
                );
            }
        }
        let target = site.target(&format!("/alice/{f}.git/HEAD"));
        let cgi = site.cgi("GET", target.as_bytes(), &[]);
        assert_eq!(cgi.status, 200, "{}", cgi.describe());
        assert!(
            cgi.body == fs::read(repo.join("HEAD")).unwrap(),
            "CGI HEAD of {f}"
        );
    }
    srv.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Hostile paths

struct Hostile {
    run: Running,
    markers: Vec<Vec<u8>>,
    cases: Vec<String>,
}

const PACK_LINK_HEX: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const LOOSE_LINK_HEX: &str = "feedfacefeedfacefeedfacefeedfacefeedface";

/// A site with one good repo and secrets planted all around it.
fn hostile_site(test: &str, opts: SiteOptions) -> Hostile {
    let marker = unique_marker();
    let site = Site::new(test, opts);
    let repo = site.import_fixture("mixed", "alice/repo");
    let alt = site.import_fixture("loose-only", "alice/alt");
    let tmp = site.dir().to_path_buf();
    let data = site.data_dir.clone();
    let secret_text = format!("secret {marker}\n");

    // Files outside the repositories.
    fs::write(tmp.join("secret"), &secret_text).unwrap();
    fs::write(data.join("users.toml"), format!("# {marker}\n")).unwrap();
    fs::write(data.join("repos/secret"), &secret_text).unwrap();
    fs::write(data.join("repos/alice/secret"), &secret_text).unwrap();

    // A repository outside the data dir whose every file names the marker, reached through a
    // symlinked repo dir, a symlinked owner dir, and copied as a dot-named repo.
    let outside = tmp.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let linked = outside.join("linked.git");
    git_ok(&outside, &["init", "-q", "--bare", "linked.git"]);
    let blob = run_with_stdin(
        git(&linked).args(["hash-object", "-w", "--stdin"]),
        secret_text.as_bytes(),
    );
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = run_with_stdin(
        git(&linked).arg("mktree"),
        format!("100644 blob {}\tleak\n", blob.trim()).as_bytes(),
    );
    let tree = String::from_utf8(tree.stdout).unwrap();
    let commit = git_ok(&linked, &["commit-tree", tree.trim(), "-m", &marker]);
    git_ok(
        &linked,
        &["update-ref", &format!("refs/heads/{marker}"), commit.trim()],
    );
    git_ok(
        &linked,
        &["symbolic-ref", "HEAD", &format!("refs/heads/{marker}")],
    );
    fs::write(linked.join("description"), &secret_text).unwrap();
    symlink(&linked, data.join("repos/alice/linked.git")).unwrap();
    let owner_dir = outside.join("bob");
    fs::create_dir_all(&owner_dir).unwrap();
    ok(std::process::Command::new("cp")
        .arg("-a")
        .arg(&linked)
        .arg(owner_dir.join("r.git")));
    symlink(&owner_dir, data.join("repos/bob")).unwrap();
    ok(std::process::Command::new("cp")
        .arg("-a")
        .arg(&linked)
        .arg(data.join("repos/alice/.hidden.git")));
    let outside_obj = commit.trim().to_string();

    // Secrets inside the good repository, where only git's object files may be served.
    let mut config = fs::OpenOptions::new()
        .append(true)
        .open(repo.join("config"))
        .unwrap();
    writeln!(config, "[forgelettest]\n\tmarker = {marker}").unwrap();
    fs::write(repo.join("description"), &secret_text).unwrap();
    fs::create_dir_all(repo.join("hooks")).unwrap();
    fs::write(
        repo.join("hooks/post-update"),
        format!("#!/bin/sh\n# {marker}\n"),
    )
    .unwrap();
    symlink(
        "/etc/passwd",
        repo.join(format!("objects/pack/pack-{PACK_LINK_HEX}.pack")),
    )
    .unwrap();
    fs::create_dir_all(repo.join("objects").join(&LOOSE_LINK_HEX[..2])).unwrap();
    symlink(
        tmp.join("secret"),
        repo.join("objects")
            .join(&LOOSE_LINK_HEX[..2])
            .join(&LOOSE_LINK_HEX[2..]),
    )
    .unwrap();

    // Alternates naming a path outside (the dir exists, so the repo itself stays usable).
    let alt_objects = outside.join(format!("{marker}-objects"));
    fs::create_dir_all(alt_objects.join("pack")).unwrap();
    fs::create_dir_all(alt.join("objects/info")).unwrap();
    fs::write(
        alt.join("objects/info/alternates"),
        format!("{}\n", alt_objects.display()),
    )
    .unwrap();
    fs::write(
        alt.join("objects/info/http-alternates"),
        format!("http://{marker}.invalid/objects\n"),
    )
    .unwrap();

    let srv = site.start();
    let mut markers = vec![marker.clone().into_bytes()];
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    markers.push(passwd.lines().next().unwrap().as_bytes().to_vec());
    // forgelet's own cookie secret, if it made one; else plant one.
    let own_secret = data.join("secret");
    match fs::read(&own_secret) {
        Ok(s) if s.len() >= 8 => markers.push(s),
        _ => fs::write(&own_secret, &secret_text).unwrap(),
    }

    let long_owner = "a".repeat(300);
    let long_repo = "b".repeat(300);
    let long_pack = "c".repeat(3000);
    let many_up = "../".repeat(120);
    let (o1, o2) = outside_obj.split_at(2);
    let cases: Vec<String> = [
        "{B}/alice/../alice/repo.git/HEAD",
        "{B}/alice/repo.git/../../secret",
        "{B}/alice/repo.git/objects/../config",
        "{B}/alice/repo.git/objects/../description",
        "{B}/alice/repo.git/objects/../hooks/post-update",
        "{B}/alice/repo.git/config",
        "{B}/alice/repo.git/hooks/post-update",
        "{B}/alice/repo.git/description",
        "{B}/alice/repo.git/objects/info/../../config",
        "{B}/alice/repo.git/objects/pack/../../config",
        "{B}/alice/repo.git/info/refs/../../config",
        "{B}/alice/./repo.git/config",
        "{B}/alice/repo.git/./config",
        "{B}/alice/%2e%2e/alice/repo.git/HEAD",
        "{B}/alice/repo.git/objects/%2e%2e/config",
        "{B}/alice/repo.git/objects/%2E%2E/%2E%2E/%2E%2E/secret",
        "{B}/alice/repo.git/objects/%252e%252e/config",
        "{B}/alice/repo.git/objects/%252e%252e%252fconfig",
        "{B}/alice/repo.git/objects%2f..%2fconfig",
        "{B}/alice/repo.git/objects/..%2fconfig",
        "{B}/alice/repo.git/objects/..%252fconfig",
        "{B}/alice%2f..%2f..%2fsecret",
        "{B}/alice/repo.git/objects/%c0%ae%c0%ae/config",
        "{B}/alice/repo.git/objects/..;/config",
        "{B}//etc/passwd",
        "{B}/alice/repo.git//config",
        "{B}/alice/repo.git/objects//..//config",
        "{B}/alice/repo.git/objects/..\\config",
        "{B}/alice/repo.git\\..\\..\\secret",
        "{B}/alice/repo.git/objects/..%5cconfig",
        "{B}/alice/repo.git%5c..%5c..%5csecret",
        "{B}/alice/repo.git/HEAD%00",
        "{B}/alice/repo.git/HEAD%00.lock",
        "{B}/alice/repo.git/objects/../config%00/objects/info/packs",
        "{B}/{LONG_OWNER}/repo.git/HEAD",
        "{B}/alice/{LONG_REPO}.git/info/refs",
        "{B}/alice/repo.git/objects/pack/pack-{LONG_PACK}.pack",
        "{B}/alice/repo.git/objects/{MANY_UP}etc/passwd",
        "{B}/.git/config",
        "{B}/alice/.hidden.git/HEAD",
        "{B}/alice/.hidden.git/info/refs",
        "{B}/alice/.hidden/info/refs",
        "{B}/users.toml",
        "{B}/secret",
        "{B}/repos/alice/repo.git/config",
        "{B}/repos/../secret",
        "{B}/../secret",
        "{B}/alice/secret",
        "{B}/alice/repo.git/secret",
        "/.forgelet-repos/alice/repo.git/config",
        "/.forgelet-repos/alice/repo.git/HEAD",
        "/.forgelet-repos/../secret",
        "{B}/.forgelet-repos/alice/repo.git/config",
        "{B}/alice/linked.git/info/refs",
        "{B}/alice/linked.git/HEAD",
        "{B}/alice/linked.git/objects/info/packs",
        "{B}/alice/linked/info/refs",
        "{B}/alice/linked.git/objects/{O1}/{O2}",
        "{B}/bob/r.git/info/refs",
        "{B}/bob/r.git/objects/{O1}/{O2}",
        "{B}/alice/repo.git/objects/pack/pack-{PACK_LINK}.pack",
        "{B}/alice/repo.git/objects/{LOOSE1}/{LOOSE2}",
        "{B}/alice/alt.git/objects/info/alternates",
        "{B}/alice/alt.git/objects/info/http-alternates",
    ]
    .iter()
    .map(|c| {
        c.replace("{B}", opts.base_path)
            .replace("{LONG_OWNER}", &long_owner)
            .replace("{LONG_REPO}", &long_repo)
            .replace("{LONG_PACK}", &long_pack)
            .replace("{MANY_UP}", &many_up)
            .replace("{O1}", o1)
            .replace("{O2}", o2)
            .replace("{PACK_LINK}", PACK_LINK_HEX)
            .replace("{LOOSE1}", &LOOSE_LINK_HEX[..2])
            .replace("{LOOSE2}", &LOOSE_LINK_HEX[2..])
    })
    .collect();
    Hostile {
        run: Running { srv, site },
        markers,
        cases,
    }
}

/// What is wrong with an answer to a hostile path, if anything.
fn hostile_problem(r: &Response, markers: &[Vec<u8>]) -> Option<String> {
    let mut all = Vec::new();
    for (k, v) in &r.headers {
        all.extend_from_slice(format!("{k}: {v}\n").as_bytes());
    }
    all.extend_from_slice(&r.body);
    if let Some(m) = markers.iter().find(|m| contains(&all, m)) {
        return Some(format!("leaks {:?}", String::from_utf8_lossy(m)));
    }
    if !(400..500).contains(&r.status) {
        return Some(format!("status {} (want 4xx)", r.status));
    }
    None
}

fn run_hostile_table(h: Hostile) {
    let Hostile {
        run,
        markers,
        cases,
    } = h;
    assert!(cases.len() >= 25);
    let mut failures = Vec::new();
    for case in &cases {
        let target = case.as_bytes();
        let answers = [
            ("nginx", run.srv.http("GET", target, &[])),
            ("FastCGI", run.srv.fcgi("GET", target, &[])),
            ("CGI", run.site.cgi("GET", target, &[])),
        ];
        for (via, r) in &answers {
            if let Some(p) = hostile_problem(r, &markers) {
                failures.push(format!("{via} GET {case}: {p}\n{}", r.describe()));
            }
        }
        if case.starts_with("/.forgelet-repos/alice/") && answers[0].1.status != 404 {
            failures.push(format!(
                "nginx GET {case}: the internal location must be 404 from outside\n{}",
                answers[0].1.describe()
            ));
        }
    }
    let mut srv = run.srv;
    srv.assert_forgelet_alive("the hostile paths");
    // The good repository is still served.
    let good = run.site.target("/alice/repo.git/info/refs");
    for (via, r) in [
        ("nginx", srv.get(&good)),
        ("FastCGI", srv.fcgi("GET", good.as_bytes(), &[])),
        ("CGI", run.site.cgi("GET", good.as_bytes(), &[])),
    ] {
        if r.status != 200 {
            failures.push(format!(
                "{via} GET {good} after the table:\n{}",
                r.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests answered wrongly:\n\n{}",
        failures.len(),
        cases.len() * 3,
        failures.join("\n\n")
    );
    srv.finish();
}

#[test]
fn hostile_paths_x_accel_under_git() {
    run_hostile_table(hostile_site("hostile_xaccel", SiteOptions::default()));
}

#[test]
fn hostile_paths_sendfile_none_at_root() {
    let opts = SiteOptions {
        base_path: "",
        sendfile: "none",
        ..SiteOptions::default()
    };
    run_hostile_table(hostile_site("hostile_none", opts));
}

// ---------------------------------------------------------------------------------------------
// 4. The FastCGI responder under abuse

/// The process is alive, and a normal request through nginx and through the socket gets 200.
fn assert_still_serving(r: &mut Running, after: &str) {
    r.srv.assert_forgelet_alive(after);
    let target = r.site.target("/alice/mixed.git/objects/info/packs");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = r.srv.get(&target);
        let f = r.srv.fcgi("GET", target.as_bytes(), &[]);
        if n.status == 200 && f.status == 200 && n.body == f.body && !n.body.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "after {after}: nginx:\n{}\nFastCGI:\n{}",
                n.describe(),
                f.describe()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn good_params(r: &Running) -> Vec<(Vec<u8>, Vec<u8>)> {
    let target = r.site.target("/alice/mixed.git/info/refs");
    cgi_params("GET", target.as_bytes(), &[], r.site.port, None)
}

#[test]
fn fcgi_malformed_records_leave_server_running() {
    let (mut r, _) = start_with_fixture("fcgi_malformed", "mixed", SiteOptions::default());
    let sock = r.srv.socket.clone();
    let wait = Duration::from_millis(500);
    let params = fcgi_params_content(&good_params(&r));

    // A record of protocol version 2.
    let mut bad_version = fcgi_begin(1, false);
    bad_version[0] = 2;
    fcgi_send_and_drain(&sock, &bad_version, wait);
    assert_still_serving(&mut r, "a record with version 2");

    // A truncated header, then the peer closes.
    fcgi_send_and_close(&sock, &[1, 1, 0]);
    assert_still_serving(&mut r, "a truncated record header");

    // A name-value pair claiming 2 GiB lengths.
    let mut absurd = fcgi_begin(1, false);
    let mut nv = Vec::new();
    nv.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
    nv.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
    nv.extend_from_slice(b"REQUEST_URI");
    absurd.extend(fcgi_record(FCGI_PARAMS, 1, &nv));
    absurd.extend(fcgi_record(FCGI_PARAMS, 1, b""));
    absurd.extend(fcgi_record(FCGI_STDIN, 1, b""));
    fcgi_send_and_drain(&sock, &absurd, wait);
    assert_still_serving(&mut r, "a name-value pair claiming 4 GiB");

    // A header announcing 65535 content bytes, of which 10 arrive.
    let mut short = fcgi_begin(1, false);
    short.extend_from_slice(&[1, FCGI_PARAMS, 0, 1, 0xff, 0xff, 0xff, 0]);
    short.extend_from_slice(&[b'x'; 10]);
    fcgi_send_and_close(&sock, &short);
    assert_still_serving(&mut r, "a record shorter than its content length");

    // Garbage.
    let mut x: u32 = 0x1234_5678;
    let garbage: Vec<u8> = (0..8192)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    fcgi_send_and_drain(&sock, &garbage, wait);
    assert_still_serving(&mut r, "8 KiB of garbage");

    // Records for a request that was never begun, and a second BEGIN on the same id.
    let mut stray = fcgi_stream(FCGI_PARAMS, 7, &params);
    stray.extend(fcgi_begin(1, false));
    stray.extend(fcgi_begin(1, false));
    stray.extend(fcgi_stream(FCGI_PARAMS, 1, &params));
    stray.extend(fcgi_stream(FCGI_STDIN, 1, b""));
    fcgi_send_and_drain(&sock, &stray, wait);
    assert_still_serving(&mut r, "stray records");

    // 4 MiB of parameters.
    let mut big = good_params(&r);
    for i in 0..64 {
        big.push((format!("HTTP_X_BIG_{i}").into_bytes(), vec![b'a'; 65536]));
    }
    fcgi_send_and_drain(
        &sock,
        &fcgi_request_bytes(1, false, &big, b""),
        Duration::from_secs(2),
    );
    assert_still_serving(&mut r, "4 MiB of parameters");

    // A header value that is not UTF-8 must not disturb the other parameters.
    let mut binary = vec![(
        b"HTTP_X_BINARY".to_vec(),
        b"\xff\xfe\x80 not utf-8".to_vec(),
    )];
    binary.extend(good_params(&r));
    let mut s = fcgi_connect(&sock);
    s.write_all(&fcgi_request_bytes(1, false, &binary, b""))
        .unwrap();
    let reply = fcgi_read_reply(&mut s, 1).unwrap();
    let resp = parse_cgi(&reply.stdout, "non-UTF-8 header").unwrap();
    assert_eq!(
        resp.status,
        200,
        "a non-UTF-8 header value broke the request:\n{}",
        resp.describe()
    );
    assert_still_serving(&mut r, "a non-UTF-8 header value");
    r.srv.finish();
}

#[test]
fn fcgi_peer_disconnects_mid_request() {
    let (mut r, _) = start_with_fixture("fcgi_disconnect", "mixed", SiteOptions::default());
    let sock = r.srv.socket.clone();
    let params = fcgi_params_content(&good_params(&r));

    fcgi_send_and_close(&sock, &fcgi_begin(1, false));
    assert_still_serving(&mut r, "a peer that left after BEGIN_REQUEST");

    let mut half = fcgi_begin(1, false);
    let rec = fcgi_record(FCGI_PARAMS, 1, &params);
    half.extend_from_slice(&rec[..rec.len() / 2]);
    fcgi_send_and_close(&sock, &half);
    assert_still_serving(&mut r, "a peer that left in the middle of PARAMS");

    let target = r.site.target("/alice/mixed.git/git-upload-pack");
    let post = cgi_params("POST", target.as_bytes(), &[], r.site.port, Some(100_000));
    let mut part = fcgi_begin(1, false);
    part.extend(fcgi_stream(FCGI_PARAMS, 1, &fcgi_params_content(&post)));
    part.extend(fcgi_record(FCGI_STDIN, 1, &[b'0'; 1000]));
    fcgi_send_and_close(&sock, &part);
    assert_still_serving(&mut r, "a peer that left in the middle of STDIN");

    // A peer that leaves before reading its answer.
    let mut whole = fcgi_begin(1, false);
    whole.extend(fcgi_stream(FCGI_PARAMS, 1, &params));
    whole.extend(fcgi_stream(FCGI_STDIN, 1, b""));
    fcgi_send_and_close(&sock, &whole);
    assert_still_serving(&mut r, "a peer that left before reading the answer");

    // An abort after the params.
    let mut abort = fcgi_begin(1, false);
    abort.extend(fcgi_stream(FCGI_PARAMS, 1, &params));
    abort.extend(fcgi_record(FCGI_ABORT_REQUEST, 1, b""));
    fcgi_send_and_drain(&sock, &abort, Duration::from_millis(500));
    assert_still_serving(&mut r, "FCGI_ABORT_REQUEST");
    r.srv.finish();
}

#[test]
fn fcgi_idle_connections_over_the_cap() {
    let opts = SiteOptions {
        // The cap must leave room for the worker threads (forgelet checks that).
        server_extra: "workers = 2\ngit_workers = 2\nmax_connections = 8",
        ..SiteOptions::default()
    };
    let (mut r, _) = start_with_fixture("fcgi_idle", "mixed", opts);
    let idle: Vec<_> = (0..20).map(|_| fcgi_connect(&r.srv.socket)).collect();
    std::thread::sleep(Duration::from_millis(300));
    r.srv.assert_forgelet_alive("20 idle connections");
    // Regression: at the cap the longest-idle connection makes room, so silent connections
    // never lock the site out while they stay open.
    assert_still_serving(&mut r, "20 idle connections are open");
    drop(idle);
    assert_still_serving(&mut r, "20 idle connections were closed");
    r.srv.finish();
}

#[test]
fn fcgi_keep_conn_and_management_records() {
    let (mut r, _) = start_with_fixture("fcgi_keep", "mixed", SiteOptions::default());
    let params = good_params(&r);
    // Two requests on one kept connection.
    let mut s = fcgi_connect(&r.srv.socket);
    let mut bodies = Vec::new();
    for id in [1u16, 2] {
        s.write_all(&fcgi_request_bytes(id, true, &params, b""))
            .unwrap();
        let reply = fcgi_read_reply(&mut s, id).unwrap_or_else(|e| panic!("request {id}: {e}"));
        let resp = parse_cgi(&reply.stdout, "kept connection").unwrap();
        assert_eq!(resp.status, 200, "request {id} on a kept connection");
        assert_eq!(reply.protocol_status, 0, "FCGI_REQUEST_COMPLETE");
        bodies.push(resp.body);
    }
    assert_eq!(bodies[0], bodies[1]);
    drop(s);

    // FCGI_GET_VALUES is answered with FCGI_GET_VALUES_RESULT on request id 0.
    let mut s = fcgi_connect(&r.srv.socket);
    let mut q = Vec::new();
    for name in ["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"] {
        q.extend(fcgi_nv(name.as_bytes(), b""));
    }
    s.write_all(&fcgi_record(FCGI_GET_VALUES, 0, &q)).unwrap();
    let (t, id, content) = fcgi_read_record(&mut s).expect("answer to FCGI_GET_VALUES");
    assert_eq!((t, id), (FCGI_GET_VALUES_RESULT, 0));
    let text = String::from_utf8_lossy(&content);
    assert!(
        text.contains("FCGI_MPXS_CONNS"),
        "GET_VALUES_RESULT: {text:?}"
    );
    drop(s);

    // An unknown management record type is answered with FCGI_UNKNOWN_TYPE naming it.
    let mut s = fcgi_connect(&r.srv.socket);
    s.write_all(&fcgi_record(42, 0, b"whatever")).unwrap();
    let (t, id, content) = fcgi_read_record(&mut s).expect("answer to an unknown record type");
    assert_eq!((t, id), (FCGI_UNKNOWN_TYPE, 0));
    assert_eq!(content.first(), Some(&42));
    drop(s);
    assert_still_serving(&mut r, "management records");
    r.srv.finish();
}

// ---------------------------------------------------------------------------------------------
// 5. forgelet check

#[test]
fn check_accepts_a_good_config() {
    let site = Site::new("check_good", SiteOptions::default());
    let out = run(site.forgelet().arg("check"));
    assert!(
        out.status.success(),
        "check of a good config: {}",
        all_output(&out)
    );
}

/// `check` refuses `text` and says where: the file, the line (1-based) and the key.
fn assert_check_refuses(test: &str, text: &str, line: usize, key: &str) {
    let site = Site::new(test, SiteOptions::default());
    let config = site.dir().join("bad.toml");
    let text = text.replace("{DATA}", &site.data_dir.display().to_string());
    fs::write(&config, &text).unwrap();
    let out = run(std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .env_remove("FORGELET_CONFIG"));
    let msg = all_output(&out);
    assert!(
        !out.status.success(),
        "check accepted:\n{text}\noutput: {msg}"
    );
    let file = config.display().to_string();
    assert!(
        msg.contains(&file),
        "message does not name the file {file}: {msg}"
    );
    assert!(
        msg.contains(&format!(":{line}:"))
            || msg.contains(&format!("line {line}"))
            || msg.contains(&format!(":{line} ")),
        "message does not name line {line}: {msg}"
    );
    assert!(
        msg.contains(key),
        "message does not name the key {key}: {msg}"
    );
}

#[test]
fn check_refuses_unknown_keys() {
    assert_check_refuses(
        "check_unknown_top",
        "data_dir = \"{DATA}\"\nbase_url = \"http://127.0.0.1/git\"\nsendfile = \"none\"\nbogus_key = 1\n",
        4,
        "bogus_key",
    );
    assert_check_refuses(
        "check_unknown_server",
        "data_dir = \"{DATA}\"\n\n[server]\nlisten = \"unix:/tmp/x.sock\"\nnot_a_server_key = true\n",
        5,
        "not_a_server_key",
    );
}

#[test]
fn check_refuses_bad_values() {
    assert_check_refuses(
        "check_bad_sendfile",
        "data_dir = \"{DATA}\"\nbase_url = \"http://127.0.0.1/git\"\nsendfile = \"carrier-pigeon\"\n",
        3,
        "sendfile",
    );
    assert_check_refuses(
        "check_bad_type",
        "data_dir = \"{DATA}\"\n[server]\nmax_connections = \"many\"\n",
        3,
        "max_connections",
    );
    assert_check_refuses(
        "check_bad_url",
        "data_dir = \"{DATA}\"\nsendfile = \"none\"\nbase_url = \"not a url\"\n",
        3,
        "base_url",
    );
}

// ---------------------------------------------------------------------------------------------
// 6. Admin commands: repo create, list, import

#[test]
fn repo_create_list_and_clone_empty() {
    let site = Site::new("repo_create", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args([
        "repo",
        "create",
        "alice/fresh",
        "--description",
        "A fresh repo",
    ]));
    let repo = site.repo_path("alice/fresh");
    assert_eq!(
        git_ok(&repo, &["rev-parse", "--is-bare-repository"]).trim(),
        "true"
    );
    assert_eq!(
        git_ok(&repo, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert!(refs_of(&repo).is_empty());
    let desc = fs::read_to_string(repo.join("description")).unwrap_or_default();
    assert!(desc.contains("A fresh repo"), "description file: {desc:?}");
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(list.contains("alice/fresh"), "repo list: {list}");

    // Names that must be refused, leaving the data dir as it was.
    let before = tree_listing(site.data_dir.parent().unwrap());
    for bad in [
        "alice/../evil",
        "../evil/x",
        "alice/.hidden",
        "alice/",
        "alice",
        "-x/y",
        "alice/a b",
        "alice/fresh",
    ] {
        let out = run(site.forgelet().args(["repo", "create", bad]));
        assert!(!out.status.success(), "repo create {bad:?} succeeded");
    }
    assert_eq!(tree_listing(site.data_dir.parent().unwrap()), before);

    let srv = site.start();
    let clone = site.dir().join("clone");
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/fresh.git")])
        .arg(&clone));
    let text = all_output(&out);
    assert!(out.status.success(), "clone of a created repo: {text}");
    assert!(
        text.contains("You appear to have cloned an empty repository"),
        "{text}"
    );
    srv.finish();
}

#[test]
fn repo_names_are_unique_ignoring_case() {
    let site = Site::new("repo_case", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/fresh"]));
    // Another spelling of the owner: allowed or not, it must not open a second `alice`.
    let _ = run(site.forgelet().args(["repo", "create", "ALICE/other"]));
    let mut failures = Vec::new();
    for name in ["alice/FRESH", "ALICE/fresh", "Alice/Fresh"] {
        let out = run(site.forgelet().args(["repo", "create", name]));
        if out.status.success() {
            failures.push(format!(
                "repo create {name} succeeded: {}",
                all_output(&out)
            ));
        }
    }
    let list = ok(site.forgelet().args(["repo", "list"]));
    let mut seen = BTreeSet::new();
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if !seen.insert(name.to_ascii_lowercase()) {
            failures.push(format!(
                "repo list has two repositories named {name} ignoring case"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nrepo list:\n{list}",
        failures.join("\n")
    );
}

#[test]
fn repo_import_refuses_symlinks() {
    let site = Site::new("import_symlink", SiteOptions::default());
    site.ensure_user("alice");
    let secret = site.dir().join("outside-secret");
    fs::write(&secret, "outside\n").unwrap();
    for (i, place) in ["description", "objects/info/evil", "refs/heads/evil"]
        .iter()
        .enumerate()
    {
        let src = site.dir().join(format!("src{i}.git"));
        build_fixture("mixed", &src);
        let _ = fs::remove_file(src.join(place));
        symlink(&secret, src.join(place)).unwrap();
        let before_src = tree_listing(&src);
        let before = tree_listing(&site.data_dir);
        let out = run(site
            .forgelet()
            .args(["repo", "import", &format!("alice/linked{i}")])
            .arg(&src));
        let msg = all_output(&out);
        assert!(
            !out.status.success(),
            "import of a repo with a symlink at {place} succeeded"
        );
        assert!(
            msg.to_lowercase().contains("symlink") || msg.to_lowercase().contains("symbolic link"),
            "import refused without saying why: {msg}"
        );
        assert_eq!(
            tree_listing(&site.data_dir),
            before,
            "import left files behind"
        );
        assert_eq!(tree_listing(&src), before_src, "import changed its source");
    }
}

#[test]
fn repo_import_drops_hooks_alternates_and_config() {
    let site = Site::new("import_clean", SiteOptions::default());
    site.ensure_user("alice");
    let base = site.dir().join("base.git");
    build_fixture("mixed", &base);
    // A repository that borrows objects from `base` and has objects of its own.
    let src = site.dir().join("borrower.git");
    ok(git(site.dir())
        .args(["clone", "-q", "--bare", "--shared"])
        .arg(&base)
        .arg(&src));
    assert!(src.join("objects/info/alternates").exists());
    add_history_on_server(&src);
    let pwned = site.dir().join("PWNED");
    fs::create_dir_all(src.join("hooks")).unwrap();
    fs::write(
        src.join("hooks/post-update"),
        format!("#!/bin/sh\ntouch {}\n", pwned.display()),
    )
    .unwrap();
    set_mode(&src.join("hooks/post-update"), 0o755);
    git_ok(
        &src,
        &[
            "config",
            "core.fsmonitor",
            &format!("touch {}", pwned.display()),
        ],
    );
    git_ok(&src, &["config", "core.hooksPath", "/tmp"]);
    let src_refs = refs_of(&src);
    let before_src = tree_listing(&src);
    let before_base = tree_listing(&base);

    ok(site
        .forgelet()
        .args(["repo", "import", "alice/borrower"])
        .arg(&src));
    let repo = site.repo_path("alice/borrower");
    assert_eq!(tree_listing(&src), before_src, "import changed its source");
    assert_eq!(
        tree_listing(&base),
        before_base,
        "import changed the alternate"
    );
    assert!(
        !repo.join("objects/info/alternates").exists(),
        "alternates kept"
    );
    let hooks: Vec<_> = fs::read_dir(repo.join("hooks"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(hooks.is_empty(), "hooks kept: {hooks:?}");
    let config = fs::read_to_string(repo.join("config")).unwrap();
    assert!(
        !config.contains("fsmonitor") && !config.contains("hooksPath"),
        "config kept dangerous keys:\n{config}"
    );
    assert_eq!(refs_of(&repo), src_refs);
    // Move the source away: the import must stand on its own.
    fs::rename(&base, site.dir().join("base-moved.git")).unwrap();
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(
        fsck.status.success(),
        "fsck of the import: {}",
        all_output(&fsck)
    );

    let srv = site.start();
    let clone = site.dir().join("clone");
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/borrower.git")])
        .arg(&clone));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&repo, &clone);
    assert!(
        !pwned.exists(),
        "a hook or config command of the imported repo ran"
    );
    srv.finish();
}

#[test]
fn repo_import_refuses_what_it_cannot_serve() {
    let site = Site::new("import_refuse", SiteOptions::default());
    site.import_fixture("empty", "alice/taken");
    let sha256 = site.dir().join("sha256.git");
    git_ok(
        site.dir(),
        &[
            "init",
            "-q",
            "--bare",
            "--object-format=sha256",
            "sha256.git",
        ],
    );
    let not_repo = site.dir().join("not-a-repo");
    fs::create_dir_all(not_repo.join("objects")).unwrap();
    let dup = site.dir().join("dup.git");
    build_fixture("mixed", &dup);
    for (name, src, why) in [
        ("alice/sha", &sha256, "sha256"),
        ("alice/notrepo", &not_repo, ""),
        ("alice/taken", &dup, ""),
        ("ALICE/Taken", &dup, ""),
    ] {
        let before = tree_listing(site.dir());
        let out = run(site.forgelet().args(["repo", "import", name]).arg(src));
        let msg = all_output(&out);
        assert!(
            !out.status.success(),
            "repo import {name} {} succeeded",
            src.display()
        );
        assert!(
            !msg.trim().is_empty(),
            "repo import {name}: refused without a message"
        );
        assert!(
            msg.to_lowercase().contains(why),
            "repo import {name}: {msg}"
        );
        assert_eq!(
            tree_listing(site.dir()),
            before,
            "repo import {name} changed files"
        );
    }
}

#[test]
fn repo_import_move_removes_source() {
    let site = Site::new("import_move", SiteOptions::default());
    site.ensure_user("alice");
    let src = site.dir().join("moving.git");
    build_fixture("tags", &src);
    let src_refs = refs_of(&src);
    ok(site
        .forgelet()
        .args(["repo", "import", "alice/moved", "--move"])
        .arg(&src));
    assert!(!src.exists(), "--move left the source in place");
    let repo = site.repo_path("alice/moved");
    assert_eq!(refs_of(&repo), src_refs);
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(fsck.status.success(), "fsck: {}", all_output(&fsck));
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(list.contains("alice/moved"), "repo list: {list}");
}

// ---------------------------------------------------------------------------------------------
// Repositories forgelet must not serve, other handoffs, logging

/// The pack and one loose object of `repo`, as paths below the repository.
fn object_paths(repo: &Path) -> Vec<String> {
    let mut out = vec![largest_pack(repo)];
    for entry in fs::read_dir(repo.join("objects")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.len() == 2 {
            let dir = repo.join("objects").join(&name);
            if let Some(f) = fs::read_dir(&dir).unwrap().next() {
                let f = f.unwrap().file_name().into_string().unwrap();
                out.push(format!("objects/{name}/{f}"));
                break;
            }
        }
    }
    assert_eq!(
        out.len(),
        2,
        "the mixed fixture has a pack and loose objects"
    );
    out
}

#[test]
fn private_and_missing_repos_look_alike_and_leak_nothing() {
    let site = Site::new("private_repo", SiteOptions::default());
    site.import_fixture("mixed", "alice/open");
    let repo = site.import_fixture("mixed", "alice/secret");
    git_ok(
        &repo,
        &["config", "-f", "config", "forgelet.visibility", "private"],
    );
    let srv = site.start();

    let mut paths = vec![
        "info/refs".to_string(),
        "info/refs?service=git-upload-pack".to_string(),
        "HEAD".to_string(),
        "objects/info/packs".to_string(),
    ];
    paths.extend(object_paths(&repo));
    for p in &paths {
        let private = srv.get(&site.target(&format!("/alice/secret.git/{p}")));
        let missing = srv.get(&site.target(&format!("/alice/nosuch.git/{p}")));
        for (r, what) in [(&private, "private"), (&missing, "missing")] {
            assert_eq!(r.status, 401, "{what} {p}: {}", r.describe());
            let auth = r.header("WWW-Authenticate").unwrap_or_default();
            assert!(auth.starts_with("Basic realm="), "{what} {p}: {auth:?}");
            assert!(r.header("X-Accel-Redirect").is_none(), "{what} {p}");
        }
        assert_eq!(
            private.body, missing.body,
            "{p}: private and missing differ"
        );
        // Straight at the socket and in CGI mode too.
        let target = site.target(&format!("/alice/secret.git/{p}"));
        assert_eq!(srv.fcgi("GET", target.as_bytes(), &[]).status, 401, "{p}");
        assert_eq!(site.cgi("GET", target.as_bytes(), &[]).status, 401, "{p}");
    }
    assert_eq!(srv.get(&site.target("/alice/secret")).status, 404);

    let front = srv.get(&site.target("/")).text();
    assert!(front.contains("alice/open"), "{front}");
    assert!(
        !front.contains("secret"),
        "the front page lists a private repository:\n{front}"
    );

    let tmp = site.dir();
    let out = run(git(tmp)
        .args(["clone", &site.url("/alice/secret.git")])
        .arg(tmp.join("clone")));
    assert!(!out.status.success(), "a private repository was cloned");
    let text = all_output(&out);
    assert!(
        text.contains("could not read Username"),
        "git should ask for credentials:\n{text}"
    );
    assert!(!tmp.join("clone/.git/objects/pack").exists());
    srv.finish();
}

#[test]
fn sha256_repository_gets_a_clear_error() {
    let site = Site::new("sha256", SiteOptions::default());
    let repo = site.repo_path("alice/modern");
    fs::create_dir_all(repo.parent().unwrap()).unwrap();
    git_ok(
        site.dir(),
        &["init", "-q", "--bare", "--object-format=sha256"]
            .iter()
            .map(|s| s.to_string())
            .chain([repo.display().to_string()])
            .collect::<Vec<_>>(),
    );
    let srv = site.start();
    for p in ["info/refs", "HEAD", "objects/info/packs"] {
        let r = srv.get(&site.target(&format!("/alice/modern.git/{p}")));
        assert_eq!(r.status, 501, "{p}: {}", r.describe());
        assert!(r.text().contains("SHA-1"), "{p}: {}", r.text());
    }
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/modern.git")])
        .arg(site.dir().join("clone")));
    assert!(!out.status.success());
    let check = run(site.forgelet().arg("check"));
    assert!(!check.status.success());
    assert!(all_output(&check).contains("alice/modern: uses the sha256 object format"));
    srv.finish();
}

#[test]
fn x_sendfile_names_the_file_inside_the_repository() {
    let site = Site::new(
        "x_sendfile",
        SiteOptions {
            sendfile: "x-sendfile",
            ..SiteOptions::default()
        },
    );
    let repo = site.import_fixture("mixed", "alice/mixed");
    for p in object_paths(&repo) {
        let r = site.cgi(
            "GET",
            site.target(&format!("/alice/mixed.git/{p}")).as_bytes(),
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(r.body.is_empty());
        let file = PathBuf::from(r.header("X-Sendfile").unwrap_or_default());
        assert_eq!(file, repo.join(&p));
        assert!(r
            .header("Cache-Control")
            .unwrap_or_default()
            .contains("immutable"));
    }
}

#[test]
fn nothing_is_logged_per_request_at_the_default_level() {
    let site = Site::new("quiet", SiteOptions::default());
    site.import_fixture("mixed", "alice/mixed");
    for target in [
        "/",
        "/alice/mixed.git/info/refs",
        "/alice/nosuch.git/HEAD",
        "/alice/mixed.git/config",
    ] {
        let params = cgi_params("GET", site.target(target).as_bytes(), &[], site.port, None);
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FORGELET_CONFIG", &site.config);
        for (k, v) in &params {
            cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
        }
        let out = run(&mut cmd);
        assert!(out.status.success(), "{target}");
        assert!(
            out.stderr.is_empty(),
            "{target} logged: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP

/// `git` that may use the smart protocol (the harness's `git` forces dumb HTTP).
pub(crate) fn smart_git(dir: &Path) -> Command {
    let mut c = git(dir);
    c.env_remove("GIT_SMART_HTTP");
    c
}

/// What git's packet trace shows of the server's first answer.
fn traced_clone(url: &str, dir: &Path, into: &Path, version: &str, extra: &[&str]) -> String {
    let trace = dir.join(format!(
        "trace-{version}-{}",
        into.file_name().unwrap().to_string_lossy()
    ));
    let out = run(smart_git(dir)
        .env("GIT_TRACE_PACKET", &trace)
        .args(["-c", &format!("protocol.version={version}"), "clone"])
        .args(extra)
        .arg(url)
        .arg(into));
    assert!(
        out.status.success(),
        "smart clone v{version} {extra:?}: {}",
        all_output(&out)
    );
    fs::read_to_string(&trace).unwrap_or_default()
}

#[test]
fn smart_clone_and_fetch_protocol_v0_and_v2() {
    let (r, repo) = start_with_fixture("smart_v0_v2", "tags", SiteOptions::default());
    let url = r.site.url("/alice/tags.git");
    let tmp = r.site.dir().to_path_buf();
    for version in ["0", "2"] {
        let clone = tmp.join(format!("clone-v{version}"));
        let trace = traced_clone(&url, &tmp, &clone, version, &[]);
        let spoke_v2 = trace.contains("git< version 2");
        assert_eq!(
            spoke_v2,
            version == "2",
            "protocol v{version} was not what was used:\n{trace}"
        );
        if version == "0" {
            assert!(trace.contains("git< # service=git-upload-pack"), "{trace}");
        }
        assert_clone_matches(&repo, &clone);
    }
    // New history on the server reaches both clones by fetch.
    add_history_on_server(&repo);
    for version in ["0", "2"] {
        let clone = tmp.join(format!("clone-v{version}"));
        let out = run(smart_git(&clone)
            .args(["-c", &format!("protocol.version={version}")])
            .args(["fetch", "--tags", "--prune", "origin"]));
        assert!(
            out.status.success(),
            "smart fetch v{version}: {}",
            all_output(&out)
        );
        assert_clone_matches(&repo, &clone);
    }
    r.srv.finish();
}

#[test]
fn smart_shallow_and_partial_clones() {
    let (r, repo) = start_with_fixture("smart_shallow", "mixed", SiteOptions::default());
    let url = r.site.url("/alice/mixed");
    let tmp = r.site.dir().to_path_buf();

    let shallow = tmp.join("shallow");
    traced_clone(&url, &tmp, &shallow, "2", &["--depth", "1"]);
    assert_eq!(
        git_ok(&shallow, &["rev-list", "--count", "HEAD"]).trim(),
        "1"
    );
    assert_eq!(
        git_ok(&shallow, &["rev-parse", "HEAD"]),
        git_ok(&repo, &["rev-parse", "HEAD"])
    );

    let partial = tmp.join("partial");
    traced_clone(
        &url,
        &tmp,
        &partial,
        "2",
        &["--filter=blob:none", "--no-checkout"],
    );
    let missing = git_ok(
        &partial,
        &["rev-list", "--objects", "--all", "--missing=print"],
    );
    assert!(
        missing.lines().any(|l| l.starts_with('?')),
        "no blob was left out:\n{missing}"
    );
    // Checking out fetches the blobs it needs, lazily, from the same server.
    let out = run(smart_git(&partial).args(["checkout", "main"]));
    assert!(out.status.success(), "{}", all_output(&out));
    r.srv.finish();
}

#[test]
fn smart_requests_are_answered_as_git_expects() {
    let (r, _repo) = start_with_fixture("smart_http", "branches", SiteOptions::default());
    let adv = r.srv.get(
        &r.site
            .target("/alice/branches.git/info/refs?service=git-upload-pack"),
    );
    assert_eq!(adv.status, 200, "{}", adv.describe());
    assert_eq!(
        adv.header("Content-Type"),
        Some("application/x-git-upload-pack-advertisement")
    );
    assert!(
        adv.body.starts_with(b"001e# service=git-upload-pack\n0000"),
        "{}",
        adv.text()
    );
    assert_no_cache(&adv, "advertisement");

    // v2 has no preamble; a malformed Git-Protocol header is not passed on (v0 answer).
    let target = r
        .site
        .target("/alice/branches.git/info/refs?service=git-upload-pack");
    let v2 = r
        .srv
        .http("GET", target.as_bytes(), &[("Git-Protocol", "version=2")]);
    assert!(v2.body.starts_with(b"000eversion 2\n"), "{}", v2.text());
    let bad = r.srv.http(
        "GET",
        target.as_bytes(),
        &[("Git-Protocol", "version=2;x=$(id)")],
    );
    assert!(
        bad.body.starts_with(b"001e# service=git-upload-pack"),
        "{}",
        bad.text()
    );

    // Unknown services and wrong methods.
    let unknown = r.srv.get(
        &r.site
            .target("/alice/branches.git/info/refs?service=git-frob"),
    );
    assert_eq!(unknown.status, 403);
    let get_rpc = r
        .srv
        .get(&r.site.target("/alice/branches.git/git-upload-pack"));
    assert_eq!(get_rpc.status, 405);
    assert_eq!(get_rpc.header("Allow"), Some("POST"));

    // A fetch body that is not git's protocol: git's own error, never a crash.
    let junk = r.srv.http_body(
        "POST",
        r.site
            .target("/alice/branches.git/git-upload-pack")
            .as_bytes(),
        &[("Content-Type", "application/x-git-upload-pack-request")],
        b"this is not a pkt-line",
    );
    assert!(
        junk.status == 200 || junk.status >= 400,
        "{}",
        junk.describe()
    );
    assert_still_serving_smart(&r);
    r.srv.finish();
}

/// A fetch request larger than [limits] fetch_request_mib gets 413 with a message.
#[test]
fn smart_fetch_request_over_the_cap_is_refused() {
    let site = Site::new("smart_cap", SiteOptions::default());
    fs::write(
        &site.config,
        fs::read_to_string(&site.config).unwrap() + "\n[limits]\nfetch_request_mib = 1\n",
    )
    .unwrap();
    site.import_fixture("mixed", "alice/mixed");
    let srv = site.start();
    let mut body = Vec::new();
    while body.len() < (1 << 20) + 1000 {
        body.extend_from_slice(b"0032want 0123456789012345678901234567890123456789\n");
    }
    let r = srv.http_body(
        "POST",
        site.target("/alice/mixed.git/git-upload-pack").as_bytes(),
        &[("Content-Type", "application/x-git-upload-pack-request")],
        &body,
    );
    assert_eq!(r.status, 413, "{}", r.describe());
    assert!(r.text().contains("limit of 1 MiB"), "{}", r.text());
    srv.finish();
}

/// A clone of a repository with many refs sends a large, gzipped fetch request.
#[test]
fn smart_clone_with_many_refs_sends_gzip_and_works() {
    let site = Site::new("smart_many_refs", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/many");
    let head = git_ok(&repo, &["rev-parse", "HEAD"]);
    let mut input = String::new();
    for i in 0..1500 {
        input.push_str(&format!("create refs/heads/b{i:04} {}\n", head.trim()));
    }
    let out = run_with_stdin(git(&repo).args(["update-ref", "--stdin"]), input.as_bytes());
    assert!(out.status.success(), "{}", all_output(&out));
    let srv = site.start();
    let tmp = site.dir();
    let clone = tmp.join("clone");
    let trace = tmp.join("curl-trace");
    let out = run(smart_git(tmp)
        .env("GIT_TRACE_CURL", &trace)
        .env("GIT_TRACE_CURL_NO_DATA", "1")
        .args(["-c", "protocol.version=0", "clone", "--mirror"])
        .arg(site.url("/alice/many.git"))
        .arg(&clone));
    assert!(out.status.success(), "{}", all_output(&out));
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        trace.contains("Content-Encoding: gzip"),
        "git did not gzip its request"
    );
    assert_eq!(refs_of(&clone), refs_of(&repo));
    srv.finish();
}

fn assert_still_serving_smart(r: &Running) {
    let tmp = r.site.dir();
    let clone = tmp.join(format!("still-{}", unique_marker()));
    let out = run(smart_git(tmp)
        .arg("clone")
        .arg(r.site.url("/alice/branches.git"))
        .arg(&clone));
    assert!(out.status.success(), "{}", all_output(&out));
}

/// Processes that use `repo`: named on their command line, or working inside it (index-pack
/// does not name the repository).
pub(crate) fn processes_in(repo: &Path) -> Vec<String> {
    let needle = repo.display().to_string();
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap_or_default();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmd = fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmd.contains(&needle) || cwd.starts_with(repo) {
            out.push(format!("{name} (cwd {}): {cmd}", cwd.display()));
        }
    }
    out
}

/// Waits up to `secs` for no process to use `repo`.
pub(crate) fn assert_no_process_left(repo: &Path, secs: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = processes_in(repo);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: processes left:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes `repo` hold a commit with a large incompressible file, so a clone takes a while.
pub(crate) fn add_big_commit(repo: &Path, bytes: usize) {
    let mut data = Vec::with_capacity(bytes);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let blob = run_with_stdin(git(repo).args(["hash-object", "-w", "--stdin"]), &data);
    assert!(blob.status.success());
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = run_with_stdin(
        git(repo).arg("mktree"),
        format!("100644 blob {}\tbig.bin\n", blob.trim()).as_bytes(),
    );
    let tree = String::from_utf8(tree.stdout).unwrap();
    let head = git_ok(repo, &["rev-parse", "HEAD"]);
    let commit = git_ok(
        repo,
        &["commit-tree", tree.trim(), "-p", head.trim(), "-m", "big"],
    );
    git_ok(repo, &["update-ref", "refs/heads/main", commit.trim()]);
}

#[test]
fn client_gone_mid_clone_leaves_no_git_behind() {
    let site = Site::new("smart_gone", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/big");
    add_big_commit(&repo, 40 << 20);
    let srv = site.start();
    let head = git_ok(&repo, &["rev-parse", "HEAD"]);
    let want = format!("want {} side-band-64k ofs-delta\n", head.trim());
    let body = format!("{:04x}{want}00000009done\n", want.len() + 4);
    let target = site.target("/alice/big.git/git-upload-pack");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", site.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut got = [0u8; 4096];
    let n = std::io::Read::read(&mut s, &mut got).unwrap();
    assert!(String::from_utf8_lossy(&got[..n]).starts_with("HTTP/1.1 200"));
    // git is at work now (its output is not read, so it waits on a full pipe).
    assert!(!processes_in(&repo).is_empty(), "git was not running");
    drop(s);
    assert_no_process_left(&repo, 15, "after the client hung up mid-clone");
    let mut srv = srv;
    srv.assert_forgelet_alive("a client hung up mid-clone");
    srv.finish();
}

/// On a site without any user nobody could answer a challenge: hidden repositories are plain
/// 404s, and git says "not found" instead of asking for a password.
#[test]
fn site_without_users_answers_404_not_a_challenge() {
    let site = Site::new("no_users", SiteOptions::default());
    let repo = site.place_fixture("mixed", "alice/secret");
    git_ok(
        &repo,
        &["config", "-f", "config", "forgelet.visibility", "private"],
    );
    let srv = site.start();
    for p in ["/alice/secret.git/info/refs", "/alice/nosuch.git/info/refs"] {
        let r = srv.get(&site.target(p));
        assert_eq!(r.status, 404, "{p}: {}", r.describe());
        assert!(r.header("WWW-Authenticate").is_none());
    }
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/secret.git")])
        .arg(site.dir().join("clone")));
    let text = all_output(&out);
    assert!(
        text.contains("not found") && !text.contains("Username"),
        "{text}"
    );
    srv.finish();
}

/// A clone that outlives [limits] git_deadline has its git stopped, whatever the client does.
#[test]
fn git_past_the_deadline_is_stopped() {
    let site = Site::new("smart_deadline", SiteOptions::default());
    fs::write(
        &site.config,
        // A spool of 1 MiB: past it git waits for its client, as it would with every slow
        // client once the spool budget is spent.
        fs::read_to_string(&site.config).unwrap()
            + "\n[limits]\ngit_deadline = 10\nspool_mib = 1\n",
    )
    .unwrap();
    let repo = site.import_fixture("mixed", "alice/slow");
    add_big_commit(&repo, 40 << 20);
    let srv = site.start();
    let head = git_ok(&repo, &["rev-parse", "HEAD"]);
    let want = format!("want {} side-band-64k ofs-delta\n", head.trim());
    let body = format!("{:04x}{want}00000009done\n", want.len() + 4);
    let target = site.target("/alice/slow.git/git-upload-pack");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", site.port)).unwrap();
    let req = format!(
        "POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-git-upload-pack-request\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // The client stays connected but reads nothing, so git waits once the spool is full.
    std::thread::sleep(Duration::from_secs(2));
    assert!(!processes_in(&repo).is_empty(), "git was not running");
    assert_no_process_left(&repo, 20, "past the 10 s deadline");
    drop(s);
    let mut srv = srv;
    srv.assert_forgelet_alive("a clone hit the deadline");
    srv.finish();
}
