//! git over SSH through a real OpenSSH `sshd` (Debian's openssh-server), started here on a
//! loopback port with host keys and a config of its own, which includes the shipped snippet
//! (`deploy/sshd/forgelet.conf`) with only its names and paths changed: sshd asks `forgelet
//! ssh-keys` whose key signs in (as an unprivileged account, `nobody`), and runs `forgelet
//! ssh-serve KEYID` as the account that owns the data, as it would on a real host.
//!
//! sshd runs as root and refuses an AuthorizedKeysCommand that is not root's all the way up, so
//! these tests need root (CI runs as root): they install the built binary under
//! /usr/local/lib/forgelet-tests and make the account `forgelet-sshtest` when it is missing.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::util::*;

/// The account sshd lets in with the users' keys (on a real host: `forgelet`).
const ACCOUNT: &str = "forgelet-sshtest";
/// The account sshd runs the key lookup as (on a real host: `forgelet-ssh`).
const LOOKUP_ACCOUNT: &str = "nobody";

/// Setup that touches the host (the account, the installed binary) runs once at a time.
static HOST_SETUP: Mutex<Option<PathBuf>> = Mutex::new(None);

fn must(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{what}: {}", all_output(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the account (as the package makes `forgelet`: a shell, and a password field no
/// password matches, not a locked one) and installs the built binary where sshd accepts it as
/// an AuthorizedKeysCommand: root's, in folders only root may write. Returns its path.
fn host_setup() -> PathBuf {
    let mut done = HOST_SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = done.as_ref() {
        return p.clone();
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the SSH tests start sshd, which needs root (CI runs them as root): run `cargo test` as root"
    );
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "/usr/sbin/sshd is missing: apt-get install openssh-server (deploy/test.sh does)"
    );
    let known = run(Command::new("getent").args(["passwd", ACCOUNT]));
    if !known.status.success() {
        must(
            Command::new("useradd").args([
                "--system",
                "--user-group",
                "--shell",
                "/bin/sh",
                "--home-dir",
                "/nonexistent",
                "--no-create-home",
                ACCOUNT,
            ]),
            "useradd",
        );
    }
    must(
        Command::new("usermod").args(["-p", "*", ACCOUNT]),
        "usermod",
    );
    // sshd's privilege separation folder (made by its service on a booted host).
    fs::create_dir_all("/run/sshd").unwrap();
    fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).unwrap();

    let dir = Path::new("/usr/local/lib/forgelet-tests");
    fs::create_dir_all(dir).unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bytes = fs::read(BIN).unwrap();
    let sum = must(Command::new("sha256sum").arg(BIN), "sha256sum");
    let name = format!("forgelet-{}", &sum[..16]);
    let installed = dir.join(&name);
    if !installed.exists() {
        // Binaries of earlier builds go (a day's grace for test runs still using one).
        for e in fs::read_dir(dir).unwrap().flatten() {
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(86_400));
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        fs::write(&tmp, &bytes).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o755)).unwrap();
        fs::rename(&tmp, &installed).unwrap();
    }
    // What sshd checks: root's, and writable by no one else, all the way up.
    let mut p = installed.as_path();
    while let Some(parent) = p.parent() {
        let m = fs::metadata(p).unwrap();
        assert!(
            m.uid() == 0 && m.mode() & 0o022 == 0,
            "{} must be root's and not group- or world-writable for sshd",
            p.display()
        );
        p = parent;
    }
    *done = Some(installed.clone());
    installed
}

/// A user's key pair, made with ssh-keygen.
pub(crate) struct Key {
    private: PathBuf,
    public: PathBuf,
}

/// A site served over SSH by its own sshd.
pub(crate) struct SshSite {
    pub(crate) site: Site,
    port: u16,
    bin: PathBuf,
    sshd: Child,
    sshd_config: PathBuf,
    sshd_log: PathBuf,
    known_hosts: PathBuf,
}

impl SshSite {
    /// A site with the given users and repositories (`fixture`, `owner/name`, private?), its
    /// data handed to the account, and sshd started.
    pub(crate) fn new(name: &str, users: &[&str], repos: &[(&str, &str, bool)]) -> SshSite {
        SshSite::with_options(name, users, repos, SiteOptions::default())
    }

