//! git over SSH without sshd: real git runs `GIT_SSH_COMMAND`, a small script standing in for
//! sshd, which runs `forgelet ssh-serve KEYID` as a key's forced command would (the client's
//! command in `SSH_ORIGINAL_COMMAND`, `GIT_PROTOCOL` when git sends it, nothing else of the
//! client's environment). Clones, fetches and pushes are checked against the repositories on
//! disk; refusals by what the client is told and by the exit status.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A site and the script that stands in for sshd.
struct Ssh {
    site: Site,
    wrapper: PathBuf,
    /// Each session's `GIT_PROTOCOL` as the script was given it, a line each.
    protocols: PathBuf,
}

/// The host part of the URLs: the script ignores it.
const HOST: &str = "forgelet@forgelet.test";

impl Ssh {
    /// A site whose config gets `lines` added at its top (before any table) and `server`
    /// lines in `[server]`.
    fn new(test: &str, tables: &str, server: &'static str) -> Ssh {
        let site = Site::new(
            test,
            SiteOptions {
                server_extra: server,
                ..SiteOptions::default()
            },
        );
        if !tables.is_empty() {
            let text = fs::read_to_string(&site.config).unwrap();
            fs::write(&site.config, format!("{text}\n{tables}\n")).unwrap();
        }
        let wrapper = site.dir().join("fake-sshd");
        let protocols = site.dir().join("protocols");
        fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\n\
                 # git runs: fake-sshd [-o SendEnv=GIT_PROTOCOL] [-p PORT] HOST COMMAND\n\
                 while [ $# -gt 2 ]; do shift; done\n\
                 printf '%s\\n' \"${{GIT_PROTOCOL-none}}\" >> '{protocols}'\n\
                 if [ -n \"${{GIT_PROTOCOL+set}}\" ]; then\n\
                   exec env -i PATH=\"$PATH\" SSH_ORIGINAL_COMMAND=\"$2\" GIT_PROTOCOL=\"$GIT_PROTOCOL\" '{bin}' --config '{config}' ssh-serve \"$FORGELET_TEST_KEY\"\n\
                 fi\n\
                 exec env -i PATH=\"$PATH\" SSH_ORIGINAL_COMMAND=\"$2\" '{bin}' --config '{config}' ssh-serve \"$FORGELET_TEST_KEY\"\n",
                protocols = protocols.display(),
                bin = BIN,
                config = site.config.display(),
            ),
        )
        .unwrap();
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
        Ssh {
            site,
            wrapper,
            protocols,
        }
    }

    /// Gives `user` (added when missing) an SSH key in users.toml; its id.
    fn key(&self, user: &str) -> String {
        self.site.ensure_user(user);
        let id: String = user
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .chars()
            .chain(std::iter::repeat('0'))
            .take(24)
            .collect();
        let file = self.site.data_dir.join("users.toml");
        let text = fs::read_to_string(&file).unwrap();
        // The key goes into the user's table: before the next user's, or at the end.
        let at = text.find(&format!("name = \"{user}\"")).unwrap();
        let end = text[at..].find("\n[[user]]").map_or(text.len(), |i| at + i);
        let block = format!(
            "\n[[user.ssh_key]]\nid = \"{id}\"\nname = \"laptop\"\nkey = \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{id}\"\nadded = 1710000000\n"
        );
        fs::write(&file, format!("{}{block}{}", &text[..end], &text[end..])).unwrap();
        id
    }

    /// Takes the key away from its user, as removing it would.
    fn remove_key(&self, id: &str) {
        let file = self.site.data_dir.join("users.toml");
        let text = fs::read_to_string(&file).unwrap();
        let block_start = text.find(&format!("id = \"{id}\"")).unwrap();
        let start = text[..block_start].rfind("[[user.ssh_key]]").unwrap();
        let end = text[block_start..]
            .find("\n[")
            .map_or(text.len(), |i| block_start + i + 1);
        fs::write(&file, format!("{}{}", &text[..start], &text[end..])).unwrap();
        assert!(!fs::read_to_string(&file).unwrap().contains(id));
    }

    /// git whose SSH connections reach this site as the owner of `key`.
    fn git(&self, dir: &Path, key: &str) -> Command {
        let mut c = smart_git(dir);
        c.env("GIT_SSH_COMMAND", &self.wrapper)
            .env("GIT_SSH_VARIANT", "ssh")
            .env("FORGELET_TEST_KEY", key);
        c
    }

    /// One session as sshd would start it for `key` with the client's `command` (`None`: no
    /// command); the client sends a flush packet (a fetch that wants nothing) and hangs up.
    fn session(&self, key: &str, command: Option<&str>) -> Output {
        run_with_stdin(&mut self.session_command(key, command), b"0000")
    }

    fn session_command(&self, key: &str, command: Option<&str>) -> Command {
        let mut c = Command::new(BIN);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .arg("--config")
            .arg(&self.site.config)
            .args(["ssh-serve", key]);
        if let Some(command) = command {
            c.env("SSH_ORIGINAL_COMMAND", command);
        }
        c
    }

    fn protocols(&self) -> Vec<String> {
        fs::read_to_string(&self.protocols)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A refusal: exit status 1, nothing on stdout (git would take it for the protocol), and one
/// line on stderr, which is returned.
fn refused(out: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{what}: {}", all_output(out));
    assert!(out.stdout.is_empty(), "{what}: stdout: {:?}", out.stdout);
    assert_eq!(err.lines().count(), 1, "{what}: {err:?}");
    err.trim_end().to_string()
}

fn failed(out: &Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} succeeded: {}",
        all_output(out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn clones_and_fetches_over_ssh_in_protocol_v0_and_v2() {
    let ssh = Ssh::new("ssh_clone", "", "");
    let repo = ssh.site.import_fixture("mixed", "alice/proj");
    let key = ssh.key("alice");
    let tmp = TempDir::new("ssh_clone_work");
    let mut clones = Vec::new();
    for (version, url) in [
        ("0", format!("{HOST}:alice/proj.git")),
        ("2", format!("ssh://{HOST}/alice/proj.git")),
        ("2", format!("{HOST}:alice/proj")),
        ("1", format!("{HOST}:~/alice/proj.git")),
    ] {
        let before = ssh.protocols().len();
        let dest = tmp.path().join(format!("clone-v{version}-{before}"));
        let out = run(ssh
            .git(tmp.path(), &key)
            .env("GIT_TRACE_PACKET", "1")
            .args(["-c", &format!("protocol.version={version}"), "clone"])
            .arg(&url)
            .arg(&dest));
        let text = all_output(&out);
        assert!(out.status.success(), "clone of {url} (v{version}): {text}");
        assert_clone_matches(&repo, &dest);
        // git asked for the version through GIT_PROTOCOL, and the server spoke it.
        let asked = ssh.protocols()[before].clone();
        match version {
            "0" => assert_eq!(asked, "none"),
            v => assert_eq!(asked, format!("version={v}")),
        }
        if version == "2" {
            assert!(text.contains("< version 2"), "{text}");
        } else {
            assert!(!text.contains("< version 2"), "{text}");
        }

        clones.push((version, dest));
    }
    // A fetch brings what was added on the server since.
    add_history_on_server(&repo);
    for (version, dest) in clones {
        let out = run(ssh
            .git(&dest, &key)
            .args(["-c", &format!("protocol.version={version}")])
            .args(["fetch", "-q", "--prune", "--tags", "origin"]));
        assert!(
            out.status.success(),
            "fetch (v{version}): {}",
            all_output(&out)
        );
        assert_clone_matches(&repo, &dest);
    }
}

#[test]
fn a_push_over_ssh_moves_the_ref_runs_hooks_as_over_http_and_starts_maintenance() {
    let ssh = Ssh::new("ssh_push", "[maintenance]\nauto_loose = 1", "");
    let repo = ssh.site.import_fixture("packs-only", "alice/proj");
    let key = ssh.key("alice");
    // A hook that writes down the environment git gives it.
    let seen = ssh.site.dir().join("hook-env");
    let hook = repo.join("hooks/post-receive");
    fs::create_dir_all(hook.parent().unwrap()).unwrap();
    fs::write(&hook, format!("#!/bin/sh\nenv > '{}'\n", seen.display())).unwrap();
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
    let objects_before = object_files(&repo);

    let tmp = TempDir::new("ssh_push_work");
    let work = tmp.path().join("work");
    let url = format!("{HOST}:alice/proj.git");
    ok(ssh
        .git(tmp.path(), &key)
        .args(["clone", "-q", &url])
        .arg(&work));
    fs::write(work.join("pushed.txt"), "pushed over ssh\n").unwrap();
    git_ok(&work, &["add", "."]);
    git_ok(&work, &["commit", "-q", "-m", "over ssh"]);
    let head = git_ok(&work, &["rev-parse", "HEAD"]).trim().to_string();
    ok(ssh.git(&work, &key).args([
        "push",
        "-q",
        "origin",
        "HEAD:refs/heads/main",
        "HEAD:refs/heads/ssh",
    ]));
    let refs = refs_of(&repo);
    assert_eq!(refs["refs/heads/main"], head);
    assert_eq!(refs["refs/heads/ssh"], head);

    // The hook ran with the same identity HTTP gives it, and nothing of the session.
    let env = fs::read_to_string(&seen).unwrap();
    for line in [
        "REMOTE_USER=alice",
        "FORGELET_USER=alice",
        "FORGELET_REPO=alice/proj",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "{line} missing from:\n{env}"
        );
    }
    assert!(!env.contains("SSH_ORIGINAL_COMMAND"), "{env}");

    // The push left loose objects: maintenance started, as after a push over HTTP.
    let status = repo.join("forgelet-maintain.status");
    let until = Instant::now() + Duration::from_secs(120);
    while !fs::read_to_string(&status).is_ok_and(|s| s.starts_with("done\n")) {
        assert!(Instant::now() < until, "no maintenance after the push");
        std::thread::sleep(Duration::from_millis(100));
    }

    // What the push wrote, and the packs maintenance made of it (it runs in the session's
    // umask), are not readable by other users of the host (umask 0027). Read once maintenance
    // is done: it removes the loose objects it packs, so a look while it runs could find a
    // file gone.
    let new: Vec<PathBuf> = object_files(&repo)
        .into_iter()
        .filter(|p| !objects_before.contains(p))
        .collect();
    assert!(!new.is_empty());
    for p in &new {
        let mode = fs::metadata(p).unwrap().mode();
        assert_eq!(mode & 0o007, 0, "{} has mode {mode:o}", p.display());
    }
    let out = run(git(&repo).args(["fsck", "--full", "--no-progress"]));
    assert!(out.status.success(), "{}", all_output(&out));
}

/// Every file under `objects/`.
fn object_files(repo: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push(p.clone());
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo.join("objects"), &mut out);
    out
}

