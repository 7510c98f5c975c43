//! Regression tests for the attacks of the hardening issue, each reproducing one attack as it
//! was found (as an outsider, or as an ordinary account holder) and checking what a user would
//! notice: the status, the page text, the file on disk, the clone.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;

/// A new work tree with `main` checked out.
fn work_tree(site: &Site, name: &str) -> PathBuf {
    let work = site.dir().join(format!("work-{name}"));
    fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    work
}

/// Stages everything and commits it; returns the commit's id.
fn commit_all(work: &Path, message: &str) -> String {
    git_ok(work, &["add", "-A"]);
    git_ok(work, &["commit", "-q", "--allow-empty", "-m", message]);
    git_ok(work, &["rev-parse", "HEAD"]).trim().to_string()
}

/// The `href` of the first link whose text is `text`.
fn href_of(page: &str, text: &str) -> Option<String> {
    let end = page.find(&format!("\">{text}</a>"))?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&amp;", "&"))
}

/// A branch named `q/%2e%2e/%2e%2e/%2e%2e/logout#` made the home page's download link resolve
/// to `/logout`: the ref name went into the link without encoding.
#[test]
fn download_link_of_a_branch_named_like_a_path_stays_in_the_repository() {
    let site = Site::new("hard_reflink", SiteOptions::default());
    let work = work_tree(&site, "reflink");
    fs::write(work.join("a.txt"), "a\n").unwrap();
    commit_all(&work, "first");
    let branch = "q/%2e%2e/%2e%2e/%2e%2e/logout#";
    git_ok(&work, &["branch", "-m", branch]);
    let repo = import_work_tree(&site, &work, "alice/reflink");
    git_ok(
        &repo,
        &["symbolic-ref", "HEAD", &format!("refs/heads/{branch}")],
    );
    let srv = site.start();
    let home = srv.get(&site.target("/alice/reflink"));
    assert_eq!(home.status, 200, "{}", home.describe());
    let text = home.text();
    let href = href_of(&text, ".tar.gz").unwrap_or_else(|| panic!("no .tar.gz link in\n{text}"));
    assert_eq!(
        href,
        site.target("/alice/reflink/archive/q/%252e%252e/%252e%252e/%252e%252e/logout%23.tar.gz")
    );
    // Followed as a browser would (nothing in it is a dot segment or a fragment), it is the
    // snapshot of that branch.
    let r = srv.get(&href);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Type"), Some("application/gzip"));
    assert!(r.body.starts_with(&[0x1f, 0x8b]));
    let zip = href_of(&text, ".zip").unwrap();
    assert_eq!(srv.get(&zip).status, 200);
    srv.finish();
}