    /// [`SshSite::new`] with the site's options.
    pub(crate) fn with_options(
        name: &str,
        users: &[&str],
        repos: &[(&str, &str, bool)],
        opts: SiteOptions,
    ) -> SshSite {
        let bin = host_setup();
        let site = Site::new(name, opts);
        for user in users {
            site.ensure_user(user);
        }
        for (fixture, owner_repo, private) in repos {
            site.import_fixture(fixture, owner_repo);
            if *private {
                ok(site
                    .forgelet()
                    .args(["repo", "set", owner_repo, "--visibility", "private"]));
            }
        }
        let port = free_port();
        let index_dir = site.dir().join("ssh-index");
        fs::create_dir_all(&index_dir).unwrap();
        let mut config = fs::read_to_string(&site.config).unwrap();
        config.push_str(&format!(
            "\n[ssh]\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{ACCOUNT}\"\nkey_index = \"{}\"\ncommand = \"{}\"\n",
            index_dir.join("keys").display(),
            bin.display()
        ));
        fs::write(&site.config, config).unwrap();
        // The account owns the data (and the index's folder); the lookup account may read the
        // config and the index, and nothing else of the site.
        must(
            Command::new("chown")
                .arg("-R")
                .arg(format!("{ACCOUNT}:{ACCOUNT}"))
                .arg(&site.data_dir)
                .arg(&index_dir),
            "chown",
        );
        fs::set_permissions(&site.data_dir, fs::Permissions::from_mode(0o750)).unwrap();
        fs::set_permissions(site.dir(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&site.config, fs::Permissions::from_mode(0o644)).unwrap();
        let readable = run(Command::new("runuser")
            .args(["-u", LOOKUP_ACCOUNT, "--", "cat"])
            .arg(&site.config));
        assert!(
            readable.status.success(),
            "{LOOKUP_ACCOUNT} cannot read {} (every folder above it must be open to others): {}",
            site.config.display(),
            all_output(&readable)
        );

        let sshd_dir = site.dir().join("sshd");
        fs::create_dir_all(&sshd_dir).unwrap();
        let host_key = sshd_dir.join("host_ed25519");
        must(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "test host", "-f"])
                .arg(&host_key),
            "ssh-keygen (host key)",
        );
        let snippet = fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/sshd/forgelet.conf"),
        )
        .unwrap();
        let edited = edit_snippet(&snippet, &bin, &site.config);
        fs::write(sshd_dir.join("forgelet.conf"), edited).unwrap();
        let sshd_config = sshd_dir.join("sshd_config");
        // Debian's sshd_config reads sshd_config.d first; so does this one.
        fs::write(
            &sshd_config,
            format!(
                "Include {snippet}\n\
                 Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {host_key}\n\
                 PidFile none\n\
                 UsePAM yes\n\
                 LogLevel VERBOSE\n",
                snippet = sshd_dir.join("forgelet.conf").display(),
                host_key = host_key.display(),
            ),
        )
        .unwrap();
        let check = run(Command::new("/usr/sbin/sshd")
            .arg("-t")
            .arg("-f")
            .arg(&sshd_config));
        assert!(check.status.success(), "sshd -t: {}", all_output(&check));
        let sshd_log = sshd_dir.join("sshd.log");
        let sshd = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&sshd_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&sshd_log).unwrap())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "sshd did not listen on {port}: {}",
                fs::read_to_string(&sshd_log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let known_hosts = sshd_dir.join("known_hosts");
        SshSite {
            site,
            port,
            bin,
            sshd,
            sshd_config,
            sshd_log,
            known_hosts,
        }
    }

    /// `forgelet ...` as the account that owns the data (as the README runs admin commands).
    pub(crate) fn admin(&self) -> Command {
        let mut c = Command::new("runuser");
        c.args(["-u", ACCOUNT, "--"])
            .arg(BIN)
            .arg("--config")
            .arg(&self.site.config)
            .env_remove("FORGELET_CONFIG");
        c
    }

    /// A key pair for `user`, added to forgelet with `forgelet key add`.
    pub(crate) fn add_key(&self, user: &str, name: &str) -> Key {
        let key = self.new_key(name);
        let out = run(self
            .admin()
            .args(["key", "add", user, "--name", name])
            .arg(&key.public));
        assert!(
            out.status.success(),
            "forgelet key add: {}",
            all_output(&out)
        );
        key
    }

    /// A key pair forgelet does not know.
    fn new_key(&self, name: &str) -> Key {
        let dir = self.site.dir().join("client-keys");
        fs::create_dir_all(&dir).unwrap();
        let private = dir.join(name);
        must(
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(&private),
            "ssh-keygen",
        );
        Key {
            public: private.with_extension("pub"),
            private,
        }
    }

    /// The ssh command line git uses, with this key and this site's host key.
    fn ssh_command(&self, key: &Key) -> String {
        format!(
            "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes \
             -o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new -o LogLevel=ERROR -p {}",
            key.private.display(),
            self.known_hosts.display(),
            self.port
        )
    }

    pub(crate) fn url(&self, owner_repo: &str) -> String {
        format!("ssh://{ACCOUNT}@127.0.0.1:{}/{owner_repo}.git", self.port)
    }

    /// `git ARGS` in `dir`, over SSH with `key`.
    pub(crate) fn git(&self, key: &Key, dir: &Path) -> Command {
        let mut c = git(dir);
        c.env("GIT_SSH_COMMAND", self.ssh_command(key))
            .env("GIT_SSH_VARIANT", "ssh");
        c
    }

    /// A clone of `owner_repo` at `dest` over SSH with `key`, to commit in (util::git gives
    /// commits their author).
    fn clone_work(&self, key: &Key, owner_repo: &str, dest: &Path) {
        let out = run(self
            .git(key, dest.parent().unwrap())
            .arg("clone")
            .arg(self.url(owner_repo))
            .arg(dest));
        assert!(
            out.status.success(),
            "clone of {owner_repo}: {}",
            text(&out)
        );
    }

    /// `ssh` with `key` running `command` (None: no command, as `ssh forgelet@host`).
    fn ssh(&self, key: &Key, command: Option<&str>) -> Output {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "{} {ACCOUNT}@127.0.0.1 {}",
            self.ssh_command(key),
            command.map(shell_quote).unwrap_or_default()
        ));
        run(&mut c)
    }

    fn sshd_log(&self) -> String {
        fs::read_to_string(&self.sshd_log).unwrap_or_default()
    }
}

