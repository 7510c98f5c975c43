//! `forgelet doctor` against real deployments: behind nginx and behind Apache over FastCGI as
//! shipped, where every check passes, and behind configs broken on purpose, one per check,
//! where that check alone fails with its own message and doctor exits non-zero. After every run
//! the temporary repository, its owner's token and doctor's files are gone, and the user's own
//! repository is as it was.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Instant;

use crate::util::*;

/// Every check doctor prints for a deployment it can check through and through.
const ALL_CHECKS: &[&str] = &[
    "config",
    "data_dir",
    "users.toml",
    "secret",
    "repos modes",
    "safe.directory",
    "repositories",
    "git",
    "socket",
    "ssh",
    "https",
    "web server",
    "temporary repository",
    "credentials",
    "info/refs dumb",
    "info/refs smart",
    "protocol v2",
    "internal location",
    "push",
    "private repository",
    "object files",
    "fetch",
    "pack cache",
    "buffering",
    "timeouts",
    "cleanup",
];

/// A site with a user (who will own doctor's temporary repository) and a repository of theirs,
/// which doctor must not touch.
fn site(test: &str, sendfile: &'static str) -> Site {
    let site = Site::new(
        test,
        SiteOptions {
            sendfile,
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    site.import_fixture("mixed", "alice/proj");
    site
}

/// What doctor printed: (status, check, text) per line of a check.
struct Doctor {
    success: bool,
    output: String,
    lines: Vec<(String, String, String)>,
}

impl Doctor {
    /// The line of `check`, or a panic showing the whole output.
    fn line(&self, check: &str) -> (&str, &str) {
        self.lines
            .iter()
            .find(|(_, c, _)| c == check)
            .map(|(s, _, t)| (s.as_str(), t.as_str()))
            .unwrap_or_else(|| panic!("no line for {check}:\n{}", self.output))
    }

    /// The checks that failed, in order.
    fn failed(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(s, _, _)| s == "FAILED")
            .map(|(_, c, _)| c.as_str())
            .collect()
    }

    /// `check` failed, saying each of `words`.
    fn assert_failed(&self, check: &str, words: &[&str]) {
        let (status, text) = self.line(check);
        assert_eq!(status, "FAILED", "{check}:\n{}", self.output);
        for w in words {
            assert!(
                text.contains(w),
                "{check} does not say {w:?}:\n{}",
                self.output
            );
        }
    }
}

/// Runs `forgelet doctor ARGS` on `site`, then checks that it left nothing behind: no
/// temporary repository (nor in the trash), no token, no files of its own, and the user's
/// repository unchanged.
fn doctor(site: &Site, args: &[&str]) -> Doctor {
    doctor_as(site, None, args)
}

/// A forgelet command for `site`, run as `user` when given (as the admin commands of a site
/// whose data belongs to that user are).
fn forgelet_as(site: &Site, user: Option<&str>) -> Command {
    match user {
        None => site.forgelet(),
        Some(u) => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", u, "--regid", u, "--init-groups", BIN, "--config"])
                .arg(&site.config)
                .env_remove("FORGELET_CONFIG");
            c
        }
    }
}

/// [`doctor`], run as `user` when given.
fn doctor_as(site: &Site, user: Option<&str>, args: &[&str]) -> Doctor {
    let repos_before = ok(forgelet_as(site, user).args(["repo", "list"]));
    let refs_before = refs_of(&site.repo_path("alice/proj"));
    let started = Instant::now();
    let out = run(forgelet_as(site, user).arg("doctor").args(args));
    let secs = started.elapsed().as_secs_f64();
    let output = all_output(&out);
    eprintln!("forgelet doctor {args:?} took {secs:.1} s:\n{output}");
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (status, rest) = l.split_once(' ')?;
            if !["ok", "warning", "FAILED", "skipped"].contains(&status) {
                return None;
            }
            let (check, text) = rest.trim_start().split_once(": ")?;
            Some((status.to_string(), check.to_string(), text.to_string()))
        })
        .collect();
    assert_nothing_left(site, user, &repos_before, &refs_before, &output);
    Doctor {
        success: out.status.success(),
        output,
        lines,
    }
}

