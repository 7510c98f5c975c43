//! forgelet behind each web server it ships a config for, started for real on a loopback port
//! with that config: Apache over FastCGI (mod_proxy_fcgi, X-Sendfile by mod_xsendfile) and as
//! a CGI program (forgelet streaming git's files itself), and lighttpd (mod_fastcgi,
//! X-Sendfile). nginx runs every other test. Each runs the same checks: a smart
//! clone that really speaks protocol v2, a dumb clone, a push of more than 100 MB in chunks,
//! a push and a clone with Git LFS objects (the real git-lfs), a private repository refused to
//! anonymous clients on every git route of the route table, and signing in to see a page. And
//! a pack cache kept outside the data directory (`[pack_cache] dir`), sent by Apache and lighttpd.

use std::fs;
use std::path::Path;

use forgelet::request::Method;
use forgelet::routes::ROUTES;

use crate::util::*;

/// The checks every host passes, on a site whose web server is `front`.
fn host_serves_git_and_pages(test: &str, front: Front, sendfile: &'static str) {
    let site = Site::new(
        test,
        SiteOptions {
            sendfile,
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    let public = site.import_fixture("mixed", "alice/pub");
    let private = site.import_fixture("tags", "alice/priv");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/priv", "--visibility", "private"]));
    ok(site.forgelet().args(["repo", "create", "alice/pushed"]));
    ok(site.forgelet().args(["repo", "create", "alice/lfs"]));
    let srv = site.start_behind(front);
    let tmp = site.dir().to_path_buf();
    let what = format!("{front:?}");

    // A smart clone, protocol v2 negotiated (git's packet trace shows the server's v2 answer,
    // so the Git-Protocol header reached forgelet).
    let trace = tmp.join("trace-v2");
    let clone = tmp.join("clone-v2");
    let out = run(smart_git(&tmp)
        .env("GIT_TRACE_PACKET", &trace)
        .args(["-c", "protocol.version=2", "clone"])
        .arg(site.url("/alice/pub.git"))
        .arg(&clone));
    assert!(
        out.status.success(),
        "{what}: smart clone: {}",
        all_output(&out)
    );
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    assert!(
        trace.contains("git< version 2"),
        "{what}: protocol v2 was not negotiated:\n{trace}"
    );
    assert_clone_matches(&public, &clone);

    // The same clone again: answered from the pack cache, handed to the web server (X-Sendfile
    // on the POST) or sent by forgelet.
    let hits = |site: &Site| pack_cache_counts(site)[0];
    let before = hits(&site);
    let again = tmp.join("clone-v2-again");
    let out = run(smart_git(&tmp)
        .args(["-c", "protocol.version=2", "clone"])
        .arg(site.url("/alice/pub.git"))
        .arg(&again));
    assert!(
        out.status.success(),
        "{what}: a clone from the pack cache: {}",
        all_output(&out)
    );
    assert_eq!(
        hits(&site),
        before + 1,
        "{what}: the second clone was not a cache hit"
    );
    assert_clone_matches(&public, &again);

    // A dumb clone: loose objects and packs sent by the web server (X-Sendfile) or by forgelet.
    let dumb = tmp.join("clone-dumb");
    let out = run(git(&tmp)
        .arg("clone")
        .arg(site.url("/alice/pub.git"))
        .arg(&dumb));
    assert!(
        out.status.success(),
        "{what}: dumb clone: {}",
        all_output(&out)
    );
    assert_clone_matches(&public, &dumb);

    // A push of more than 100 MB, sent in chunks (git's postBuffer is 1 MiB), which must pass
    // the web server (no 411) without being held whole in its memory (lighttpd writes it to
    // its upload folder first; Apache streams it).
    let work = tmp.join("work");
    git_ok(&tmp, &["init", "-q", work.to_str().unwrap()]);
    let big = noise(110, 110 * 1024 * 1024);
    fs::write(work.join("big.bin"), &big).unwrap();
    fs::write(work.join("README.md"), "pushed through the web server\n").unwrap();
    git_ok(&work, &["add", "."]);
    git_ok(&work, &["commit", "-q", "-m", "a large push"]);
    let head = git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string();
    let url = site
        .url("/alice/pushed.git")
        .replace("http://", &format!("http://alice:{TEST_PASSWORD}@"));
    let out = run(smart_git(&work)
        .args(["-c", "http.postBuffer=1048576", "push", "-q"])
        .arg(&url)
        .arg("HEAD:refs/heads/main"));
    assert!(
        out.status.success(),
        "{what}: large push: {}",
        all_output(&out)
    );
    let pushed = site.repo_path("alice/pushed");
    assert_eq!(
        refs_of(&pushed).get("refs/heads/main"),
        Some(&head),
        "{what}: the pushed branch"
    );
    let fsck = run(git(&pushed).args(["fsck", "--no-progress"]));
    assert!(fsck.status.success(), "{what}: {}", all_output(&fsck));
    // Not held whole in the web server's memory.
    let peak = srv.front_peak_mib();
    assert!(
        peak < 64,
        "{what}: a web server process grew to {peak} MiB during a 110 MB push"
    );

    // Git LFS through the host: a push with objects (one larger than the pages' body cap) and
    // a clone that gets them back, downloads sent by the web server or by forgelet.
    let lfs_work = tmp.join("lfs-work");
    git_ok(&tmp, &["init", "-q", lfs_work.to_str().unwrap()]);
    let lfs_git = |dir: &Path| {
        let mut c = smart_git(dir);
        c.args([
            "-c",
            "filter.lfs.process=git-lfs filter-process",
            "-c",
            "filter.lfs.required=true",
            "-c",
            "filter.lfs.clean=git-lfs clean -- %f",
            "-c",
            "filter.lfs.smudge=git-lfs smudge -- %f",
        ]);
        c
    };
    ok(lfs_git(&lfs_work).args(["lfs", "track", "*.bin"]));
    let asset = noise(7, 3 << 20);
    fs::write(lfs_work.join("asset.bin"), &asset).unwrap();
    fs::write(lfs_work.join("small.bin"), b"a small LFS file\n").unwrap();
    ok(lfs_git(&lfs_work).args(["add", "-A"]));
    ok(lfs_git(&lfs_work).args(["commit", "-q", "-m", "LFS files"]));
    let lfs_url = site
        .url("/alice/lfs.git")
        .replace("http://", &format!("http://alice:{TEST_PASSWORD}@"));
    let out = run(lfs_git(&lfs_work).args(["push", "-q", &lfs_url, "HEAD:refs/heads/main"]));
    assert!(
        out.status.success(),
        "{what}: LFS push: {}",
        all_output(&out)
    );
    let lfs_clone = tmp.join("lfs-clone");
    let out = run(lfs_git(&tmp).arg("clone").arg(&lfs_url).arg(&lfs_clone));
    assert!(
        out.status.success(),
        "{what}: LFS clone: {}",
        all_output(&out)
    );
    assert!(
        fs::read(lfs_clone.join("asset.bin")).unwrap() == asset,
        "{what}: the LFS object came back different"
    );

    // The private repository: every git route of the route table answers an anonymous client
    // as it answers for a repository that does not exist (401 with a challenge).
    let pack = largest_pack(&private)
        .trim_start_matches("objects/pack/")
        .to_string();
    let loose = some_loose_object(&private);
    let head_id = git_ok(&private, &["rev-parse", "HEAD"]).trim().to_string();
    for row in ROUTES.iter().filter(|r| r.is_git()) {
        for (owner_repo, exists) in [("alice/priv", true), ("alice/nosuch", false)] {
            let path = row
                .example
                .replace("OWNER/REPO", owner_repo)
                .replace("{loose}", &loose)
                .replace("{pack}", pack.trim_end_matches(".pack"))
                .replace("{head}", &head_id);
            let target = site.target(&path);
            let r = if row.method == Method::Post {
                let service = path.rsplit('/').next().unwrap_or_default();
                srv.http_body(
                    "POST",
                    target.as_bytes(),
                    &[("Content-Type", &format!("application/x-{service}-request"))],
                    b"0000",
                )
            } else {
                srv.http("GET", target.as_bytes(), &[])
            };
            assert_eq!(
                r.status,
                401,
                "{what}: {} {target} (repository exists: {exists}): {}",
                row.name,
                r.describe()
            );
            assert!(
                r.header("WWW-Authenticate")
                    .is_some_and(|c| c.starts_with("Basic")),
                "{what}: {target}: no challenge"
            );
        }
    }
    // With the owner's password the same pack is served.
    let target = site.target(&format!("/alice/priv.git/objects/pack/{pack}"));
    let r = srv.http(
        "GET",
        target.as_bytes(),
        &[("Authorization", &basic("alice", TEST_PASSWORD))],
    );
    assert_eq!(r.status, 200, "{what}: {}", r.describe());
    assert_eq!(
        r.body,
        fs::read(private.join("objects/pack").join(&pack)).unwrap(),
        "{what}: the pack's bytes"
    );

    // Signing in, and a page only the signed-in owner may see.
    let mut b = Browser::default();
    assert_eq!(b.get(&srv, &site.target("/alice/priv")).status, 404);
    sign_in_as(&site, &srv, &mut b, "alice");
    let page = b.get(&srv, &site.target("/alice/priv"));
    assert_eq!(page.status, 200, "{what}: {}", page.describe());
    assert!(
        page.text().contains("alice/priv.git"),
        "{what}: {}",
        page.text()
    );
    srv.finish();
}

/// `xx/yyyy...` of one loose object of `repo` (the fixture's `tags` has some).
fn some_loose_object(repo: &Path) -> String {
    object_paths(repo)
        .into_iter()
        .find_map(|p| {
            let rest = p.strip_prefix("objects/")?;
            (rest.len() == 41 && rest.as_bytes()[2] == b'/').then(|| rest.to_string())
        })
        .unwrap_or_else(|| {
            // A repository with packs only: any object id names a loose path; it is not
            // there, and the answer must not say so to an anonymous client either.
            format!("ab/{}", "c".repeat(38))
        })
}

/// A CGI forgelet that refused a request without reading its body (a push without
/// credentials) exited with the body unread; mod_cgid's socket was then reset and Apache lost
/// the 401 already written, so git saw a broken answer instead of a request for credentials.
#[test]
fn apache_cgi_answers_a_refused_push_whose_body_was_not_read() {
    let site = Site::new("host_apache_cgi_unread", SiteOptions::default());
    site.ensure_user("alice");
    site.import_fixture("mixed", "alice/proj");
    let srv = site.start_behind(Front::ApacheCgi);
    let body = vec![b'0'; 1024 * 1024];
    let target = site.target("/alice/proj.git/git-receive-pack");
    let r = srv.http_body(
        "POST",
        target.as_bytes(),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        &body,
    );
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(r.header("WWW-Authenticate").is_some(), "{}", r.describe());
    srv.finish();
}

#[test]
fn apache_fastcgi_serves_git_and_pages() {
    host_serves_git_and_pages("host_apache_fcgi", Front::ApacheFcgi, "x-sendfile");
}

#[test]
fn apache_cgi_serves_git_and_pages() {
    host_serves_git_and_pages("host_apache_cgi", Front::ApacheCgi, "none");
}

#[test]
fn lighttpd_serves_git_and_pages() {
    host_serves_git_and_pages("host_lighttpd", Front::Lighttpd, "x-sendfile");
}

/// `[pack_cache] dir` outside the data directory (as each machine of several keeps its own),
/// behind Apache over FastCGI and behind lighttpd, the folder added to the web server's
/// X-Sendfile paths as the README's "Several frontends and several machines" says: a repeated
/// clone is answered from that folder and reaches the client whole. Without the added path the
/// web server refuses to send the file, so the line matters (clones of anything seen before
/// would fail).
#[test]
fn apache_and_lighttpd_send_a_pack_cache_kept_outside_the_data_directory() {
    for (front, name) in [
        (Front::ApacheFcgi, "host_apache_cache_dir"),
        (Front::Lighttpd, "host_lighttpd_cache_dir"),
    ] {
        for told in [true, false] {
            let site = Site::new(
                &format!("{name}_{}", if told { "told" } else { "untold" }),
                SiteOptions {
                    sendfile: "x-sendfile",
                    ..SiteOptions::default()
                },
            );
            let public = site.import_fixture("mixed", "alice/pub");
            let cache = site.dir().join("local-cache");
            fs::create_dir_all(&cache).unwrap();
            let mut config = fs::read_to_string(&site.config).unwrap();
            assert!(config.trim_end().ends_with("free_mib = 0"), "{config}");
            config.push_str(&format!("dir = \"{}\"\n", cache.display()));
            fs::write(&site.config, config).unwrap();
            let cache_path = cache.display().to_string();
            let srv = site.start_behind_with(front, |text| {
                if !told {
                    return text;
                }
                let (old, new) = match front {
                    Front::Lighttpd => (
                        "( var.forgelet.repos )".to_string(),
                        format!("( var.forgelet.repos, \"{cache_path}\" )"),
                    ),
                    _ => (
                        "XSendFilePath \"${FORGELET_REPOS}\"".to_string(),
                        format!(
                            "XSendFilePath \"${{FORGELET_REPOS}}\"\n        XSendFilePath \"{cache_path}\""
                        ),
                    ),
                };
                assert!(text.contains(&old), "the shipped config has no {old}:\n{text}");
                text.replace(&old, &new)
            });
            let what = format!(
                "{front:?} {}",
                if told {
                    "with the folder"
                } else {
                    "without it"
                }
            );
            let tmp = site.dir().to_path_buf();
            let clone = |n: usize| {
                let into = tmp.join(format!("clone-{n}"));
                let out = run(smart_git(&tmp)
                    .args(["-c", "protocol.version=2", "clone"])
                    .arg(site.url("/alice/pub.git"))
                    .arg(&into));
                (out, into)
            };
            let (first, into) = clone(1);
            assert!(
                first.status.success(),
                "{what}: the first clone: {}",
                all_output(&first)
            );
            assert_clone_matches(&public, &into);
            let before = pack_cache_counts_in(&cache)[0];
            let (second, into) = clone(2);
            assert_eq!(
                pack_cache_counts_in(&cache)[0],
                before + 1,
                "{what}: the second clone was not a hit in {cache_path}"
            );
            if told {
                assert!(
                    second.status.success(),
                    "{what}: the second clone: {}",
                    all_output(&second)
                );
                assert_clone_matches(&public, &into);
            } else {
                assert!(
                    !second.status.success(),
                    "{what}: a web server not told of the folder sent its file"
                );
                let log = fs::read_to_string(&srv.front_log).unwrap_or_default();
                assert!(
                    log.contains(&cache_path),
                    "{what}: the web server's log does not name the file it refused:\n{log}"
                );
                continue;
            }
            assert!(
                fs::read_dir(site.data_dir.join("repos/.cache"))
                    .map_or(true, |mut d| d.next().is_none()),
                "{what}: an entry was kept in the data directory"
            );
            srv.finish();
        }
    }
}