/// A `(cookie, token)` pair taken from `GET /login` with no account, sent with a victim's
/// session, changed the victim's repository settings (200): the CSRF token was not bound to
/// the session.
#[test]
fn csrf_pair_planted_from_a_signed_out_page_cannot_change_settings() {
    let site = Site::new("hard_csrf", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let settings = site.target("/alice/proj/settings");
    let description = || fs::read_to_string(repo.join("description")).unwrap();
    let before = description();

    let mut alice = Browser::default();
    sign_in_as(&site, &srv, &mut alice, "alice");
    let session = alice.cookie("forgelet_session").unwrap();

    // The attacker's pair, from the sign-in page, without an account.
    let mut outsider = Browser::default();
    let planted_token = csrf_of(&outsider.get(&srv, &site.target("/-/login")));
    let planted_cookie = outsider.cookie("forgelet_csrf").unwrap();
    let mut forged = Browser {
        cookies: vec![
            ("forgelet_session".into(), session.clone()),
            ("forgelet_csrf".into(), planted_cookie),
        ],
        ..Default::default()
    };
    let r = forged.post(
        &srv,
        &settings,
        &[
            ("csrf", &planted_token),
            ("action", "general"),
            ("description", "pwned"),
            ("visibility", "private"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    assert_eq!(description(), before);

    // Alice's own form, from her session, works.
    let token = csrf_of(&alice.get(&srv, &settings));
    let r = alice.post(
        &srv,
        &settings,
        &[
            ("csrf", &token),
            ("action", "general"),
            ("description", "by alice"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(description(), "by alice\n");

    // Each sign-in is a session of its own: another sign-in of alice gets another cookie, and
    // the first session's token does not fit it.
    let mut again = Browser::default();
    sign_in_as(&site, &srv, &mut again, "alice");
    let second = again.cookie("forgelet_session").unwrap();
    assert_ne!(second, session);
    assert!(
        again.cookie("forgelet_csrf").is_none(),
        "the signed-out CSRF cookie outlived the sign-in"
    );
    let r = again.post(
        &srv,
        &settings,
        &[
            ("csrf", &token),
            ("action", "general"),
            ("description", "replayed"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    assert_eq!(description(), "by alice\n");
    srv.finish();
}

/// The `Set-Cookie` header of a response for cookie `name`.
fn set_cookie<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("Set-Cookie") && v.starts_with(&format!("{name}=")))
        .map(|(_, v)| v.as_str())
}

/// On HTTPS, cookies another host of the domain (or another path) could set are refused:
/// `__Host-` at the site root, `__Secure-` with the base path below it.
#[test]
fn https_cookies_carry_the_host_prefix_at_the_root_and_secure_below_a_path() {
    for (base_path, prefix, path) in [("", "__Host-", "/"), ("/git", "__Secure-", "/git")] {
        let site = Site::new(
            "hard_prefix",
            SiteOptions {
                base_path,
                https: true,
                ..Default::default()
            },
        );
        site.import_fixture("mixed", "alice/proj");
        ok(site
            .forgelet()
            .args(["repo", "set", "alice/proj", "--visibility", "private"]));
        let srv = site.start();
        let mut b = Browser::default();
        let form = b.get(&srv, &site.target("/-/login"));
        let csrf_name = format!("{prefix}forgelet_csrf");
        let c = set_cookie(&form, &csrf_name).unwrap_or_else(|| panic!("{}", form.describe()));
        assert!(
            c.contains(&format!("; Path={path};")) && c.contains("; Secure"),
            "{c}"
        );
        let r = b.post(
            &srv,
            &site.target("/-/login"),
            &[
                ("csrf", &csrf_of(&form)),
                ("user", "alice"),
                ("password", TEST_PASSWORD),
            ],
        );
        assert_eq!(r.status, 303, "{}", r.describe());
        let session_name = format!("{prefix}forgelet_session");
        let s = set_cookie(&r, &session_name).unwrap_or_else(|| panic!("{}", r.describe()));
        assert!(
            s.contains(&format!("; Path={path};")) && s.contains("; Secure"),
            "{s}"
        );
        assert_eq!(b.get(&srv, &site.target("/alice/proj")).status, 200);
        // The same value under the name without the prefix is nobody's session.
        let value = b.cookie(&session_name).unwrap();
        let mut plain = Browser {
            cookies: vec![("forgelet_session".into(), value)],
            ..Default::default()
        };
        assert_eq!(plain.get(&srv, &site.target("/alice/proj")).status, 404);
        srv.finish();
    }
}

/// About 25 wrong passwords for alice from different addresses, then one every few seconds,
/// kept alice's correct password at 429 on the web and for git.
#[test]
fn strangers_guessing_from_many_addresses_do_not_lock_alice_out() {
    let site = Site::new("hard_lockout", SiteOptions::default());
    site.import_fixture("mixed", "alice/hidden");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/hidden", "--visibility", "private"]));
    let srv = site.start();
    let clone_url = |password: &str| {
        format!(
            "http://alice:{password}@127.0.0.1:{}{}",
            srv.port,
            site.target("/alice/hidden.git")
        )
    };
    // Alice has used the site before: in her browser, and with git from her address.
    let mut browser = Browser::default();
    sign_in_as(&site, &srv, &mut browser, "alice");
    git_ok(site.dir(), &["ls-remote", &clone_url(TEST_PASSWORD)]);
    // Her password changes (so nothing below is answered from the memory of a recent success).
    let new_password = "a-new-password-2";
    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "passwd", "alice", "--password-stdin"]),
        format!("{new_password}\n").as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));

    // Strangers guess from 25 addresses, then keep at it.
    let guess = |from: String| {
        let mut b = Browser {
            from: Some(from),
            ..Default::default()
        };
        let form = b.get(&srv, &site.target("/-/login"));
        b.post(
            &srv,
            &site.target("/-/login"),
            &[
                ("csrf", &csrf_of(&form)),
                ("user", "alice"),
                ("password", "wrong-guess"),
            ],
        )
        .status
    };
    let statuses: Vec<u16> = (2..40).map(|i| guess(format!("127.0.0.{i}"))).collect();
    assert!(
        statuses.contains(&429),
        "the per-user limit never applied: {statuses:?}"
    );

    // Someone new, even with the right password, is still held back...
    let mut stranger = Browser {
        from: Some("127.0.0.77".into()),
        ..Default::default()
    };
    let form = stranger.get(&srv, &site.target("/-/login"));
    let r = stranger.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf_of(&form)),
            ("user", "alice"),
            ("password", new_password),
        ],
    );
    assert_eq!(r.status, 429, "{}", r.describe());

    // ...but alice gets in: her browser (known by its cookie) from a new address, a new
    // browser from her known address, and git from her address.
    browser.cookies.retain(|(k, _)| k == "forgelet_device");
    browser.from = Some("127.0.0.78".into());
    let form = browser.get(&srv, &site.target("/-/login"));
    let r = browser.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf_of(&form)),
            ("user", "alice"),
            ("password", new_password),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    let mut fresh = Browser::default();
    let form = fresh.get(&srv, &site.target("/-/login"));
    let r = fresh.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf_of(&form)),
            ("user", "alice"),
            ("password", new_password),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    let refs = git_ok(site.dir(), &["ls-remote", &clone_url(new_password)]);
    assert!(refs.contains("refs/heads/"), "{refs}");
    srv.finish();
}

/// Adding a collaborator told any signed-in user whether a name exists, while the owner page
/// hid it. The policy now: user names are known to everyone signed in, and to nobody else.
#[test]
fn user_names_are_known_to_signed_in_users_only() {
    let site = Site::new("hard_names", SiteOptions::default());
    site.import_fixture("mixed", "alice/hidden");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/hidden", "--visibility", "private"]));
    site.import_fixture("mixed", "mallory/proj");
    let srv = site.start();

    // Signed out: a user with nothing public and no user at all look the same.
    let mut anon = Browser::default();
    let a = anon.get(&srv, &site.target("/alice"));
    let n = anon.get(&srv, &site.target("/nobody"));
    assert_eq!((a.status, n.status), (404, 404));
    assert_eq!(
        a.text().replace("alice", "NAME"),
        n.text().replace("nobody", "NAME")
    );

    // Signed in: alice has a page; "nobody" does not exist.
    let mut mallory = Browser::default();
    sign_in_as(&site, &srv, &mut mallory, "mallory");
    let a = mallory.get(&srv, &site.target("/alice"));
    assert_eq!(a.status, 200, "{}", a.describe());
    assert!(a.text().contains("alice has no repositories you can see"));
    assert!(!a.text().contains("alice/hidden"));
    assert_eq!(mallory.get(&srv, &site.target("/nobody")).status, 404);

    // And the collaborator form says the same.
    let settings = site.target("/mallory/proj/settings");
    let token = csrf_of(&mallory.get(&srv, &settings));
    let add = |b: &mut Browser, user: &str| {
        b.post(
            &srv,
            &settings,
            &[
                ("csrf", &token),
                ("action", "add_collaborator"),
                ("user", user),
                ("perm", "read"),
            ],
        )
    };
    let r = add(&mut mallory, "nobody");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("There is no user named"), "{}", r.text());
    let r = add(&mut mallory, "alice");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("alice may now read."));
    srv.finish();
}