impl Drop for SshSite {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        if std::thread::panicking() {
            eprintln!("sshd's log:\n{}", self.sshd_log());
        }
    }
}

/// The shipped snippet with this test's account, binary, config and lookup account; nothing
/// else changes, so what sshd enforces here is what it enforces on a host.
fn edit_snippet(snippet: &str, bin: &Path, config: &Path) -> String {
    let pairs = [
        ("Match User forgelet", format!("Match User {ACCOUNT}")),
        (
            "AuthorizedKeysCommand /usr/bin/forgelet --config /etc/forgelet/config.toml",
            format!(
                "AuthorizedKeysCommand {} --config {}",
                bin.display(),
                config.display()
            ),
        ),
        (
            "AuthorizedKeysCommandUser forgelet-ssh",
            format!("AuthorizedKeysCommandUser {LOOKUP_ACCOUNT}"),
        ),
    ];
    let mut text = snippet.to_string();
    for (from, to) in pairs {
        assert_eq!(
            text.matches(from).count(),
            1,
            "deploy/sshd/forgelet.conf should hold `{from}` once; update the test"
        );
        text = text.replace(from, &to);
    }
    text
}

/// `s` as one word for sh.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn text(out: &Output) -> String {
    all_output(out)
}

#[test]
fn clone_fetch_and_push_over_ssh_with_protocol_v0_and_v2() {
    let s = SshSite::new("ssh-clone", &[], &[("mixed", "alice/tools", false)]);
    let key = s.add_key("alice", "laptop");
    let server = s.site.repo_path("alice/tools");
    let work = s.site.dir().join("work");
    fs::create_dir_all(&work).unwrap();
    for version in ["0", "2"] {
        let dest = work.join(format!("v{version}"));
        let out = run(s
            .git(&key, &work)
            .env("GIT_TRACE_PACKET", "1")
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "--mirror",
            ])
            .arg(s.url("alice/tools"))
            .arg(&dest));
        assert!(
            out.status.success(),
            "clone over v{version}: {}\n{}",
            text(&out),
            s.sshd_log()
        );
        let trace = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            trace.contains("< version 2"),
            version == "2",
            "protocol v{version} was not what git spoke"
        );
        assert_eq!(
            refs_of(&dest),
            refs_of(&server),
            "refs after the v{version} clone"
        );
        git_ok(&dest, &["fsck", "--strict", "--no-progress"]);
    }

    // A push moves the ref on the server, and a fetch brings it back.
    let clone = work.join("clone");
    s.clone_work(&key, "alice/tools", &clone);
    fs::write(clone.join("over-ssh.txt"), "pushed over ssh\n").unwrap();
    git_ok(&clone, &["add", "over-ssh.txt"]);
    git_ok(&clone, &["commit", "-q", "-m", "Over SSH"]);
    let head = git_ok(&clone, &["rev-parse", "HEAD"]).trim().to_string();
    let branch = git_ok(&clone, &["symbolic-ref", "--short", "HEAD"])
        .trim()
        .to_string();
    let out = run(s.git(&key, &clone).args(["push", "origin", &branch]));
    assert!(
        out.status.success(),
        "push: {}\n{}",
        text(&out),
        s.sshd_log()
    );
    assert_eq!(
        refs_of(&server).get(&format!("refs/heads/{branch}")),
        Some(&head),
        "the pushed commit is not on the server"
    );
    let out =
        run(s
            .git(&key, &work.join("v2"))
            .args(["-c", "protocol.version=2", "fetch", "origin"]));
    assert!(out.status.success(), "fetch: {}", text(&out));
    assert_eq!(refs_of(&work.join("v2")), refs_of(&server));
    // Files a push made are the account's, and not readable by others (umask 0027).
    let objects = server.join("objects");
    let newest = fs::read_dir(&objects)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 2 || e.file_name() == "pack")
        .flat_map(|d| {
            fs::read_dir(d.path())
                .unwrap()
                .flatten()
                .collect::<Vec<_>>()
        })
        .max_by_key(|e| e.metadata().unwrap().modified().unwrap())
        .unwrap();
    let m = newest.metadata().unwrap();
    assert_eq!(
        m.mode() & 0o007,
        0,
        "{} is open to others",
        newest.path().display()
    );
}

