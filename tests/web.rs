//! Web sign-in through real nginx: CSRF, session cookies (tampered, expired by a password change,
//! signed out), safe `next=` redirects, rate limiting, and the headers every page carries.

use std::path::PathBuf;

use crate::util::*;

fn site_with_private_repo(test: &str) -> (Site, Server, PathBuf) {
    let site = Site::new(test, SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/hidden");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/hidden", "--visibility", "private"]));
    let srv = site.start();
    (site, srv, repo)
}

fn sign_in(site: &Site, srv: &Server, b: &mut Browser, password: &str) -> Response {
    let form = b.get(srv, &site.target("/-/login"));
    let csrf = csrf_of(&form);
    b.post(
        srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf),
            ("user", "alice"),
            ("password", password),
            ("next", &site.target("/alice/hidden")),
        ],
    )
}

#[test]
fn sign_in_shows_private_repositories_and_sign_out_ends_it() {
    let (site, srv, _) = site_with_private_repo("web_sign_in");
    let mut b = Browser::default();
    let front = b.get(&srv, &site.target("/"));
    assert!(!front.text().contains("alice/hidden"));
    assert_eq!(b.get(&srv, &site.target("/alice/hidden")).status, 404);

    let r = sign_in(&site, &srv, &mut b, TEST_PASSWORD);
    assert_eq!(r.status, 303, "{}", r.describe());
    assert_eq!(
        r.header("Location"),
        Some(site.target("/alice/hidden").as_str())
    );
    let set = r
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("Set-Cookie") && v.starts_with("forgelet_session="))
        .map(|(_, v)| v.clone())
        .expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/git"] {
        assert!(set.contains(attr), "{attr} missing in {set}");
    }
    let page = b.get(&srv, &site.target("/alice/hidden"));
    assert_eq!(page.status, 200, "{}", page.describe());
    let front = b.get(&srv, &site.target("/")).text();
    assert!(
        front.contains("Your repositories") && front.contains("alice/hidden"),
        "{front}"
    );
    // Each entry says whether it is private and when it last changed.
    assert!(
        front.contains("class=\"badge\">private") && front.contains("updated 20"),
        "{front}"
    );

    // Sign out needs the form's token; then the session is gone. The address typed in a
    // browser asks first (a GET never signs out).
    let ask = b.get(&srv, &site.target("/-/logout"));
    assert_eq!(ask.status, 200, "{}", ask.describe());
    assert!(ask.text().contains("Sign out of") && b.cookie("forgelet_session").is_some());
    let csrf = csrf_of(&ask);
    assert_eq!(
        b.post(&srv, &site.target("/-/logout"), &[("csrf", "nope")])
            .status,
        403
    );
    let out = b.post(&srv, &site.target("/-/logout"), &[("csrf", &csrf)]);
    assert_eq!(out.status, 303);
    assert!(b.cookie("forgelet_session").is_none());
    assert_eq!(b.get(&srv, &site.target("/-/logout")).status, 303);
    assert_eq!(b.get(&srv, &site.target("/alice/hidden")).status, 404);
    srv.finish();
}

#[test]
fn forms_without_the_csrf_token_are_refused() {
    let (site, srv, _) = site_with_private_repo("web_csrf");
    let mut b = Browser::default();
    b.get(&srv, &site.target("/-/login"));
    for token in ["", "0000", "deadbeef"] {
        let r = b.post(
            &srv,
            &site.target("/-/login"),
            &[
                ("csrf", token),
                ("user", "alice"),
                ("password", TEST_PASSWORD),
            ],
        );
        assert_eq!(r.status, 403, "{}", r.describe());
        assert!(b.cookie("forgelet_session").is_none());
    }
    // Another browser's token does not fit this browser's cookie.
    let mut other = Browser::default();
    let their = csrf_of(&other.get(&srv, &site.target("/-/login")));
    let r = b.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &their),
            ("user", "alice"),
            ("password", TEST_PASSWORD),
        ],
    );
    assert_eq!(r.status, 403);
    srv.finish();
}

#[test]
fn tampered_and_outdated_sessions_are_anonymous() {
    let (site, srv, _) = site_with_private_repo("web_tamper");
    let mut b = Browser::default();
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let good = b.cookie("forgelet_session").unwrap();
    let (name, rest) = good.split_once('~').unwrap();
    let (expires, mac) = rest.split_once('~').unwrap();
    let later: u64 = expires.parse::<u64>().unwrap() + 3600;
    let flipped = format!(
        "{}{}",
        &mac[..mac.len() - 1],
        if mac.ends_with('0') { '1' } else { '0' }
    );
    for bad in [
        format!("{name}~{expires}~{flipped}"),
        format!("{name}~{later}~{mac}"),
        format!("bob~{expires}~{mac}"),
        "alice".to_string(),
    ] {
        let mut t = Browser {
            cookies: vec![("forgelet_session".into(), bad.clone())],
            ..Default::default()
        };
        assert_eq!(
            t.get(&srv, &site.target("/alice/hidden")).status,
            404,
            "{bad}"
        );
    }
    assert_eq!(b.get(&srv, &site.target("/alice/hidden")).status, 200);
    // A password change ends every session made before it.
    run_with_stdin(
        site.forgelet()
            .args(["user", "passwd", "alice", "--password-stdin"]),
        b"another-password-2\n",
    );
    assert_eq!(b.get(&srv, &site.target("/alice/hidden")).status, 404);
    srv.finish();
}

#[test]
fn next_never_leaves_the_site_and_wrong_passwords_are_limited() {
    let (site, srv, _) = site_with_private_repo("web_next_limit");
    let mut b = Browser::default();
    let csrf = csrf_of(&b.get(&srv, &site.target("/-/login?next=//evil.example/x")));
    let r = b.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf),
            ("user", "alice"),
            ("password", TEST_PASSWORD),
            ("next", "https://evil.example/"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(r.header("Location"), Some(site.target("/").as_str()));

    let mut g = Browser::default();
    let csrf = csrf_of(&g.get(&srv, &site.target("/-/login")));
    let mut limited = None;
    for i in 0..15 {
        let r = g.post(
            &srv,
            &site.target("/-/login"),
            &[("csrf", &csrf), ("user", "alice"), ("password", "wrong")],
        );
        match r.status {
            401 => assert!(
                r.text().contains("Wrong user name or password"),
                "{}",
                r.text()
            ),
            429 => {
                limited = Some((i, r));
                break;
            }
            s => panic!("attempt {i}: status {s}: {}", r.describe()),
        }
    }
    let (i, r) = limited.expect("15 wrong passwords were never slowed down");
    assert!(i >= 5, "limited after only {i} attempts");
    assert!(r.header("Retry-After").is_some());
    assert!(
        r.text().contains("Too many sign-in attempts"),
        "{}",
        r.text()
    );
    srv.finish();
}

#[test]
fn pages_carry_security_headers_and_a_cacheable_stylesheet() {
    let (site, srv, _) = site_with_private_repo("web_headers");
    let mut b = Browser::default();
    for p in ["/", "/-/login", "/alice/hidden", "/alice/nosuch"] {
        let r = b.get(&srv, &site.target(p));
        let csp = r.header("Content-Security-Policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
            "{p}: {csp}"
        );
        assert_eq!(r.header("X-Frame-Options"), Some("DENY"), "{p}");
        assert!(r.header("Referrer-Policy").is_some(), "{p}");
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"), "{p}");
    }
    let page = b.get(&srv, &site.target("/")).text();
    let at = page
        .find("rel=\"stylesheet\" href=\"")
        .expect("a stylesheet link");
    let rest = &page[at + "rel=\"stylesheet\" href=\"".len()..];
    let href = &rest[..rest.find('"').unwrap()];
    assert!(
        href.starts_with(&site.target("/-/static/forgelet-")),
        "{href}"
    );
    let css = b.get(&srv, href);
    assert_eq!(css.status, 200);
    assert!(css
        .header("Content-Type")
        .unwrap_or_default()
        .starts_with("text/css"));
    assert!(css
        .header("Cache-Control")
        .unwrap_or_default()
        .contains("immutable"));
    assert_eq!(b.get(&srv, &site.target("/-/static/other.css")).status, 404);
    srv.finish();
}

#[test]
fn new_repository_page_creates_and_refuses_clearly() {
    let (site, srv, _) = site_with_private_repo("web_new_repo");
    let mut anon = Browser::default();
    let r = anon.get(&srv, &site.target("/-/new"));
    assert_eq!(r.status, 303);
    assert!(r
        .header("Location")
        .unwrap_or_default()
        .contains("/-/login?next="));

    let mut b = Browser::default();
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let front = b.get(&srv, &site.target("/")).text();
    assert!(front.contains("New repository"), "{front}");
    let csrf = csrf_of(&b.get(&srv, &site.target("/-/new")));
    let create = |b: &mut Browser, name: &str, vis: &str, readme: bool| {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("name", name),
            ("description", "Made <in> the browser"),
            ("visibility", vis),
        ];
        if readme {
            form.push(("readme", "1"));
        }
        b.post(&srv, &site.target("/-/new"), &form)
    };
    let r = create(&mut b, "fresh", "private", true);
    assert_eq!(r.status, 303, "{}", r.describe());
    assert_eq!(
        r.header("Location"),
        Some(site.target("/alice/fresh").as_str())
    );
    let repo = site.repo_path("alice/fresh");
    assert_eq!(
        git_ok(&repo, &["show", "main:README.md"]),
        "# fresh\n\nMade <in> the browser\n"
    );
    let page = b.get(&srv, &site.target("/alice/fresh"));
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(
        text.contains("Made ") && text.contains("the browser"),
        "{text}"
    );
    assert!(
        !text.contains("<in>"),
        "the description was not escaped:\n{text}"
    );
    assert_eq!(
        anon.get(&srv, &site.target("/alice/fresh")).status,
        404,
        "private"
    );

    let r = create(&mut b, "FRESH", "public", false);
    assert_eq!(r.status, 409);
    assert!(
        r.text()
            .contains("A repository named alice/fresh already exists"),
        "{}",
        r.text()
    );
    for bad in [".hidden", "a/b", "x.git.git", "", "-x"] {
        let r = create(&mut b, bad, "public", false);
        assert_eq!(r.status, 400, "{bad}: {}", r.describe());
        assert!(r.text().contains("cannot be used"), "{bad}");
    }
    let r = create(&mut b, "empty-one", "public", false);
    assert_eq!(r.status, 303);
    assert!(refs_of(&site.repo_path("alice/empty-one")).is_empty());
    let r = b.post(
        &srv,
        &site.target("/-/new"),
        &[("csrf", "x"), ("name", "nope")],
    );
    assert_eq!(r.status, 403);
    assert!(!site.repo_path("alice/nope").exists());
    srv.finish();
}

