//! Hosts that start forgelet for the web server: systemd and spawn-fcgi. The shipped units
//! (the server's, and the maintenance timer's) pass `systemd-analyze verify` and keep their
//! `systemd-analyze security` score; forgelet started by
//! `systemd-socket-activate` (the socket on fd 3, `LISTEN_FDS`) and by the README's spawn-fcgi
//! command (the socket on fd 0) serves, over FastCGI straight on the socket it was handed, the
//! front page, a public repository's refs (a clone of what it sends matches the repository) and
//! a 401 for a private one; and stops cleanly on SIGTERM, as `systemctl stop` sends it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Where the units (and the Debian package) put the binary.
const UNIT_BIN: &str = "/usr/bin/forgelet";

/// The highest `systemd-analyze security` exposure `deploy/forgelet.service` may have; the
/// README and the unit's comment state it.
const MAX_EXPOSURE: f64 = 0.6;

fn shipped(rel: &str) -> String {
    let path = Path::new(MANIFEST_DIR).join(rel);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The README's section under `### {title}`, up to the next heading of its level or above
/// (lines in code blocks are not headings).
fn readme_section(title: &str) -> String {
    let readme = shipped("README.md");
    let head = format!("### {title}");
    let mut section = String::new();
    let mut in_code = false;
    for line in readme.lines().skip_while(|l| *l != head).skip(1) {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && (line.starts_with("## ") || line.starts_with("### ")) {
            break;
        }
        section.push_str(line);
        section.push('\n');
    }
    assert!(!section.is_empty(), "README.md has no section {head:?}");
    section
}

/// Copies of the shipped units in `dir`, the service naming the binary under test instead of
/// [`UNIT_BIN`] (`systemd-analyze verify` checks that the programs exist). Fails when the units
/// name the binary anywhere else than in the two lines this replaces.
fn unit_copies(dir: &Path) -> (PathBuf, PathBuf) {
    service_copies(
        dir,
        "forgelet.service",
        "forgelet.socket",
        &[
            format!("ExecStartPre={UNIT_BIN} check"),
            format!("ExecStart={UNIT_BIN} serve"),
        ],
    )
}

/// Copies of the shipped maintenance units in `dir` (the service naming the binary under test),
/// as [`unit_copies`]: the service runs `forgelet maintain` in its one command line, the timer
/// names no program.
fn maintain_unit_copies(dir: &Path) -> (PathBuf, PathBuf) {
    service_copies(
        dir,
        "forgelet-maintain.service",
        "forgelet-maintain.timer",
        &[format!("ExecStart={UNIT_BIN} maintain")],
    )
}

/// Copies in `dir` of `deploy/{service}` (its `commands`, the only lines naming a program,
/// made to name the binary under test) and of `deploy/{companion}` (which names none).
fn service_copies(
    dir: &Path,
    service: &str,
    companion: &str,
    commands: &[String],
) -> (PathBuf, PathBuf) {
    let service_text = shipped(&format!("deploy/{service}"));
    let companion_text = shipped(&format!("deploy/{companion}"));
    let named: Vec<&str> = service_text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("bin/"))
        .collect();
    assert_eq!(
        named, commands,
        "deploy/{service} should run {UNIT_BIN} in exactly these lines"
    );
    assert!(
        !companion_text
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("bin/")),
        "deploy/{companion} names no program"
    );
    let service_copy = dir.join(service);
    let companion_copy = dir.join(companion);
    fs::write(
        &service_copy,
        service_text.replace(&format!("={UNIT_BIN} "), &format!("={BIN} ")),
    )
    .unwrap();
    fs::write(&companion_copy, companion_text).unwrap();
    (service_copy, companion_copy)
}

