//! Hostile paths: a table of traversals, percent-encodings, backslashes, NUL bytes, overlong
//! names, symlinked repositories, owners and objects, and alternates leading out of a
//! repository, each sent through nginx, straight at the FastCGI socket and in CGI mode, with
//! x-accel-redirect under a base path and with sendfile none at the root. Every answer is a 4xx
//! that leaks no planted secret, and the good repository is still served after the table.

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;

use crate::util::*;

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