/// A repository with hostile content, made with git and imported.
fn hostile_repo(site: &Site, owner_repo: &str) -> PathBuf {
    let work = site
        .dir()
        .join(format!("work-{}", owner_repo.replace('/', "-")));
    std::fs::create_dir_all(work.join("docs")).unwrap();
    let files: &[(&str, &[u8])] = &[
        (
            "README.md",
            b"# Title\n\n<script>alert('readme')</script>\n\n[bad](javascript:alert(1)) [doc](docs/guide.md)\n\n![logo](img/logo.png)\n",
        ),
        ("docs/guide.md", b"guide\n"),
        ("page.html", b"<html><script>alert('raw')</script></html>\n"),
        ("pic.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>\n"),
        ("bin.dat", b"\x00\x01\x02binary"),
        ("<img src=x onerror=alert(1)>.txt", b"line one\nline <b>two</b>\n"),
    ];
    for (name, data) in files {
        std::fs::write(work.join(name), data).unwrap();
    }
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(
        &work,
        &["commit", "-q", "-m", "<script>alert('msg')</script>"],
    );
    git_ok(&work, &["branch", "feature/x"]);
    import_work_tree(site, &work, owner_repo)
}

#[test]
fn repository_pages_show_files_and_readme_safely() {
    let site = Site::new("web_browse", SiteOptions::default());
    hostile_repo(&site, "alice/web");
    let srv = site.start();
    let mut b = Browser::default();
    let home = b.get(&srv, &site.target("/alice/web"));
    assert_eq!(home.status, 200, "{}", home.describe());
    let text = home.text();
    let clone_url = site.url("/alice/web.git");
    for want in [clone_url.as_str(), "README.md", "docs/", "page.html", "<h1"] {
        assert!(text.contains(want), "home lacks {want:?}:\n{text}");
    }
    // The clone box said "Clone with HTTPS" on a plain-HTTP site.
    assert!(
        text.contains("Clone with HTTP<") && clone_url.starts_with("http://"),
        "{text}"
    );
    for never in ["<script>", "javascript:", "<img src=x onerror"] {
        assert!(!text.contains(never), "home contains {never:?}:\n{text}");
    }
    // Relative links and images resolve inside the repository.
    assert!(
        text.contains(&site.target("/alice/web/blob/main/docs/guide.md")),
        "{text}"
    );
    assert!(
        text.contains(&site.target("/alice/web/raw/main/img/logo.png")),
        "{text}"
    );

    let tree = b.get(&srv, &site.target("/alice/web/tree/feature/x/docs"));
    assert_eq!(tree.status, 200, "{}", tree.describe());
    assert!(tree.text().contains("guide.md"));
    assert!(
        tree.text().contains(&format!(
            "href=\"{}\"",
            site.target("/alice/web/commits/feature/x")
        )),
        "the Commits tab is not on the branch shown"
    );

    let blob = b.get(&srv, &site.target("/alice/web/blob/main/page.html"));
    assert_eq!(blob.status, 200);
    let t = blob.text();
    assert!(t.contains("id=\"L1\"") && t.contains("href=\"#L1\""), "{t}");
    assert!(!t.contains("<script>"), "{t}");
    let name = "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.txt";
    let odd = b.get(&srv, &site.target(&format!("/alice/web/blob/main/{name}")));
    assert_eq!(odd.status, 200, "{}", odd.describe());
    assert!(!odd.text().contains("<img src=x") && !odd.text().contains("<b>two"));
    let bin = b.get(&srv, &site.target("/alice/web/blob/main/bin.dat"));
    assert!(bin.text().contains("binary file"), "{}", bin.text());

    let raw_html = b.get(&srv, &site.target("/alice/web/raw/main/page.html"));
    assert_eq!(
        raw_html.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(raw_html.header("X-Content-Type-Options"), Some("nosniff"));
    // An image's page shows it through its raw URL (where it cannot run), not its source.
    let svg_page = b
        .get(&srv, &site.target("/alice/web/blob/main/pic.svg"))
        .text();
    assert!(
        svg_page.contains(&format!(
            "<img src=\"{}\"",
            site.target("/alice/web/raw/main/pic.svg")
        )) && !svg_page.contains("<svg"),
        "{svg_page}"
    );
    let raw_svg = b.get(&srv, &site.target("/alice/web/raw/main/pic.svg"));
    assert_eq!(raw_svg.header("Content-Type"), Some("image/svg+xml"));
    assert!(raw_svg
        .header("Content-Security-Policy")
        .unwrap_or_default()
        .contains("sandbox"));
    let raw_bin = b.get(&srv, &site.target("/alice/web/raw/main/bin.dat"));
    assert_eq!(
        raw_bin.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert!(raw_bin
        .header("Content-Disposition")
        .unwrap_or_default()
        .starts_with("attachment"));
    assert_eq!(raw_bin.body, b"\x00\x01\x02binary");

    for missing in ["/alice/web/tree/nope", "/alice/web/blob/main/nope"] {
        assert_eq!(b.get(&srv, &site.target(missing)).status, 404, "{missing}");
    }
    // A folder's blob URL leads to its tree page.
    let folder = b.get(&srv, &site.target("/alice/web/blob/main/docs"));
    assert_eq!(folder.status, 302, "{}", folder.describe());
    assert_eq!(
        folder.header("Location"),
        Some(site.target("/alice/web/tree/main/docs").as_str())
    );
    // A private repository's pages are 404 to others, whatever the page.
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/web", "--visibility", "private"]));
    for p in [
        "/alice/web",
        "/alice/web/tree/main",
        "/alice/web/raw/main/README.md",
    ] {
        assert_eq!(b.get(&srv, &site.target(p)).status, 404, "{p}");
    }
    srv.finish();
}

/// A README written as on GitHub: its HTML renders (a centred logo from the repository, folded
/// sections, a table, keys), headings get prefixed ids and anchors, and hostile HTML is gone.
#[test]
fn readme_html_renders_as_on_github() {
    let site = Site::new("web_readme_html", SiteOptions::default());
    let work = site.dir().join("work-readme-html");
    std::fs::create_dir_all(&work).unwrap();
    let readme =
        "<p align=\"center\">\n  <img src=\"logo.png\" alt=\"Logo\" width=\"120\">\n</p>\n\n\
        # Getting Started\n\nSee [install](#install).\n\n## Install\n\n## Install\n\n\
        <details><summary>More</summary>\n\nFolded *text*\n\n</details>\n\n\
        | Key | Does |\n|:----|----:|\n| <kbd>q</kbd> | quits |\n\n\
        <script>alert('readme')</script>\n\
        <img src=x onerror=alert(1)> <a href=\"javascript:alert(2)\">bad</a>\n\
        <p style=\"position:fixed\" id=\"csrf\">spoof</p> <a name=\"next\">n</a>\n\n\
        <iframe src=\"https://evil.example/\"></iframe>\n\n\
        <form action=\"/-/logout\" method=\"post\"><input name=\"csrf\" type=\"hidden\"></form>\n";
    std::fs::write(work.join("README.md"), readme).unwrap();
    std::fs::write(work.join("logo.png"), b"\x89PNG\r\n\x1a\n").unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "readme"]);
    import_work_tree(&site, &work, "alice/pretty");
    let srv = site.start();
    let mut b = Browser::default();
    let home = b.get(&srv, &site.target("/alice/pretty"));
    assert_eq!(home.status, 200, "{}", home.describe());
    let text = home.text();
    let start = text.find("<article class=\"readme").expect("a README");
    let readme = &text[start..start + text[start..].find("</article>").unwrap()];
    for want in [
        "<p align=\"center\">".to_string(),
        format!(
            "<img src=\"{}\" alt=\"Logo\" width=\"120\">",
            site.target("/alice/pretty/raw/main/logo.png")
        ),
        "<h1 id=\"user-content-getting-started\">Getting Started <a class=\"anchor\" \
         href=\"#user-content-getting-started\""
            .to_string(),
        "<h2 id=\"user-content-install\">".to_string(),
        "<h2 id=\"user-content-install-1\">".to_string(),
        "<a href=\"#user-content-install\"".to_string(),
        "<details><summary>More</summary>".to_string(),
        "<p>Folded <em>text</em></p>".to_string(),
        "<th align=\"left\">Key</th>".to_string(),
        "<td align=\"left\"><kbd>q</kbd></td><td align=\"right\">quits</td>".to_string(),
        "<p id=\"user-content-csrf\">spoof</p>".to_string(),
        "<a name=\"user-content-next\"".to_string(),
    ] {
        assert!(readme.contains(&want), "README lacks {want:?}:\n{readme}");
    }
    for never in [
        "<script",
        "alert",
        "onerror",
        "javascript:",
        "style=",
        "<iframe",
        "evil.example",
        "<form",
        "type=\"hidden\"",
        "id=\"csrf\"",
        "name=\"next\"",
        "name=\"csrf\"",
    ] {
        assert!(!readme.contains(never), "README has {never:?}:\n{readme}");
    }
    // The page's own form token is still the page's: one field named csrf, in the page's forms.
    assert!(!text.contains("id=\"csrf\""), "{text}");
    // The logo the README shows is served.
    let logo = b.get(&srv, &site.target("/alice/pretty/raw/main/logo.png"));
    assert_eq!(logo.status, 200);
    assert_eq!(logo.header("Content-Type"), Some("image/png"));
    srv.finish();
}