/// `systemd-analyze verify` of the given units: its exit status and the lines of its output
/// that name forgelet (it may also warn about units of the host).
fn verify(units: &[&Path]) -> (bool, Vec<String>) {
    let out = run(Command::new("systemd-analyze").arg("verify").args(units));
    let lines = all_output(&out)
        .lines()
        .filter(|l| l.contains("forgelet"))
        .map(str::to_string)
        .collect();
    (out.status.success(), lines)
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let tmp = TempDir::new("hosts_verify");
    let (service, socket) = unit_copies(tmp.path());
    let (maintain, timer) = maintain_unit_copies(tmp.path());
    let (passed, warnings) = verify(&[&service, &socket, &maintain, &timer]);
    assert!(
        passed && warnings.is_empty(),
        "systemd-analyze verify of the shipped units (exit ok: {passed}):\n{}",
        warnings.join("\n")
    );

    // The README's line for a binary built from source names it in both commands.
    let section = readme_section("Running under systemd");
    let sed = section
        .lines()
        .find(|l| l.starts_with("sed "))
        .expect("the README's sed line for a binary in /usr/local/bin");
    let target = "/etc/systemd/system/forgelet.service";
    assert!(sed.ends_with(&format!(">{target}")), "{sed}");
    let local = tmp.path().join("local");
    fs::create_dir(&local).unwrap();
    let sed = sed.replace(
        target,
        &local.join("forgelet.service").display().to_string(),
    );
    ok(Command::new("sh")
        .arg("-c")
        .arg(&sed)
        .current_dir(MANIFEST_DIR));
    let edited = fs::read_to_string(local.join("forgelet.service")).unwrap();
    let commands: Vec<&str> = edited.lines().filter(|l| l.starts_with("Exec")).collect();
    assert_eq!(
        commands,
        [
            "ExecStartPre=/usr/local/bin/forgelet check",
            "ExecStart=/usr/local/bin/forgelet serve"
        ],
        "{sed}"
    );

    // The same check sees a mistake in a unit: a misspelt value, and a missing program.
    let broken = tmp.path().join("broken");
    fs::create_dir(&broken).unwrap();
    let text = fs::read_to_string(&service).unwrap();
    assert!(text.contains("\nProtectSystem=strict\n"));
    let misspelt = broken.join("forgelet.service");
    fs::write(
        &misspelt,
        text.replace("\nProtectSystem=strict\n", "\nProtectSystem=strickt\n"),
    )
    .unwrap();
    let (_, warnings) = verify(&[&misspelt]);
    assert!(
        warnings.iter().any(|l| l.contains("strickt")),
        "systemd-analyze verify did not warn about ProtectSystem=strickt: {warnings:?}"
    );
    fs::write(
        &misspelt,
        text.replace(
            &format!("ExecStart={BIN} "),
            "ExecStart=/nonexistent/forgelet ",
        ),
    )
    .unwrap();
    let (passed, warnings) = verify(&[&misspelt]);
    assert!(
        !passed && warnings.iter().any(|l| l.contains("/nonexistent/forgelet")),
        "systemd-analyze verify accepted a missing program: {warnings:?}"
    );
}

/// The `systemd-analyze security --offline=yes` score of a unit, and what counts against it.
fn exposure(unit: &Path) -> (f64, String, Vec<String>) {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(unit));
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{text}"
    );
    // "→ Overall exposure level for forgelet.service: 0.6 SAFE 😀"
    let name = unit.file_name().unwrap().to_string_lossy();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("Overall exposure level for {name}:")))
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    let verdict = line.rsplit_once(": ").unwrap().1.trim().to_string();
    let score: f64 = verdict
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"));
    let exposed = text
        .lines()
        .filter(|l| l.starts_with('✗'))
        .map(str::to_string)
        .collect();
    (score, verdict, exposed)
}

#[test]
fn systemd_maintenance_service_exposure_stays_low() {
    let tmp = TempDir::new("hosts_security_maintain");
    let (service, _) = maintain_unit_copies(tmp.path());
    let (score, verdict, exposed) = exposure(&service);
    println!("systemd-analyze security --offline=yes forgelet-maintain.service: {verdict}");
    assert!(
        score <= MAX_EXPOSURE,
        "forgelet-maintain.service's exposure is {score}, above {MAX_EXPOSURE}; what counts against it:\n{}",
        exposed.join("\n")
    );
    let stated = format!("{MAX_EXPOSURE:.1} SAFE");
    assert!(
        shipped("deploy/forgelet-maintain.service").contains(&stated),
        "deploy/forgelet-maintain.service should state the exposure score {stated:?}"
    );
}