/// Sends `request` from `source` on a socket with a tiny receive buffer, reads the answer's
/// headers and stops reading; the socket stays open. The status line's code.
fn stall(port: u16, source: &str, request: &[u8]) -> (std::net::TcpStream, u16) {
    use std::io::{Read, Write};
    let mut s = tcp_from_with(source, port, Some(4096));
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => panic!(
                "from {source}: no complete headers: {:?}",
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let status = String::from_utf8_lossy(&head)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (s, status)
}

/// A protocol v2 fetch of `want`, as git's client posts it.
fn v2_fetch_request(site: &Site, path: &str, want: &str) -> Vec<u8> {
    v2_fetch_request_having(site, path, want, "")
}

/// The same with `have` lines (of objects the server need not have): each `have` makes another
/// request, answered by git of its own, never by the pack cache's answer to another.
fn v2_fetch_request_having(site: &Site, path: &str, want: &str, have: &str) -> Vec<u8> {
    let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
    let haves = if have.is_empty() {
        String::new()
    } else {
        pkt(&format!("have {have}\n"))
    };
    let body = format!(
        "{}0001{}{}{haves}{}0000",
        pkt("command=fetch\n"),
        pkt("ofs-delta\n"),
        pkt(&format!("want {want}\n")),
        pkt("done\n")
    );
    format!(
        "POST {} HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n\
         Content-Type: application/x-git-upload-pack-request\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        site.target(path),
        body.len()
    )
    .into_bytes()
}

/// Four anonymous clients that posted a fetch, read the headers and stopped reading made every
/// clone, fetch, push and ls-remote on the site wait more than a minute; 37 made the next ones
/// get 503; two stalled snapshot downloads made every other snapshot 503. Now git finishes into
/// a spool and gives its slot back: 40 such clients from 40 addresses, and two stalled
/// snapshots, leave git to everyone else.
#[test]
fn clients_that_stop_reading_do_not_starve_git() {
    let site = Site::new("hard_stall", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/big");
    add_big_commit(&repo, 12 << 20);
    let srv = site.start();
    let head = git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let request = v2_fetch_request(&site, "/alice/big.git/git-upload-pack", &head);
    let mut stalled = Vec::new();
    for i in 2..=41 {
        let (s, status) = stall(srv.port, &format!("127.0.0.{i}"), &request);
        assert_eq!(status, 200, "stalled reader {i}");
        stalled.push(s);
    }
    let snapshot = format!(
        "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        site.target("/alice/big/archive/main.tar.gz")
    );
    for i in [50, 51] {
        let (s, status) = stall(srv.port, &format!("127.0.0.{i}"), snapshot.as_bytes());
        assert_eq!(status, 200, "stalled snapshot {i}");
        stalled.push(s);
    }

    // Meanwhile, from 127.0.0.1: a clone, a push and an ls-remote, each in seconds.
    let timed = |what: &str, cmd: &mut std::process::Command| {
        let start = std::time::Instant::now();
        let out = run(cmd);
        assert!(out.status.success(), "{what}: {}", all_output(&out));
        let took = start.elapsed();
        assert!(
            took < std::time::Duration::from_secs(30),
            "{what} took {took:?} while others stalled"
        );
    };
    let url = format!(
        "http://127.0.0.1:{}{}",
        srv.port,
        site.target("/alice/big.git")
    );
    let push_url = format!(
        "http://alice:{TEST_PASSWORD}@127.0.0.1:{}{}",
        srv.port,
        site.target("/alice/big.git")
    );
    let clone = site.dir().join("clone");
    timed(
        "clone",
        smart_git(site.dir())
            .args(["-c", "protocol.version=2", "clone", "-q", &url])
            .arg(&clone),
    );
    assert_eq!(git_ok(&clone, &["rev-parse", "HEAD"]).trim(), head);
    git_ok(&clone, &["fsck", "--no-progress"]);
    fs::write(clone.join("new.txt"), "pushed while others stalled\n").unwrap();
    commit_all(&clone, "pushed");
    timed(
        "push",
        smart_git(&clone).args(["push", "-q", &push_url, "HEAD:refs/heads/more"]),
    );
    timed(
        "ls-remote",
        smart_git(site.dir()).args(["-c", "protocol.version=2", "ls-remote", &url]),
    );
    assert!(git_ok(&repo, &["rev-parse", "refs/heads/more"]).len() >= 40);
    // And a third snapshot is made.
    let r = srv.get(&site.target("/alice/big/archive/main.tar.gz"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.body.len() > 12 << 20);
    drop(stalled);
    let mut srv = srv;
    srv.assert_forgelet_alive("stalled clients");
}

/// `GET target` through nginx, reading the body without keeping it: the status, the headers'
/// text, the number of body bytes and whether they were all zero. (Chunked bodies are counted
/// with their framing; the callers here get a Content-Length.)
fn get_counting(port: u16, target: &str) -> (u16, String, u64, bool) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut head = Vec::new();
    let mut body = 0u64;
    let mut zeros = true;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if !head.ends_with(b"\r\n\r\n") {
            let mut used = 0;
            while used < chunk.len() && !head.ends_with(b"\r\n\r\n") {
                head.push(chunk[used]);
                used += 1;
            }
            chunk = &chunk[used..];
        }
        body += chunk.len() as u64;
        zeros &= chunk.iter().all(|&b| b == 0);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head, body, zeros)
}

/// A work tree with 120 small files and a README.md of `readme_bytes` zero bytes (a sparse
/// file: nothing is written, git streams it into a pack of about a megabyte).
fn repo_with_zero_readme(site: &Site, owner_repo: &str, readme_bytes: u64) -> PathBuf {
    let work = work_tree(site, &owner_repo.replace('/', "-"));
    for i in 0..120 {
        fs::write(work.join(format!("file{i:03}.txt")), format!("file {i}\n")).unwrap();
    }
    fs::File::create(work.join("README.md"))
        .unwrap()
        .set_len(readme_bytes)
        .unwrap();
    commit_all(&work, "a README of zeros");
    import_work_tree(site, &work, owner_repo)
}

/// A 1 GiB README.md of zeros, pushed in a pack of about 1 MB, made one anonymous view of the
/// repository's home cost 4.2 s and 1 GB of forgelet's memory; four views at once (home, blob,
/// raw, tree) 4.4 GB; raw answered 413 after reading it all. Now sizes come from the object
/// header: pages say "too large" without reading the file, raw streams it through git, and a
/// snapshot over the limit is refused before it starts.
#[test]
fn a_gigabyte_readme_costs_a_page_only_its_header() {
    let site = Site::new(
        "hard_blob",
        SiteOptions {
            extra: "[limits]\narchive_mib = 512\n",
            ..Default::default()
        },
    );
    let gib: u64 = 1 << 30;
    repo_with_zero_readme(&site, "mallory/big", gib);
    let srv = site.start();
    let page = |path: &str| srv.get(&site.target(&format!("/mallory/big{path}")));

    let home = page("");
    assert_eq!(home.status, 200, "{}", home.describe());
    assert!(
        home.text()
            .contains("This README is too large to show here (1024.0 MiB)"),
        "{}",
        home.text()
    );
    let blob = page("/blob/main/README.md");
    assert_eq!(blob.status, 200);
    assert!(blob
        .text()
        .contains("This file is too large to show here (1024.0 MiB)"));
    let tree = page("/tree/main");
    assert!(tree.status == 200 && tree.text().contains("1024.0 MiB"));

    // Four views at once, raw among them: raw sends the whole file, streamed.
    let raw_target = site.target("/mallory/big/raw/main/README.md");
    let (raw, others) = std::thread::scope(|s| {
        let raw = s.spawn(|| get_counting(srv.port, &raw_target));
        let others: Vec<_> = ["", "/blob/main/README.md", "/tree/main"]
            .into_iter()
            .map(|p| s.spawn(move || page(p).status))
            .collect();
        let others: Vec<u16> = others.into_iter().map(|h| h.join().unwrap()).collect();
        (raw.join().unwrap(), others)
    });
    assert_eq!(others, [200, 200, 200]);
    let (status, head, bytes, zeros) = raw;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("Content-Length: 1073741824"), "{head}");
    assert_eq!(bytes, gib);
    assert!(zeros);
    // The snapshot would hold the gigabyte: refused before git starts.
    let r = page("/archive/main.tar.gz");
    assert_eq!(r.status, 413, "{}", r.describe());
    // An error page in the site's layout, like every error of a link on a page.
    let text = r.text();
    assert!(
        text.contains("This snapshot would be larger than the server")
            && text.contains("limit of 512 MiB")
            && text.contains("<html"),
        "{text}"
    );
    let peak = srv.forgelet_peak_mib();
    assert!(
        peak < 200,
        "forgelet's memory rose to {peak} MiB for views of a 1 GiB file"
    );
    srv.finish();
}

