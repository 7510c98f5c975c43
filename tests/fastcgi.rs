//! The gateways: the FastCGI responder under abuse (malformed records, peers that leave
//! mid-request, idle connections over the cap), kept connections and management records; CGI
//! mode answering as FastCGI and nginx do and as `git update-server-info` writes; and nothing
//! logged per request at the default level.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// The FastCGI responder under abuse

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
// CGI mode answers as FastCGI does, and as git does; nothing is logged per request

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