/// No temporary repository (nor in the trash), no token, no files of doctor's own, and the
/// user's repository as it was before.
fn assert_nothing_left(
    site: &Site,
    user: Option<&str>,
    repos_before: &str,
    refs_before: &std::collections::BTreeMap<String, String>,
    output: &str,
) {
    let repos_after = ok(forgelet_as(site, user).args(["repo", "list"]));
    assert_eq!(
        repos_after, repos_before,
        "doctor left a repository behind:\n{output}"
    );
    assert!(!repos_after.contains("doctor-"));
    let tokens = ok(forgelet_as(site, user).args(["token", "list", "alice"]));
    assert!(
        tokens.trim().is_empty(),
        "doctor left a token behind: {tokens}\n{output}"
    );
    assert!(
        !site.data_dir.join("trash").exists(),
        "doctor left its repository in the trash"
    );
    let own_files: Vec<String> = fs::read_dir(site.data_dir.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("forgelet-doctor-"))
        .collect();
    assert!(own_files.is_empty(), "doctor left {own_files:?} behind");
    assert_eq!(
        &refs_of(&site.repo_path("alice/proj")),
        refs_before,
        "doctor changed a user's repository"
    );
}

/// Every check is ok (none failed, warned or was skipped) and doctor exits 0.
fn assert_healthy(d: &Doctor) {
    assert!(d.success, "doctor failed:\n{}", d.output);
    for check in ALL_CHECKS {
        let (status, _) = d.line(check);
        assert_eq!(status, "ok", "{check}:\n{}", d.output);
    }
    assert!(
        d.lines.iter().all(|(s, _, _)| s == "ok"),
        "a check was not ok:\n{}",
        d.output
    );
}

#[test]
fn doctor_passes_a_deployment_behind_nginx() {
    let site = site("doctor_nginx", "x-accel-redirect");
    let srv = site.start();
    let conf = site.dir().join("nginx/forgelet.conf");
    let d = doctor(&site, &["--nginx-conf", conf.to_str().unwrap()]);
    assert_healthy(&d);
    assert!(d.line("web server").1.contains("nginx"), "{}", d.output);
    assert!(d
        .output
        .contains("0 failed, 0 warning(s), 27 ok, 0 skipped"));

    // Without the web server's config, what cannot be seen from outside is skipped, with why
    // and what to give; that is no failure.
    let d = doctor(&site, &[&site.url("/")]);
    assert!(d.success, "{}", d.output);
    let (status, text) = d.line("timeouts");
    assert_eq!(status, "skipped", "{}", d.output);
    assert!(text.contains("--nginx-conf PATH"), "{}", d.output);
    assert!(d.failed().is_empty(), "{}", d.output);
    srv.finish();
}

#[test]
fn doctor_passes_a_deployment_behind_apache_over_fastcgi() {
    let site = site("doctor_apache", "x-sendfile");
    let srv = site.start_behind(Front::ApacheFcgi);
    let conf = site.dir().join("apache/forgelet.conf");
    let d = doctor(&site, &["--apache-conf", conf.to_str().unwrap()]);
    assert_healthy(&d);
    assert!(d.line("web server").1.contains("Apache"), "{}", d.output);
    srv.finish();
}

#[test]
fn doctor_says_what_is_not_running() {
    let site = site("doctor_down", "x-accel-redirect");
    let d = doctor(&site, &[]);
    assert!(!d.success, "{}", d.output);
    let (status, text) = d.line("socket");
    assert_eq!(status, "warning", "{}", d.output);
    assert!(text.contains("CGI mode?"), "{}", d.output);
    d.assert_failed("web server", &["is the web server running"]);
    assert_eq!(d.failed(), ["web server"], "{}", d.output);
    assert_eq!(d.line("web").0, "skipped", "{}", d.output);
}