/// Who may do what over SSH: the same rules as over HTTP, for every kind of user, on a public and
/// a private repository, and a missing repository that answers as a private one does.
#[test]
fn the_permission_matrix_holds_over_ssh() {
    let s = SshSite::new(
        "ssh-perms",
        &["bob", "carol", "dave", "erin"],
        &[
            ("mixed", "alice/open", false),
            ("mixed", "alice/closed", true),
        ],
    );
    for repo in ["alice/open", "alice/closed"] {
        ok(s.admin().args(["repo", "grant", repo, "bob", "read"]));
        ok(s.admin().args(["repo", "grant", repo, "carol", "write"]));
    }
    let alice = s.add_key("alice", "a");
    let bob = s.add_key("bob", "b");
    let carol = s.add_key("carol", "c");
    let dave = s.add_key("dave", "d");
    let erin = s.add_key("erin", "e");
    ok(s.admin().args(["key", "del", "erin", "e"]));
    let unknown = s.new_key("unknown");

    let work = s.site.dir().join("work");
    fs::create_dir_all(&work).unwrap();
    let mut n = 0;
    let mut clone = |key: &Key, repo: &str| -> Output {
        n += 1;
        run(s
            .git(key, &work)
            .args(["clone", "-q", "--bare"])
            .arg(s.url(repo))
            .arg(work.join(format!("c{n}"))))
    };
    // (key, repo, may read)
    let cases: [(&str, &Key, &str, bool); 10] = [
        ("owner", &alice, "alice/open", true),
        ("owner", &alice, "alice/closed", true),
        ("reader", &bob, "alice/closed", true),
        ("writer", &carol, "alice/closed", true),
        ("stranger", &dave, "alice/open", true),
        ("stranger", &dave, "alice/closed", false),
        ("stranger", &dave, "alice/missing", false),
        ("owner", &alice, "alice/missing", false),
        ("removed key", &erin, "alice/open", false),
        ("unknown key", &unknown, "alice/open", false),
    ];
    let mut hidden = Vec::new();
    for (who, key, repo, may) in cases {
        let out = clone(key, repo);
        assert_eq!(
            out.status.success(),
            may,
            "{who} cloning {repo}: {}",
            text(&out)
        );
        if !may && (who == "stranger" || repo.ends_with("missing")) {
            hidden.push((who, repo, text(&out)));
        }
        if who == "removed key" || who == "unknown key" {
            assert!(
                text(&out).contains("Permission denied (publickey)"),
                "{who}: {}",
                text(&out)
            );
        }
    }
    // A private repository and a missing one look the same to a stranger.
    let first = &hidden[0].2;
    for (who, repo, msg) in &hidden {
        assert_eq!(
            msg.replace("alice/missing", "alice/closed"),
            first.replace("alice/missing", "alice/closed"),
            "{who} on {repo} is told something else"
        );
    }

    // Pushes: the owner and the writer may, the reader and a stranger may not.
    let src = work.join("src");
    s.clone_work(&alice, "alice/closed", &src);
    for (who, key, may) in [
        ("owner", &alice, true),
        ("writer", &carol, true),
        ("reader", &bob, false),
        ("stranger", &dave, false),
    ] {
        let branch = format!("from-{}", who.replace(' ', "-"));
        git_ok(&src, &["checkout", "-q", "-B", &branch]);
        git_ok(&src, &["commit", "-q", "--allow-empty", "-m", &branch]);
        let out = run(s.git(key, &src).args(["push", "origin", &branch]));
        assert_eq!(out.status.success(), may, "{who} pushing: {}", text(&out));
        let there = refs_of(&s.site.repo_path("alice/closed"))
            .contains_key(&format!("refs/heads/{branch}"));
        assert_eq!(
            there,
            may,
            "{who}'s push {} the server",
            if may { "did not reach" } else { "reached" }
        );
        if who == "reader" {
            assert!(
                text(&out).contains("alice/closed"),
                "the reader is not told why: {}",
                text(&out)
            );
        }
    }
}