/// A commit changing one line of a 60 MB text file (pushed as about 60 KB) cost 7.5 s and 3.6
/// GB per anonymous view. Now a file over the page's limit is "too large" and neither side is
/// read.
#[test]
fn a_one_line_change_in_a_60_mb_file_is_too_large_to_show() {
    let site = Site::new("hard_diff", SiteOptions::default());
    let work = work_tree(&site, "diff");
    let line = "All work and no play makes Jack a dull boy, every day.\n";
    let lines = 60_000_000 / line.len();
    fs::write(work.join("big.txt"), line.repeat(lines)).unwrap();
    fs::write(work.join("small.txt"), "one\n").unwrap();
    commit_all(&work, "big");
    let mut text = line.repeat(lines);
    text.replace_range(..line.len(), "The first line changed.\n");
    fs::write(work.join("big.txt"), text).unwrap();
    fs::write(work.join("small.txt"), "one\ntwo\n").unwrap();
    let id = commit_all(&work, "one line");
    import_work_tree(&site, &work, "mallory/diff");
    let srv = site.start();
    let target = site.target(&format!("/mallory/diff/commit/{id}"));
    let pages: Vec<Response> = std::thread::scope(|s| {
        let views: Vec<_> = (0..2).map(|_| s.spawn(|| srv.get(&target))).collect();
        views.into_iter().map(|v| v.join().unwrap()).collect()
    });
    for p in pages {
        assert_eq!(p.status, 200, "{}", p.describe());
        let t = p.text();
        assert!(t.contains("This file is too large to show here"), "{t}");
        // The other file of the commit is shown as usual.
        assert!(t.contains("small.txt") && t.contains("+two"), "{t}");
        assert!(t.len() < 64 << 10);
    }
    let peak = srv.forgelet_peak_mib();
    assert!(
        peak < 200,
        "forgelet's memory rose to {peak} MiB for a diff of a 60 MB file"
    );
    srv.finish();
}