/// An Atom feed parsed as XML (python3's `xml.etree`, which refuses what is not well-formed):
/// the feed's title, then one line per entry: id, title, updated, author, link.
fn parse_feed(r: &Response) -> Vec<String> {
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(
        r.header("Content-Type"),
        Some("application/atom+xml; charset=utf-8")
    );
    let script = r#"
import sys, xml.etree.ElementTree as ET
a = "{http://www.w3.org/2005/Atom}"
feed = ET.fromstring(sys.stdin.buffer.read())
assert feed.tag == a + "feed", feed.tag
for need in ("id", "title", "updated"):
    assert feed.find(a + need) is not None, need
print(feed.find(a + "title").text)
for e in feed.findall(a + "entry"):
    link = e.find(a + "link").get("href")
    print("\t".join([e.find(a + "id").text, e.find(a + "title").text or "", e.find(a + "updated").text,
                     e.find(a + "author/" + a + "name").text, link]))
"#;
    let out = run_with_stdin(
        std::process::Command::new("python3").args(["-c", script]),
        &r.body,
    );
    assert!(
        out.status.success(),
        "not a valid feed: {}\n{}",
        all_output(&out),
        r.text()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The commits and tags feeds: valid Atom with the ref's newest commits (titles, absolute
/// links to the commit pages), linked from the commits and tags pages; a private repository's
/// feed needs a reader's token (or a session), and gives nothing to anyone else.
#[test]
fn feeds_of_commits_and_tags() {
    let site = Site::new("web_feeds", SiteOptions::default());
    let repo = site.import_fixture("tags", "alice/feedy");
    // A message with what XML cannot hold, and markup.
    git_ok(&repo, &["branch", "feature/x", "main"]);
    let srv = site.start();
    let work = site.dir().join("work-feeds");
    git_ok(
        site.dir(),
        &[
            "clone",
            "-q",
            repo.to_str().unwrap(),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(work.join("odd.txt"), "x\n").unwrap();
    git_ok(&work, &["add", "odd.txt"]);
    git_ok(
        &work,
        &[
            "commit",
            "-q",
            "--cleanup=verbatim",
            "-m",
            "odd <b>&amp; \u{1}\u{1b}[31mred\u{7}\n\nbody line",
        ],
    );
    git_ok(
        &work,
        &["push", "-q", repo.to_str().unwrap(), "HEAD:feature/x"],
    );
    let mut b = Browser::default();

    let lines = parse_feed(&b.get(&srv, &site.target("/alice/feedy/feeds/commits/main.atom")));
    assert_eq!(lines[0], "Commits on main \u{b7} alice/feedy");
    let log = git_ok(&repo, &["log", "--format=%H %s", "main"]);
    let want: Vec<(&str, &str)> = log.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(lines.len() - 1, want.len(), "{lines:?}");
    for (line, (id, subject)) in lines[1..].iter().zip(&want) {
        let fields: Vec<&str> = line.split('\t').collect();
        let url = site.url(&format!("/alice/feedy/commit/{id}"));
        assert_eq!(fields[0], url, "{line}");
        assert_eq!(fields[1], *subject, "{line}");
        assert!(
            fields[2].ends_with('Z') && fields[2].contains('T'),
            "{line}"
        );
        assert!(!fields[3].is_empty(), "{line}");
        assert_eq!(fields[4], url, "{line}");
    }
    // A branch with a slash, and the message with control characters, which XML forbids.
    let r = b.get(
        &srv,
        &site.target("/alice/feedy/feeds/commits/feature/x.atom"),
    );
    let lines = parse_feed(&r);
    assert!(lines[1].contains("\todd <b>&amp; [31mred\t"), "{lines:?}");
    // The markup is text: escaped, never an element of the feed.
    assert!(!r.text().contains("<b>"), "{}", r.text());
    assert!(r.text().contains("body line"), "{}", r.text());
    // Unknown refs and a missing suffix.
    for missing in [
        "/alice/feedy/feeds/commits/nope.atom",
        "/alice/feedy/feeds/commits/main",
    ] {
        assert_eq!(b.get(&srv, &site.target(missing)).status, 404, "{missing}");
    }

    let lines = parse_feed(&b.get(&srv, &site.target("/alice/feedy/feeds/tags.atom")));
    assert_eq!(lines[0], "Tags \u{b7} alice/feedy");
    let titles: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split('\t').nth(1).unwrap())
        .collect();
    for tag in ["v0.3", "v0.2", "v0.1", "v0.1-light", "nested/light"] {
        assert!(titles.contains(&tag), "no {tag} in {titles:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!("\t{}", site.url("/alice/feedy/tree/v0.3")))),
        "{lines:?}"
    );

    // The pages link their feeds, in the head and visibly.
    for (page, feed) in [
        (
            "/alice/feedy/commits/feature/x",
            "/alice/feedy/feeds/commits/feature/x.atom",
        ),
        ("/alice/feedy/tags", "/alice/feedy/feeds/tags.atom"),
    ] {
        let text = b.get(&srv, &site.target(page)).text();
        let feed = site.target(feed);
        assert!(
            text.contains("<link rel=\"alternate\" type=\"application/atom+xml\"")
                && text.contains(&format!("href=\"{feed}\">")),
            "{page}:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "<a href=\"{feed}\" type=\"application/atom+xml\">Atom feed</a>"
            )),
            "{page}:\n{text}"
        );
    }

    // Private: only a reader's token (or session) gets the feed.
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/feedy", "--visibility", "private"]));
    site.ensure_user("reader");
    site.ensure_user("stranger");
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/feedy", "reader", "read"]));
    let token = |user: &str| {
        let out = ok(site
            .forgelet()
            .args(["token", "create", user, "--name", "feeds"]));
        out.lines().last().unwrap_or_default().to_string()
    };
    let (reader, stranger) = (token("reader"), token("stranger"));
    let feed = site.target("/alice/feedy/feeds/commits/main.atom");
    let secret = want[0].1;
    let with = |auth: Option<String>| {
        let headers: Vec<(&str, &str)> = match &auth {
            Some(a) => vec![("Authorization", a.as_str())],
            None => vec![],
        };
        srv.http("GET", feed.as_bytes(), &headers)
    };
    let r = with(None);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(r
        .header("WWW-Authenticate")
        .is_some_and(|c| c.starts_with("Basic")));
    assert!(!r.text().contains(secret));
    let r = with(Some(basic("reader", &reader)));
    assert_eq!(parse_feed(&r).len(), want.len() + 1);
    assert!(
        r.header("Cache-Control")
            .unwrap_or_default()
            .contains("no-store"),
        "{}",
        r.describe()
    );
    for (who, auth, status) in [
        ("a stranger's token", basic("stranger", &stranger), 404),
        (
            "the reader's name with another's token",
            basic("reader", &stranger),
            401,
        ),
        ("the reader's password", basic("reader", TEST_PASSWORD), 401),
    ] {
        let r = with(Some(auth));
        assert_eq!(r.status, status, "{who}: {}", r.describe());
        assert!(
            !r.text().contains(secret) && !r.text().contains("<feed"),
            "{who}"
        );
    }
    // The same for a repository that does not exist.
    let r = srv.http(
        "GET",
        site.target("/alice/nosuch/feeds/commits/main.atom")
            .as_bytes(),
        &[],
    );
    assert_eq!(r.status, 401);
    // A signed-in reader's browser gets it with its session; a stranger's does not.
    let mut rb = Browser::default();
    sign_in_as(&site, &srv, &mut rb, "reader");
    assert_eq!(parse_feed(&rb.get(&srv, &feed)).len(), want.len() + 1);
    let mut sb = Browser::default();
    sign_in_as(&site, &srv, &mut sb, "stranger");
    assert_eq!(sb.get(&srv, &feed).status, 404);
    srv.finish();
}

/// `compare/{base}...{head}`: the commits on head that base lacks and the diff from their merge
/// base, refs with slashes, unknown refs (404) and unrelated histories; the branches page links it.
#[test]
fn compare_shows_what_a_branch_adds() {
    let site = Site::new("web_compare", SiteOptions::default());
    let work = site.dir().join("work-compare");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    std::fs::write(work.join("shared.txt"), "one\ntwo\nthree\n").unwrap();
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "start"]);
    git_ok(&work, &["checkout", "-q", "-b", "feature/x"]);
    std::fs::write(work.join("shared.txt"), "one\nTWO on the branch\nthree\n").unwrap();
    git_ok(&work, &["commit", "-q", "-am", "branch: change two"]);
    std::fs::write(work.join("added.txt"), "new file\n").unwrap();
    git_ok(&work, &["add", "added.txt"]);
    git_ok(&work, &["commit", "-q", "-m", "branch: add a file"]);
    git_ok(&work, &["checkout", "-q", "main"]);
    std::fs::write(work.join("main-only.txt"), "on main\n").unwrap();
    git_ok(&work, &["add", "main-only.txt"]);
    git_ok(&work, &["commit", "-q", "-m", "main moves on"]);
    git_ok(&work, &["checkout", "-q", "--orphan", "unrelated"]);
    git_ok(&work, &["commit", "-q", "-m", "a history of its own"]);
    git_ok(&work, &["checkout", "-q", "main"]);
    import_work_tree(&site, &work, "alice/cmp");
    let srv = site.start();
    let mut b = Browser::default();

    let r = b.get(&srv, &site.target("/alice/cmp/compare/main...feature/x"));
    assert_eq!(r.status, 200, "{}", r.describe());
    let text = r.text();
    let first = text.find("branch: add a file").expect("the newest commit");
    let second = text.find("branch: change two").expect("the older commit");
    assert!(first < second, "newest first:\n{text}");
    assert!(text.contains("2 commits on"), "{text}");
    for want in [
        "shared.txt",
        "added.txt",
        "+TWO on the branch",
        "-two",
        "+new file",
    ] {
        assert!(text.contains(want), "no {want:?}:\n{text}");
    }
    // What main has and the branch lacks is not the branch's.
    assert!(
        !text.contains("main moves on") && !text.contains("main-only.txt"),
        "{text}"
    );
    let base = git_ok(&work, &["merge-base", "main", "feature/x"]);
    assert!(
        text.contains(&site.target(&format!("/alice/cmp/commit/{}", base.trim()))),
        "the merge base is linked:\n{text}"
    );

    // The other way round: main's one commit.
    let text = b
        .get(&srv, &site.target("/alice/cmp/compare/feature/x...main"))
        .text();
    assert!(
        text.contains("main moves on") && text.contains("main-only.txt"),
        "{text}"
    );
    assert!(!text.contains("branch: add a file"), "{text}");
    // Nothing to compare, and histories with nothing in common.
    let text = b
        .get(&srv, &site.target("/alice/cmp/compare/main...main"))
        .text();
    assert!(text.contains("There is nothing to compare"), "{text}");
    let r = b.get(&srv, &site.target("/alice/cmp/compare/main...unrelated"));
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("entirely different histories"),
        "{}",
        r.text()
    );
    // Unknown refs, and no `...`.
    for missing in [
        "/alice/cmp/compare/main...nope",
        "/alice/cmp/compare/nope...main",
        "/alice/cmp/compare/main..feature/x",
        "/alice/cmp/compare/main...",
    ] {
        assert_eq!(b.get(&srv, &site.target(missing)).status, 404, "{missing}");
    }
    // The branches page links each branch's comparison with the default branch.
    let text = b.get(&srv, &site.target("/alice/cmp/branches")).text();
    assert!(
        text.contains(&format!(
            "href=\"{}\">compare</a>",
            site.target("/alice/cmp/compare/main...feature/x")
        )),
        "{text}"
    );
    assert!(!text.contains("compare/main...main"), "{text}");
    srv.finish();
}