/// Anything but git's own commands is refused in one line, and nothing runs a shell.
#[test]
fn hostile_commands_are_refused() {
    let s = SshSite::new("ssh-hostile", &[], &[("mixed", "alice/tools", false)]);
    let key = s.add_key("alice", "laptop");
    let marker = s.site.dir().join("pwned");
    let m = marker.display();
    // The greeting, as GitHub gives it.
    let out = s.ssh(&key, None);
    assert!(!out.status.success());
    assert!(
        text(&out).contains(
            "Hi alice! You've authenticated, but forgelet does not provide shell access."
        ),
        "{}",
        text(&out)
    );
    for command in [
        format!("touch {m}"),
        format!("git-upload-pack 'alice/tools.git'; touch {m}"),
        format!("git-upload-pack 'alice/tools.git' && touch {m}"),
        format!("git-upload-pack \"$(touch {m})\""),
        format!("git-upload-pack `touch {m}`"),
        format!("git-upload-pack 'alice/tools.git' | touch {m}"),
        "git-upload-pack '../../../etc'".to_string(),
        "git-upload-pack 'alice/../alice/tools.git'".to_string(),
        "git-upload-pack '/etc/passwd'".to_string(),
        "git-upload-pack 'alice/tools.git' 'alice/tools.git'".to_string(),
        "git-upload-pack 'alice/tools.git".to_string(),
        "scp -f /etc/passwd".to_string(),
        "sh".to_string(),
        "git-lfs-transfer alice/tools.git download".to_string(),
        "internal-sftp".to_string(),
    ] {
        let out = s.ssh(&key, Some(&command));
        assert!(
            !out.status.success(),
            "{command:?} was accepted: {}",
            text(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{command:?} wrote to stdout: {}",
            text(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.trim().is_empty(), "{command:?}: no message");
    }
    assert!(!marker.exists(), "a command ran a shell");
    // No terminal and no forwarding, whatever the client asks.
    let fwd = run(Command::new("sh").arg("-c").arg(format!(
        "timeout 30 {} -o ExitOnForwardFailure=yes -N -R 127.0.0.1:{}:127.0.0.1:{} {ACCOUNT}@127.0.0.1",
        s.ssh_command(&key),
        free_port(),
        s.port
    )));
    assert!(
        !fwd.status.success() && text(&fwd).contains("forwarding failed"),
        "port forwarding was not refused: {}",
        text(&fwd)
    );
}

/// A push of more than 100 MB (incompressible) goes through.
#[test]
fn a_push_of_more_than_100_mb_over_ssh() {
    let s = SshSite::new("ssh-big", &[], &[("mixed", "alice/big", false)]);
    let key = s.add_key("alice", "laptop");
    let work = s.site.dir().join("work");
    fs::create_dir_all(&work).unwrap();
    let clone = work.join("clone");
    s.clone_work(&key, "alice/big", &clone);
    // 110 MB that do not compress.
    let mut f = fs::File::create(clone.join("big.bin")).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..110 {
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&buf).unwrap();
    }
    drop(f);
    git_ok(&clone, &["add", "big.bin"]);
    git_ok(&clone, &["commit", "-q", "-m", "Big"]);
    let head = git_ok(&clone, &["rev-parse", "HEAD"]).trim().to_string();
    let branch = git_ok(&clone, &["symbolic-ref", "--short", "HEAD"])
        .trim()
        .to_string();
    let out = run(s.git(&key, &clone).args(["push", "origin", &branch]));
    assert!(
        out.status.success(),
        "push: {}\n{}",
        text(&out),
        s.sshd_log()
    );
    let server = s.site.repo_path("alice/big");
    assert_eq!(
        refs_of(&server).get(&format!("refs/heads/{branch}")),
        Some(&head)
    );
    git_ok(&server, &["fsck", "--no-progress"]);
    let size = git_ok(&server, &["cat-file", "-s", &format!("{head}:big.bin")]);
    assert_eq!(size.trim(), (110u64 << 20).to_string());
}

/// The lookup sshd runs answers as the unprivileged account, which can read neither the users
/// file nor the secret.
#[test]
fn the_key_lookup_runs_as_an_account_that_cannot_read_forgelet_s_secrets() {
    let s = SshSite::new("ssh-lookup", &["alice"], &[]);
    let key = s.add_key("alice", "laptop");
    let public = fs::read_to_string(&key.public).unwrap();
    let mut parts = public.split_whitespace();
    let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
    let lookup = |user: &str| {
        run(Command::new("runuser")
            .args(["-u", LOOKUP_ACCOUNT, "--"])
            .arg(&s.bin)
            .arg("--config")
            .arg(&s.site.config)
            .args(["ssh-keys", user, kind, blob]))
    };
    let out = lookup(ACCOUNT);
    assert!(out.status.success(), "{}", text(&out));
    let line = String::from_utf8_lossy(&out.stdout);
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("restrict,command=\""), "{line}");
    assert!(line.contains(" ssh-serve "), "{line}");
    assert!(
        line.trim_end().ends_with(&format!("{kind} {blob}")),
        "{line}"
    );
    // Another account on the host is not forgelet's business.
    let out = lookup("root");
    assert!(
        out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out)
    );
    for secret in ["users.toml", "secret"] {
        let path = s.site.data_dir.join(secret);
        if path.exists() {
            let out = run(Command::new("runuser")
                .args(["-u", LOOKUP_ACCOUNT, "--", "cat"])
                .arg(&path));
            assert!(!out.status.success(), "{LOOKUP_ACCOUNT} can read {secret}");
        }
    }
}

