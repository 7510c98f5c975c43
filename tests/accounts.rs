//! Accounts through the real binary: `user`, `token` and the `repo` commands that set
//! visibility and collaborators, owners required to be users, `check`'s reports, and
//! `repo import --move` when the source cannot be removed; SSH keys (`key ...`), the key index,
//! and `ssh-keys` answering sshd from the index alone.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::util::*;

fn users_file(site: &Site) -> std::path::PathBuf {
    site.data_dir.join("users.toml")
}

fn mode_of(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn add_user(site: &Site, args: &[&str], password: &str) -> Output {
    run_with_stdin(
        site.forgelet()
            .args(["user", "add"])
            .args(args)
            .arg("--password-stdin"),
        format!("{password}\n").as_bytes(),
    )
}

fn refused(out: &Output, what: &str, words: &str) -> String {
    let msg = all_output(out);
    assert!(!out.status.success(), "{what} succeeded: {msg}");
    assert!(
        msg.to_lowercase().contains(&words.to_lowercase()),
        "{what}: the message does not say {words:?}: {msg}"
    );
    msg
}

/// `user list` as (name, role, tokens) rows.
fn user_rows(site: &Site) -> Vec<(String, String, String)> {
    ok(site.forgelet().args(["user", "list"]))
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "user list line {l:?}");
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// The `forgelet.collaborator` values of a repository, as git reads them.
fn collaborators(site: &Site, owner_repo: &str) -> Vec<String> {
    let out = run(git(site.dir())
        .arg("config")
        .arg("-f")
        .arg(site.repo_path(owner_repo).join("config"))
        .args(["--get-all", "forgelet.collaborator"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

fn visibility(site: &Site, owner_repo: &str) -> String {
    let out = run(git(site.dir())
        .arg("config")
        .arg("-f")
        .arg(site.repo_path(owner_repo).join("config"))
        .args(["--get", "forgelet.visibility"]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn user_add_passwd_list_and_del() {
    let site = Site::new("acct_users", SiteOptions::default());
    let out = add_user(&site, &["alice"], "alice-password");
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(all_output(&out).contains("added user alice"));
    let out = add_user(&site, &["root", "--admin"], "root-password");
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(mode_of(&users_file(&site)), 0o600);
    assert_eq!(mode_of(&site.data_dir.join("secret")), 0o600);

    let before = fs::read_to_string(users_file(&site)).unwrap();
    refused(
        &add_user(&site, &["ALICE"], "another-password"),
        "add ALICE",
        "already a user named alice",
    );
    refused(
        &add_user(&site, &["bob"], "short"),
        "a short password",
        "at least 8",
    );
    refused(
        &add_user(&site, &["new"], "long-enough"),
        "a reserved name",
        "reserved",
    );
    refused(
        &add_user(&site, &["a/b"], "long-enough"),
        "a bad name",
        "invalid user name",
    );
    refused(
        &run(site.forgelet().args(["user", "add", "bob"])),
        "a prompt without a terminal",
        "--password-stdin",
    );
    refused(
        &run(site.forgelet().args(["user", "add", "bob", "--bogus"])),
        "an unknown option",
        "unknown option --bogus",
    );
    assert_eq!(
        fs::read_to_string(users_file(&site)).unwrap(),
        before,
        "a refused add changed users.toml"
    );
    assert!(
        !before.contains("alice-password"),
        "the password is stored in plain text"
    );
    assert!(before.contains("$argon2id$"), "{before}");

    assert_eq!(
        user_rows(&site),
        [
            ("alice".into(), "user".into(), "0 tokens".into()),
            ("root".into(), "admin".into(), "0 tokens".into()),
        ]
    );

    // A new password: new hash, new stamp; the file stays private.
    let stamp = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("stamp = "))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "passwd", "Alice", "--password-stdin"]),
        b"a-new-password\n",
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let after = fs::read_to_string(users_file(&site)).unwrap();
    assert_ne!(
        stamp(&after)[0],
        stamp(&before)[0],
        "stamp of alice unchanged"
    );
    assert_eq!(stamp(&after)[1], stamp(&before)[1], "stamp of root changed");
    assert_ne!(after, before);
    assert_eq!(mode_of(&users_file(&site)), 0o600);
    refused(
        &run_with_stdin(
            site.forgelet()
                .args(["user", "passwd", "nobody", "--password-stdin"]),
            b"whatever-it-is\n",
        ),
        "passwd of a missing user",
        "no user named nobody",
    );

    ok(site.forgelet().args(["user", "del", "alice"]));
    assert_eq!(
        user_rows(&site),
        [("root".into(), "admin".into(), "0 tokens".into())]
    );
    refused(
        &run(site.forgelet().args(["user", "del", "alice"])),
        "del twice",
        "no user named alice",
    );
    assert_eq!(mode_of(&users_file(&site)), 0o600);
}

#[test]
fn tokens_are_shown_once_listed_and_revoked() {
    let site = Site::new("acct_tokens", SiteOptions::default());
    site.ensure_user("alice");
    let out = ok(site.forgelet().args([
        "token",
        "create",
        "alice",
        "--name",
        "laptop",
        "--expires",
        "30",
    ]));
    let token = out.lines().last().unwrap_or_default().to_string();
    assert!(
        token.len() == 44
            && token.starts_with("flt_")
            && token[4..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "the last line is not a token: {out}"
    );
    assert_eq!(out.matches(&token).count(), 1, "{out}");
    let out2 = ok(site
        .forgelet()
        .args(["token", "create", "ALICE", "--name=ci"]));
    let token2 = out2.lines().last().unwrap_or_default().to_string();
    assert_ne!(token, token2);
    let text = fs::read_to_string(users_file(&site)).unwrap();
    assert!(
        !text.contains(&token[4..]) && !text.contains(&token2[4..]),
        "a token is stored as is"
    );
    assert_eq!(mode_of(&users_file(&site)), 0o600);

    refused(
        &run(site
            .forgelet()
            .args(["token", "create", "alice", "--name", "LAPTOP"])),
        "a second token of the same name",
        "already has a token named laptop",
    );
    refused(
        &run(site.forgelet().args(["token", "create", "alice"])),
        "create without --name",
        "--name",
    );
    refused(
        &run(site
            .forgelet()
            .args(["token", "create", "alice", "--name", "x", "--expires", "0"])),
        "--expires 0",
        "number of days",
    );
    refused(
        &run(site
            .forgelet()
            .args(["token", "create", "nobody", "--name", "x"])),
        "a token for a missing user",
        "no user named nobody",
    );

    let list = ok(site.forgelet().args(["token", "list", "alice"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("laptop\tcreated ")
            && lines[0].contains("\texpires ")
            && lines[0].ends_with("\tnever used"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("ci\t") && lines[1].contains("never expires"),
        "{list}"
    );
    for l in &lines {
        assert!(
            !l.split(|c: char| !c.is_ascii_hexdigit())
                .any(|w| w.len() >= 40),
            "a hash is listed: {l}"
        );
    }
    assert_eq!(user_rows(&site)[0].2, "2 tokens");

    ok(site.forgelet().args(["token", "revoke", "alice", "laptop"]));
    let list = ok(site.forgelet().args(["token", "list", "alice"]));
    assert!(!list.contains("laptop") && list.contains("ci"), "{list}");
    refused(
        &run(site.forgelet().args(["token", "revoke", "alice", "laptop"])),
        "revoke twice",
        "no token named laptop",
    );
}

#[test]
fn repos_need_an_owner_and_take_visibility_and_collaborators() {
    let site = Site::new("acct_repos", SiteOptions::default());
    let msg = refused(
        &run(site.forgelet().args(["repo", "create", "alice/p"])),
        "a repo of a missing user",
        "no user named alice",
    );
    assert!(msg.contains("forgelet user add alice"), "{msg}");
    let src = site.dir().join("src.git");
    build_fixture("mixed", &src);
    refused(
        &run(site
            .forgelet()
            .args(["repo", "import", "alice/imp"])
            .arg(&src)),
        "an import for a missing user",
        "forgelet user add alice",
    );
    assert!(!site.data_dir.join("repos/alice").exists());

    site.ensure_user("alice");
    site.ensure_user("bob");
    ok(site.forgelet().args([
        "repo",
        "create",
        "alice/p",
        "--private",
        "--description",
        "Private",
    ]));
    assert_eq!(visibility(&site, "alice/p"), "private");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/p", "--visibility", "public"]));
    assert_eq!(visibility(&site, "alice/p"), "public");
    ok(site
        .forgelet()
        .args(["repo", "set", "ALICE/P", "--visibility=private"]));
    assert_eq!(visibility(&site, "alice/p"), "private");
    refused(
        &run(site
            .forgelet()
            .args(["repo", "set", "alice/p", "--visibility", "secret"])),
        "a bad visibility",
        "public or private",
    );
    refused(
        &run(site
            .forgelet()
            .args(["repo", "set", "alice/nosuch", "--visibility", "public"])),
        "set on a missing repo",
        "no repository named alice/nosuch",
    );
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(list.contains("alice/p\tprivate\tPrivate"), "{list}");

    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/p", "bob", "read"]));
    assert_eq!(collaborators(&site, "alice/p"), ["bob read"]);
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/p", "BOB", "write"]));
    assert_eq!(collaborators(&site, "alice/p"), ["bob write"]);
    refused(
        &run(site
            .forgelet()
            .args(["repo", "grant", "alice/p", "alice", "read"])),
        "grant to the owner",
        "owns",
    );
    refused(
        &run(site
            .forgelet()
            .args(["repo", "grant", "alice/p", "carol", "read"])),
        "grant to a missing user",
        "no user named carol",
    );
    refused(
        &run(site
            .forgelet()
            .args(["repo", "grant", "alice/p", "bob", "admin"])),
        "a bad permission",
        "read or write",
    );
    ok(site.forgelet().args(["repo", "revoke", "alice/p", "bob"]));
    assert!(collaborators(&site, "alice/p").is_empty());
    refused(
        &run(site.forgelet().args(["repo", "revoke", "alice/p", "bob"])),
        "revoke twice",
        "not a collaborator",
    );
    // The repository is still a good one.
    let fsck = run(git(&site.repo_path("alice/p")).args(["fsck", "--no-progress"]));
    assert!(fsck.status.success(), "{}", all_output(&fsck));
}

#[test]
fn user_del_keeps_repos_owned_and_leaves_no_access_behind() {
    let site = Site::new("acct_del", SiteOptions::default());
    for u in ["alice", "bob", "carol"] {
        site.ensure_user(u);
    }
    site.import_fixture("mixed", "alice/a");
    ok(site.forgelet().args(["repo", "create", "alice/b"]));
    ok(site.forgelet().args(["repo", "create", "bob/a"]));
    ok(site.forgelet().args(["repo", "create", "bob/shared"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "bob/shared", "alice", "write"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "bob/shared", "carol", "read"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/b", "carol", "write"]));
    let refs = refs_of(&site.repo_path("alice/a"));

    let msg = refused(
        &run(site.forgelet().args(["user", "del", "alice"])),
        "deleting an owner",
        "--reassign",
    );
    assert!(msg.contains("alice/a") && msg.contains("alice/b"), "{msg}");
    let before = tree_listing(&site.data_dir);
    refused(
        &run(site
            .forgelet()
            .args(["user", "del", "alice", "--reassign", "bob"])),
        "a reassign with a name clash",
        "bob/a",
    );
    refused(
        &run(site
            .forgelet()
            .args(["user", "del", "alice", "--reassign", "nobody"])),
        "a reassign to a missing user",
        "no user named nobody",
    );
    refused(
        &run(site
            .forgelet()
            .args(["user", "del", "alice", "--reassign", "ALICE"])),
        "a reassign to the same user",
        "being deleted",
    );
    assert_eq!(
        tree_listing(&site.data_dir),
        before,
        "a refused del changed files"
    );

    ok(site
        .forgelet()
        .args(["user", "del", "alice", "--reassign", "carol"]));
    assert!(
        !site.data_dir.join("repos/alice").exists(),
        "alice's folder is left"
    );
    assert_eq!(refs_of(&site.repo_path("carol/a")), refs);
    assert!(site.repo_path("carol/b").is_dir());
    // carol owns alice/b now: her collaborator entry there is gone; alice is no collaborator anywhere.
    assert!(
        collaborators(&site, "carol/b").is_empty(),
        "{:?}",
        collaborators(&site, "carol/b")
    );
    assert_eq!(collaborators(&site, "bob/shared"), ["carol read"]);
    let names: Vec<String> = user_rows(&site).into_iter().map(|r| r.0).collect();
    assert_eq!(names, ["bob", "carol"]);

    // A new alice inherits nothing.
    site.ensure_user("alice");
    assert_eq!(collaborators(&site, "bob/shared"), ["carol read"]);
    let list = ok(site.forgelet().args(["repo", "list"]));
    assert!(!list.contains("alice/"), "{list}");

    // carol owns what was alice's and reads bob/shared: both settled by one del.
    ok(site
        .forgelet()
        .args(["user", "del", "carol", "--reassign", "alice"]));
    assert!(collaborators(&site, "bob/shared").is_empty());
    assert_eq!(refs_of(&site.repo_path("alice/a")), refs);
    assert!(site.repo_path("alice/b").is_dir() && !site.data_dir.join("repos/carol").exists());
}

#[test]
fn check_reports_orphans_and_a_broken_users_file() {
    let site = Site::new("acct_check", SiteOptions::default());
    site.ensure_user("alice");
    site.import_fixture("empty", "alice/fine");
    site.place_fixture("empty", "ghost/old");
    let out = run(site.forgelet().arg("check"));
    let msg = all_output(&out);
    assert!(
        out.status.success(),
        "an orphan is a warning, not a failure: {msg}"
    );
    assert!(
        msg.contains("ghost/old") && msg.contains("not a user"),
        "{msg}"
    );
    assert!(!msg.contains("alice/fine"), "{msg}");

    let file = users_file(&site);
    let good = fs::read_to_string(&file).unwrap();
    let lines = good.lines().count();
    fs::write(&file, format!("{good}flavour = \"vanilla\"\n")).unwrap();
    set_mode(&file, 0o600);
    let out = run(site.forgelet().arg("check"));
    let msg = all_output(&out);
    assert!(
        !out.status.success(),
        "check accepted a broken users.toml: {msg}"
    );
    assert!(
        msg.contains(&format!("{}:{}:", file.display(), lines + 1)),
        "{msg}"
    );
    // Every command that reads users says the same.
    let out = run(site.forgelet().args(["user", "list"]));
    assert!(
        all_output(&out).contains(&format!("users.toml:{}:", lines + 1)),
        "{}",
        all_output(&out)
    );

    fs::write(&file, &good).unwrap();
    set_mode(&file, 0o644);
    let out = run(site.forgelet().arg("check"));
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("chmod 600"),
        "{}",
        all_output(&out)
    );
}

#[test]
fn concurrent_user_adds_all_land() {
    let site = Site::new("acct_concurrent", SiteOptions::default());
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut cmd: Command = site.forgelet();
            cmd.args(["user", "add", &format!("user{i}"), "--password-stdin"]);
            std::thread::spawn(move || run_with_stdin(&mut cmd, b"same-password\n"))
        })
        .collect();
    for c in children {
        let out = c.join().unwrap();
        assert!(out.status.success(), "{}", all_output(&out));
    }
    let mut names: Vec<String> = user_rows(&site).into_iter().map(|r| r.0).collect();
    names.sort();
    assert_eq!(
        names,
        (0..6).map(|i| format!("user{i}")).collect::<Vec<_>>()
    );
    assert_eq!(mode_of(&users_file(&site)), 0o600);
    // Nothing but the users file, its lock, the secret and the repositories folder.
    let mut entries: Vec<String> = fs::read_dir(&site.data_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        ["repos", "secret", "users.toml", "users.toml.lock"]
    );
}

/// Keeps anything from being removed from a folder while it lives: the folder read-only for a
/// user, immutable (`chattr +i`, from e2fsprogs) for root, whom permissions do not stop.
struct Unremovable {
    dir: std::path::PathBuf,
    root: bool,
}

impl Unremovable {
    fn new(dir: &std::path::Path) -> Unremovable {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            let out = run(Command::new("chattr").arg("+i").arg(dir));
            assert!(
                out.status.success(),
                "cannot make {} immutable as root: {}",
                dir.display(),
                all_output(&out).trim()
            );
        } else {
            set_mode(dir, 0o555);
        }
        Unremovable {
            dir: dir.to_path_buf(),
            root,
        }
    }
}

impl Drop for Unremovable {
    fn drop(&mut self) {
        if self.root {
            let _ = Command::new("chattr").arg("-i").arg(&self.dir).status();
        } else {
            set_mode(&self.dir, 0o755);
        }
    }
}

/// `repo import --move` exited 1 after a successful import when it could not remove the
/// source: the repository was there, and the command said it failed. Now it succeeds, says it
/// imported, and says on stderr that the source was left in place and why, having removed
/// nothing of it.
#[test]
fn repo_import_move_succeeds_when_the_source_cannot_be_removed() {
    let site = Site::new("import_move_kept", SiteOptions::default());
    site.ensure_user("alice");
    let parent = site.dir().join("kept-here");
    fs::create_dir_all(&parent).unwrap();
    let src = parent.join("kept.git");
    build_fixture("tags", &src);
    let src_refs = refs_of(&src);
    let src_files = tree_listing(&src);

    let guard = Unremovable::new(&parent);
    let out = run(site
        .forgelet()
        .args(["repo", "import", "alice/kept", "--move"])
        .arg(&src));
    drop(guard);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the import stood, yet the command failed: {}",
        all_output(&out)
    );
    assert!(stdout.contains("imported alice/kept at "), "{stdout}");
    // Named as resolved: the way there may hold a symlink.
    let (src_real, parent_real) = (
        fs::canonicalize(&src).unwrap(),
        fs::canonicalize(&parent).unwrap(),
    );
    assert!(
        stderr.contains(&format!(
            "the source {} was left in place: ",
            src_real.display()
        )) && stderr.contains(&parent_real.display().to_string()),
        "stderr does not say the source was left, and why: {stderr}"
    );
    assert_eq!(tree_listing(&src), src_files, "the source was changed");
    let repo = site.repo_path("alice/kept");
    assert_eq!(refs_of(&repo), src_refs);
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(fsck.status.success(), "fsck: {}", all_output(&fsck));

    // Once the source can be removed, --move removes it, and says nothing more.
    let out = run(site
        .forgelet()
        .args(["repo", "import", "alice/moved", "--move"])
        .arg(&src));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).trim().is_empty(),
        "{}",
        all_output(&out)
    );
    assert!(!src.exists(), "--move left the source in place");
}

// ---------------------------------------------------------------------------------------------
// SSH keys: `forgelet key ...` and `forgelet ssh-keys`

/// Turns SSH on for `site` (a host for clone URLs, the key index in the test's folder);
/// returns the index's path.
fn offer_ssh(site: &Site) -> std::path::PathBuf {
    let index = site.dir().join("ssh-index").join("keys");
    let mut config = fs::read_to_string(&site.config).unwrap();
    config.push_str(&format!(
        "\n[ssh]\nhost = \"git.example.org\"\nkey_index = \"{}\"\ncommand = \"/opt/forgelet/bin/forgelet\"\n",
        index.display()
    ));
    fs::write(&site.config, config).unwrap();
    index
}

/// A new key made by ssh-keygen in the test's folder: the .pub file's path and its line.
fn keygen(site: &Site, file: &str, args: &[&str]) -> (std::path::PathBuf, String) {
    let path = site.dir().join(file);
    ok(Command::new("ssh-keygen")
        .args(args)
        .args(["-q", "-N", "", "-C", "ada@laptop", "-f"])
        .arg(&path));
    let public = path.with_extension("pub");
    let line = fs::read_to_string(&public).unwrap().trim().to_string();
    (public, line)
}

/// `256 SHA256:... (ED25519)`, as `ssh-keygen -lf` prints it without the comment.
fn keygen_summary(public: &std::path::Path) -> String {
    let out = ok(Command::new("ssh-keygen").arg("-lf").arg(public));
    let words: Vec<&str> = out.split_whitespace().collect();
    format!("{} {} {}", words[0], words[1], words[words.len() - 1])
}

/// `forgelet ssh-keys USER TYPE KEY` for the key line `line`.
fn ssh_keys(site: &Site, user: &str, line: &str) -> Output {
    let mut words = line.split(' ');
    let (kind, key) = (words.next().unwrap(), words.next().unwrap());
    run(site.forgelet().args(["ssh-keys", user, kind, key]))
}

#[test]
fn ssh_keys_are_added_listed_and_deleted_from_the_command_line() {
    let site = Site::new("ssh_key_cli", SiteOptions::default());
    let index = offer_ssh(&site);
    site.ensure_user("ada");
    site.ensure_user("bob");
    let (ed_pub, ed) = keygen(&site, "ed", &["-t", "ed25519"]);
    let (rsa_pub, rsa) = keygen(&site, "rsa", &["-t", "rsa", "-b", "3072"]);

    // From a file (named after its comment), from standard input with a name.
    let out = ok(site.forgelet().args(["key", "add", "ada"]).arg(&ed_pub));
    assert_eq!(
        out.trim(),
        format!(
            "added SSH key ada-laptop of ada: {}",
            keygen_summary(&ed_pub)
        )
    );
    let out = run_with_stdin(
        site.forgelet()
            .args(["key", "add", "ada", "--name", "work", "-"]),
        rsa.as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let list = ok(site.forgelet().args(["key", "list", "ada"]));
    let rows: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert_eq!(
        rows[0][..2],
        ["ada-laptop", keygen_summary(&ed_pub).as_str()]
    );
    assert_eq!(rows[1][..2], ["work", keygen_summary(&rsa_pub).as_str()]);
    assert!(rows[1][2].starts_with("added 20"), "{list}");

    // The index: world-readable, one line per key, no user names.
    let text = fs::read_to_string(&index).unwrap();
    assert_eq!(mode_of(&index), 0o644);
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
    // (A word of its own: a key's base64 may hold the letters "ada" by chance.)
    assert!(text.split_whitespace().all(|w| w != "ada"), "{text}");

    // Refusals, with what to do.
    let out = run_with_stdin(
        site.forgelet().args(["key", "add", "bob", "-"]),
        ed.as_bytes(),
    );
    let msg = refused(
        &out,
        "another user's key",
        "already in use by another account",
    );
    assert!(!msg.contains("ada"), "{msg}");
    let out = run(site.forgelet().args(["key", "add", "ada"]).arg(&ed_pub));
    refused(
        &out,
        "the same key again",
        "already has this key, named ada-laptop",
    );
    let private = site.dir().join("ed");
    let out = run(site.forgelet().args(["key", "add", "bob"]).arg(&private));
    refused(&out, "a private key", ".pub file");
    let out = run(site.forgelet().args(["key", "add", "nobody"]).arg(&ed_pub));
    refused(&out, "no such user", "forgelet user list");
    let out = run(site.forgelet().args(["key", "add", "ada"]));
    assert_eq!(out.status.code(), Some(2), "{}", all_output(&out));

    // Deleted by fingerprint and by name.
    let fingerprint = keygen_summary(&ed_pub)
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    let out = ok(site.forgelet().args(["key", "del", "ada", &fingerprint]));
    assert!(
        out.starts_with("deleted SSH key ada-laptop of ada"),
        "{out}"
    );
    ok(site.forgelet().args(["key", "del", "ada", "WORK"]));
    let out = run(site.forgelet().args(["key", "del", "ada", "work"]));
    refused(&out, "a key deleted", "forgelet key list ada");
    assert_eq!(ok(site.forgelet().args(["key", "list", "ada"])), "");
    let text = fs::read_to_string(&index).unwrap();
    assert_eq!(
        text.lines().filter(|l| !l.starts_with('#')).count(),
        0,
        "{text}"
    );

    // A deleted user's keys leave the index; reindex writes what users.toml says.
    ok(site.forgelet().args(["key", "add", "bob"]).arg(&ed_pub));
    assert!(ssh_keys(&site, "forgelet", &ed)
        .stdout
        .starts_with(b"restrict,"));
    ok(site.forgelet().args(["user", "del", "bob"]));
    assert_eq!(ssh_keys(&site, "forgelet", &ed).stdout, b"");
    fs::remove_file(&index).unwrap();
    ok(site.forgelet().args(["key", "add", "ada"]).arg(&ed_pub));
    fs::remove_file(&index).unwrap();
    let out = ok(site.forgelet().args(["key", "reindex"]));
    assert!(out.contains("(1 key)"), "{out}");
    assert!(ssh_keys(&site, "forgelet", &ed)
        .stdout
        .starts_with(b"restrict,"));
}

#[test]
fn a_key_index_that_cannot_be_written_fails_the_change_and_says_what_to_do() {
    let site = Site::new("ssh_key_index_blocked", SiteOptions::default());
    let index = offer_ssh(&site);
    site.ensure_user("ada");
    let (ed_pub, _) = keygen(&site, "ed", &["-t", "ed25519"]);
    // A file where the index's folder should be: no one can write there, root included.
    fs::write(index.parent().unwrap(), "").unwrap();
    let out = run(site.forgelet().args(["key", "add", "ada"]).arg(&ed_pub));
    let msg = refused(
        &out,
        "an unwritable index",
        "cannot write the SSH key index",
    );
    assert!(msg.contains(&index.display().to_string()), "{msg}");
    assert!(msg.contains("[ssh] key_index"), "{msg}");
    assert_eq!(ok(site.forgelet().args(["key", "list", "ada"])), "");
}

#[test]
fn ssh_keys_answers_sshd_from_the_index_alone() {
    let site = Site::new("ssh_keys_lookup", SiteOptions::default());
    let (ed_pub, ed) = keygen(&site, "ed", &["-t", "ed25519"]);
    let (_, other) = keygen(&site, "other", &["-t", "ecdsa"]);
    site.ensure_user("ada");
    // SSH off: the key is kept, and ssh-keys answers nothing.
    ok(site.forgelet().args(["key", "add", "ada"]).arg(&ed_pub));
    let out = ssh_keys(&site, "forgelet", &ed);
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        all_output(&out)
    );
    let out = run(site.forgelet().args(["key", "reindex"]));
    refused(&out, "reindex with SSH off", "[ssh] host");

    let index = offer_ssh(&site);
    ok(site.forgelet().args(["key", "reindex"]));
    let id = fs::read_to_string(&index)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    let config = fs::canonicalize(&site.config).unwrap();
    let want = format!(
        "restrict,command=\"/opt/forgelet/bin/forgelet --config {} ssh-serve {id}\" {}\n",
        config.display(),
        ed.rsplit_once(' ').unwrap().0
    );
    let out = ssh_keys(&site, "forgelet", &ed);
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    // An unknown key, another system user: nothing, and success.
    for (user, line) in [("forgelet", other.as_str()), ("root", ed.as_str())] {
        let out = ssh_keys(&site, user, line);
        assert!(
            out.status.success() && out.stdout.is_empty(),
            "{user}: {}",
            all_output(&out)
        );
    }
    // Malformed arguments: nothing on stdout, a message, a failure.
    for args in [
        vec!["ssh-keys", "forgelet", "ssh-ed25519"],
        vec!["ssh-keys", "forgelet", "ssh-ed25519", "not base64!"],
        vec!["ssh-keys"],
    ] {
        let out = run(site.forgelet().args(&args));
        assert!(!out.status.success() && out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }

    // It reads neither users.toml nor the rest of the data directory, and needs no account of
    // forgelet's: users.toml unreadable (and, as root, which reads anything, run as nobody
    // with the data directory closed to others), it still answers.
    fs::set_permissions(
        site.data_dir.join("users.toml"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::set_permissions(
        site.data_dir.join("secret"),
        fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    fs::set_permissions(&site.data_dir, fs::Permissions::from_mode(0o700)).unwrap();
    let mut words = ed.split(' ');
    let (kind, key) = (words.next().unwrap(), words.next().unwrap());
    let mut cmd = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.arg("--config")
        .arg(&config)
        .args(["ssh-keys", "forgelet", kind, key])
        .env_remove("FORGELET_CONFIG");
    let out = run(&mut cmd);
    assert!(out.status.success(), "{}", all_output(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), want);
    fs::set_permissions(&site.data_dir, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether the tests run as root (who reads files whatever their mode).
fn running_as_root() -> bool {
    ok(Command::new("id").arg("-u")).trim() == "0"
}
