//! The command line: `check` accepting a good config and refusing unknown keys and bad values by
//! file, line and key; `repo create`, `list` and `import`: bad names refused, names unique
//! ignoring case, symlinks refused, hooks, alternates and dangerous config dropped, what forgelet
//! cannot serve refused, and `--move` taking the source away.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::symlink;

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// forgelet check

#[test]
fn check_accepts_a_good_config() {
    let site = Site::new("check_good", SiteOptions::default());
    let out = run(site.forgelet().arg("check"));
    assert!(
        out.status.success(),
        "check of a good config: {}",
        all_output(&out)
    );
}

/// `check` refuses `text` and says where: the file, the line (1-based) and the key.
fn assert_check_refuses(test: &str, text: &str, line: usize, key: &str) {
    let site = Site::new(test, SiteOptions::default());
    let config = site.dir().join("bad.toml");
    let text = text.replace("{DATA}", &site.data_dir.display().to_string());
    fs::write(&config, &text).unwrap();
    let out = run(std::process::Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .arg("check")
        .env_remove("FORGELET_CONFIG"));
    let msg = all_output(&out);
    assert!(
        !out.status.success(),
        "check accepted:\n{text}\noutput: {msg}"
    );
    let file = config.display().to_string();
    assert!(
        msg.contains(&file),
        "message does not name the file {file}: {msg}"
    );
    assert!(
        msg.contains(&format!(":{line}:"))
            || msg.contains(&format!("line {line}"))
            || msg.contains(&format!(":{line} ")),
        "message does not name line {line}: {msg}"
    );
    assert!(
        msg.contains(key),
        "message does not name the key {key}: {msg}"
    );
}

#[test]
fn check_refuses_unknown_keys() {
    assert_check_refuses(
        "check_unknown_top",
        "data_dir = \"{DATA}\"\nbase_url = \"http://127.0.0.1/git\"\nsendfile = \"none\"\nbogus_key = 1\n",
        4,
        "bogus_key",
    );
    assert_check_refuses(
        "check_unknown_server",
        "data_dir = \"{DATA}\"\n\n[server]\nlisten = \"unix:/tmp/x.sock\"\nnot_a_server_key = true\n",
        5,
        "not_a_server_key",
    );
}

#[test]
fn check_refuses_bad_values() {
    assert_check_refuses(
        "check_bad_sendfile",
        "data_dir = \"{DATA}\"\nbase_url = \"http://127.0.0.1/git\"\nsendfile = \"carrier-pigeon\"\n",
        3,
        "sendfile",
    );
    assert_check_refuses(
        "check_bad_type",
        "data_dir = \"{DATA}\"\n[server]\nmax_connections = \"many\"\n",
        3,
        "max_connections",
    );
    assert_check_refuses(
        "check_bad_url",
        "data_dir = \"{DATA}\"\nsendfile = \"none\"\nbase_url = \"not a url\"\n",
        3,
        "base_url",
    );
}

// ---------------------------------------------------------------------------------------------
// Admin commands: repo create, list, import