/// `forgelet doctor` checks what SSH needs on this host, and says what is wrong and how to fix it.
#[test]
fn doctor_checks_the_account_sshd_and_the_key_index() {
    let s = SshSite::new("ssh-doctor", &["alice"], &[]);
    s.add_key("alice", "laptop");
    let doctor = |sshd_config: &Path| -> String {
        // The web checks fail here (no web server runs); the SSH lines are what this test reads.
        let out = run(Command::new(BIN)
            .arg("--config")
            .arg(&s.site.config)
            .arg("doctor")
            .arg("--sshd-config")
            .arg(sshd_config));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let report = doctor(&s.sshd_config);
    for check in ["ssh", "ssh account", "ssh command", "sshd", "ssh key index"] {
        let line = report
            .lines()
            .find(|l| {
                l.split_once(' ')
                    .map(|(_, rest)| rest.trim_start().starts_with(&format!("{check}:")))
                    == Some(true)
            })
            .unwrap_or_else(|| panic!("no {check} line in:\n{report}"));
        assert!(line.starts_with("ok "), "{line}\n{report}");
    }

    // sshd without the snippet: forgelet is never asked.
    let bare = s.site.dir().join("sshd/bare_config");
    let text = fs::read_to_string(&s.sshd_config).unwrap();
    fs::write(
        &bare,
        text.lines()
            .filter(|l| !l.starts_with("Include"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let report = doctor(&bare);
    assert!(
        report.contains("FAILED   sshd: sshd does not ask forgelet whose key signs in"),
        "{report}"
    );
    // An index the lookup account cannot read.
    let index = s.site.dir().join("ssh-index/keys");
    fs::set_permissions(&index, fs::Permissions::from_mode(0o600)).unwrap();
    let report = doctor(&s.sshd_config);
    assert!(report.contains("FAILED   ssh key index:"), "{report}");
    assert!(report.contains("forgelet key reindex"), "{report}");
}

/// git-lfs over SSH: `git-lfs-authenticate` gives the LFS API's address and a header valid for a
/// few minutes, with the same access rules; the objects then travel over HTTP.
#[test]
fn git_lfs_over_ssh_authenticates_for_the_http_api() {
    let s = SshSite::new("ssh-lfs", &["alice", "reader"], &[]);
    let out = run(s.admin().args(["repo", "create", "alice/media"]));
    assert!(out.status.success(), "{}", all_output(&out));
    let out = run(s
        .admin()
        .args(["repo", "grant", "alice/media", "reader", "read"]));
    assert!(out.status.success(), "{}", all_output(&out));
    let alice = s.add_key("alice", "laptop");
    let reader = s.add_key("reader", "desktop");
    let srv = s.site.start();

    let out = s.ssh(
        &alice,
        Some("git-lfs-authenticate 'alice/media.git' upload"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        answer["href"].as_str().unwrap(),
        format!(
            "http://127.0.0.1:{}{}",
            s.site.port,
            s.site.target("/alice/media.git/info/lfs")
        )
    );
    assert!(answer["expires_in"].as_u64().unwrap() > 0);
    // The header opens the batch API of that repository, not another's.
    let header = answer["header"]["Authorization"].as_str().unwrap();
    let body = br#"{"operation":"download","objects":[]}"#;
    let batch = |repo: &str| {
        http_request_body(
            s.site.port,
            "POST",
            s.site
                .target(&format!("/{repo}.git/info/lfs/objects/batch"))
                .as_bytes(),
            &[
                ("Authorization", header),
                ("Content-Type", "application/vnd.git-lfs+json"),
            ],
            body,
        )
    };
    assert_eq!(batch("alice/media").status, 200);
    ok(s.admin().args(["repo", "create", "alice/other"]));
    assert_eq!(batch("alice/other").status, 401);
    // A reader is given downloads, not uploads; a stranger's key nothing.
    let out = s.ssh(
        &reader,
        Some("git-lfs-authenticate 'alice/media.git' download"),
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = s.ssh(
        &reader,
        Some("git-lfs-authenticate 'alice/media.git' upload"),
    );
    assert!(
        !out.status.success() && out.stdout.is_empty(),
        "{}",
        text(&out)
    );

    // The real client, with an ssh:// remote.
    let work = s.site.dir().join("lfs-work");
    fs::create_dir_all(&work).unwrap();
    ok(git(&work).args(["init", "-q"]));
    let lfs_git = |dir: &Path| {
        let mut c = s.git(&alice, dir);
        c.env_remove("GIT_SMART_HTTP").args([
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
    ok(lfs_git(&work).args(["lfs", "track", "*.bin"]));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    fs::write(work.join("asset.bin"), &data).unwrap();
    ok(lfs_git(&work).args(["add", "-A"]));
    ok(lfs_git(&work).args(["commit", "-q", "-m", "an asset"]));
    let out = run(lfs_git(&work).args(["push", "-q", &s.url("alice/media"), "main"]));
    assert!(out.status.success(), "push over SSH: {}", text(&out));
    let clone = s.site.dir().join("lfs-clone");
    let out = run(lfs_git(s.site.dir())
        .arg("clone")
        .arg(s.url("alice/media"))
        .arg(&clone));
    assert!(out.status.success(), "clone over SSH: {}", text(&out));
    assert!(
        fs::read(clone.join("asset.bin")).unwrap() == data,
        "the clone's asset differs"
    );
    srv.finish();
}