/// A raw file git keeps as a delta must be rebuilt whole in memory to be sent; past
/// `raw_delta_mib` it is refused with 413 and a message, while one stored whole streams at any
/// size.
#[test]
fn a_raw_file_stored_as_a_large_delta_is_refused_with_a_reason() {
    let site = Site::new(
        "hard_rawdelta",
        SiteOptions {
            extra: "[limits]\nraw_delta_mib = 1\n",
            ..Default::default()
        },
    );
    let work = work_tree(&site, "rawdelta");
    let first = noise(7, 3 << 20);
    fs::write(work.join("a.bin"), &first).unwrap();
    commit_all(&work, "a");
    let mut second = first.clone();
    second[100..200].copy_from_slice(&[7u8; 100]);
    fs::write(work.join("b.bin"), &second).unwrap();
    commit_all(&work, "b");
    let repo = import_work_tree(&site, &work, "alice/rawdelta");
    git_ok(&repo, &["repack", "-adfq"]);
    let stored = git_ok(
        &repo,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(deltabase)",
        ],
    );
    let blob_a = git_ok(&repo, &["rev-parse", "main:a.bin"])
        .trim()
        .to_string();
    let is_delta = |id: &str| {
        stored
            .lines()
            .find(|l| l.starts_with(id))
            .is_some_and(|l| !l.ends_with(&"0".repeat(40)))
    };
    let blob_b = git_ok(&repo, &["rev-parse", "main:b.bin"])
        .trim()
        .to_string();
    assert!(
        is_delta(&blob_a) != is_delta(&blob_b),
        "repack made neither (or both) a delta:\n{stored}"
    );
    let (delta_name, whole_name, whole) = if is_delta(&blob_a) {
        ("a.bin", "b.bin", &second)
    } else {
        ("b.bin", "a.bin", &first)
    };
    let srv = site.start();
    let r = srv.get(&site.target(&format!("/alice/rawdelta/raw/main/{delta_name}")));
    assert_eq!(r.status, 413, "{}", r.describe());
    assert!(
        r.text()
            .contains("stored compressed against another version"),
        "{}",
        r.text()
    );
    let r = srv.get(&site.target(&format!("/alice/rawdelta/raw/main/{whole_name}")));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));
    assert_eq!(&r.body, whole);
    srv.finish();
}

