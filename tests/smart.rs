//! Smart HTTP fetches through real nginx with real git: clones and fetches over protocol v0 and
//! v2, shallow and partial clones, the advertisement and the RPC routes answered as git expects,
//! the fetch request cap, a clone with many refs sending a gzipped request, and a client that
//! hangs up mid-clone, or a clone that outlives the git deadline, leaving no git behind.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use crate::util::*;

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