#[test]
fn access_over_ssh_follows_the_rules_of_http() {
    let ssh = Ssh::new("ssh_access", "", "");
    let public = ssh.site.import_fixture("mixed", "alice/proj");
    let private = ssh.site.import_fixture("tags", "alice/secret");
    ok(ssh
        .site
        .forgelet()
        .args(["repo", "set", "alice/secret", "--visibility", "private"]));
    let alice = ssh.key("alice");
    let reader = ssh.key("bob");
    let stranger = ssh.key("carol");
    ok(ssh
        .site
        .forgelet()
        .args(["repo", "grant", "alice/proj", "bob", "read"]));
    ok(ssh
        .site
        .forgelet()
        .args(["repo", "grant", "alice/secret", "bob", "read"]));
    let tmp = TempDir::new("ssh_access_work");
    let clone = |key: &str, repo: &str, dest: &str| {
        run(ssh
            .git(tmp.path(), key)
            .args(["clone", "-q", &format!("{HOST}:{repo}.git")])
            .arg(tmp.path().join(dest)))
    };

    // The owner and a read collaborator clone the private repository; a stranger cannot.
    assert!(clone(&alice, "alice/secret", "a").status.success());
    assert_clone_matches(&private, &tmp.path().join("a"));
    assert!(clone(&reader, "alice/secret", "b").status.success());
    assert_clone_matches(&private, &tmp.path().join("b"));
    assert!(clone(&stranger, "alice/proj", "c").status.success());
    assert_clone_matches(&public, &tmp.path().join("c"));

    // A private repository and a missing one look the same to a stranger.
    let hidden = failed(&clone(&stranger, "alice/secret", "d1"), "stranger, private");
    let missing = failed(
        &clone(&stranger, "alice/nothing", "d2"),
        "stranger, missing",
    );
    assert!(hidden.contains("ERROR: Repository not found."), "{hidden}");
    assert_eq!(hidden, missing);
    let hidden = refused(
        &ssh.session(&stranger, Some("git-upload-pack 'alice/secret.git'")),
        "stranger, private",
    );
    let missing = refused(
        &ssh.session(&stranger, Some("git-upload-pack 'alice/nothing.git'")),
        "stranger, missing",
    );
    assert_eq!(hidden, "ERROR: Repository not found.");
    assert_eq!(hidden, missing);
    assert!(!tmp.path().join("d1").exists());

    // A reader's push is refused, and the ref stays.
    let work = tmp.path().join("b");
    let main = refs_of(&private)["refs/heads/main"].clone();
    git_ok(
        &work,
        &["commit", "-q", "--allow-empty", "-m", "not allowed"],
    );
    let err = failed(
        &run(ssh
            .git(&work, &reader)
            .args(["push", "-q", "origin", "HEAD:refs/heads/main"])),
        "a reader's push",
    );
    assert!(
        err.contains("ERROR: You may not push to alice/secret."),
        "{err}"
    );
    assert_eq!(refs_of(&private)["refs/heads/main"], main);
    // A stranger's push to a public repository: readable, so the same refusal.
    assert_eq!(
        refused(
            &ssh.session(&stranger, Some("git-receive-pack 'alice/proj.git'")),
            "stranger's push"
        ),
        "ERROR: You may not push to alice/proj."
    );
    // ... and to a private one, the same as a missing one.
    assert_eq!(
        refused(
            &ssh.session(&stranger, Some("git-receive-pack 'alice/secret.git'")),
            "stranger's push, private"
        ),
        "ERROR: Repository not found."
    );

    // A key removed since sshd looked it up, and an id that is no key's.
    ssh.remove_key(&stranger);
    let gone = refused(
        &ssh.session(&stranger, Some("git-upload-pack 'alice/proj.git'")),
        "removed key",
    );
    assert!(gone.contains("belongs to no user"), "{gone}");
    for bad in ["", "xyz", "ABCDEF0123456789ABCDEF01", "../../etc/passwd"] {
        assert_eq!(
            refused(
                &ssh.session(bad, Some("git-upload-pack 'alice/proj.git'")),
                bad
            ),
            gone
        );
    }
    let err = failed(
        &clone(&stranger, "alice/proj", "e"),
        "a removed key's clone",
    );
    assert!(err.contains("belongs to no user"), "{err}");
}

