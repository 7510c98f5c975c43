//! Push through real nginx with real git (and dulwich): branches, tags, force-pushes and deletes
//! over protocol v0 and v2 clients, a 100+ MB push with chunked encoding, the `0000` probe, a
//! malformed object, who may push and the push size limit, concurrent pushes to one branch, a
//! client killed mid-push. After each, what a user would check: the server's refs equal the
//! pusher's, `git fsck --full` is clean on both sides, and the server's reflog records updates.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::util::*;

const ZERO_OID: &str = "0000000000000000000000000000000000000000";

/// A running site: the server is declared first so it stops before the files are removed.
struct Up {
    srv: Server,
    site: Site,
}

/// A site with the fixture imported as `owner_repo`, users `alice` (owner) and the others
/// named, started.
fn up(test: &str, fixture: &str, owner_repo: &str, limits: &str) -> (Up, PathBuf) {
    let site = Site::new(test, SiteOptions::default());
    if !limits.is_empty() {
        let text = fs::read_to_string(&site.config).unwrap();
        fs::write(&site.config, format!("{text}\n[limits]\n{limits}\n")).unwrap();
    }
    let repo = site.import_fixture(fixture, owner_repo);
    let srv = site.start();
    (Up { srv, site }, repo)
}

/// `http://USER:PASSWORD@127.0.0.1:PORT/git{path}`.
fn auth_url(site: &Site, user: &str, path: &str) -> String {
    format!(
        "http://{user}:{TEST_PASSWORD}@127.0.0.1:{}{}",
        site.port,
        site.target(path)
    )
}

/// Smart git with `protocol.version` set.
fn git_v(dir: &Path, version: &str) -> Command {
    let mut c = smart_git(dir);
    c.args(["-c", &format!("protocol.version={version}")]);
    c
}

/// Runs a command that must succeed; returns its whole output (git talks on stderr).
fn must(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{text}",
        out.status
    );
    text
}

/// Runs a command that must fail; returns its whole output.
fn must_fail(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    let text = all_output(&out);
    assert!(!out.status.success(), "{what} succeeded:\n{text}");
    text
}

/// Branches and tags of a bare repository.
fn server_refs(repo: &Path) -> BTreeMap<String, String> {
    refs_of(repo)
        .into_iter()
        .filter(|(r, _)| r.starts_with("refs/heads/") || r.starts_with("refs/tags/"))
        .collect()
}

/// What a clone believes the server has: its `origin/*` branches and its tags.
fn pusher_view(clone: &Path) -> BTreeMap<String, String> {
    refs_of(clone)
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
        .collect()
}

fn assert_same_refs(repo: &Path, clone: &Path, after: &str) {
    assert_eq!(
        server_refs(repo),
        pusher_view(clone),
        "after {after}: the server's refs (left) differ from the pusher's (right)"
    );
}

fn rev(dir: &Path, what: &str) -> String {
    git_ok(dir, &["rev-parse", "--verify", what])
        .trim()
        .to_string()
}

/// The server's ref, or None.
fn server_ref(repo: &Path, refname: &str) -> Option<String> {
    refs_of(repo).get(refname).cloned()
}

/// The last entry of the server's reflog for `refname`: (old, new).
fn last_reflog(repo: &Path, refname: &str) -> (String, String) {
    let path = repo.join("logs").join(refname);
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no reflog for {refname} on the server ({e})"));
    let last = text.lines().last().unwrap_or_default();
    let mut f = last.split(' ');
    (
        f.next().unwrap_or_default().to_string(),
        f.next().unwrap_or_default().to_string(),
    )
}

