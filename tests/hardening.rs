//! Regression tests for the attacks of the hardening issue, each reproducing one attack as it
//! was found (as an outsider, or as an ordinary account holder) and checking what a user would
//! notice: the status, the page text, the file on disk, the clone.

use std::fs;
use std::path::{Path, PathBuf};

use crate::util::*;
use crate::web::sign_in_as;

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
    let planted_token = csrf_of(&outsider.get(&srv, &site.target("/login")));
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
        let form = b.get(&srv, &site.target("/login"));
        let csrf_name = format!("{prefix}forgelet_csrf");
        let c = set_cookie(&form, &csrf_name).unwrap_or_else(|| panic!("{}", form.describe()));
        assert!(
            c.contains(&format!("; Path={path};")) && c.contains("; Secure"),
            "{c}"
        );
        let r = b.post(
            &srv,
            &site.target("/login"),
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
        let form = b.get(&srv, &site.target("/login"));
        b.post(
            &srv,
            &site.target("/login"),
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
    let form = stranger.get(&srv, &site.target("/login"));
    let r = stranger.post(
        &srv,
        &site.target("/login"),
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
    let form = browser.get(&srv, &site.target("/login"));
    let r = browser.post(
        &srv,
        &site.target("/login"),
        &[
            ("csrf", &csrf_of(&form)),
            ("user", "alice"),
            ("password", new_password),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    let mut fresh = Browser::default();
    let form = fresh.get(&srv, &site.target("/login"));
    let r = fresh.post(
        &srv,
        &site.target("/login"),
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