#[test]
fn repo_create_list_and_clone_empty() {
    let site = Site::new("repo_create", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args([
        "repo",
        "create",
        "alice/fresh",
        "--description",
        "A fresh repo",
    ]));
    let repo = site.repo_path("alice/fresh");
    assert_eq!(
        git_ok(&repo, &["rev-parse", "--is-bare-repository"]).trim(),
        "true"
    );
    assert_eq!(
        git_ok(&repo, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert!(refs_of(&repo).is_empty());
    let desc = fs::read_to_string(repo.join("description")).unwrap_or_default();
    assert!(desc.contains("A fresh repo"), "description file: {desc:?}");
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(list.contains("alice/fresh"), "repo list: {list}");

    // Names that must be refused, leaving the data dir as it was.
    let before = tree_listing(site.data_dir.parent().unwrap());
    for bad in [
        "alice/../evil",
        "../evil/x",
        "alice/.hidden",
        "alice/",
        "alice",
        "-x/y",
        "alice/a b",
        "alice/fresh",
    ] {
        let out = run(site.forgelet().args(["repo", "create", bad]));
        assert!(!out.status.success(), "repo create {bad:?} succeeded");
    }
    assert_eq!(tree_listing(site.data_dir.parent().unwrap()), before);

    let srv = site.start();
    let clone = site.dir().join("clone");
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/fresh.git")])
        .arg(&clone));
    let text = all_output(&out);
    assert!(out.status.success(), "clone of a created repo: {text}");
    assert!(
        text.contains("You appear to have cloned an empty repository"),
        "{text}"
    );
    srv.finish();
}

#[test]
fn repo_names_are_unique_ignoring_case() {
    let site = Site::new("repo_case", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/fresh"]));
    // Another spelling of the owner: allowed or not, it must not open a second `alice`.
    let _ = run(site.forgelet().args(["repo", "create", "ALICE/other"]));
    let mut failures = Vec::new();
    for name in ["alice/FRESH", "ALICE/fresh", "Alice/Fresh"] {
        let out = run(site.forgelet().args(["repo", "create", name]));
        if out.status.success() {
            failures.push(format!(
                "repo create {name} succeeded: {}",
                all_output(&out)
            ));
        }
    }
    let list = ok(site.forgelet().args(["repo", "list"]));
    let mut seen = BTreeSet::new();
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if !seen.insert(name.to_ascii_lowercase()) {
            failures.push(format!(
                "repo list has two repositories named {name} ignoring case"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nrepo list:\n{list}",
        failures.join("\n")
    );
}

#[test]
fn repo_import_refuses_symlinks() {
    let site = Site::new("import_symlink", SiteOptions::default());
    site.ensure_user("alice");
    let secret = site.dir().join("outside-secret");
    fs::write(&secret, "outside\n").unwrap();
    for (i, place) in ["description", "objects/info/evil", "refs/heads/evil"]
        .iter()
        .enumerate()
    {
        let src = site.dir().join(format!("src{i}.git"));
        build_fixture("mixed", &src);
        let _ = fs::remove_file(src.join(place));
        symlink(&secret, src.join(place)).unwrap();
        let before_src = tree_listing(&src);
        let before = tree_listing(&site.data_dir);
        let out = run(site
            .forgelet()
            .args(["repo", "import", &format!("alice/linked{i}")])
            .arg(&src));
        let msg = all_output(&out);
        assert!(
            !out.status.success(),
            "import of a repo with a symlink at {place} succeeded"
        );
        assert!(
            msg.to_lowercase().contains("symlink") || msg.to_lowercase().contains("symbolic link"),
            "import refused without saying why: {msg}"
        );
        assert_eq!(
            tree_listing(&site.data_dir),
            before,
            "import left files behind"
        );
        assert_eq!(tree_listing(&src), before_src, "import changed its source");
    }
}

#[test]
fn repo_import_drops_hooks_alternates_and_config() {
    let site = Site::new("import_clean", SiteOptions::default());
    site.ensure_user("alice");
    let base = site.dir().join("base.git");
    build_fixture("mixed", &base);
    // A repository that borrows objects from `base` and has objects of its own.
    let src = site.dir().join("borrower.git");
    ok(git(site.dir())
        .args(["clone", "-q", "--bare", "--shared"])
        .arg(&base)
        .arg(&src));
    assert!(src.join("objects/info/alternates").exists());
    add_history_on_server(&src);
    let pwned = site.dir().join("PWNED");
    fs::create_dir_all(src.join("hooks")).unwrap();
    fs::write(
        src.join("hooks/post-update"),
        format!("#!/bin/sh\ntouch {}\n", pwned.display()),
    )
    .unwrap();
    set_mode(&src.join("hooks/post-update"), 0o755);
    git_ok(
        &src,
        &[
            "config",
            "core.fsmonitor",
            &format!("touch {}", pwned.display()),
        ],
    );
    git_ok(&src, &["config", "core.hooksPath", "/tmp"]);
    let src_refs = refs_of(&src);
    let before_src = tree_listing(&src);
    let before_base = tree_listing(&base);

    ok(site
        .forgelet()
        .args(["repo", "import", "alice/borrower"])
        .arg(&src));
    let repo = site.repo_path("alice/borrower");
    assert_eq!(tree_listing(&src), before_src, "import changed its source");
    assert_eq!(
        tree_listing(&base),
        before_base,
        "import changed the alternate"
    );
    assert!(
        !repo.join("objects/info/alternates").exists(),
        "alternates kept"
    );
    let hooks: Vec<_> = fs::read_dir(repo.join("hooks"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(hooks.is_empty(), "hooks kept: {hooks:?}");
    let config = fs::read_to_string(repo.join("config")).unwrap();
    assert!(
        !config.contains("fsmonitor") && !config.contains("hooksPath"),
        "config kept dangerous keys:\n{config}"
    );
    assert_eq!(refs_of(&repo), src_refs);
    // Move the source away: the import must stand on its own.
    fs::rename(&base, site.dir().join("base-moved.git")).unwrap();
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(
        fsck.status.success(),
        "fsck of the import: {}",
        all_output(&fsck)
    );

    let srv = site.start();
    let clone = site.dir().join("clone");
    let out = run(git(site.dir())
        .args(["clone", &site.url("/alice/borrower.git")])
        .arg(&clone));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&repo, &clone);
    assert!(
        !pwned.exists(),
        "a hook or config command of the imported repo ran"
    );
    srv.finish();
}

#[test]
fn repo_import_refuses_what_it_cannot_serve() {
    let site = Site::new("import_refuse", SiteOptions::default());
    site.import_fixture("empty", "alice/taken");
    let sha256 = site.dir().join("sha256.git");
    git_ok(
        site.dir(),
        &[
            "init",
            "-q",
            "--bare",
            "--object-format=sha256",
            "sha256.git",
        ],
    );
    let not_repo = site.dir().join("not-a-repo");
    fs::create_dir_all(not_repo.join("objects")).unwrap();
    let dup = site.dir().join("dup.git");
    build_fixture("mixed", &dup);
    for (name, src, why) in [
        ("alice/sha", &sha256, "sha256"),
        ("alice/notrepo", &not_repo, ""),
        ("alice/taken", &dup, ""),
        ("ALICE/Taken", &dup, ""),
    ] {
        let before = tree_listing(site.dir());
        let out = run(site.forgelet().args(["repo", "import", name]).arg(src));
        let msg = all_output(&out);
        assert!(
            !out.status.success(),
            "repo import {name} {} succeeded",
            src.display()
        );
        assert!(
            !msg.trim().is_empty(),
            "repo import {name}: refused without a message"
        );
        assert!(
            msg.to_lowercase().contains(why),
            "repo import {name}: {msg}"
        );
        assert_eq!(
            tree_listing(site.dir()),
            before,
            "repo import {name} changed files"
        );
    }
}

#[test]
fn repo_import_move_removes_source() {
    let site = Site::new("import_move", SiteOptions::default());
    site.ensure_user("alice");
    let src = site.dir().join("moving.git");
    build_fixture("tags", &src);
    let src_refs = refs_of(&src);
    ok(site
        .forgelet()
        .args(["repo", "import", "alice/moved", "--move"])
        .arg(&src));
    assert!(!src.exists(), "--move left the source in place");
    let repo = site.repo_path("alice/moved");
    assert_eq!(refs_of(&repo), src_refs);
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(fsck.status.success(), "fsck: {}", all_output(&fsck));
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(list.contains("alice/moved"), "repo list: {list}");
}

/// A pack cache folder of its own (`[pack_cache] dir`) that forgelet cannot write to is said
/// by `check` (a warning: clones go on, answered by git), with the fix: the folder missing
/// (the README's `install -d` line forgotten), or read-only, as it is inside systemd's sandbox
/// when the folder is not among the unit's `ReadWritePaths=` (here a read-only bind mount in a
/// mount namespace of its own, as systemd makes).
#[test]
fn check_warns_of_a_pack_cache_folder_it_cannot_write() {
    let site = Site::new("check_cache_dir", SiteOptions::default());
    let cache = site.dir().join("packs");
    let text = fs::read_to_string(&site.config).unwrap();
    assert!(text.trim_end().ends_with("free_mib = 0"), "{text}");
    fs::write(
        &site.config,
        format!("{text}dir = \"{}\"\n", cache.display()),
    )
    .unwrap();

    let out = run(site.forgelet().arg("check"));
    let said = all_output(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "warning: [pack_cache] dir {} does not exist",
            cache.display()
        )) && said.contains(&format!(
            "install -d -o forgelet -g www-data -m 2750 {}",
            cache.display()
        )),
        "{said}"
    );

    fs::create_dir(&cache).unwrap();
    let out = run(site.forgelet().arg("check"));
    let said = all_output(&out);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("warning"), "{said}");
    assert_eq!(
        fs::read_dir(&cache).unwrap().count(),
        0,
        "check left a file"
    );

    let dir = cache.display().to_string();
    let script = format!(
        "mount --bind -o ro '{dir}' '{dir}' && exec '{BIN}' --config '{}' check",
        site.config.display()
    );
    let out = run(std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env_remove("FORGELET_CONFIG"));
    let said = all_output(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "warning: [pack_cache] dir {dir} is read-only here"
        )) && said.contains(&format!("ReadWritePaths={dir}"))
            && said.contains("forgelet-maintain.service"),
        "{said}"
    );
}
