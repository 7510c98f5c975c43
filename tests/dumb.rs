//! Dumb HTTP through real nginx: clones of every fixture (empty, loose objects only, packs only,
//! mixed, tags, branches) compared ref for ref with the server and fetched again after the
//! server changes, eight clones at once, the pack and object files served as they are on disk,
//! both sendfile modes (x-accel-redirect and none, under a base path and at the root), byte
//! ranges across FastCGI's record boundary, the routes' statuses and cache headers, and the
//! x-sendfile handoff naming the file inside the repository.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Helpers

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
// Dumb clones through nginx

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

// ---------------------------------------------------------------------------------------------
// Routes, statuses and cache headers

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
// The x-sendfile handoff

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