#[test]
fn commands_other_than_git_are_refused_and_nothing_runs() {
    let ssh = Ssh::new("ssh_hostile", "", "");
    ssh.site.import_fixture("mixed", "alice/proj");
    let key = ssh.key("alice");
    let marker = ssh.site.dir().join("marker");
    let m = marker.display();

    assert_eq!(
        refused(&ssh.session(&key, None), "no command"),
        "Hi alice! You've authenticated, but forgelet does not provide shell access."
    );
    assert_eq!(
        refused(&ssh.session(&key, Some("")), "empty command"),
        "Hi alice! You've authenticated, but forgelet does not provide shell access."
    );
    // LFS's own protocol over SSH is refused (git-lfs then asks git-lfs-authenticate, which
    // tests/ssh.rs runs for real), and so is git-lfs-authenticate with arguments that do not fit.
    for lfs in [
        "git-lfs-transfer 'alice/proj.git' upload",
        "git-lfs-authenticate 'alice/proj.git' delete",
        "git-lfs-authenticate 'alice/proj.git'",
    ] {
        let err = refused(&ssh.session(&key, Some(lfs)), lfs);
        assert!(
            err.contains("answers git-lfs-authenticate OWNER/REPO download|upload"),
            "{err}"
        );
    }
    let not_git =
        "ERROR: this server only runs git-upload-pack, git-receive-pack and git-upload-archive over SSH.";
    for command in [
        format!("touch {m}"),
        format!("sh -c 'touch {m}'"),
        format!("git-upload-pack 'alice/proj.git'; touch {m}"),
        format!("git-upload-pack 'alice/proj.git' && touch {m}"),
        format!("git-upload-pack 'alice/proj.git' | touch {m}"),
        format!("git-upload-pack $(touch {m})"),
        format!("git-upload-pack `touch {m}`"),
        format!("git-upload-pack 'alice/proj.git'\ntouch {m}"),
        format!("git-upload-pack 'alice/proj.git > {m}"),
        "scp -t /tmp".to_string(),
        "internal-sftp".to_string(),
        "rsync --server . /tmp".to_string(),
        "git-shell -c ls".to_string(),
    ] {
        assert_eq!(
            refused(&ssh.session(&key, Some(&command)), &command),
            not_git,
            "{command:?}"
        );
    }
    for command in [
        "git-upload-pack '../alice/proj.git'",
        "git-upload-pack '/etc/passwd'",
        "git-upload-pack 'alice/proj.git/../proj.git'",
        "git-upload-pack '/srv/alice/proj.git'",
    ] {
        assert_eq!(
            refused(&ssh.session(&key, Some(command)), command),
            "ERROR: Repository not found."
        );
    }
    assert_eq!(
        refused(
            &ssh.session(
                &key,
                Some("git-upload-pack 'alice/proj.git' 'alice/proj.git'")
            ),
            "two arguments"
        ),
        "ERROR: git-upload-pack takes one argument, the repository (OWNER/REPO.git)."
    );
    assert!(!marker.exists(), "a refused command ran");
}