#[test]
fn doctor_names_a_nginx_push_location_that_caps_bodies() {
    let site = site("doctor_nginx_413", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        assert!(text.contains("client_max_body_size 0;"));
        text.replace("client_max_body_size 0;", "")
    });
    let d = doctor(&site, &[]);
    assert!(!d.success);
    d.assert_failed(
        "push",
        &["413", "`client_max_body_size 0;`", "git-receive-pack"],
    );
    assert_eq!(d.failed(), ["push"], "{}", d.output);
    drop(srv);
}

#[test]
fn doctor_names_a_nginx_that_drops_the_git_protocol_header() {
    let site = site("doctor_nginx_v2", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        let line = "fastcgi_param HTTP_PROXY \"\";";
        assert!(text.contains(line));
        text.replace(
            line,
            &format!("{line}\n    fastcgi_param HTTP_GIT_PROTOCOL \"\";"),
        )
    });
    let d = doctor(&site, &[]);
    assert!(!d.success);
    d.assert_failed(
        "protocol v2",
        &["Git-Protocol header", "fastcgi_param HTTP_GIT_PROTOCOL"],
    );
    assert_eq!(d.failed(), ["protocol v2"], "{}", d.output);
    srv.finish();
}

#[test]
fn doctor_names_an_internal_location_reachable_from_outside() {
    let site = site("doctor_nginx_internal", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        assert!(text.contains("    internal;\n"));
        text.replace("    internal;\n", "")
    });
    let d = doctor(&site, &[]);
    assert!(!d.success);
    d.assert_failed(
        "internal location",
        &["answered 200", "add `internal;`", "/.forgelet-repos/"],
    );
    assert_eq!(d.failed(), ["internal location"], "{}", d.output);
    srv.finish();
}

/// A web server that does not send the pack cache's entries fails every clone of something seen
/// before, and nothing else: doctor repeats a clone until the cache answers it.
#[test]
fn doctor_names_a_web_server_that_does_not_send_the_pack_cache() {
    let site = site("doctor_nginx_pack_cache", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        let repos = "location ^~ /.forgelet-repos/ {";
        assert!(text.contains(repos));
        text.replace(
            repos,
            &format!("location ^~ /.forgelet-repos/.cache/ {{\n    internal;\n    return 404;\n}}\n{repos}"),
        )
    });
    let d = doctor(&site, &[]);
    assert!(!d.success, "{}", d.output);
    d.assert_failed(
        "pack cache",
        &[
            "404",
            "clones of anything seen before fail",
            "/.forgelet-repos/.cache/",
        ],
    );
    assert_eq!(d.failed(), ["pack cache"], "{}", d.output);
    srv.finish();
}

#[test]
fn doctor_names_short_nginx_timeouts() {
    let site = site("doctor_nginx_timeout", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        assert!(text.contains("fastcgi_read_timeout 300s;"));
        text.replace("fastcgi_read_timeout 300s;", "fastcgi_read_timeout 60s;")
    });
    let conf = site.dir().join("nginx/forgelet.conf");
    let d = doctor(&site, &["--nginx-conf", conf.to_str().unwrap()]);
    assert!(!d.success);
    d.assert_failed(
        "timeouts",
        &["`fastcgi_read_timeout 60s`", "fastcgi_read_timeout 300s;"],
    );
    assert_eq!(d.failed(), ["timeouts"], "{}", d.output);
    srv.finish();
}

/// An nginx told to ignore forgelet's `X-Accel-Buffering: no` holds git's answers back.
#[test]
fn doctor_names_a_nginx_that_buffers_git() {
    let site = site("doctor_nginx_buffering", "x-accel-redirect");
    let srv = site.start_behind_with(Front::Nginx, |text| {
        assert!(text.contains("    fastcgi_read_timeout 300s;\n"));
        text.replace(
            "    fastcgi_read_timeout 300s;\n",
            "    fastcgi_read_timeout 300s;\n    fastcgi_ignore_headers X-Accel-Buffering;\n",
        )
    });
    let conf = site.dir().join("nginx/forgelet.conf");
    let d = doctor(&site, &["--nginx-conf", conf.to_str().unwrap()]);
    assert!(!d.success);
    d.assert_failed(
        "buffering",
        &["fastcgi_ignore_headers", "X-Accel-Buffering"],
    );
    assert_eq!(d.failed(), ["buffering"], "{}", d.output);
    srv.finish();
}