/// Writes a file in a work tree and commits it.
fn commit_file(clone: &Path, name: &str, content: &str, msg: &str) -> String {
    fs::write(clone.join(name), content).unwrap();
    git_ok(clone, &["add", name]);
    git_ok(clone, &["commit", "-q", "-m", msg]);
    rev(clone, "HEAD")
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Quarantine directories (`objects/tmp_objdir-incoming-*`) left in a repository, and the bytes
/// of the files in them. Nothing in forgelet runs `git gc`/`prune` yet, so whatever is left
/// stays: data left behind fails the test; empty directories are noted.
fn quarantine_leftovers(repo: &Path) -> (Vec<String>, u64) {
    fn size(p: &Path) -> u64 {
        match fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => fs::read_dir(p)
                .map(|d| d.flatten().map(|e| size(&e.path())).sum())
                .unwrap_or(0),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let dirs: Vec<PathBuf> = fs::read_dir(repo.join("objects"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("tmp_objdir-incoming")
        })
        .map(|e| e.path())
        .collect();
    let bytes = dirs.iter().map(|d| size(d)).sum();
    (
        dirs.iter().map(|d| d.display().to_string()).collect(),
        bytes,
    )
}

/// Fails when a refused or aborted push left data in the repository; notes empty leftovers.
fn assert_no_quarantine_data(repo: &Path, what: &str) {
    let (dirs, bytes) = quarantine_leftovers(repo);
    assert!(
        bytes == 0,
        "{what} left {bytes} bytes in quarantine directories for good: {dirs:?}"
    );
    // git is stopped with SIGTERM (SIGKILL only after a grace period), so it removes its
    // quarantine data itself; an empty folder can remain when index-pack, dying in the same
    // process group, recreates its leading directory after receive-pack removed it.
    if !dirs.is_empty() {
        eprintln!("note: {what} left empty quarantine directories: {dirs:?}");
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn push_branches_tags_force_and_delete_over_v0_and_v2() {
    let (u, repo) = up("push_basic", "mixed", "alice/mixed", "");
    let url = auth_url(&u.site, "alice", "/alice/mixed.git");
    let tmp = u.site.dir().to_path_buf();
    for v in ["0", "2"] {
        let clone = tmp.join(format!("clone-v{v}"));
        must(
            git_v(&tmp, v).arg("clone").arg(&url).arg(&clone),
            &format!("clone v{v}"),
        );
        let push = |args: &[&str], what: &str| -> String {
            let trace = tmp.join(format!("packet-trace-v{v}"));
            let _ = fs::remove_file(&trace);
            let text = must(
                git_v(&clone, v)
                    .env("GIT_TRACE_PACKET", &trace)
                    .arg("push")
                    .args(args),
                &format!("v{v}: {what}"),
            );
            // The client asked for v2; receive-pack answers v0, and the push still works.
            let trace = fs::read_to_string(&trace).unwrap_or_default();
            assert!(
                trace.contains("# service=git-receive-pack"),
                "v{v} {what}: no receive-pack advertisement in the trace:\n{trace}"
            );
            assert_same_refs(&repo, &clone, &format!("v{v}: {what}"));
            text
        };

        // A new branch.
        let branch = format!("feature-v{v}");
        let refname = format!("refs/heads/{branch}");
        git_ok(&clone, &["checkout", "-q", "-b", &branch]);
        let first = commit_file(&clone, "feature.txt", &format!("v{v} 1\n"), "feature 1");
        let second = commit_file(&clone, "feature.txt", &format!("v{v} 2\n"), "feature 2");
        push(&["origin", &branch], "pushing a new branch");
        assert_eq!(
            server_ref(&repo, &refname).as_deref(),
            Some(second.as_str())
        );
        assert_eq!(
            last_reflog(&repo, &refname),
            (ZERO_OID.to_string(), second.clone()),
            "v{v}: the server's reflog does not record the new branch"
        );

        // A fast-forward of an existing branch.
        git_ok(&clone, &["checkout", "-q", "main"]);
        let old_main = rev(&clone, "main");
        let new_main = commit_file(&clone, "main.txt", &format!("v{v}\n"), "on main");
        push(&["origin", "main"], "a fast-forward of main");
        assert_eq!(
            last_reflog(&repo, "refs/heads/main"),
            (old_main, new_main),
            "v{v}: the server's reflog does not record the update of main"
        );

        // Tags: lightweight and annotated.
        git_ok(&clone, &["tag", &format!("light-v{v}"), &first]);
        git_ok(
            &clone,
            &["tag", "-a", "-m", "annotated", &format!("ann-v{v}"), "main"],
        );
        push(&["origin", "--tags"], "pushing tags");
        let ann = format!("refs/tags/ann-v{v}");
        assert_eq!(
            git_ok(&repo, &["cat-file", "-t", &ann]).trim(),
            "tag",
            "the annotated tag arrived as something else"
        );
        assert_eq!(
            server_ref(&repo, &format!("refs/tags/light-v{v}")).as_deref(),
            Some(first.as_str())
        );

        // A non-fast-forward: refused without --force, taken with it.
        git_ok(&clone, &["checkout", "-q", &branch]);
        git_ok(&clone, &["reset", "-q", "--hard", &first]);
        let rewritten = commit_file(&clone, "other.txt", &format!("v{v} other\n"), "rewrite");
        let out = must_fail(
            git_v(&clone, v).args(["push", "origin", &branch]),
            &format!("v{v}: a non-fast-forward push without --force"),
        );
        assert!(out.contains("rejected"), "{out}");
        assert_eq!(
            server_ref(&repo, &refname).as_deref(),
            Some(second.as_str())
        );
        push(&["--force", "origin", &branch], "a force-push");
        assert_eq!(
            server_ref(&repo, &refname).as_deref(),
            Some(rewritten.as_str())
        );
        assert_eq!(
            last_reflog(&repo, &refname),
            (second.clone(), rewritten.clone()),
            "v{v}: the server's reflog does not record the force-push"
        );

        // A delete.
        git_ok(&clone, &["checkout", "-q", "main"]);
        push(&["origin", &format!(":{branch}")], "deleting a branch");
        assert_eq!(server_ref(&repo, &refname), None);
        // Deleting a tag too (dropped locally first, so the views stay comparable).
        git_ok(&clone, &["tag", "-d", &format!("light-v{v}")]);
        push(
            &["origin", &format!(":refs/tags/light-v{v}")],
            "deleting a tag",
        );
        assert_eq!(server_ref(&repo, &format!("refs/tags/light-v{v}")), None);
        assert_fsck(&repo, &format!("the server after the v{v} pushes"));
        assert_fsck(&clone, &format!("the v{v} pusher"));
    }
    // A fresh clone has exactly what the server has, and is sound.
    let fresh = tmp.join("fresh");
    must(
        git_v(&tmp, "2").arg("clone").arg(&url).arg(&fresh),
        "fresh clone",
    );
    assert_same_refs(&repo, &fresh, "a fresh clone");
    assert_fsck(&fresh, "a fresh clone");
    u.srv.finish();
}

/// 110 MB of incompressible data pushed through nginx with chunked encoding.
#[test]
fn push_of_110_mb_through_nginx_uses_chunked_encoding() {
    let site = Site::new("push_big", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/big"]));
    let repo = site.repo_path("alice/big");
    let srv = site.start();
    let tmp = site.dir();
    let work = tmp.join("work");
    git_ok(tmp, &["init", "-q", work.to_str().unwrap()]);
    // One fast-import stream, stored uncompressed: five files of 22 MB each.
    let mut stream = Vec::with_capacity(111 << 20);
    let files = 5;
    let each = 22 << 20;
    for i in 0..files {
        let data = noise(0x9E37_79B9_7F4A_7C15 + i as u64, each);
        stream
            .extend_from_slice(format!("blob\nmark :{}\ndata {}\n", i + 1, data.len()).as_bytes());
        stream.extend_from_slice(&data);
        stream.push(b'\n');
    }
    stream.extend_from_slice(
        b"commit refs/heads/main\nauthor A <a@test.invalid> 1710000000 +0000\n\
          committer A <a@test.invalid> 1710000000 +0000\ndata 4\nbig\n",
    );
    for i in 0..files {
        stream.extend_from_slice(format!("M 100644 :{} data/{i}.bin\n", i + 1).as_bytes());
    }
    stream.push(b'\n');
    let out = run_with_stdin(
        git(&work).args(["-c", "pack.compression=0", "fast-import", "--quiet"]),
        &stream,
    );
    assert!(out.status.success(), "fast-import: {}", all_output(&out));
    drop(stream);
    let head = rev(&work, "refs/heads/main");

    let trace = tmp.join("curl-trace");
    let start = Instant::now();
    must(
        smart_git(&work)
            .env("GIT_TRACE_CURL", &trace)
            .env("GIT_TRACE_CURL_NO_DATA", "1")
            .args(["-c", "http.postBuffer=1048576"])
            .args(["-c", "core.bigFileThreshold=1m"])
            .args(["-c", "pack.compression=0"])
            .arg("push")
            .arg(auth_url(&site, "alice", "/alice/big.git"))
            .arg("main"),
        "the 110 MB push",
    );
    eprintln!("push of 110 MB took {:?}", start.elapsed());
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    // Each POST to git-receive-pack, with the request headers that followed it.
    let mut posts: Vec<Vec<&str>> = Vec::new();
    for line in trace.lines() {
        if let Some((_, h)) = line.split_once("=> Send header: ") {
            if h.starts_with("POST ") {
                posts.push(vec![h]);
            } else if let Some(p) = posts.last_mut() {
                if p.len() < 40 {
                    p.push(h);
                }
            }
        } else if let Some(p) = posts.last_mut() {
            if p.len() < 40 && !p.last().is_some_and(|l| l.is_empty()) {
                p.push("");
            }
        }
    }
    assert!(
        posts.iter().any(|p| p[0].contains("/git-receive-pack ")
            && p.iter()
                .any(|h| h.eq_ignore_ascii_case("Transfer-Encoding: chunked"))),
        "no chunked POST to git-receive-pack in git's trace; POSTs seen: {posts:#?}"
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(head.clone()));
    assert_eq!(server_refs(&repo), {
        let mut m = BTreeMap::new();
        m.insert("refs/heads/main".to_string(), head);
        m
    });
    let start = Instant::now();
    assert_fsck(&repo, "the server after a 110 MB push");
    eprintln!("server fsck took {:?}", start.elapsed());
    srv.finish();
}

/// The `0000` probe git sends before a large push is answered 200, and changes nothing.
#[test]
fn push_probe_gets_200() {
    let (u, repo) = up("push_probe", "mixed", "alice/mixed", "");
    let before = refs_of(&repo);
    let basic = format!(
        "Basic {}",
        base64(format!("alice:{TEST_PASSWORD}").as_bytes())
    );
    let r = u.srv.http_body(
        "POST",
        u.site
            .target("/alice/mixed.git/git-receive-pack")
            .as_bytes(),
        &[
            ("Content-Type", "application/x-git-receive-pack-request"),
            ("Authorization", &basic),
        ],
        b"0000",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(refs_of(&repo), before);
    // Without credentials the probe is asked for them, as git expects.
    let r = u.srv.http_body(
        "POST",
        u.site
            .target("/alice/mixed.git/git-receive-pack")
            .as_bytes(),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        b"0000",
    );
    assert_eq!(r.status, 401, "{}", r.describe());
    u.srv.finish();
}

/// A commit with a broken author line is refused by receive.fsckObjects.
#[test]
fn push_of_a_malformed_object_is_refused() {
    let (u, repo) = up("push_fsck", "mixed", "alice/mixed", "");
    let tmp = u.site.dir().to_path_buf();
    let url = auth_url(&u.site, "alice", "/alice/mixed.git");
    let clone = tmp.join("clone");
    must(smart_git(&tmp).arg("clone").arg(&url).arg(&clone), "clone");
    let before = refs_of(&repo);
    let tree = rev(&clone, "HEAD^{tree}");
    let parent = rev(&clone, "HEAD");
    let body = format!(
        "tree {tree}\nparent {parent}\nauthor no email here 1710000000 +0000\n\
         committer C <c@test.invalid> 1710000000 +0000\n\nbad author\n"
    );
    let out = run_with_stdin(
        git(&clone).args([
            "hash-object",
            "-t",
            "commit",
            "--literally",
            "-w",
            "--stdin",
        ]),
        body.as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let bad = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let text = must_fail(
        smart_git(&clone)
            .arg("push")
            .arg(&url)
            .arg(format!("{bad}:refs/heads/main")),
        "pushing a malformed commit",
    );
    assert!(
        text.contains("remote rejected") || text.contains("unpack"),
        "git does not say the push was refused:\n{text}"
    );
    assert_eq!(refs_of(&repo), before, "the refused push changed refs");
    assert!(
        !run(git(&repo).args(["cat-file", "-e", &bad]))
            .status
            .success(),
        "the refused object is in the server's repository"
    );
    assert_fsck(&repo, "the server after a refused push");
    assert_no_quarantine_data(&repo, "the refused push");
    // The repository still takes a good push.
    let good = commit_file(&clone, "good.txt", "good\n", "good");
    must(
        smart_git(&clone).args(["push", "origin", "main"]),
        "a good push after the refused one",
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(good));
    u.srv.finish();
}

/// Readers get 403 with a message, anonymous pushers a challenge, big pushes 413.
#[test]
fn push_refused_for_readers_anonymous_and_over_the_limit() {
    let (u, repo) = up("push_refused", "mixed", "alice/mixed", "push_mib = 1");
    let site = &u.site;
    let tmp = site.dir().to_path_buf();
    site.ensure_user("bob");
    site.ensure_user("carol");
    let priv_repo = site.import_fixture("branches", "alice/secret");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/secret", "--visibility", "private"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/secret", "bob", "read"]));

    let clone = tmp.join("clone");
    must(
        smart_git(&tmp)
            .arg("clone")
            .arg(auth_url(site, "alice", "/alice/mixed.git"))
            .arg(&clone),
        "clone",
    );
    commit_file(&clone, "new.txt", "new\n", "new");
    let before = refs_of(&repo);

    // carol may read the public repository, not push to it.
    let text = must_fail(
        smart_git(&clone)
            .arg("push")
            .arg(auth_url(site, "carol", "/alice/mixed.git"))
            .arg("main"),
        "a push by a reader of a public repo",
    );
    assert!(
        text.contains("You may read alice/mixed but not push to it") && text.contains("403"),
        "git does not show the reason:\n{text}"
    );
    // bob is a read collaborator of the private one.
    let pclone = tmp.join("pclone");
    must(
        smart_git(&tmp)
            .arg("clone")
            .arg(auth_url(site, "bob", "/alice/secret.git"))
            .arg(&pclone),
        "bob's clone of the private repo",
    );
    let pbefore = refs_of(&priv_repo);
    commit_file(&pclone, "bob.txt", "bob\n", "bob");
    let text = must_fail(
        smart_git(&pclone).args(["push", "origin", "HEAD"]),
        "a push by a read collaborator",
    );
    assert!(
        text.contains("You may read alice/secret but not push to it") && text.contains("403"),
        "git does not show the reason:\n{text}"
    );
    assert_eq!(refs_of(&priv_repo), pbefore);

    // Anonymous: asked for credentials (which git cannot prompt for here).
    let trace = tmp.join("curl-trace-401");
    let text = must_fail(
        smart_git(&clone)
            .env("GIT_TRACE_CURL", &trace)
            .env("GIT_TRACE_CURL_NO_DATA", "1")
            .arg("push")
            .arg(site.url("/alice/mixed.git"))
            .arg("main"),
        "an anonymous push",
    );
    assert!(
        text.contains("could not read Username"),
        "git was not asked for credentials:\n{text}"
    );
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        trace.contains("<= Recv header: HTTP/1.1 401")
            && trace.contains("<= Recv header: WWW-Authenticate: Basic"),
        "the anonymous push was not challenged:\n{trace}"
    );

    // Over [limits] push_mib = 1: 413, and git says why.
    fs::write(clone.join("big.bin"), noise(7, 3 << 20)).unwrap();
    git_ok(&clone, &["add", "big.bin"]);
    git_ok(&clone, &["commit", "-q", "-m", "big"]);
    let big_blob = rev(&clone, "HEAD:big.bin");
    let trace = tmp.join("curl-trace-413");
    let text = must_fail(
        smart_git(&clone)
            .env("GIT_TRACE_CURL", &trace)
            .env("GIT_TRACE_CURL_NO_DATA", "1")
            .arg("push")
            .arg(auth_url(site, "alice", "/alice/mixed.git"))
            .arg("main"),
        "a push over the limit",
    );
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        trace.contains("<= Recv header: HTTP/1.1 413"),
        "the server did not answer 413; git said:\n{text}"
    );
    assert!(
        text.contains("413"),
        "git does not say the push was too large:\n{text}"
    );
    assert_eq!(refs_of(&repo), before, "a refused push changed refs");
    assert!(
        !run(git(&repo).args(["cat-file", "-e", &big_blob]))
            .status
            .success(),
        "the refused push left its blob in the repository"
    );
    assert_fsck(&repo, "the server after refused pushes");
    // The server's message for it, as a client that shows bodies sees it.
    let basic = format!(
        "Basic {}",
        base64(format!("alice:{TEST_PASSWORD}").as_bytes())
    );
    let r = u.srv.http_body(
        "POST",
        site.target("/alice/mixed.git/git-receive-pack").as_bytes(),
        &[
            ("Content-Type", "application/x-git-receive-pack-request"),
            ("Authorization", &basic),
        ],
        &noise(8, (1 << 20) + 100),
    );
    assert_eq!(r.status, 413, "{}", r.describe());
    assert!(
        r.text().contains("larger than the server's limit of 1 MiB"),
        "{}",
        r.describe()
    );
    assert_no_quarantine_data(&repo, "the push over the limit");
    u.srv.finish();
    // git prints only "HTTP 413" for a refused POST (it shows server text for ref discovery
    // alone); the message itself is checked above as other clients see it.
}

/// Two clients push different commits to main at the same moment: one wins.
#[test]
fn concurrent_pushes_to_one_branch_one_wins() {
    let (u, repo) = up("push_race", "mixed", "alice/mixed", "");
    let tmp = u.site.dir().to_path_buf();
    let url = auth_url(&u.site, "alice", "/alice/mixed.git");
    let clones: Vec<PathBuf> = ["a", "b"].iter().map(|n| tmp.join(n)).collect();
    for c in &clones {
        must(smart_git(&tmp).arg("clone").arg(&url).arg(c), "clone");
    }
    let mut wins = [0, 0];
    for round in 0..4 {
        let old = server_ref(&repo, "refs/heads/main").unwrap();
        let mut heads = Vec::new();
        for (i, c) in clones.iter().enumerate() {
            must(smart_git(c).args(["fetch", "-q", "origin"]), "fetch");
            git_ok(c, &["reset", "-q", "--hard", "origin/main"]);
            heads.push(commit_file(
                c,
                &format!("race-{i}.txt"),
                &format!("{round}\n"),
                &format!("client {i} round {round}"),
            ));
        }
        let barrier = Barrier::new(2);
        let outs: Vec<(bool, String)> = std::thread::scope(|s| {
            let hs: Vec<_> = clones
                .iter()
                .map(|c| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let out = run(smart_git(c).args(["push", "origin", "main"]));
                        (out.status.success(), all_output(&out))
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let now = server_ref(&repo, "refs/heads/main").unwrap();
        let report = format!(
            "round {round}: old {old}, a {} , b {}, server {now}\nA: {}\nB: {}",
            heads[0], heads[1], outs[0].1, outs[1].1
        );
        match (outs[0].0, outs[1].0) {
            (true, true) => panic!("both pushes succeeded\n{report}"),
            (true, false) | (false, true) => {
                let w = usize::from(outs[1].0);
                wins[w] += 1;
                assert_eq!(
                    now, heads[w],
                    "the server's ref is not the winner's\n{report}"
                );
                assert!(
                    outs[1 - w].1.contains("rejected"),
                    "the loser does not say it was rejected\n{report}"
                );
            }
            (false, false) => {
                assert!(
                    outs.iter().all(|o| o.1.contains("lock")),
                    "both pushes failed, not for a lock\n{report}"
                );
                assert!(
                    [&old, &heads[0], &heads[1]].contains(&&now),
                    "after two failed pushes the ref is none of the three\n{report}"
                );
            }
        }
        assert_fsck(&repo, &format!("the server after round {round}"));
    }
    eprintln!("concurrent pushes: wins a {} b {}", wins[0], wins[1]);
    u.srv.finish();
}

/// A pushing client killed (SIGKILL, whole process group) mid-push: forgelet's git goes away,
/// the branch is old or new, the repository is sound, and the next push works.
#[test]
fn client_killed_mid_push_leaves_no_git_and_a_sound_repo() {
    let (u, repo) = up("push_kill", "mixed", "alice/mixed", "");
    let tmp = u.site.dir().to_path_buf();
    let url = auth_url(&u.site, "alice", "/alice/mixed.git");
    let clone = tmp.join("clone");
    must(smart_git(&tmp).arg("clone").arg(&url).arg(&clone), "clone");
    let old = rev(&clone, "main");
    add_big_commit(&clone, 40 << 20);
    let new = rev(&clone, "main");

    let log = tmp.join("killed-push.log");
    let mut child = smart_git(&clone)
        .args(["push", "origin", "main"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(fs::File::create(&log).unwrap()))
        .stderr(Stdio::from(fs::File::create(&log).unwrap()))
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut saw_receive_pack = false;
    while started.elapsed() < Duration::from_secs(10) {
        saw_receive_pack = processes_in(&repo)
            .iter()
            .any(|p| p.contains("receive-pack") && !p.contains("--http-backend-info-refs"));
        if saw_receive_pack || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // Let some of the pack flow first.
    std::thread::sleep(Duration::from_millis(if saw_receive_pack {
        150
    } else {
        0
    }));
    let finished_early = child.try_wait().unwrap();
    let pgid = child.id();
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .status();
    let _ = child.wait();
    eprintln!(
        "killed the push after {:?} (receive-pack seen: {saw_receive_pack}, exited before: {finished_early:?})",
        started.elapsed()
    );
    assert!(
        saw_receive_pack && finished_early.is_none(),
        "the push was not caught mid-way (receive-pack seen: {saw_receive_pack}, exited: {finished_early:?}):\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );

    assert_no_process_left(&repo, 15, "15 s after the client was killed");
    let now = server_ref(&repo, "refs/heads/main").unwrap();
    assert!(
        now == old || now == new,
        "main is {now}, neither its old value {old} nor the pushed {new}"
    );
    assert_fsck(&repo, "the server after a killed push");
    assert_no_quarantine_data(&repo, "the killed push");
    let mut srv = u.srv;
    srv.assert_forgelet_alive("a client was killed mid-push");

    // The next push goes through.
    must(
        smart_git(&clone).args(["push", "origin", "main"]),
        "a push after the killed one",
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(new));
    assert_same_refs(&repo, &clone, "the push after the killed one");
    assert_fsck(&repo, "the server after the push that followed");
    srv.finish();
}

/// A Python interpreter that can import dulwich, if there is one.
fn dulwich_python() -> Option<String> {
    ["python3", "/usr/bin/python3"].into_iter().find_map(|py| {
        Command::new(py)
            .args(["-c", "import dulwich"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| py.to_string())
    })
}

const DULWICH_SCRIPT: &str = r#"
import sys
from dulwich import porcelain
op, url, path, user, password = sys.argv[1:6]
if op == "clone":
    porcelain.clone(url, path, username=user, password=password, errstream=sys.stderr.buffer)
else:
    refspecs = [r.encode() for r in sys.argv[6:]]
    porcelain.push(path, url, refspecs=refspecs, username=user, password=password,
                   outstream=sys.stdout.buffer, errstream=sys.stderr.buffer)
"#;

/// A second, independent client: dulwich clones and pushes through nginx.
#[test]
fn dulwich_clones_and_pushes() {
    let Some(py) = dulwich_python() else {
        panic!(
            "dulwich is missing: neither python3 nor /usr/bin/python3 can import it; install \
             python3-dulwich (deploy/test.sh does so as root)"
        );
    };
    let (u, repo) = up("push_dulwich", "tags", "alice/tags", "");
    let tmp = u.site.dir().to_path_buf();
    let home = tmp.join("home");
    fs::create_dir_all(&home).unwrap();
    let url = u.site.url("/alice/tags.git");
    let dulwich = |args: &[&str], what: &str| {
        let mut c = Command::new(&py);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("LC_ALL", "C.UTF-8")
            .arg("-c")
            .arg(DULWICH_SCRIPT)
            .args(args);
        must(&mut c, what)
    };
    let clone = tmp.join("clone");
    let clone_s = clone.to_str().unwrap();
    dulwich(
        &["clone", &url, clone_s, "alice", TEST_PASSWORD],
        "dulwich clone",
    );
    assert_same_refs(&repo, &clone, "a dulwich clone");
    assert_fsck(&clone, "the dulwich clone");
    // The same clone again is answered from the pack cache, and dulwich takes that answer too.
    let hits = || pack_cache_counts(&u.site)[0];
    let before = hits();
    let again = tmp.join("clone-again");
    dulwich(
        &[
            "clone",
            &url,
            again.to_str().unwrap(),
            "alice",
            TEST_PASSWORD,
        ],
        "dulwich clone from the pack cache",
    );
    assert_eq!(
        pack_cache_counts_when(&u.site, |c| c[0] > before)[0],
        before + 1,
        "dulwich's second clone was not a cache hit"
    );
    assert_same_refs(&repo, &again, "a dulwich clone from the pack cache");
    assert_fsck(&again, "the dulwich clone from the pack cache");

    // New commits made with git, pushed by dulwich: a fast-forward and a new branch.
    git_ok(&clone, &["checkout", "-q", "-B", "main", "origin/main"]);
    let main = commit_file(&clone, "dulwich.txt", "one\n", "for dulwich");
    git_ok(&clone, &["checkout", "-q", "-b", "dul"]);
    let dul = commit_file(&clone, "dulwich.txt", "two\n", "dulwich branch");
    git_ok(&clone, &["tag", "-a", "-m", "by dulwich", "dul-tag", "dul"]);
    dulwich(
        &[
            "push",
            &url,
            clone_s,
            "alice",
            TEST_PASSWORD,
            "refs/heads/main:refs/heads/main",
            "refs/heads/dul:refs/heads/dul",
            "refs/tags/dul-tag:refs/tags/dul-tag",
        ],
        "dulwich push",
    );
    assert_eq!(server_ref(&repo, "refs/heads/main"), Some(main));
    assert_eq!(server_ref(&repo, "refs/heads/dul"), Some(dul));
    assert_eq!(
        server_ref(&repo, "refs/tags/dul-tag"),
        Some(rev(&clone, "refs/tags/dul-tag"))
    );
    // The server's tags are exactly the clone's.
    let tags = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.into_iter()
            .filter(|(r, _)| r.starts_with("refs/tags/"))
            .collect()
    };
    assert_eq!(tags(server_refs(&repo)), tags(refs_of(&clone)));
    assert_fsck(&repo, "the server after dulwich's push");

    // A wrong password is refused, and nothing changes.
    let before = refs_of(&repo);
    let mut c = Command::new(&py);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .arg("-c")
        .arg(DULWICH_SCRIPT)
        .args([
            "push",
            &url,
            clone_s,
            "alice",
            "wrong-password",
            "refs/heads/dul:refs/heads/other",
        ]);
    must_fail(&mut c, "dulwich push with a wrong password");
    assert_eq!(refs_of(&repo), before);

    // git reads back what dulwich pushed.
    let fresh = tmp.join("fresh");
    must(
        smart_git(&tmp)
            .arg("clone")
            .arg(auth_url(&u.site, "alice", "/alice/tags.git"))
            .arg(&fresh),
        "git clone after dulwich's push",
    );
    assert_same_refs(&repo, &fresh, "git clone after dulwich's push");
    assert_fsck(&fresh, "git's clone after dulwich's push");
    u.srv.finish();
}