#[test]
fn systemd_service_exposure_stays_low() {
    let tmp = TempDir::new("hosts_security");
    let (service, _) = unit_copies(tmp.path());
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&service));
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "systemd-analyze security failed:\n{text}"
    );
    // "→ Overall exposure level for forgelet.service: 0.6 SAFE 😀"
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for forgelet.service:"))
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{text}"));
    let verdict = line.rsplit_once(": ").unwrap().1.trim();
    let score: f64 = verdict
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"));
    println!("systemd-analyze security --offline=yes forgelet.service: {verdict}");
    let exposed: Vec<&str> = text.lines().filter(|l| l.starts_with('✗')).collect();
    assert!(
        score <= MAX_EXPOSURE,
        "forgelet.service's exposure is {score}, above {MAX_EXPOSURE}; what counts against it:\n{}",
        exposed.join("\n")
    );
    // The figure the README and the unit give is the one the test holds them to.
    let stated = format!("{MAX_EXPOSURE:.1} SAFE");
    for (what, text) in [
        ("README.md", readme_section("Running under systemd")),
        (
            "deploy/forgelet.service",
            shipped("deploy/forgelet.service"),
        ),
    ] {
        assert!(
            text.contains(&stated),
            "{what} should state the exposure score {stated:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Servers started by a host's tool

/// A process started in a process group of its own (the host's tool, which becomes forgelet by
/// exec), stopped with its group when dropped, even when the test fails.
struct Started {
    child: Option<Child>,
    what: String,
    log: PathBuf,
}

impl Started {
    fn spawn(what: &str, cmd: &mut Command, log: PathBuf) -> Started {
        let err = fs::File::create(&log).unwrap();
        let child = cmd
            .env_remove("FORGELET_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::from(err.try_clone().unwrap()))
            .stderr(Stdio::from(err))
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}"));
        Started {
            child: Some(child),
            what: what.to_string(),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        let what = self.what.clone();
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("{what} exited ({status}):\n{}", self.log());
        }
    }

    /// Sends SIGTERM, as `systemctl stop` does: forgelet must exit by itself, successfully.
    fn stop(mut self) {
        let mut child = self.child.take().unwrap();
        signal_group(child.id(), libc::SIGTERM);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > Duration::from_secs(20) {
                signal_group(child.id(), libc::SIGKILL);
                let _ = child.wait();
                panic!("{} did not stop within 20 s of SIGTERM", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM:\n{}",
            self.what,
            self.log()
        );
        let log = self.log();
        assert!(!log.contains("panicked"), "forgelet logged a panic:\n{log}");
    }
}

fn signal_group(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with the negated id of a process group this test started.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal_group(child.id(), libc::SIGTERM);
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(5) {
                    signal_group(child.id(), libc::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // What forgelet started in groups of their own (git) went with its requests.
            signal_group(child.id(), libc::SIGKILL);
        }
        if std::thread::panicking() {
            eprintln!(
                "----- {} output ({}) -----\n{}",
                self.what,
                self.log.display(),
                self.log()
            );
        }
    }
}

/// Waits until something accepts connections on `socket`.
fn wait_for_socket(started: &mut Started, socket: &Path) {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        started.assert_running();
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "nothing listens on {} after 15 s",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request over FastCGI on `socket`, as the web server would send it.
fn ask(socket: &Path, site: &Site, method: &str, path: &str, body: &[u8]) -> Response {
    let target = site.target(path);
    let what = format!("FastCGI {method} {target} on {}", socket.display());
    let length = (!body.is_empty()).then_some(body.len());
    let mut params = cgi_params(method, target.as_bytes(), &[], site.port, length);
    if method == "POST" {
        for (k, v) in &mut params {
            if k == b"CONTENT_TYPE" {
                *v = b"application/x-git-upload-pack-request".to_vec();
            }
        }
    }
    let mut stream = fcgi_connect(socket);
    stream
        .write_all(&fcgi_request_bytes(1, false, &params, body))
        .unwrap();
    let reply = fcgi_read_reply(&mut stream, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
    parse_cgi(&reply.stdout, &what).unwrap_or_else(|e| panic!("{e}"))
}

/// A site with the public repository `alice/open` and the private `alice/closed`, whose
/// name is a marker the front page must show.
fn site_with_two_repositories(test: &str) -> (Site, String) {
    let site = Site::new(test, SiteOptions::default());
    let name = unique_marker();
    let config = fs::read_to_string(&site.config).unwrap();
    fs::write(&site.config, format!("site_name = \"{name}\"\n{config}")).unwrap();
    site.import_fixture("mixed", "alice/open");
    site.import_fixture("tags", "alice/closed");
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/closed", "--visibility", "private"]));
    (site, name)
}

/// The pkt-lines of a smart HTTP ref advertisement: `(object id, ref name)`, the `# service=`
/// line, capabilities and peeled tags left out.
fn advertised_refs(body: &[u8]) -> Vec<(String, String)> {
    let mut refs = Vec::new();
    let mut rest = body;
    while rest.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16).unwrap();
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        let line = String::from_utf8_lossy(&rest[4..len]).into_owned();
        rest = &rest[len..];
        let line = line.trim_end_matches('\n');
        let line = line.split('\0').next().unwrap();
        if line.starts_with('#') || line.ends_with("^{}") {
            continue;
        }
        let (oid, name) = line.split_once(' ').unwrap();
        refs.push((oid.to_string(), name.to_string()));
    }
    assert!(rest.is_empty(), "advertisement ends mid-line: {rest:?}");
    refs
}

/// Asks forgelet on `socket` what a web server would: the front page, the public repository's
/// refs (and a pack of everything they name, which `git clone` takes from a bundle and
/// which must hold the repository's refs), and the private repository's refs (401).
fn assert_serves(socket: &Path, site: &Site, name: &str) {
    let front = ask(socket, site, "GET", "/", b"");
    assert_eq!(front.status, 200, "front page: {}", front.describe());
    assert!(
        front.text().contains(name),
        "the front page does not show the site's name {name}: {}",
        front.describe()
    );

    let adv = ask(
        socket,
        site,
        "GET",
        "/alice/open.git/info/refs?service=git-upload-pack",
        b"",
    );
    assert_eq!(adv.status, 200, "public refs: {}", adv.describe());
    assert_eq!(
        adv.header("Content-Type"),
        Some("application/x-git-upload-pack-advertisement"),
        "{}",
        adv.describe()
    );
    assert!(
        adv.body.starts_with(b"001e# service=git-upload-pack\n0000"),
        "{}",
        adv.describe()
    );
    let refs = advertised_refs(&adv.body);
    let repo = site.repo_path("alice/open");
    let on_disk = refs_of(&repo);
    for (r, oid) in &on_disk {
        assert!(
            refs.contains(&(oid.clone(), r.clone())),
            "{r} {oid} is not advertised: {refs:?}"
        );
    }

    // A fetch of every advertised object (protocol v0, no capabilities: "NAK", then the pack).
    let mut wants: Vec<&str> = refs.iter().map(|(oid, _)| oid.as_str()).collect();
    wants.sort_unstable();
    wants.dedup();
    let mut request = String::new();
    for oid in &wants {
        request.push_str(&format!("0032want {oid}\n"));
    }
    request.push_str("00000009done\n");
    let pack = ask(
        socket,
        site,
        "POST",
        "/alice/open.git/git-upload-pack",
        request.as_bytes(),
    );
    assert_eq!(pack.status, 200, "upload-pack: {}", pack.describe());
    let data = pack
        .body
        .strip_prefix(b"0008NAK\n")
        .unwrap_or_else(|| panic!("upload-pack did not answer NAK: {}", pack.describe()));
    assert!(data.starts_with(b"PACK"), "{}", pack.describe());
    let mut bundle = b"# v2 git bundle\n".to_vec();
    for (oid, r) in &refs {
        bundle.extend_from_slice(format!("{oid} {r}\n").as_bytes());
    }
    bundle.push(b'\n');
    bundle.extend_from_slice(data);
    let bundle_file = site.dir().join("served.bundle");
    fs::write(&bundle_file, bundle).unwrap();
    let clone = site.dir().join("clone");
    git_ok(
        site.dir(),
        &[
            "clone".as_ref(),
            "-q".as_ref(),
            bundle_file.as_os_str(),
            clone.as_os_str(),
        ],
    );
    assert_clone_matches(&repo, &clone);

    let private = ask(
        socket,
        site,
        "GET",
        "/alice/closed.git/info/refs?service=git-upload-pack",
        b"",
    );
    assert_eq!(
        private.status,
        401,
        "private refs, anonymous: {}",
        private.describe()
    );
    assert!(
        private.header("WWW-Authenticate").is_some(),
        "{}",
        private.describe()
    );
}

#[test]
fn systemd_socket_activation_serves_the_socket_it_hands_over() {
    let (site, name) = site_with_two_repositories("hosts_socket_activation");
    let socket = site.dir().join("activated.sock");
    // As forgelet.socket does: systemd listens, and starts forgelet at the first connection
    // with the socket on fd 3 (LISTEN_FDS=1, LISTEN_PID).
    let mut started = Started::spawn(
        "systemd-socket-activate",
        Command::new("systemd-socket-activate")
            .arg("-l")
            .arg(&socket)
            .arg(BIN)
            .arg("--config")
            .arg(&site.config)
            .arg("serve"),
        site.dir().join("socket-activate.log"),
    );
    wait_for_socket(&mut started, &socket);
    assert_serves(&socket, &site, &name);
    started.assert_running();
    let exe = fs::read_link(format!("/proc/{}/exe", started.pid())).unwrap();
    assert_eq!(
        exe,
        Path::new(BIN).canonicalize().unwrap(),
        "forgelet should run in the process systemd-socket-activate started"
    );
    // The socket handed over was served, not the one the config names, and the log says so.
    let log = started.log();
    assert!(
        log.contains("serving on socket from systemd (fd 3)"),
        "forgelet's log:\n{log}"
    );
    assert!(
        !site.socket.exists(),
        "forgelet made {} although it was handed a socket",
        site.socket.display()
    );
    started.stop();
}

/// The README's spawn-fcgi commands, as a test can run them: its folder, umask and sockets in
/// the test's folder, its user and group (forgelet, www-data) replaced by `user` and `group`,
/// and `-n` to keep spawn-fcgi in the foreground. Returns the `install -d` command, the
/// spawn-fcgi command and the umask the README sets between them.
fn readme_spawn_fcgi(
    run_dir: &Path,
    config: &Path,
    user: &str,
    group: &str,
) -> (Vec<String>, Vec<String>, String) {
    let section = readme_section("Running under spawn-fcgi");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block in the README's spawn-fcgi section");
    let commands: Vec<Vec<&str>> = block
        .lines()
        .map(|l| l.split('#').next().unwrap().split_whitespace().collect())
        .collect();
    assert_eq!(
        commands.len(),
        3,
        "the README's spawn-fcgi block changed; update this test: {block}"
    );
    let sock = run_dir.join("forgelet.sock");
    let swap = |word: &str| -> Vec<String> {
        match word {
            "forgelet" => vec![user.to_string()],
            "www-data" => vec![group.to_string()],
            "/run/forgelet" => vec![run_dir.display().to_string()],
            "/run/forgelet/forgelet.sock" => vec![sock.display().to_string()],
            UNIT_BIN => vec![
                BIN.to_string(),
                "--config".to_string(),
                config.display().to_string(),
            ],
            w => vec![w.to_string()],
        }
    };
    let mut words = commands.iter();
    let install: Vec<String> = words.next().unwrap().iter().flat_map(|w| swap(w)).collect();
    assert_eq!(
        install[..2],
        ["install", "-d"],
        "first: the socket's folder"
    );
    let umask = words.next().unwrap();
    assert_eq!(umask[0], "umask", "second: the umask");
    let mut spawn: Vec<String> = words.next().unwrap().iter().flat_map(|w| swap(w)).collect();
    assert_eq!(spawn[0], "spawn-fcgi", "third: spawn-fcgi");
    assert!(
        spawn.iter().any(|w| w == BIN),
        "the README's spawn-fcgi runs {UNIT_BIN}: {block}"
    );
    spawn.insert(1, "-n".to_string());
    (install, spawn, umask[1].to_string())
}

/// What `id` says: `id -u`, `id -gn nobody`, ...
fn id(args: &[&str]) -> String {
    ok(Command::new("id").args(args)).trim().to_string()
}

#[test]
fn spawn_fcgi_runs_forgelet_as_the_readme_says() {
    let (site, name) = site_with_two_repositories("hosts_spawn_fcgi");
    // spawn-fcgi changes the user (-u) and the socket's group (-G) only when run as root, as
    // the README runs it; then forgelet runs as nobody, which must own the site (and reach it:
    // the folders above a checkout may be closed to others, so the site moves to /tmp).
    let root = id(&["-u"]) == "0";
    let (user, group, gid) = if root {
        let u = "nobody";
        (u.to_string(), id(&["-gn", u]), id(&["-g", u]))
    } else {
        (id(&["-un"]), id(&["-gn"]), id(&["-g"]))
    };
    let home = OpenDir::new("forgelet-spawn-fcgi");
    let data = home.path.join("data");
    ok(Command::new("cp").arg("-a").arg(&site.data_dir).arg(&data));
    let config = home.path.join("config.toml");
    let text = fs::read_to_string(&site.config).unwrap();
    let old = format!("data_dir = \"{}\"", site.data_dir.display());
    assert!(text.contains(&old));
    fs::write(
        &config,
        text.replace(&old, &format!("data_dir = \"{}\"", data.display())),
    )
    .unwrap();
    if root {
        ok(Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:{group}"))
            .arg(&home.path));
    }
    let run_dir = home.path.join("run");
    let (install, spawn, umask) = readme_spawn_fcgi(&run_dir, &config, &user, &group);
    ok(Command::new(&install[0]).args(&install[1..]));
    let md = fs::metadata(&run_dir).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o750, "{install:?}");

    let mut started = Started::spawn(
        "spawn-fcgi",
        Command::new("sh")
            .arg("-c")
            .arg(format!("umask {umask} && exec \"$@\""))
            .arg("sh")
            .args(&spawn),
        home.path.join("spawn-fcgi.log"),
    );
    let socket = run_dir.join("forgelet.sock");
    wait_for_socket(&mut started, &socket);
    // What nginx needs of the socket: a socket, readable and writable by the group it runs in.
    let md = fs::metadata(&socket).unwrap();
    assert!(md.file_type().is_socket());
    assert_eq!(md.permissions().mode() & 0o777, 0o660, "the socket's mode");
    assert_eq!(md.gid().to_string(), gid, "the socket's group");

    // The copy served holds the same repositories as the site (which git, as this user, reads).
    assert_serves(&socket, &site, &name);

    // forgelet serves in the process spawn-fcgi started, as the user it was told, with the
    // umask that keeps new repository files readable by the web server's group.
    started.assert_running();
    let status = fs::read_to_string(format!("/proc/{}/status", started.pid())).unwrap();
    let field = |key: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in /proc/PID/status"))
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("Uid:"), id(&["-u", &user]), "forgelet's user");
    assert_eq!(field("Umask:"), umask, "forgelet's umask");
    let exe = fs::read_link(format!("/proc/{}/exe", started.pid())).unwrap();
    assert_eq!(exe, Path::new(BIN).canonicalize().unwrap());
    let log = started.log();
    assert!(
        log.contains("serving on socket on fd 0"),
        "forgelet's log:\n{log}"
    );
    started.stop();
}

/// A folder of its own in the system's temporary folder, open to every user (as /tmp is),
/// removed when dropped unless the test failed.
struct OpenDir {
    path: PathBuf,
}

impl OpenDir {
    fn new(name: &str) -> OpenDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", unique_marker()));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        OpenDir { path }
    }
}

impl Drop for OpenDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