/// mod_proxy_fcgi without `flushpackets=on` holds git's progress back until its buffer fills:
/// clones still work, so it is a warning naming the line to add.
#[test]
fn doctor_names_an_apache_that_buffers_git() {
    let site = site("doctor_apache_buffering", "x-sendfile");
    let srv = site.start_behind_with(Front::ApacheFcgi, |text| {
        assert!(text.contains("ProxySet timeout=300 flushpackets=on"));
        text.replace(
            "ProxySet timeout=300 flushpackets=on",
            "ProxySet timeout=300",
        )
    });
    let conf = site.dir().join("apache/forgelet.conf");
    let d = doctor(&site, &["--apache-conf", conf.to_str().unwrap()]);
    assert!(d.success, "{}", d.output);
    let (status, text) = d.line("buffering");
    assert_eq!(status, "warning", "{}", d.output);
    assert!(
        text.contains("`ProxySet timeout=300 flushpackets=on`"),
        "{}",
        d.output
    );
    srv.finish();
}

#[test]
fn doctor_names_an_apache_that_withholds_credentials() {
    let site = site("doctor_apache_auth", "x-sendfile");
    let srv = site.start_behind_with(Front::ApacheFcgi, |text| {
        assert!(text.contains("    CGIPassAuth On\n"));
        text.replace("    CGIPassAuth On\n", "")
    });
    let d = doctor(&site, &[]);
    assert!(!d.success);
    d.assert_failed(
        "credentials",
        &[
            "valid token",
            "(401)",
            "Authorization header",
            "`CGIPassAuth On`",
        ],
    );
    assert_eq!(d.failed(), ["credentials"], "{}", d.output);
    assert_eq!(d.line("push").0, "skipped", "{}", d.output);
    srv.finish();
}

/// With mod_cgid, Apache reads the request body itself and holds it to LimitRequestBody
/// (mod_proxy_fcgi streams it to forgelet without counting). A CGI forgelet runs as Apache's
/// user, which owns the data, so doctor runs as that user too.
#[test]
fn doctor_names_an_apache_limit_on_pushes() {
    let site = site("doctor_apache_413", "none");
    let srv = site.start_behind_with(Front::ApacheCgi, |text| {
        assert!(text.contains("    LimitRequestBody 0\n"));
        text.replace("    LimitRequestBody 0\n", "    LimitRequestBody 1048576\n")
    });
    let owner = fs::metadata(&site.data_dir).unwrap().uid();
    let user = (owner != 0).then_some("www-data");
    let d = doctor_as(&site, user, &[]);
    assert!(!d.success);
    d.assert_failed("push", &["413", "`LimitRequestBody 0`", "git-receive-pack"]);
    assert_eq!(d.failed(), ["push"], "{}", d.output);
    // No forgelet daemon: the socket is missing, which CGI mode explains.
    let (status, text) = d.line("socket");
    assert_eq!((status, text.contains("CGI mode?")), ("warning", true));
    if let Some(user) = user {
        // Run as another user than the data's owner, doctor says whom to run as, and writes
        // nothing.
        let out = run(site.forgelet().arg("doctor"));
        let text = all_output(&out);
        assert!(!out.status.success(), "{text}");
        assert!(
            text.contains(&format!("sudo -u {user} forgelet doctor")),
            "{text}"
        );
        assert!(
            text.contains("skipped  temporary repository: doctor does not run as the owner"),
            "{text}"
        );
        let repos = ok(forgelet_as(&site, Some(user)).args(["repo", "list"]));
        assert!(!repos.contains("doctor-"), "{repos}");
    }
    drop(srv);
}