/// The nginx snippet allowed 1 GB on every forgelet URL, so a 300 MB POST to `/login` was
/// spooled to disk before forgelet refused it. Bodies are now capped per route where they
/// arrive; a fetch request of a few megabytes still goes through.
#[test]
fn a_large_post_to_a_page_is_refused_before_it_is_spooled() {
    use std::io::{Read, Write};
    let site = Site::new("hard_body", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        s,
        "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 314572800\r\nConnection: close\r\n\r\n",
        site.target("/-/login")
    )
    .unwrap();
    let _ = s.write_all(&vec![b'a'; 64 << 10]);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let spooled: Vec<_> = fs::read_dir(site.dir().join("nginx/temp/body"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(spooled.is_empty(), "nginx spooled {spooled:?}");

    // A fetch request of 2 MB (a clone that says it has many commits) is let through.
    let head = git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
    let mut body = pkt(&format!("want {head} ofs-delta\n")) + "0000";
    for i in 0..45_000u32 {
        body += &pkt(&format!("have {:040x}\n", u128::from(i) * 7919 + 1));
    }
    body += &pkt("done\n");
    assert!(body.len() > 2 << 20);
    let r = srv.http_body(
        "POST",
        site.target("/alice/proj.git/git-upload-pack").as_bytes(),
        &[("Content-Type", "application/x-git-upload-pack-request")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(contains(&r.body, b"PACK"), "{}", r.describe());
    // (nginx logs its 413 as "client intended to send too large body", so no finish().)
    let mut srv = srv;
    srv.assert_forgelet_alive("a large POST");
}

/// 520 FastCGI connections that stopped halfway through their PARAMS blocked the socket for
/// 300 s. Now such a connection is closed after 5 s, and at the connection cap one that is a
/// second late makes room for a new one.
#[test]
fn half_open_fastcgi_connections_cannot_block_the_socket() {
    use std::io::{Read, Write};
    let site = Site::new("hard_params", SiteOptions::default());
    site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let record = fcgi_record(FCGI_PARAMS, 1, &[0u8; 100]);
    let mut stuck = Vec::new();
    for _ in 0..520 {
        let mut c = fcgi_connect(&srv.socket);
        c.write_all(&fcgi_begin(1, false)).unwrap();
        c.write_all(&record[..20]).unwrap();
        stuck.push(c);
    }
    let start = std::time::Instant::now();
    let r = srv.get(&site.target("/"));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "a page took {:?} behind half-open connections",
        start.elapsed()
    );
    // And forgelet lets them all go within seconds.
    for (i, c) in stuck.iter_mut().enumerate() {
        c.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        let got = c.read(&mut buf);
        let closed = matches!(got, Ok(0))
            || matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset);
        assert!(
            closed,
            "half-open connection {i} was kept ({got:?} after {:?})",
            start.elapsed()
        );
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(30),
        "the half-open connections were let go after {:?}",
        start.elapsed()
    );
    srv.finish();
}

/// `filter sparse:oid=<a 60 MB blob>` from an anonymous client cost 16 s and 2.2 GB in the git
/// child per request. Only the filters partial clone needs are allowed now (and git runs under
/// a memory limit); a malformed fetch request is a 400, logged at most once a minute, not a 500
/// with an error line each.
#[test]
fn git_takes_only_partial_clone_filters_and_refuses_garbage_quietly() {
    let site = Site::new("hard_filter", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/proj");
    add_big_commit(&repo, 60 << 20);
    let srv = site.start();
    let url = format!(
        "http://127.0.0.1:{}{}",
        srv.port,
        site.target("/alice/proj.git")
    );
    let blob = git_ok(&repo, &["rev-parse", "main:big.bin"])
        .trim()
        .to_string();
    let clone = |filter: &str, into: &str| {
        run(smart_git(site.dir())
            .args(["-c", "protocol.version=2", "clone", "-q", "--bare"])
            .arg(format!("--filter={filter}"))
            .arg(&url)
            .arg(site.dir().join(into)))
    };
    let out = clone(&format!("sparse:oid={blob}"), "sparse");
    assert!(!out.status.success(), "a sparse:oid clone was served");
    let text = all_output(&out);
    assert!(text.contains("filter 'sparse:oid' not supported"), "{text}");
    for (filter, into) in [
        ("blob:none", "none"),
        ("blob:limit=1k", "limit"),
        ("tree:0", "tree"),
    ] {
        let out = clone(filter, into);
        assert!(out.status.success(), "{filter}: {}", all_output(&out));
    }

    for _ in 0..20 {
        let r = srv.http_body(
            "POST",
            site.target("/alice/proj.git/git-upload-pack").as_bytes(),
            &[("Content-Type", "application/x-git-upload-pack-request")],
            b"this is not a pkt-line",
        );
        assert_eq!(r.status, 400, "{}", r.describe());
        assert!(r.text().starts_with("Bad request: "), "{}", r.text());
    }
    let log = srv.forgelet_stderr();
    let lines = log
        .lines()
        .filter(|l| l.contains("refused a fetch request"))
        .count();
    assert_eq!(lines, 1, "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    srv.finish();
}

/// The home page of a repository with 12,001 refs answered 9 requests a second: every ref was in
/// its branch selector, and every branch's commit was read. Now the selector shows a few with
/// the count and a link, the branches and tags pages show fifty at a time, and the refs are
/// read once per change (the dumb `info/refs` too).
#[test]
fn a_repository_with_many_refs_shows_them_a_page_at_a_time() {
    let site = Site::new("hard_refs", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/refs");
    let head = git_ok(&repo, &["rev-parse", "main"]).trim().to_string();
    let before_branches = git_ok(&repo, &["for-each-ref", "refs/heads"])
        .lines()
        .count();
    let before_tags = git_ok(&repo, &["for-each-ref", "refs/tags"])
        .lines()
        .count();
    let mut updates = String::new();
    for i in 0..250 {
        updates += &format!("create refs/heads/many/b{i:03} {head}\n");
        updates += &format!("create refs/tags/t{i:03} {head}\n");
    }
    let out = run_with_stdin(
        git(&repo).args(["update-ref", "--stdin"]),
        updates.as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    git_ok(&repo, &["pack-refs", "--all"]);
    let branches = before_branches + 250;
    let tags = before_tags + 250;
    let srv = site.start();

    let home = srv.get(&site.target("/alice/refs"));
    assert_eq!(home.status, 200);
    let t = home.text();
    assert!(t.contains(&format!("All {branches} branches")), "{t}");
    assert!(t.contains(&format!("All {tags} tags")), "{t}");
    let listed = t.matches("/alice/refs/tree/many/b").count();
    assert!(listed <= 10, "the selector lists {listed} branches");

    let mut seen = std::collections::BTreeSet::new();
    let mut page = 1;
    loop {
        let r = srv.get(&site.target(&format!("/alice/refs/branches?page={page}")));
        if r.status == 404 {
            break;
        }
        assert_eq!(r.status, 200, "{}", r.describe());
        let t = r.text();
        let rows = t.matches("<li><a href=").count();
        assert!(rows <= 50, "page {page} has {rows} rows");
        for name in t.split("/alice/refs/tree/").skip(1) {
            seen.insert(name.split('"').next().unwrap().to_string());
        }
        assert_eq!(
            t.contains("Older &rarr;"),
            page * 50 < branches,
            "page {page}"
        );
        page += 1;
        assert!(page < 10);
    }
    assert_eq!(seen.len(), branches);
    assert_eq!(page - 1, branches.div_ceil(50));
    let r = srv.get(&site.target("/alice/refs/tags?page=3"));
    assert_eq!(r.status, 200);
    assert!(r
        .text()
        .contains(&format!("Tags <span class=\"muted\">({tags})</span>")));

    // The dumb ref list is git's own.
    let dumb = srv.get(&site.target("/alice/refs.git/info/refs"));
    assert_eq!(dumb.status, 200);
    let copy = site.dir().join("copy.git");
    git_ok(
        site.dir(),
        &[
            "clone",
            "-q",
            "--mirror",
            repo.to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
    );
    git_ok(&copy, &["update-server-info"]);
    assert_eq!(
        dumb.text(),
        fs::read_to_string(copy.join("info/refs")).unwrap()
    );
    // nginx sends it from a file forgelet keeps in the repository, reachable by no URL of its
    // own: only through forgelet's answer.
    let kept: Vec<String> = fs::read_dir(repo.join("forgelet-cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    for target in [
        site.target(&format!("/alice/refs.git/forgelet-cache/{}", kept[0])),
        format!("/.forgelet-repos/alice/refs.git/forgelet-cache/{}", kept[0]),
    ] {
        assert_eq!(srv.get(&target).status, 404, "{target}");
    }
    srv.finish();
}

/// The statuses of reading object `id` (a commit, and `file` in it) by every route that takes
/// an id: the commit page, raw, a protocol v2 `want`, and the dumb protocol's loose object
/// (for `blob`). The v2 answer counts as read when it carries a pack.
fn read_by_id(
    srv: &Server,
    site: &Site,
    repo: &str,
    id: &str,
    file: &str,
    blob: &str,
) -> [bool; 4] {
    let commit = srv.get(&site.target(&format!("/{repo}/commit/{id}")));
    let raw = srv.get(&site.target(&format!("/{repo}/raw/{id}/{file}")));
    let v2 = srv.http_body(
        "POST",
        site.target(&format!("/{repo}.git/git-upload-pack"))
            .as_bytes(),
        &[
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Git-Protocol", "version=2"),
        ],
        &{
            let pkt = |s: &str| format!("{:04x}{s}", s.len() + 4);
            format!(
                "{}0001{}{}0000",
                pkt("command=fetch\n"),
                pkt(&format!("want {id}\n")),
                pkt("done\n")
            )
            .into_bytes()
        },
    );
    let loose = srv.get(&site.target(&format!(
        "/{repo}.git/objects/{}/{}",
        &blob[..2],
        &blob[2..]
    )));
    [
        commit.status == 200,
        raw.status == 200,
        v2.status == 200 && contains(&v2.body, b"PACK"),
        loose.status == 200,
    ]
}

/// Objects force-pushed away stayed readable by id (`commit/`, `raw/`, a v2 `want`, a dumb loose
/// object) with no way to remove them. `forgelet repo purge`, and the button on the settings
/// page, drop them for good, with pushes held off meanwhile.
#[test]
fn a_secret_force_pushed_away_is_gone_after_a_purge() {
    let site = Site::new("hard_purge", SiteOptions::default());
    site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let url = format!(
        "http://alice:{TEST_PASSWORD}@127.0.0.1:{}{}",
        srv.port,
        site.target("/alice/proj.git")
    );
    let work = site.dir().join("work");
    ok(smart_git(site.dir()).args(["clone", "-q", &url]).arg(&work));
    let push_secret = |text: &str| -> (String, String) {
        fs::write(work.join("secret.txt"), text).unwrap();
        let id = commit_all(&work, "oops");
        let blob = git_ok(&work, &["rev-parse", "HEAD:secret.txt"])
            .trim()
            .to_string();
        ok(smart_git(&work).args(["push", "-q", &url, "HEAD:main"]));
        git_ok(&work, &["reset", "-q", "--hard", "HEAD~1"]);
        ok(smart_git(&work).args(["push", "-q", "--force", &url, "HEAD:main"]));
        (id, blob)
    };

    let (id, blob) = push_secret("password=hunter2\n");
    assert_eq!(
        read_by_id(&srv, &site, "alice/proj", &id, "secret.txt", &blob),
        [true; 4],
        "before a purge, the secret is readable by id on every route"
    );
    let out = ok(site.forgelet().args(["repo", "purge", "alice/proj"]));
    assert!(
        out.contains("alice/proj: pruning the rest") && out.contains("alice/proj: done"),
        "{out}"
    );
    assert_eq!(
        read_by_id(&srv, &site, "alice/proj", &id, "secret.txt", &blob),
        [false; 4],
        "after a purge, the secret is gone from every route"
    );
    // What the branches hold is whole.
    let fresh = site.dir().join("fresh");
    ok(smart_git(site.dir())
        .args(["clone", "-q", &url])
        .arg(&fresh));
    git_ok(&fresh, &["fsck", "--no-progress"]);
    assert_eq!(
        git_ok(&fresh, &["rev-parse", "HEAD"]),
        git_ok(&work, &["rev-parse", "HEAD"])
    );

    // The same from the settings page, which shows the purge's progress until it is done.
    let (id, blob) = push_secret("token=abc\n");
    let mut alice = Browser::default();
    sign_in_as(&site, &srv, &mut alice, "alice");
    let settings = site.target("/alice/proj/settings");
    let token = csrf_of(&alice.get(&srv, &settings));
    let r = alice.post(&srv, &settings, &[("csrf", &token), ("action", "purge")]);
    // Answered by a redirect to the page, so reloading it does not start another purge.
    assert_eq!(r.status, 303, "{}", r.describe());
    assert_eq!(
        r.header("Location"),
        Some(format!("{settings}?purge").as_str())
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let page = alice.get(&srv, &format!("{settings}?purge")).text();
        if page.contains("<p class=\"box notice\" role=\"status\">Last purged at") {
            break;
        }
        assert!(!page.contains("failed"), "{page}");
        assert!(
            std::time::Instant::now() < until,
            "the purge never finished:\n{page}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        read_by_id(&srv, &site, "alice/proj", &id, "secret.txt", &blob),
        [false; 4]
    );

    // While a purge runs, the settings page says so at its top and reloads itself (to the
    // page, not to a fragment, which a browser would only scroll to), and a push is refused
    // with a message git shows.
    let repo = site.repo_path("alice/proj");
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo.join("forgelet-purge.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&held), libc::LOCK_EX) },
        0
    );
    fs::write(
        repo.join("forgelet-maintenance.status"),
        "running\n1700000000\nrepacking what is reachable\n",
    )
    .unwrap();
    let page = alice.get(&srv, &settings);
    assert!(
        page.text()
            .contains("is running: repacking what is reachable. This page reloads itself"),
        "{}",
        page.text()
    );
    assert_eq!(
        page.header("Refresh"),
        Some(format!("3; url={settings}?purge").as_str())
    );
    fs::write(work.join("more.txt"), "more\n").unwrap();
    commit_all(&work, "during a purge");
    let out = run(smart_git(&work).args(["push", "-q", &url, "HEAD:main"]));
    assert!(!out.status.success(), "a push went through during a purge");
    let text = all_output(&out);
    assert!(
        text.contains("remote: alice/proj is being purged of unreachable objects; pushes are refused until it is done."),
        "{text}"
    );
    // A second purge is refused while one runs, with a sentence for the form.
    let token = csrf_of(&page);
    let again = alice.post(&srv, &settings, &[("csrf", &token), ("action", "purge")]);
    assert_eq!(again.status, 400, "{}", again.describe());
    assert!(
        again
            .text()
            .contains("A purge of alice/proj is running already."),
        "{}",
        again.text()
    );
    drop(held);
    fs::write(
        repo.join("forgelet-maintenance.status"),
        "done\n1700000000\n\n",
    )
    .unwrap();
    ok(smart_git(&work).args(["push", "-q", &url, "HEAD:main"]));
    srv.finish();
}

/// On a file's page, the last crumb (the file's name) linked to `tree/{ref}/{path}`, a 404 for
/// a file. Every link on a file's page and a folder's page now leads to a page.
#[test]
fn every_link_on_a_file_page_leads_somewhere() {
    let site = Site::new("hard_crumbs", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let listing = git_ok(&repo, &["ls-tree", "-r", "--name-only", "main"]);
    let file = listing
        .lines()
        .find(|l| l.contains('/'))
        .unwrap_or_else(|| listing.lines().next().unwrap());
    let folder = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    for page in [
        site.target(&format!("/alice/proj/blob/main/{file}")),
        site.target(&format!("/alice/proj/tree/main/{folder}")),
    ] {
        let r = srv.get(&page);
        assert_eq!(r.status, 200, "{page}");
        let text = r.text();
        let links: std::collections::BTreeSet<String> = text
            .split("href=\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
            .filter(|l| l.starts_with('/'))
            .collect();
        assert!(links.len() > 5, "{links:?}");
        for link in links {
            let status = srv.get(&link).status;
            assert!(
                status == 200 || status == 302 || status == 303,
                "{page} links to {link}: {status}"
            );
        }
    }
    srv.finish();
}

/// A client that takes nothing for `write_timeout` seconds is dropped and its git stopped, even
/// when the spool is spent and git waits for it (before, only the web server's own timeout, or
/// git's deadline of an hour, ended it).
#[test]
fn a_client_that_takes_nothing_is_dropped_at_the_write_timeout() {
    let site = Site::new(
        "hard_write",
        SiteOptions {
            server_extra: "write_timeout = 5",
            ..Default::default()
        },
    );
    fs::write(
        &site.config,
        fs::read_to_string(&site.config).unwrap() + "\n[limits]\nspool_mib = 1\n",
    )
    .unwrap();
    let repo = site.import_fixture("mixed", "alice/big");
    add_big_commit(&repo, 24 << 20);
    let srv = site.start();
    let head = git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let request = v2_fetch_request(&site, "/alice/big.git/git-upload-pack", &head);
    let (stalled, status) = stall(srv.port, "127.0.0.5", &request);
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_secs(1));
    let running = processes_in(&repo);
    assert!(!running.is_empty(), "git ended: the spool took everything");
    // git runs below the pages' priority (the git lane's nice value, inherited).
    for p in &running {
        let pid = p.split(' ').next().unwrap();
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
        assert_eq!(nice, 5, "{p}");
    }
    let start = std::time::Instant::now();
    assert_no_process_left(&repo, 20, "after the write timeout");
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    drop(stalled);
    srv.finish();
}

/// Anonymous clients cannot take git away from the people who push: with every slot anonymous
/// clients may use held (three stalled clones, and no spool left to finish into), a signed-in
/// user's push still runs at once, on the slot kept for users, while an anonymous request waits.
#[test]
fn a_slot_is_kept_for_signed_in_users() {
    let site = Site::new(
        "hard_reserve",
        SiteOptions {
            server_extra: "git_workers = 4\ngit_per_address = 1",
            ..Default::default()
        },
    );
    fs::write(
        &site.config,
        fs::read_to_string(&site.config).unwrap() + "\n[limits]\nspool_mib = 1\n",
    )
    .unwrap();
    let repo = site.import_fixture("mixed", "alice/big");
    add_big_commit(&repo, 16 << 20);
    let srv = site.start();
    let head = git_ok(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    // Three addresses, one slot each (git_per_address = 1): the three anonymous slots. Three
    // different requests, each run by git (identical ones would share one run of git).
    let stalled: Vec<_> = (2..5)
        .map(|i| {
            let have = format!("{i:040}");
            let request =
                v2_fetch_request_having(&site, "/alice/big.git/git-upload-pack", &head, &have);
            stall(srv.port, &format!("127.0.0.{i}"), &request).0
        })
        .collect();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while processes_in(&repo)
        .iter()
        .filter(|p| p.contains("upload-pack"))
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < until,
            "the stalled clones never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // An anonymous ls-remote from a fourth address waits for a slot...
    let anonymous = std::thread::spawn({
        let port = srv.port;
        let target = site.target("/alice/big.git/info/refs?service=git-upload-pack");
        move || {
            let mut s = tcp_from("127.0.0.9", port);
            s.set_read_timeout(Some(std::time::Duration::from_secs(3)))
                .unwrap();
            use std::io::{Read, Write};
            write!(
                s,
                "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .unwrap();
            let mut buf = [0u8; 64];
            s.read(&mut buf).map(|n| n > 0).unwrap_or(false)
        }
    });
    // ...while alice pushes at once.
    let work = work_tree(&site, "reserve");
    fs::write(work.join("f.txt"), "pushed\n").unwrap();
    commit_all(&work, "push while anonymous clones hold git");
    let url = format!(
        "http://alice:{TEST_PASSWORD}@127.0.0.1:{}{}",
        srv.port,
        site.target("/alice/big.git")
    );
    let start = std::time::Instant::now();
    let out = run(smart_git(&work).args(["push", "-q", &url, "HEAD:refs/heads/pushed"]));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    assert!(
        !anonymous.join().unwrap(),
        "an anonymous request got a slot kept for users"
    );
    drop(stalled);
    let mut srv = srv;
    srv.assert_forgelet_alive("a push beside stalled clones");
}