#[test]
fn empty_repository_page_says_how_to_push() {
    let site = Site::new("web_empty", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/blank"]));
    let srv = site.start();
    let r = Browser::default().get(&srv, &site.target("/alice/blank"));
    assert_eq!(r.status, 200);
    let t = r.text();
    assert!(
        t.contains("This repository is empty") && t.contains("git push -u origin main"),
        "{t}"
    );
    // Its Commits tab leads to an empty history, not to a 404; other branches are 404.
    let log = Browser::default().get(&srv, &site.target("/alice/blank/commits/main"));
    assert_eq!(log.status, 200, "{}", log.describe());
    assert!(log.text().contains("No commits yet"));
    assert_eq!(
        Browser::default()
            .get(&srv, &site.target("/alice/blank/commits/other"))
            .status,
        404
    );
    srv.finish();
}

/// The home page of `alice/proj` on a site made with `opts`.
fn repo_home_text(name: &str, opts: SiteOptions) -> String {
    let site = Site::new(name, opts);
    site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let text = Browser::default()
        .get(&srv, &site.target("/alice/proj"))
        .text();
    srv.finish();
    text
}

/// The clone box names the scheme of the clone URL it shows: HTTPS when `base_url` says so.
#[test]
fn the_clone_box_says_https_for_an_https_site() {
    let opts = SiteOptions {
        https: true,
        ..Default::default()
    };
    let text = repo_home_text("web_clone_https", opts);
    assert!(
        text.contains("Clone with HTTPS<") && text.contains("value=\"https://"),
        "{text}"
    );
}

/// The clone box offers SSH only when the site does (`[ssh] host`), with the port in the URL only
/// when it is not 22.
#[test]
fn the_clone_box_offers_ssh_when_the_site_does() {
    let text = repo_home_text("web_clone_no_ssh", SiteOptions::default());
    assert!(text.contains("Clone with HTTP<"), "{text}");
    assert!(
        !text.contains("SSH"),
        "SSH offered by a site without it: {text}"
    );

    for (extra, url) in [
        (
            "[ssh]\nhost = \"git.example.org\"\n",
            "forgelet@git.example.org:alice/proj.git",
        ),
        (
            "[ssh]\nhost = \"git.example.org\"\nport = 2222\nuser = \"git\"\n",
            "ssh://git@git.example.org:2222/alice/proj.git",
        ),
    ] {
        let opts = SiteOptions {
            extra,
            ..Default::default()
        };
        let text = repo_home_text("web_clone_ssh", opts);
        assert!(
            text.contains("Clone with SSH<") && text.contains(&format!("value=\"{url}\"")),
            "{text}"
        );
        // HTTP stays on offer beside it.
        assert!(text.contains("Clone with HTTP<"), "{text}");
    }
}

#[test]
fn history_pages_show_commits_diffs_and_refs_safely() {
    let site = Site::new("web_history", SiteOptions::default());
    let repo = hostile_repo(&site, "alice/web");
    let work = site.dir().join("work-alice-web");
    std::fs::write(work.join("docs/guide.md"), "guide\nmore <em>text</em>\n").unwrap();
    git_ok(&work, &["commit", "-q", "-am", "Second: edit the guide"]);
    git_ok(&work, &["tag", "-a", "v1", "-m", "first release"]);
    git_ok(&work, &["push", "-q", repo.to_str().unwrap(), "main", "v1"]);
    let srv = site.start();
    let mut b = Browser::default();

    let log = b.get(&srv, &site.target("/alice/web/commits/main"));
    assert_eq!(log.status, 200, "{}", log.describe());
    let t = log.text();
    assert!(t.contains("Second: edit the guide"), "{t}");
    assert!(
        !t.contains("<script>alert('msg')"),
        "commit message not escaped:\n{t}"
    );
    let second = git_ok(&repo, &["rev-parse", "main"]);
    let commit = b.get(
        &srv,
        &site.target(&format!("/alice/web/commit/{}", second.trim())),
    );
    assert_eq!(commit.status, 200);
    let t = commit.text();
    assert!(
        t.contains("docs/guide.md") && t.contains("1 file changed"),
        "{t}"
    );
    assert!(
        t.contains("class=\"add\"") && !t.contains("<em>text"),
        "{t}"
    );
    // Short ids work; unknown ones are 404.
    let short = &second.trim()[..10];
    assert_eq!(
        b.get(&srv, &site.target(&format!("/alice/web/commit/{short}")))
            .status,
        200
    );
    assert_eq!(
        b.get(&srv, &site.target("/alice/web/commit/0123456789abcdef"))
            .status,
        404
    );
    // commit/{ref} for a branch or tag name was a 404: a branch, a tag and one step back show
    // the commit they name; what would search history or the reflogs is a 404.
    let first = git_ok(&repo, &["rev-parse", "main~1"]);
    for (rev, id) in [
        ("main", second.trim()),
        ("v1", second.trim()),
        ("main~1", first.trim()),
        ("v1%5E", first.trim()),
    ] {
        let r = b.get(&srv, &site.target(&format!("/alice/web/commit/{rev}")));
        assert_eq!(r.status, 200, "commit/{rev}: {}", r.describe());
        assert!(r.text().contains(id), "commit/{rev} does not show {id}");
    }
    for rev in [
        "main@%7B0%7D",
        ":%2Fguide",
        "main%5E%7B%2Fguide%7D",
        &second.trim()[..6],
    ] {
        let r = b.get(&srv, &site.target(&format!("/alice/web/commit/{rev}")));
        assert_eq!(r.status, 404, "commit/{rev}: {}", r.describe());
    }
    // A path's history.
    let path_log = b
        .get(&srv, &site.target("/alice/web/commits/main/page.html"))
        .text();
    assert!(!path_log.contains("Second: edit the guide"), "{path_log}");

    let branches = b.get(&srv, &site.target("/alice/web/branches")).text();
    assert!(
        branches.contains("feature/x") && branches.contains("default"),
        "{branches}"
    );
    let home = b.get(&srv, &site.target("/alice/web")).text();
    assert!(
        home.contains("/alice/web/tree/v1"),
        "the selector lacks the tag:\n{home}"
    );
    let tags = b.get(&srv, &site.target("/alice/web/tags")).text();
    assert!(
        tags.contains("v1") && tags.contains("first release"),
        "{tags}"
    );
    srv.finish();
}

#[test]
fn owner_pages_and_error_pages_in_the_site_layout() {
    let (site, srv, _) = site_with_private_repo("web_owner");
    site.import_fixture("mixed", "alice/open");
    let mut b = Browser::default();
    let page = b.get(&srv, &site.target("/alice"));
    assert_eq!(page.status, 200, "{}", page.describe());
    let t = page.text();
    assert!(
        t.contains("alice/open") && !t.contains("alice/hidden"),
        "{t}"
    );
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    assert!(b
        .get(&srv, &site.target("/alice"))
        .text()
        .contains("alice/hidden"));

    let mut anon = Browser::default();
    for p in ["/nobody", "/alice/hidden", "/alice/open/blob/main/nope"] {
        let r = anon.get(&srv, &site.target(p));
        assert_eq!(r.status, 404, "{p}");
        assert!(
            r.header("Content-Type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{p}"
        );
        let t = r.text();
        assert!(t.contains("Not found") && t.contains("Sign in"), "{p}: {t}");
    }
    let r = srv.http_body("POST", site.target("/").as_bytes(), &[], b"x=1");
    assert_eq!(r.status, 405);
    assert!(r.header("Allow").is_some());
    srv.finish();
}

#[test]
fn settings_manage_visibility_collaborators_rename_and_delete() {
    let (site, srv, _) = site_with_private_repo("web_settings");
    site.ensure_user("bob");
    let mut b = Browser::default();
    // Others: 404 (cannot read) before sign-in.
    assert_eq!(
        b.get(&srv, &site.target("/alice/hidden/settings")).status,
        404
    );
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let home = b.get(&srv, &site.target("/alice/hidden")).text();
    assert!(
        home.contains("/alice/hidden/settings"),
        "no Settings link for the owner"
    );
    let form = b.get(&srv, &site.target("/alice/hidden/settings"));
    assert_eq!(form.status, 200, "{}", form.describe());
    let csrf = csrf_of(&form);
    let post = |b: &mut Browser, f: &[(&str, &str)]| {
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(f);
        b.post(&srv, &site.target("/alice/hidden/settings"), &all)
    };

    let r = post(
        &mut b,
        &[
            ("action", "general"),
            ("description", "Now public"),
            ("visibility", "public"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("Saved."));
    let anon = Browser::default()
        .get(&srv, &site.target("/alice/hidden"))
        .text();
    assert!(anon.contains("Now public"), "{anon}");
    let r = post(
        &mut b,
        &[
            ("action", "general"),
            ("description", ""),
            ("visibility", "private"),
        ],
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        Browser::default()
            .get(&srv, &site.target("/alice/hidden"))
            .status,
        404
    );

    let r = post(
        &mut b,
        &[
            ("action", "add_collaborator"),
            ("user", "bob"),
            ("perm", "write"),
        ],
    );
    assert!(
        r.text().contains("bob may now read and push"),
        "{}",
        r.text()
    );
    let cfg = ok(site.forgelet().args(["repo", "list"]));
    assert!(cfg.contains("alice/hidden"));
    let r = post(
        &mut b,
        &[("action", "add_collaborator"), ("user", "nobody")],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no user named"));
    let r = post(
        &mut b,
        &[("action", "remove_collaborator"), ("user", "bob")],
    );
    assert!(r.text().contains("bob no longer has access"));
    let r = b.post(
        &srv,
        &site.target("/alice/hidden/settings"),
        &[
            ("csrf", "bad"),
            ("action", "general"),
            ("visibility", "public"),
        ],
    );
    assert_eq!(r.status, 403, "a settings form without its token");

    let r = post(&mut b, &[("action", "rename"), ("name", "renamed")]);
    assert_eq!(r.status, 303, "{}", r.describe());
    assert!(site.repo_path("alice/renamed").is_dir());
    assert!(!site.repo_path("alice/hidden").exists());
    let csrf2 = csrf_of(&b.get(&srv, &site.target("/alice/renamed/settings")));
    let r = b.post(
        &srv,
        &site.target("/alice/renamed/settings"),
        &[("csrf", &csrf2), ("action", "delete"), ("confirm", "wrong")],
    );
    assert_eq!(r.status, 400);
    assert!(site.repo_path("alice/renamed").is_dir());
    let r = b.post(
        &srv,
        &site.target("/alice/renamed/settings"),
        &[
            ("csrf", &csrf2),
            ("action", "delete"),
            ("confirm", "renamed"),
        ],
    );
    assert_eq!(r.status, 303);
    assert!(!site.repo_path("alice/renamed").exists());
    let trash: Vec<_> = std::fs::read_dir(site.data_dir.join("trash"))
        .unwrap()
        .collect();
    assert_eq!(
        trash.len(),
        1,
        "the deleted repository is kept in the trash"
    );
    srv.finish();
}

/// A repository deleted while a push to it still ran left a folder under its old name: git,
/// still writing the push's objects into its quarantine, made the folders their paths need
/// again. Deleting (and renaming) now waits for running pushes; here a push's hold on the
/// repository (the shared lock every push takes, held by `flock` for a second) is still held
/// when the owner deletes it.
#[test]
fn a_repository_deleted_during_a_push_waits_for_it_and_leaves_nothing_behind() {
    let (site, srv, repo) = site_with_private_repo("web_delete_during_push");
    let lock = repo.join("forgelet-maintenance.lock");
    let mut push = std::process::Command::new("flock")
        .arg("-s")
        .arg(&lock)
        .args(["sleep", "1"])
        .spawn()
        .unwrap();
    // Until flock holds it, an exclusive try succeeds.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ok_status(
        std::process::Command::new("flock")
            .args(["-n", "-x"])
            .arg(&lock)
            .arg("true"),
    ) {
        assert!(
            std::time::Instant::now() < until,
            "flock never held the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut b = Browser::default();
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let csrf = csrf_of(&b.get(&srv, &site.target("/alice/hidden/settings")));
    let r = b.post(
        &srv,
        &site.target("/alice/hidden/settings"),
        &[("csrf", &csrf), ("action", "delete"), ("confirm", "hidden")],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    assert!(
        push.try_wait().unwrap().is_some(),
        "the repository was deleted while the push held it"
    );
    assert!(!repo.exists());
    srv.finish();
}

fn ok_status(c: &mut std::process::Command) -> bool {
    c.status().unwrap().success()
}

/// The value of the readonly input holding a new token.
pub(crate) fn new_token_of(page: &Response) -> String {
    let t = page.text();
    let at = t
        .find("class=\"mono\" readonly value=\"flt_")
        .expect("no token shown");
    let rest = &t[at + "class=\"mono\" readonly value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

#[test]
fn tokens_and_password_from_the_settings_page() {
    let (site, srv, _) = site_with_private_repo("web_account");
    let mut b = Browser::default();
    assert_eq!(b.get(&srv, &site.target("/-/settings/tokens")).status, 303);
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let mut other = Browser::default();
    assert_eq!(sign_in(&site, &srv, &mut other, TEST_PASSWORD).status, 303);
    let page = b.get(&srv, &site.target("/-/settings/tokens"));
    assert_eq!(page.status, 200, "{}", page.describe());
    let csrf = csrf_of(&page);
    let url = site.target("/-/settings/tokens");
    let r = b.post(
        &srv,
        &url,
        &[("csrf", &csrf), ("action", "create"), ("name", "laptop")],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let token = new_token_of(&r);
    assert_eq!(
        r.header("Cache-Control"),
        Some("private, no-store"),
        "the page showing a token may be kept"
    );
    // git accepts it for the private repository, once revoked no more.
    let tmp = site.dir();
    let with = site
        .url("/alice/hidden.git")
        .replace("://", &format!("://alice:{token}@"));
    let out = run(git(tmp).arg("ls-remote").arg(&with));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        !b.get(&srv, &url).text().contains(&token),
        "a token was shown twice"
    );
    let r = b.post(
        &srv,
        &url,
        &[("csrf", &csrf), ("action", "revoke"), ("name", "laptop")],
    );
    assert!(r.text().contains("revoked"), "{}", r.text());
    assert!(!run(git(tmp).arg("ls-remote").arg(&with)).status.success());

    // Password: the old one is asked for; afterwards this browser stays signed in, others not.
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "password"),
            ("old", "wrong"),
            ("new", "new-password-9"),
            ("again", "new-password-9"),
        ],
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("current password is not right"));
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "password"),
            ("old", TEST_PASSWORD),
            ("new", "new-password-9"),
            ("again", "new-password-9"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.describe());
    assert_eq!(
        b.get(&srv, &site.target("/alice/hidden")).status,
        200,
        "this browser was signed out"
    );
    assert_eq!(
        other.get(&srv, &site.target("/alice/hidden")).status,
        404,
        "another session lived on"
    );
    // Sign out everywhere, this browser included.
    let csrf = csrf_of(&b.get(&srv, &url));
    let r = b.post(&srv, &url, &[("csrf", &csrf), ("action", "signout_all")]);
    assert_eq!(r.status, 303);
    assert_eq!(b.get(&srv, &site.target("/alice/hidden")).status, 404);
    srv.finish();
}

/// The command line let a token live 36,500 days and the settings page 3,650: one limit now,
/// 3,650 days, refused beyond by both in the same words (the page makes a sentence of them).
#[test]
fn token_lifetime_limit_is_the_same_on_the_command_line_and_the_web() {
    let (site, srv, _) = site_with_private_repo("web_token_limit");
    let cli = |name: &str, days: &str| {
        run(site.forgelet().args([
            "token",
            "create",
            "alice",
            "--name",
            name,
            "--expires",
            days,
        ]))
    };
    let out = cli("long", "3651");
    assert!(!out.status.success(), "{}", all_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr
        .trim()
        .strip_prefix("forgelet: ")
        .unwrap_or_else(|| panic!("not a forgelet message: {stderr}"));
    assert!(said.contains("from 1 to 3650"), "{said}");
    assert!(
        run(site.forgelet().args(["token", "list", "alice"]))
            .stdout
            .is_empty(),
        "a refused token was made"
    );

    let mut b = Browser::default();
    assert_eq!(sign_in(&site, &srv, &mut b, TEST_PASSWORD).status, 303);
    let url = site.target("/-/settings/tokens");
    let csrf = csrf_of(&b.get(&srv, &url));
    let web = |b: &mut Browser, name: &str, days: &str| {
        b.post(
            &srv,
            &url,
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("name", name),
                ("expires", days),
            ],
        )
    };
    let r = web(&mut b, "long", "3651");
    assert_eq!(r.status, 400, "{}", r.describe());
    let text = r
        .text()
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let sentence = format!("{}{}.", said[..1].to_uppercase(), &said[1..]);
    assert!(
        text.contains(&sentence),
        "the page does not say {sentence:?}:\n{text}"
    );
    assert!(!text.contains("flt_"), "a refused token was shown");

    // The limit itself is allowed by both.
    let out = cli("cli-max", "3650");
    assert!(out.status.success(), "{}", all_output(&out));
    let r = web(&mut b, "web-max", "3650");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(new_token_of(&r).starts_with("flt_"));
    let list = ok(site.forgelet().args(["token", "list", "alice"]));
    assert!(
        list.contains("cli-max\t") && list.contains("web-max\t") && !list.contains("long"),
        "{list}"
    );
    srv.finish();
}

#[test]
fn snapshots_download_as_tar_gz_and_zip() {
    let site = Site::new("web_archive", SiteOptions::default());
    hostile_repo(&site, "alice/web");
    let srv = site.start();
    let mut b = Browser::default();
    let home = b.get(&srv, &site.target("/alice/web")).text();
    assert!(home.contains("/alice/web/archive/main.tar.gz"), "{home}");

    let tgz = b.get(&srv, &site.target("/alice/web/archive/feature/x.tar.gz"));
    assert_eq!(tgz.status, 200, "{}", tgz.describe());
    assert_eq!(tgz.header("Content-Type"), Some("application/gzip"));
    assert!(tgz
        .header("Content-Disposition")
        .unwrap_or_default()
        .contains("filename=\"web-feature-x.tar.gz\""));
    let file = site.dir().join("snap.tar.gz");
    std::fs::write(&file, &tgz.body).unwrap();
    let list = ok(std::process::Command::new("tar").arg("-tzf").arg(&file));
    assert!(list.contains("web-feature-x/docs/guide.md"), "{list}");

    let zip = b.get(&srv, &site.target("/alice/web/archive/main.zip"));
    assert_eq!(zip.status, 200);
    assert!(zip.body.starts_with(b"PK"), "not a zip file");

    assert_eq!(
        b.get(&srv, &site.target("/alice/web/archive/nope.tar.gz"))
            .status,
        404
    );
    assert_eq!(
        b.get(&srv, &site.target("/alice/web/archive/main.rar"))
            .status,
        404
    );
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/web", "--visibility", "private"]));
    assert_eq!(
        b.get(&srv, &site.target("/alice/web/archive/main.tar.gz"))
            .status,
        404
    );
    srv.finish();
}

#[test]
fn page_limits_show_their_message() {
    let site = Site::new("web_limits", SiteOptions::default());
    let work = site.dir().join("work-limits");
    std::fs::create_dir_all(work.join("many")).unwrap();
    let big_line = "x".repeat(99) + "\n";
    std::fs::write(work.join("big.txt"), big_line.repeat(16_000)).unwrap(); // 1.6 MB
    std::fs::write(
        work.join("README.md"),
        "# Big\n\n".to_string() + &big_line.repeat(6_000),
    )
    .unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "big files"]);
    for i in 0..310 {
        std::fs::write(work.join(format!("many/f{i:03}.txt")), format!("{i}\n")).unwrap();
    }
    git_ok(&work, &["add", "-A"]);
    git_ok(
        &work,
        &[
            "-c",
            "user.name=<script>alert(1)</script>",
            "commit",
            "-q",
            "-m",
            "310 files",
        ],
    );
    git_ok(&work, &["branch", "<b>bold</b>"]);
    import_work_tree(&site, &work, "alice/limits");
    let srv = site.start();
    let mut b = Browser::default();

    let blob = b.get(&srv, &site.target("/alice/limits/blob/main/big.txt"));
    assert_eq!(blob.status, 200);
    let t = blob.text();
    assert!(
        t.contains("This file is too large to show here (1.5 MiB)"),
        "huge blob without a note"
    );
    assert!(t.len() < 64 << 10, "the page carries the file");
    let raw = b.get(&srv, &site.target("/alice/limits/raw/main/big.txt"));
    assert_eq!(raw.body.len(), 1_600_000, "raw sends the whole file");

    let home = b.get(&srv, &site.target("/alice/limits")).text();
    assert!(
        home.contains("This README is too large to show here (585.9 KiB)"),
        "huge README without a note"
    );

    let head = git_ok(&work, &["rev-parse", "HEAD"]);
    let commit = b.get(
        &srv,
        &site.target(&format!("/alice/limits/commit/{}", head.trim())),
    );
    assert_eq!(commit.status, 200);
    let t = commit.text();
    assert!(
        t.contains("This commit changes 310 files; the first 300 are shown"),
        "huge diff without a note"
    );
    assert!(!t.contains("<script>alert(1)"), "author name not escaped");
    // The first commit's 22,002 lines pass the line limit: big.txt is shown in part, and
    // the figures are still the whole commit's.
    let first = git_ok(&work, &["rev-parse", "HEAD~1"]);
    let commit = b.get(
        &srv,
        &site.target(&format!("/alice/limits/commit/{}", first.trim())),
    );
    assert_eq!(commit.status, 200);
    let t = commit.text();
    for want in [
        "2 files changed, <span class=\"plus\">+22002</span>",
        "<span class=\"plus\">+16000</span>",
        "<span class=\"plus\">+6002</span>",
        "The rest of this file's changes are past the server's limit.",
        "This diff is too large to show whole",
    ] {
        assert!(t.contains(want), "the big commit's page lacks {want:?}");
    }

    let branches = b.get(&srv, &site.target("/alice/limits/branches")).text();
    assert!(
        !branches.contains("<b>bold</b>") && branches.contains("bold"),
        "{branches}"
    );
    srv.finish();
}

/// A session cookie signed the way the server signs one (HMAC-SHA256 under the site secret over
/// name, stamp and expiry), so a test can make one that has expired.
fn forged_session(site: &Site, user: &str, expires: u64) -> String {
    use hmac::{Hmac, Mac};
    let secret = std::fs::read(site.data_dir.join("secret")).unwrap();
    let users = std::fs::read_to_string(site.data_dir.join("users.toml")).unwrap();
    let block = users
        .split("[[user]]")
        .find(|b| b.contains(&format!("name = \"{user}\"")))
        .unwrap();
    let stamp = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("stamp = \""))
        .unwrap()
        .trim_end_matches('"');
    let nonce = "0123456789abcdef0123456789abcdef";
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&secret).unwrap();
    mac.update(b"session\0");
    mac.update(format!("{user}\0{stamp}\0{expires}\0{nonce}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{user}~{expires}~{nonce}~{hex}")
}

#[test]
fn expired_sessions_are_anonymous() {
    let (site, srv, _) = site_with_private_repo("web_expiry");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let with = |cookie: String| Browser {
        cookies: vec![("forgelet_session".into(), cookie)],
        ..Default::default()
    };
    // The forging is right: a cookie that expires in an hour is accepted...
    let mut fresh = with(forged_session(&site, "alice", now + 3600));
    assert_eq!(fresh.get(&srv, &site.target("/alice/hidden")).status, 200);
    // ...and one that expired a minute ago is not.
    let mut old = with(forged_session(&site, "alice", now - 60));
    assert_eq!(old.get(&srv, &site.target("/alice/hidden")).status, 404);
    srv.finish();
}

/// A worker keeps repositories open between requests; what it shows must still be what is on
/// disk: new pushes (loose and packed), a repack that deletes the old packs, a visibility
/// change, and a repository deleted and made anew under the same name.
#[test]
fn pages_follow_pushes_repacks_and_recreation() {
    let site = Site::new(
        "web_fresh",
        SiteOptions {
            // One page worker, so every request meets the same open repository.
            server_extra: "workers = 1",
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/live"]));
    let bare = site.repo_path("alice/live");
    let work = site.dir().join("work-live");
    std::fs::create_dir_all(&work).unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    let commit = |subject: &str, unpack_limit: &str| -> String {
        std::fs::write(work.join("notes.txt"), format!("{subject}\n")).unwrap();
        git_ok(&work, &["add", "-A"]);
        git_ok(&work, &["commit", "-q", "-m", subject]);
        git_ok(
            &work,
            &[
                "-c",
                &format!("transfer.unpackLimit={unpack_limit}"),
                "push",
                "-q",
                bare.to_str().unwrap(),
                "main",
            ],
        );
        git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string()
    };
    let srv = site.start();
    let mut b = Browser::default();
    let home = site.target("/alice/live");
    let shows = |b: &mut Browser, target: &str, text: &str| {
        let r = b.get(&srv, target);
        assert_eq!(r.status, 200, "{target}: {}", r.describe());
        assert!(r.text().contains(text), "{target} lacks {text:?}");
    };
    assert!(b
        .get(&srv, &home)
        .text()
        .contains("This repository is empty"));
    // Loose objects (a small push is unpacked), then a pack of its own.
    let first = commit("first-subject", "100");
    shows(&mut b, &home, "first-subject");
    let second = commit("second-subject", "1");
    shows(&mut b, &home, "second-subject");
    // The latest commit links to its page.
    shows(
        &mut b,
        &home,
        &format!(
            "href=\"{}\"",
            site.target(&format!("/alice/live/commit/{second}"))
        ),
    );
    shows(
        &mut b,
        &site.target(&format!("/alice/live/commit/{second}")),
        "second-subject",
    );
    shows(
        &mut b,
        &site.target("/alice/live/commits/main"),
        "first-subject",
    );
    // A repack that deletes the packs and loose objects the worker had open.
    git_ok(&bare, &["repack", "-a", "-d", "-q"]);
    git_ok(&bare, &["prune", "--expire=now"]);
    shows(
        &mut b,
        &site.target(&format!("/alice/live/commit/{first}")),
        "first-subject",
    );
    shows(
        &mut b,
        &site.target("/alice/live/blob/main/notes.txt"),
        "second-subject",
    );
    // Made private: hidden from the next anonymous request.
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/live", "--visibility", "private"]));
    assert_eq!(b.get(&srv, &home).status, 404);
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/live", "--visibility", "public"]));
    shows(&mut b, &home, "second-subject");
    // Removed outright and made again: none of the old history is served.
    std::fs::remove_dir_all(&bare).unwrap();
    ok(site.forgelet().args(["repo", "create", "alice/live"]));
    assert!(b
        .get(&srv, &home)
        .text()
        .contains("This repository is empty"));
    for id in [&first, &second] {
        let r = b.get(&srv, &site.target(&format!("/alice/live/commit/{id}")));
        assert_eq!(r.status, 404, "old commit {id} after recreation");
    }
    srv.finish();
}

/// File names, folder names, README text, commit messages and author names that are not UTF-8
/// are shown as text (never markup), and such files and folders open from their links.
#[test]
fn names_and_text_that_are_not_utf8_show_as_text_and_open() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let site = Site::new("web_bytes", SiteOptions::default());
    let work = site.dir().join("work-bytes");
    let dir = work.join(OsStr::from_bytes(b"d\xff<b>"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("inner.txt"), "inner file\n").unwrap();
    let file = OsStr::from_bytes(b"caf\xe9 <i>x.txt");
    std::fs::write(
        work.join(file),
        b"latin \xe9 <script>alert(1)</script>\nsecond\n",
    )
    .unwrap();
    std::fs::write(
        work.join("README.md"),
        b"# Ti\xfftle\n\n<script>alert(2)</script> [in](d%FF%3Cb%3E/inner.txt)\n",
    )
    .unwrap();
    git_ok(&work, &["init", "-q", "-b", "main"]);
    git_ok(&work, &["add", "-A"]);
    git_ok(&work, &["commit", "-q", "-m", "first"]);
    // git commit would turn the bytes into UTF-8 (as Latin-1): write the commit object itself.
    let tree = git_ok(&work, &["rev-parse", "HEAD^{tree}"]);
    let parent = git_ok(&work, &["rev-parse", "HEAD"]);
    let mut object = format!("tree {}\nparent {}\n", tree.trim(), parent.trim()).into_bytes();
    object.extend_from_slice(b"author Ren\xe9 \"q\" & co <a@example.com> 1710000000 +0000\n");
    object.extend_from_slice(b"committer C <c@example.com> 1710000000 +0000\n\n");
    object.extend_from_slice(b"Subject \xfe <script>alert(3)</script>\n");
    let out = run_with_stdin(
        git(&work).args(["hash-object", "-t", "commit", "-w", "--stdin"]),
        &object,
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let id = String::from_utf8(out.stdout).unwrap();
    git_ok(&work, &["update-ref", "refs/heads/main", id.trim()]);
    ok(git(&work)
        .arg("branch")
        .arg(OsStr::from_bytes(b"br\xff<x>"))
        .arg("HEAD~1"));
    let bare = import_work_tree(&site, &work, "alice/bytes");
    let srv = site.start();
    let mut b = Browser::default();

    let home = b.get(&srv, &site.target("/alice/bytes"));
    assert_eq!(home.status, 200, "{}", home.describe());
    let t = home.text();
    for want in [
        "caf\u{fffd} &#60;i&#62;x.txt",
        "d\u{fffd}&#60;b&#62;",
        "Ti\u{fffd}tle",
        "Subject \u{fffd}",
    ] {
        assert!(t.contains(want), "home lacks {want:?}:\n{t}");
    }
    for never in ["<script>", "<i>x", "<b>"] {
        assert!(!t.contains(never), "home contains {never:?}:\n{t}");
    }
    // The links carry the exact bytes, and open.
    let file_url = site.target("/alice/bytes/blob/main/caf%E9%20%3Ci%3Ex.txt");
    assert!(t.contains(&file_url), "no link to the file:\n{t}");
    let dir_url = site.target("/alice/bytes/tree/main/d%FF%3Cb%3E");
    assert!(t.contains(&dir_url), "no link to the folder:\n{t}");
    let blob = b.get(&srv, &file_url);
    assert_eq!(blob.status, 200, "{}", blob.describe());
    let bt = blob.text();
    assert!(
        bt.contains("latin \u{fffd}") && bt.contains("second"),
        "{bt}"
    );
    assert!(!bt.contains("<script>") && !bt.contains("<i>x"), "{bt}");
    let raw = b.get(
        &srv,
        &site.target("/alice/bytes/raw/main/caf%E9%20%3Ci%3Ex.txt"),
    );
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, b"latin \xe9 <script>alert(1)</script>\nsecond\n");
    let tree = b.get(&srv, &dir_url);
    assert_eq!(tree.status, 200, "{}", tree.describe());
    let inner = site.target("/alice/bytes/blob/main/d%FF%3Cb%3E/inner.txt");
    assert!(tree.text().contains(&inner), "{}", tree.text());
    assert!(b.get(&srv, &inner).text().contains("inner file"));
    let history = b.get(&srv, &site.target("/alice/bytes/commits/main/d%FF%3Cb%3E"));
    assert_eq!(history.status, 200);
    let ht = history.text();
    // Only the first commit touched that folder.
    assert!(ht.contains("first") && !ht.contains("Subject"), "{ht}");
    // A missing file with such a name is a plain 404.
    assert_eq!(
        b.get(&srv, &site.target("/alice/bytes/blob/main/nope%FF"))
            .status,
        404
    );

    let id = git_ok(&bare, &["rev-parse", "main"]);
    let commit = b.get(
        &srv,
        &site.target(&format!("/alice/bytes/commit/{}", id.trim())),
    );
    assert_eq!(commit.status, 200);
    let ct = commit.text();
    assert!(
        ct.contains("Subject \u{fffd}") && ct.contains("Ren\u{fffd} &#34;q&#34; &#38; co"),
        "{ct}"
    );
    assert!(!ct.contains("<script>"), "{ct}");

    // A branch whose name is not UTF-8 is listed as text and linked by its commit.
    let first = git_ok(&bare, &["rev-parse", "main~1"]);
    let branches = b.get(&srv, &site.target("/alice/bytes/branches"));
    assert_eq!(branches.status, 200);
    let bt = branches.text();
    let by_id = site.target(&format!("/alice/bytes/tree/{}", first.trim()));
    assert!(
        bt.contains("br\u{fffd}&#60;x&#62;") && bt.contains(&by_id) && !bt.contains("<x>"),
        "{bt}"
    );
    let at_first = b.get(&srv, &by_id);
    assert_eq!(at_first.status, 200, "{}", at_first.describe());
    assert!(at_first.text().contains("caf\u{fffd}"));
    srv.finish();
}

/// Settings belong to the owner and the site's admins: a collaborator, even with write
/// access, gets 403 for the page and for its form; someone who may not read gets 404.
#[test]
fn settings_are_for_the_owner_and_admins_only() {
    let (site, srv, _) = site_with_private_repo("web_settings_who");
    site.ensure_user("bob");
    site.ensure_user("carol");
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/hidden", "bob", "write"]));
    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "add", "root", "--admin", "--password-stdin"]),
        format!("{TEST_PASSWORD}\n").as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let settings = site.target("/alice/hidden/settings");

    let mut bob = Browser::default();
    sign_in_as(&site, &srv, &mut bob, "bob");
    let home = bob.get(&srv, &site.target("/alice/hidden"));
    assert_eq!(home.status, 200);
    assert!(
        !home.text().contains(&settings),
        "a Settings link for a collaborator"
    );
    let page = bob.get(&srv, &settings);
    assert_eq!(page.status, 403, "{}", page.describe());
    assert!(page.text().contains("Only the owner and site admins"));
    // The form of a page bob may see carries his token; the settings form still refuses him.
    let csrf = csrf_of(&bob.get(&srv, &site.target("/-/settings/tokens")));
    let r = bob.post(
        &srv,
        &settings,
        &[
            ("csrf", &csrf),
            ("action", "general"),
            ("visibility", "public"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    assert_eq!(
        Browser::default()
            .get(&srv, &site.target("/alice/hidden"))
            .status,
        404,
        "still private"
    );

    let mut carol = Browser::default();
    sign_in_as(&site, &srv, &mut carol, "carol");
    assert_eq!(carol.get(&srv, &settings).status, 404);

    let mut root = Browser::default();
    sign_in_as(&site, &srv, &mut root, "root");
    let form = root.get(&srv, &settings);
    assert_eq!(form.status, 200, "{}", form.describe());
    let csrf = csrf_of(&form);
    let r = root.post(
        &srv,
        &settings,
        &[
            ("csrf", &csrf),
            ("action", "general"),
            ("description", "set by an admin"),
            ("visibility", "public"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let anon = Browser::default().get(&srv, &site.target("/alice/hidden"));
    assert_eq!(anon.status, 200);
    assert!(anon.text().contains("set by an admin"));
    srv.finish();
}

/// A repository damaged on disk gives a 500 page in the site's layout that says nothing about
/// the server (no path, no library message); the details go to forgelet's log.
#[test]
fn a_broken_repository_gives_a_500_page_without_details() {
    let site = Site::new("web_500", SiteOptions::default());
    let repo = site.import_fixture("loose-only", "alice/broken");
    let tree = git_ok(&repo, &["rev-parse", "main^{tree}"]);
    let tree = tree.trim();
    let object = repo.join("objects").join(&tree[..2]).join(&tree[2..]);
    assert!(object.is_file(), "the fixture keeps its objects loose");
    set_mode(&object, 0o644);
    std::fs::write(&object, b"not a zlib stream").unwrap();
    let srv = site.start();
    let r = Browser::default().get(&srv, &site.target("/alice/broken/tree/main"));
    assert_eq!(r.status, 500, "{}", r.describe());
    let t = r.text();
    assert!(
        r.header("Content-Type")
            .unwrap_or_default()
            .starts_with("text/html")
            && t.contains("Sign in"),
        "not in the layout: {t}"
    );
    let data_dir = site.data_dir.to_string_lossy().into_owned();
    for never in [data_dir.as_str(), tree, "zlib", "inflate", "object"] {
        assert!(!t.contains(never), "the 500 page tells {never:?}: {t}");
    }
    let log = srv.forgelet_stderr();
    assert!(
        log.contains("alice/broken"),
        "the log lacks the details: {log}"
    );
    srv.finish();
}

/// The site's own pages moved under `/-/`, a name no owner can take; their old addresses
/// redirect there for good, keeping the query, and a form posted to an old address (a page
/// cached before the move) is sent on with 308, which keeps its method and body.
#[test]
fn old_site_page_addresses_redirect_under_the_prefix() {
    let (site, srv, _) = site_with_private_repo("web_moved");
    let mut b = Browser::default();
    let css = {
        let page = b.get(&srv, &site.target("/")).text();
        let at = page.find("/-/static/forgelet-").expect("a stylesheet link");
        let name = &page[at + "/-/static/".len()..];
        name[..name.find('"').unwrap()].to_string()
    };
    for (old, new) in [
        ("/login?next=/alice/hidden", "/-/login?next=/alice/hidden"),
        ("/logout", "/-/logout"),
        ("/new", "/-/new"),
        ("/settings/tokens", "/-/settings/tokens"),
        (&format!("/static/{css}"), &format!("/-/static/{css}")),
    ] {
        let r = b.get(&srv, &site.target(old));
        assert_eq!(r.status, 301, "{old}: {}", r.describe());
        assert_eq!(
            r.header("Location"),
            Some(site.target(new).as_str()),
            "{old}"
        );
    }
    assert_eq!(b.get(&srv, &site.target("/-/login")).status, 200);

    // The sign-in form, posted where it used to go.
    let csrf = csrf_of(&b.get(&srv, &site.target("/-/login")));
    let form = [
        ("csrf", csrf.as_str()),
        ("user", "alice"),
        ("password", TEST_PASSWORD),
    ];
    let r = b.post(&srv, &site.target("/login"), &form);
    assert_eq!(r.status, 308, "{}", r.describe());
    let to = r.header("Location").unwrap_or_default().to_string();
    assert_eq!(to, site.target("/-/login"));
    let r = b.post(&srv, &to, &form);
    assert_eq!(
        r.status,
        303,
        "signed in at the new address: {}",
        r.describe()
    );
    assert!(b.get(&srv, &site.target("/alice/hidden")).status == 200);

    // No owner can take the prefix, nor an old address.
    for name in ["-", "login", "static"] {
        let out = run_with_stdin(
            site.forgelet()
                .args(["user", "add", name, "--password-stdin"]),
            format!("{TEST_PASSWORD}\n").as_bytes(),
        );
        let said = all_output(&out);
        assert!(!out.status.success(), "user {name} was added: {said}");
        assert!(
            said.contains(&format!("{name:?}")) || said.contains(name),
            "{said}"
        );
    }
    srv.finish();
}

/// A repository's settings page answered 403 to someone not signed in, though they may be its
/// owner: they are now sent to sign in, and come back to the page. A form posted without a
/// session is still refused.
#[test]
fn settings_ask_someone_not_signed_in_to_sign_in() {
    let (site, srv, _) = site_with_private_repo("web_settings_sign_in");
    site.import_fixture("mixed", "alice/open");
    let mut b = Browser::default();
    let settings = site.target("/alice/open/settings");
    let r = b.get(&srv, &settings);
    assert_eq!(r.status, 303, "{}", r.describe());
    let to = r.header("Location").unwrap_or_default().to_string();
    assert_eq!(to, site.target(&format!("/-/login?next={settings}")));
    // A private repository is still the same 404 as a missing one.
    assert_eq!(
        b.get(&srv, &site.target("/alice/hidden/settings")).status,
        404
    );
    let csrf = csrf_of(&b.get(&srv, &to));
    let r = b.post(
        &srv,
        &site.target("/-/login"),
        &[
            ("csrf", &csrf),
            ("user", "alice"),
            ("password", TEST_PASSWORD),
            ("next", &settings),
        ],
    );
    assert_eq!(
        r.header("Location"),
        Some(settings.as_str()),
        "{}",
        r.describe()
    );
    assert_eq!(b.get(&srv, &settings).status, 200);
    let mut anon = Browser::default();
    let csrf = csrf_of(&anon.get(&srv, &site.target("/-/login")));
    let r = anon.post(&srv, &settings, &[("csrf", &csrf), ("action", "general")]);
    assert_eq!(r.status, 403, "{}", r.describe());
    srv.finish();
}

/// `ssh-keygen -t ed25519` in `dir`: the .pub file's line, and the fingerprint `ssh-keygen -l`
/// prints.
fn new_ssh_key(dir: &std::path::Path, file: &str) -> (String, String) {
    let path = dir.join(file);
    ok(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f"])
        .arg(&path));
    let public = path.with_extension("pub");
    let listed = ok(std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&public));
    let line = std::fs::read_to_string(&public).unwrap().trim().to_string();
    (line, listed.split(' ').nth(1).unwrap().to_string())
}

#[test]
fn ssh_keys_from_the_settings_page() {
    let site = Site::new("web_ssh_keys", SiteOptions::default());
    let index = site.dir().join("ssh").join("keys");
    let mut config = std::fs::read_to_string(&site.config).unwrap();
    config.push_str(&format!(
        "\n[ssh]\nhost = \"git.example.org\"\nkey_index = \"{}\"\n",
        index.display()
    ));
    std::fs::write(&site.config, config).unwrap();
    site.ensure_user("alice");
    site.ensure_user("bob");
    let (mine, fingerprint) = new_ssh_key(site.dir(), "mine");
    let (bobs, _) = new_ssh_key(site.dir(), "bobs");
    std::fs::write(site.dir().join("bobs.pub"), &bobs).unwrap();
    ok(site
        .forgelet()
        .args(["key", "add", "bob"])
        .arg(site.dir().join("bobs.pub")));
    let srv = site.start();
    let url = site.target("/-/settings/keys");

    // Not signed in: to the sign-in page, and back here after.
    let mut b = Browser::default();
    let r = b.get(&srv, &url);
    assert_eq!(r.status, 303);
    assert!(
        r.header("Location")
            .unwrap_or("")
            .contains("/-/login?next="),
        "{}",
        r.describe()
    );

    sign_in_as(&site, &srv, &mut b, "alice");
    let settings = b.get(&srv, &site.target("/-/settings/tokens"));
    assert!(
        settings.text().contains(&format!("href=\"{url}\"")),
        "no link to the keys page"
    );
    let page = b.get(&srv, &url);
    assert_eq!(page.status, 200, "{}", page.describe());
    assert!(page.text().contains("No SSH keys yet"));
    let csrf = csrf_of(&page);

    // Added (named after its comment), listed with its fingerprint, type and bits. Pasted as a
    // browser sends a .pub file's text: with its line break (once dropped with the whole field).
    let pasted = format!("{mine}\r\n");
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "add"),
            ("name", ""),
            ("key", &pasted),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let text = r.text();
    assert!(text.contains("SSH key me-laptop added"), "{text}");
    assert!(text.contains(&fingerprint), "{text}");
    assert!(text.contains("ED25519, 256 bits"), "{text}");
    assert!(std::fs::read_to_string(&index)
        .unwrap()
        .contains(mine.split(' ').nth(1).unwrap()));

    // The same key again: 409, with its name; bob's key: 409, without naming bob.
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "add"),
            ("name", "again"),
            ("key", &mine),
        ],
    );
    assert_eq!(r.status, 409, "{}", r.describe());
    assert!(
        r.text().contains("already has this key, named me-laptop"),
        "{}",
        r.text()
    );
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "add"),
            ("name", "x"),
            ("key", &bobs),
        ],
    );
    assert_eq!(r.status, 409, "{}", r.describe());
    let text = r.text();
    assert!(text.contains("already in use by another account"), "{text}");
    // As a word of its own: the paste kept in the form (base64) may hold the letters by chance.
    let word_at = |i: usize| {
        let is_word =
            |c: Option<u8>| c.is_some_and(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c));
        !is_word(
            i.checked_sub(1)
                .and_then(|j| text.as_bytes().get(j).copied()),
        ) && !is_word(text.as_bytes().get(i + 3).copied())
    };
    assert!(
        !text.match_indices("bob").any(|(i, _)| word_at(i)),
        "bob's name leaked: {text}"
    );
    // Not a key: 400, saying what is wrong, the paste kept for correcting.
    let r = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "add"),
            ("name", "x"),
            ("key", "ssh-dss AAAAB3NzaC1kc3M="),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.describe());
    assert!(
        r.text().contains("DSA keys (ssh-dss) are not accepted"),
        "{}",
        r.text()
    );
    assert!(r.text().contains("ssh-dss AAAAB3NzaC1kc3M=</textarea>"));
    // Without the form's token: refused, nothing deleted.
    let r = b.post(&srv, &url, &[("action", "delete"), ("name", "me-laptop")]);
    assert_eq!(r.status, 403, "{}", r.describe());

    // Deleted: gone from the page and from the index.
    let r = b.post(
        &srv,
        &url,
        &[("csrf", &csrf), ("action", "delete"), ("name", "me-laptop")],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.text().contains("SSH key me-laptop deleted"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains(&fingerprint));
    assert!(!std::fs::read_to_string(&index)
        .unwrap()
        .contains(mine.split(' ').nth(1).unwrap()));
}