#[test]
fn git_archive_remote_runs_upload_archive() {
    let ssh = Ssh::new("ssh_archive", "", "");
    let repo = ssh.site.import_fixture("mixed", "alice/proj");
    let key = ssh.key("alice");
    let tmp = TempDir::new("ssh_archive_work");
    let out = run(ssh.git(tmp.path(), &key).args([
        "archive",
        "--format=tar",
        &format!("--remote={HOST}:alice/proj.git"),
        "main",
    ]));
    assert!(out.status.success(), "{}", all_output(&out));
    let local = run(git(&repo).args(["archive", "--format=tar", "main"]));
    assert!(local.status.success());
    assert!(!out.stdout.is_empty());
    assert_eq!(out.stdout, local.stdout, "the remote archive differs");
    // Reading rules hold for archives too.
    let stranger = ssh.key("carol");
    ok(ssh
        .site
        .forgelet()
        .args(["repo", "set", "alice/proj", "--visibility", "private"]));
    let err = failed(
        &run(ssh.git(tmp.path(), &stranger).args([
            "archive",
            &format!("--remote={HOST}:alice/proj.git"),
            "main",
        ])),
        "a stranger's archive of a private repository",
    );
    assert!(err.contains("ERROR: Repository not found."), "{err}");
}

/// Holds an exclusive `flock` on `path` while alive, as a session does.
struct Held(#[allow(dead_code)] fs::File);

fn hold(path: &Path) -> Held {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    Held(f)
}

#[test]
fn sessions_beyond_the_slots_wait_then_are_told_the_server_is_busy() {
    let ssh = Ssh::new("ssh_slots", "", "git_workers = 2\ngit_per_address = 1");
    ssh.site.import_fixture("mixed", "alice/proj");
    let alice = ssh.key("alice");
    let bob = ssh.key("bob");
    let run_dir = ssh.site.data_dir.join("run");
    let fetch = Some("git-upload-pack 'alice/proj.git'");
    // A session that got to git: the ref advertisement on stdout.
    let served = |out: &Output, what: &str| {
        assert!(out.status.success(), "{what}: {}", all_output(out));
        assert!(contains(&out.stdout, b"refs/heads/main"), "{what}");
    };
    served(&ssh.session(&alice, fetch), "free slots");

    // Every site slot taken by other sessions.
    let s0 = hold(&run_dir.join("ssh-slot-0"));
    let s1 = hold(&run_dir.join("ssh-slot-1"));
    let started = Instant::now();
    assert_eq!(
        refused(&ssh.session(&alice, fetch), "no slot"),
        "ERROR: the server is busy, try again in a minute."
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // One comes free while a session waits: it runs.
    let waiting = {
        let mut c = ssh.session_command(&alice, fetch);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        child.stdin.take().unwrap().write_all(b"0000").unwrap();
        child
    };
    std::thread::sleep(Duration::from_millis(500));
    drop(s0);
    served(&waiting.wait_with_output().unwrap(), "a slot freed");
    drop(s1);

    // alice's share (one session) is taken: she waits and is refused; bob is served.
    let mine = hold(&run_dir.join("ssh-user-alice-0"));
    assert_eq!(
        refused(&ssh.session(&alice, fetch), "user's share"),
        "ERROR: the server is busy, try again in a minute."
    );
    served(&ssh.session(&bob, fetch), "another user");
    drop(mine);
    served(&ssh.session(&alice, fetch), "share freed");
}

#[test]
fn a_session_that_dies_gives_its_slot_back() {
    let ssh = Ssh::new("ssh_crash", "", "git_workers = 1");
    let repo = ssh.site.import_fixture("mixed", "alice/proj");
    let alice = ssh.key("alice");
    let fetch = Some("git-upload-pack 'alice/proj.git'");
    // A session whose git waits for the client's wants, holding the only slot.
    let mut c = ssh.session_command(&alice, fetch);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut first = c.spawn().unwrap();
    let mut advertised = [0u8; 4];
    first
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut advertised)
        .unwrap();
    // forgelet dies without a chance to clean up; its git goes on, but holds no slot.
    first.kill().unwrap();
    first.wait().unwrap();
    let out = ssh.session(&alice, fetch);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(contains(&out.stdout, b"refs/heads/main"));
    // The orphaned git ends when its client goes away.
    drop(first);
    assert_no_process_left(&repo, 10, "after the client of a killed session left");
}

#[test]
fn git_is_stopped_at_the_deadline_and_leaves_nothing_running() {
    let ssh = Ssh::new("ssh_deadline", "[limits]\ngit_deadline = 10", "");
    let repo = ssh.site.import_fixture("mixed", "alice/proj");
    let key = ssh.key("alice");
    // A client that never sends its wants: upload-pack waits for them.
    let mut c = ssh.session_command(&key, Some("git-upload-pack 'alice/proj.git'"));
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = c.spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let mut stderr = child.stderr.take().unwrap();
    let status = child.wait().unwrap();
    let elapsed = started.elapsed();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    drop(stdin);
    let out = reader.join().unwrap();
    assert!(contains(&out, b"refs/heads/main"));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("ERROR: git took longer than the server's limit of 10 seconds."),
        "{err}"
    );
    assert!(
        elapsed >= Duration::from_secs(9) && elapsed < Duration::from_secs(40),
        "{elapsed:?}"
    );
    assert_no_process_left(&repo, 10, "after the deadline");
    // The slot went with the session.
    let mut c = ssh.session_command(&key, Some("git-upload-pack 'alice/proj.git'"));
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"0000").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", all_output(&out));
}

