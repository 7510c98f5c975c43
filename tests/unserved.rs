//! Repositories forgelet does not serve, and how it says so: a private repository and a missing
//! one answer alike (401 with a challenge, through nginx, FastCGI and CGI) and leak nothing; a
//! site without users answers 404 instead of a challenge nobody could meet; a sha256 repository
//! gets a clear 501, and `check` names it.

use std::fs;

use crate::util::*;

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