#[test]
fn doctor_names_wrong_modes_in_the_data_directory() {
    // socket_group names the web server's group, so a file closed to it is a failure.
    let site = Site::new(
        "doctor_modes",
        SiteOptions {
            server_extra: "socket_group = \"www-data\"",
            ..SiteOptions::default()
        },
    );
    site.ensure_user("alice");
    site.import_fixture("mixed", "alice/proj");
    let srv = site.start();
    let users = site.data_dir.join("users.toml");
    set_mode(&users, 0o644);
    let pack = site
        .repo_path("alice/proj")
        .join(largest_pack(&site.repo_path("alice/proj")));
    set_mode(&pack, 0o600);
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if root {
        // A repository of another user: git run by the sysadmin as forgelet's user refuses it.
        let other = site.repo_path("alice/proj");
        ok(std::process::Command::new("chown")
            .args(["-R", "65534"])
            .arg(&other));
    }
    let d = doctor(&site, &[]);
    assert!(!d.success);
    d.assert_failed(
        "users.toml",
        &["mode 0644", &format!("`chmod 600 {}`", users.display())],
    );
    d.assert_failed(
        "repos modes",
        &[&pack.display().to_string(), "chmod -R g+rX"],
    );
    assert_eq!(d.failed(), ["users.toml", "repos modes"], "{}", d.output);
    if root {
        let (status, text) = d.line("safe.directory");
        assert_eq!(status, "warning", "{}", d.output);
        assert!(text.contains("dubious ownership"), "{}", d.output);
        assert!(text.contains("chown -R"), "{}", d.output);
    }
    srv.finish();
}

/// Run against the quickstart (no socket_group, nginx running as the data's owner), doctor
/// failed "repos modes" for files closed to the folder's group although nginx read them: that
/// group is only a guess without socket_group, so it is a warning, and the object files are
/// still fetched through the web server.
#[test]
fn doctor_only_warns_about_modes_when_the_web_servers_group_is_a_guess() {
    let site = site("doctor_modes_guess", "x-accel-redirect");
    let srv = site.start();
    let pack = site
        .repo_path("alice/proj")
        .join(largest_pack(&site.repo_path("alice/proj")));
    set_mode(&pack, 0o600);
    let d = doctor(&site, &[]);
    assert!(d.success, "{}", d.output);
    let (status, text) = d.line("repos modes");
    assert_eq!(status, "warning", "{}", d.output);
    assert!(
        text.contains(&pack.display().to_string()) && text.contains("runs as the owner"),
        "{}",
        d.output
    );
    assert_eq!(d.line("object files").0, "ok", "{}", d.output);
    srv.finish();
}

/// Interrupted at any point (Ctrl-C, a service manager's SIGTERM), doctor still removes its
/// repository and token before it exits.
#[test]
fn doctor_cleans_up_when_interrupted() {
    let site = site("doctor_interrupted", "x-accel-redirect");
    let srv = site.start();
    for (signal, after_ms) in [("-INT", 250), ("-TERM", 450), ("-INT", 650)] {
        let repos_before = ok(site.forgelet().args(["repo", "list"]));
        let refs_before = refs_of(&site.repo_path("alice/proj"));
        let child = site
            .forgelet()
            .arg("doctor")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        ok(Command::new("kill").arg(signal).arg(child.id().to_string()));
        let out = child.wait_with_output().unwrap();
        let output = all_output(&out);
        eprintln!("doctor, {signal} after {after_ms} ms:\n{output}");
        // (The site's folder holds the test's name, "doctor_interrupted": the line is doctor's.)
        assert!(
            !out.status.success() || !output.contains("doctor: interrupted"),
            "{output}"
        );
        assert_nothing_left(&site, None, &repos_before, &refs_before, &output);
        // A push of doctor's that was still running on the server when doctor removed its
        // repository once wrote git's quarantine folder again under the old name.
        let strays: Vec<String> = fs::read_dir(site.repo_path("alice/proj").parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("doctor-"))
            .collect();
        assert!(
            strays.is_empty(),
            "left in the owner's folder: {strays:?}\n{output}"
        );
    }
    srv.finish();
}