#[test]
fn a_push_during_a_purge_is_refused_as_over_http_and_a_fetch_goes_on() {
    let ssh = Ssh::new("ssh_purge", "", "");
    let repo = ssh.site.import_fixture("mixed", "alice/proj");
    let alice = ssh.key("alice");
    // A purge running: it holds its lock and says so in the status file.
    let purge = hold(&repo.join("forgelet-purge.lock"));
    fs::write(
        repo.join("forgelet-maintenance.status"),
        "running\n1700000000\nrepacking what is reachable\n",
    )
    .unwrap();
    assert_eq!(
        refused(
            &ssh.session(&alice, Some("git-receive-pack 'alice/proj.git'")),
            "a push during a purge"
        ),
        "ERROR: alice/proj is being purged of unreachable objects; pushes are refused until it is done. Push again in a minute."
    );
    let out = ssh.session(&alice, Some("git-upload-pack 'alice/proj.git'"));
    assert!(out.status.success(), "{}", all_output(&out));
    drop(purge);
    fs::write(
        repo.join("forgelet-maintenance.status"),
        "done\n1700000000\n\n",
    )
    .unwrap();
    let out = ssh.session(&alice, Some("git-receive-pack 'alice/proj.git'"));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(contains(&out.stdout, b"report-status"));
}
