//! Load: what a busy site sees, all at once, for `FORGELET_LOAD_SECS` seconds (20 when unset:
//! the short run of every test run; `deploy/load.sh` runs it for minutes on the medium benchmark
//! repository). Through real nginx and a real sshd, on loopback only, from many loopback source
//! addresses so that the per-address limits count clients as they would on the internet:
//!
//! - 64 clients cloning and fetching `alice/medium` over and over, replayed with curl (git's own
//!   client would spend the two cores indexing packs); half of them full clones (answered from
//!   the pack cache), half fetches with a `have` (answered by git); a sample of the clones is
//!   checked with `index-pack --strict` and `git fsck`;
//! - 8 pushers, each to a branch of its own in one of 4 repositories, with real git;
//! - clones over SSH with real git through sshd;
//! - Git LFS uploads and downloads through the batch API;
//! - sign-ins with the web form;
//! - page views on 256 connections at once.
//!
//! Then: every push that was accepted is in its repository, no answer was a 5xx other than a
//! deliberate 503 (none is expected under this site's limits, see [`CONFIG`]), forgelet stayed
//! alive and within its memory bound, and the figures (counts, 503 shares, p50/p99 latencies,
//! peak RSS) are printed.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::packcache::{assert_pack_complete, clone_request, pkt, wants_of};
use crate::ssh::SshSite;
use crate::util::*;

const CLONERS: usize = 64;
const PUSHERS: usize = 8;
const PUSH_REPOS: usize = 4;
const PAGE_CONNECTIONS: usize = 256;
const SSH_CLONERS: usize = 2;
const LFS_CLIENTS: usize = 2;
const SIGNERS: usize = 2;
/// Clones whose answers are checked in full (each costs an index-pack).
const CHECKED_CLONES: usize = 3;

/// The site's `[server]` limits, as a sysadmin expecting this traffic would set them: 32 page
/// workers give the page lane room for 32 + 8 × 32 = 288 requests at once (more than the 256
/// page connections plus sign-ins and LFS batches), so no page is answered 503; the git lane's
/// 64 workers hold the 64 cloners, and two cloners per address never exceed `git_per_address`
/// (2), so git's slots make them wait (up to a minute) rather than refuse them.
const CONFIG: &str = "workers = 32";

/// Seconds the load runs.
fn duration() -> Duration {
    let secs = std::env::var("FORGELET_LOAD_SECS")
        .ok()
        .map(|v| {
            v.parse::<u64>()
                .unwrap_or_else(|_| panic!("FORGELET_LOAD_SECS must be whole seconds, not {v:?}"))
        })
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// What every client saw: per kind, each answer's status and time.
#[derive(Default)]
struct Tally {
    answers: Mutex<BTreeMap<&'static str, Vec<(u16, Duration)>>>,
    /// Answers that are wrong whatever the load (kept to say what they were).
    wrong: Mutex<Vec<String>>,
}

impl Tally {
    fn add(&self, kind: &'static str, status: u16, took: Duration) {
        self.answers
            .lock()
            .unwrap()
            .entry(kind)
            .or_default()
            .push((status, took));
    }

    fn wrong(&self, what: String) {
        let mut w = self.wrong.lock().unwrap();
        if w.len() < 50 {
            w.push(what);
        }
    }
}

/// The `p`th percentile of `sorted`.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// One GET on a connection of its own from `source`: the status and the body's length, or what
/// went wrong.
fn get_from(source: &str, port: u16, target: &str, cookie: &str) -> Result<(u16, usize), String> {
    let mut s = tcp_from(source, port);
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|e| e.to_string())?;
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{cookie}Connection: close\r\n\r\n"
    )
    .map_err(|e| format!("sending: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("reading after {} bytes: {e}", raw.len()))?;
    let line_end = raw
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| format!("no status line in {} bytes", raw.len()))?;
    let status = String::from_utf8_lossy(&raw[..line_end])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "a bad status line".to_string())?;
    Ok((status, raw.len()))
}

/// A protocol v2 fetch of `wants` by a client that has `have`.
fn fetch_request(wants: &[String], have: &str) -> Vec<u8> {
    let mut s = String::new();
    s += &pkt("command=fetch\n");
    s += &pkt("agent=git/2.47.3\n");
    s += "0001";
    s += &pkt("thin-pack\n");
    s += &pkt("ofs-delta\n");
    for w in wants {
        s += &pkt(&format!("want {w}\n"));
    }
    s += &pkt(&format!("have {have}\n"));
    s += &pkt("done\n");
    s += "0000";
    s.into_bytes()
}

/// `POST` of the fetch request in `body` with curl from `source`, the answer into `out`: the
/// status.
fn curl_fetch(source: &str, url: &str, body: &Path, out: &Path) -> Result<u16, String> {
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "300", "--interface", source, "-o"])
        .arg(out)
        .args([
            "-w",
            "%{http_code}",
            "-H",
            "Content-Type: application/x-git-upload-pack-request",
            "-H",
            "Git-Protocol: version=2",
            "--data-binary",
        ])
        .arg(format!("@{}", body.display()))
        .arg(url)
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let code = String::from_utf8_lossy(&o.stdout).trim().to_string();
    match code.parse::<u16>() {
        Ok(c) if c > 0 => Ok(c),
        _ => Err(format!(
            "curl from {source}: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
    }
}

/// forgelet's resident memory now, in MiB.
fn rss_mib(pid: u32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Ignored by a plain `cargo test` only because it takes both cores for its 20 seconds, which
/// would make the timing of whatever test runs beside it meaningless: `deploy/test.sh` runs it
/// right after the others, alone (`cargo test --test tests -- --ignored load::`).
#[test]
#[ignore = "runs alone: deploy/test.sh runs it after the other tests"]
fn a_busy_site_keeps_every_push_and_answers_everyone() {
    let length = duration();
    let s = SshSite::with_options(
        "load",
        &["alice", "bob"],
        &[],
        SiteOptions {
            server_extra: CONFIG,
            ..SiteOptions::default()
        },
    );
    let site = &s.site;
    // The repository cloned: the one FORGELET_LOAD_REPO names (deploy/load.sh: the medium
    // benchmark repository), else a fixture with a few MB of history.
    let src = match std::env::var_os("FORGELET_LOAD_REPO") {
        Some(p) => PathBuf::from(p),
        None => {
            let src = site.dir().join("src/medium.git");
            build_fixture("mixed", &src);
            add_big_commit(&src, 3 << 20);
            src
        }
    };
    ok(s.admin().args(["repo", "import", "alice/medium"]).arg(&src));
    for j in 0..PUSH_REPOS {
        let src = site.dir().join(format!("src/p{j}.git"));
        build_fixture("mixed", &src);
        ok(s.admin()
            .args(["repo", "import", &format!("alice/p{j}")])
            .arg(&src));
    }
    ok(s.admin().args(["repo", "create", "alice/media"]));
    let key = s.add_key("alice", "laptop");
    // Pushers and LFS clients are automation: they sign in with a token, as CI jobs do (a
    // password costs an argon2 run, and a burst of them from one address is limited).
    let token = ok(s
        .admin()
        .args(["token", "create", "alice", "--name", "load"]))
    .lines()
    .last()
    .unwrap_or_default()
    .trim()
    .to_string();
    assert!(token.starts_with("flt_"), "{token}");
    let token = &token;
    let srv = site.start();
    let port = srv.port;
    let medium = site.repo_path("alice/medium");
    let wants = wants_of(&medium);
    let head = git_ok(&medium, &["rev-parse", "HEAD"]).trim().to_string();
    let haves: Vec<String> = git_ok(&medium, &["rev-list", "--max-count=40", "HEAD~1"])
        .lines()
        .map(str::to_string)
        .collect();
    assert!(!haves.is_empty(), "alice/medium has too short a history");
    let files = git_ok(&medium, &["ls-tree", "-r", "--name-only", "HEAD"]);
    let file = files
        .lines()
        .find(|n| !n.ends_with(".bin"))
        .or(files.lines().next())
        .expect("a file in alice/medium")
        .to_string();
    let pages: Vec<String> = [
        "/".to_string(),
        "/alice/medium".to_string(),
        "/alice/medium/tree/main".to_string(),
        "/alice/medium/commits/main".to_string(),
        format!("/alice/medium/commit/{head}"),
        format!("/alice/medium/blob/main/{file}"),
        "/alice".to_string(),
        "/alice/p0".to_string(),
    ]
    .iter()
    .map(|p| site.target(p))
    .collect();
    for p in &pages {
        let r = srv.get(p);
        assert_eq!(r.status, 200, "{p} before the load: {}", r.describe());
    }
    let upload_url = format!(
        "http://127.0.0.1:{port}{}",
        site.target("/alice/medium.git/git-upload-pack")
    );
    let clone_body = site.dir().join("clone-request");
    fs::write(&clone_body, clone_request(&wants, true, "git/2.47.3")).unwrap();
    let fetch_bodies: Vec<PathBuf> = haves
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let p = site.dir().join(format!("fetch-request-{i}"));
            fs::write(&p, fetch_request(&wants, h)).unwrap();
            p
        })
        .collect();
    let work = site.dir().join("load");
    fs::create_dir_all(&work).unwrap();
    // The pushers' clones, made before the clock starts.
    let push_dirs: Vec<PathBuf> = (0..PUSHERS)
        .map(|k| {
            let dir = work.join(format!("pusher{k}"));
            let url = format!(
                "http://127.0.0.1:{port}{}",
                site.target(&format!("/alice/p{}.git", k % PUSH_REPOS))
            );
            ok(smart_git(&work).args(["clone", "-q", &url]).arg(&dir));
            git_ok(&dir, &["checkout", "-q", "-b", &format!("load-{k}")]);
            dir
        })
        .collect();

    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let peak_rss = AtomicU64::new(0);
    let checked = AtomicU64::new(0);
    // Every push git said it accepted: (repository, branch, commit).
    let accepted: Mutex<Vec<(usize, String, String)>> = Mutex::new(Vec::new());
    let started = Instant::now();
    let until = started + length;
    let pid = srv.forgelet_pid();
    let srv_ref = &srv;
    std::thread::scope(|scope| {
        let (tally, stop, peak_rss, checked, accepted) =
            (&tally, &stop, &peak_rss, &checked, &accepted);
        let (upload_url, clone_body, fetch_bodies, wants, work) =
            (&upload_url, &clone_body, &fetch_bodies, &wants, &work);
        // forgelet's memory, four times a second.
        scope.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                peak_rss.fetch_max(rss_mib(pid), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        // Cloners and fetchers: two per source address.
        for i in 0..CLONERS {
            scope.spawn(move || {
                let source = format!("127.0.1.{}", 10 + i / 2);
                let out = work.join(format!("answer-{i}"));
                let mut n = 0usize;
                while Instant::now() < until {
                    let (kind, body) = if i % 2 == 0 {
                        ("clone", clone_body.as_path())
                    } else {
                        (
                            "fetch",
                            fetch_bodies[(i + n) % fetch_bodies.len()].as_path(),
                        )
                    };
                    n += 1;
                    let t = Instant::now();
                    match curl_fetch(&source, upload_url, body, &out) {
                        Ok(status) => {
                            tally.add(kind, status, t.elapsed());
                            if status == 200 && kind == "clone" {
                                let answer = fs::read(&out).unwrap_or_default();
                                if checked.fetch_add(1, Ordering::SeqCst) < CHECKED_CLONES as u64 {
                                    assert_pack_complete(work, &answer, wants);
                                }
                            }
                        }
                        Err(e) => tally.wrong(format!("{kind}: {e}")),
                    }
                }
            });
        }
        // Pushers.
        for (k, dir) in push_dirs.iter().enumerate() {
            scope.spawn(move || {
                let url = format!(
                    "http://alice:{token}@127.0.0.1:{port}{}",
                    site.target(&format!("/alice/p{}.git", k % PUSH_REPOS))
                );
                let branch = format!("load-{k}");
                let mut n = 0;
                while Instant::now() < until {
                    n += 1;
                    fs::write(dir.join(format!("load-{k}.txt")), format!("push {n}\n")).unwrap();
                    git_ok(dir, &["add", "-A"]);
                    git_ok(dir, &["commit", "-q", "-m", &format!("push {n} of {k}")]);
                    let commit = git_ok(dir, &["rev-parse", "HEAD"]).trim().to_string();
                    let t = Instant::now();
                    let out = run(smart_git(dir).args([
                        "push",
                        "-q",
                        &url,
                        &format!("HEAD:refs/heads/{branch}"),
                    ]));
                    let text = all_output(&out);
                    let status = if out.status.success() {
                        accepted
                            .lock()
                            .unwrap()
                            .push((k % PUSH_REPOS, branch.clone(), commit));
                        200
                    } else if text.contains("503") {
                        // None is expected under this site's limits: say what it was.
                        tally.wrong(format!("push {n} of {k} answered 503: {text}"));
                        503
                    } else {
                        tally.wrong(format!("push {n} of {k}: {text}"));
                        0
                    };
                    tally.add("push", status, t.elapsed());
                    if status != 200 {
                        // The commit stays, and goes with the next push.
                        std::thread::sleep(Duration::from_millis(500));
                    }
                }
            });
        }
        // Clones over SSH.
        for i in 0..SSH_CLONERS {
            let (s, key) = (&s, &key);
            scope.spawn(move || {
                let mut n = 0;
                while Instant::now() < until {
                    n += 1;
                    let dest = work.join(format!("ssh-{i}-{n}.git"));
                    let t = Instant::now();
                    let out = run(s
                        .git(key, work)
                        .args(["clone", "-q", "--bare", &s.url("alice/medium")])
                        .arg(&dest));
                    let took = t.elapsed();
                    if out.status.success() {
                        if n == 1 {
                            let fsck = run(git(&dest).args(["fsck", "--no-progress"]));
                            if !fsck.status.success() {
                                tally.wrong(format!("ssh clone fsck: {}", all_output(&fsck)));
                            }
                        }
                        tally.add("ssh clone", 200, took);
                    } else if all_output(&out).contains("busy") {
                        tally.add("ssh clone", 503, took);
                    } else {
                        tally.wrong(format!("ssh clone: {}", all_output(&out)));
                    }
                    let _ = fs::remove_dir_all(&dest);
                }
            });
        }
        // LFS: an object up, then down again.
        for i in 0..LFS_CLIENTS {
            scope.spawn(move || {
                let auth = basic("alice", token);
                let batch = site.target("/alice/media.git/info/lfs/objects/batch");
                let lfs_headers = [
                    ("Accept", "application/vnd.git-lfs+json"),
                    ("Content-Type", "application/vnd.git-lfs+json"),
                    ("Authorization", auth.as_str()),
                ];
                let mut n = 0u64;
                while Instant::now() < until {
                    n += 1;
                    let data = noise(((i as u64) << 32) | n, 256 << 10);
                    let oid = sha256_hex(&data);
                    let t = Instant::now();
                    let object = |op: &str| {
                        let r = http_request_body(
                            port,
                            "POST",
                            batch.as_bytes(),
                            &lfs_headers,
                            format!(
                                r#"{{"operation":"{op}","objects":[{{"oid":"{oid}","size":{}}}]}}"#,
                                data.len()
                            )
                            .as_bytes(),
                        );
                        let v: serde_json::Value =
                            serde_json::from_slice(&r.body).unwrap_or_default();
                        let action = &v["objects"][0]["actions"][op];
                        (
                            r.status,
                            action["header"]["Authorization"]
                                .as_str()
                                .map(str::to_string),
                        )
                    };
                    let (status, header) = object("upload");
                    let target = site.target(&format!("/alice/media.git/info/lfs/objects/{oid}"));
                    let status = match (status, header) {
                        (200, Some(h)) => {
                            http_request_body(
                                port,
                                "PUT",
                                target.as_bytes(),
                                &[("Authorization", &h)],
                                &data,
                            )
                            .status
                        }
                        (s, _) => s,
                    };
                    let status = match (status, object("download")) {
                        (200, (200, Some(h))) => {
                            let r = http_request(
                                port,
                                "GET",
                                target.as_bytes(),
                                &[("Authorization", &h)],
                            );
                            if r.status == 200 && r.body != data {
                                tally.wrong(format!("lfs object {oid} came back different"));
                            }
                            r.status
                        }
                        (200, (s, _)) => s,
                        (s, _) => s,
                    };
                    tally.add("lfs", status, t.elapsed());
                }
            });
        }
        // Sign-ins, each from an address of its own.
        for i in 0..SIGNERS {
            scope.spawn(move || {
                while Instant::now() < until {
                    let mut b = Browser {
                        from: Some(format!("127.0.2.{}", 10 + i)),
                        ..Browser::default()
                    };
                    let t = Instant::now();
                    let form = b.get(srv_ref, &site.target("/-/login"));
                    if form.status != 200 {
                        tally.add("sign-in", form.status, t.elapsed());
                        continue;
                    }
                    let r = b.post(
                        srv_ref,
                        &site.target("/-/login"),
                        &[
                            ("csrf", &csrf_of(&form)),
                            ("user", "bob"),
                            ("password", TEST_PASSWORD),
                        ],
                    );
                    let status = if r.status == 303 { 200 } else { r.status };
                    tally.add("sign-in", status, t.elapsed());
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
        // Page views on 256 connections.
        for i in 0..PAGE_CONNECTIONS {
            let pages = &pages;
            scope.spawn(move || {
                let source = format!("127.0.3.{}", 10 + i % 64);
                let mut n = i;
                while Instant::now() < until {
                    let target = &pages[n % pages.len()];
                    n += 1;
                    let t = Instant::now();
                    match get_from(&source, port, target, "") {
                        Ok((status, _)) => tally.add("page", status, t.elapsed()),
                        Err(e) => tally.wrong(format!("page {target}: {e}")),
                    }
                }
            });
        }
        // Everyone stops at `until`; the sampler a little later, when they are done.
        scope.spawn(move || {
            std::thread::sleep(until.saturating_duration_since(Instant::now()));
            // Stragglers (a clone that started just before `until`) finish within this.
            std::thread::sleep(Duration::from_secs(5));
            stop.store(true, Ordering::SeqCst);
        });
    });
    let ran = started.elapsed();
    let peak = peak_rss.load(Ordering::SeqCst).max(srv.forgelet_peak_mib());
    let cache = pack_cache_counts(site);

    // The report.
    let answers = tally.answers.lock().unwrap();
    let mut report = format!(
        "load: {:.0} s planned, {:.1} s run; forgelet's peak RSS {peak} MiB; pack cache: {} hits, \
         {} misses, {} answered by git alone\n\
         {:<10} {:>7} {:>6} {:>6} {:>9} {:>9} {:>9}\n",
        length.as_secs_f64(),
        ran.as_secs_f64(),
        cache[0],
        cache[1],
        cache[2],
        "kind",
        "answers",
        "503",
        "other",
        "p50 ms",
        "p99 ms",
        "max ms"
    );
    let mut server_errors = Vec::new();
    for (kind, list) in answers.iter() {
        let mut times: Vec<Duration> = list.iter().map(|(_, t)| *t).collect();
        times.sort();
        let busy = list.iter().filter(|(s, _)| *s == 503).count();
        let other = list.iter().filter(|(s, _)| *s != 200).count() - busy;
        for (s, _) in list {
            if *s >= 500 && *s != 503 {
                server_errors.push(format!("{kind}: {s}"));
            }
        }
        report += &format!(
            "{kind:<10} {:>7} {:>6} {:>6} {:>9.1} {:>9.1} {:>9.1}\n",
            list.len(),
            busy,
            other,
            percentile(&times, 0.5).as_secs_f64() * 1000.0,
            percentile(&times, 0.99).as_secs_f64() * 1000.0,
            times.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
    eprintln!("{report}");
    let wrong = tally.wrong.lock().unwrap();
    assert!(
        wrong.is_empty(),
        "wrong answers under load:\n{wrong:#?}\n{report}"
    );
    assert!(
        server_errors.is_empty(),
        "5xx answers other than 503: {server_errors:?}\n{report}"
    );
    // Under this site's limits nothing is refused as busy.
    for (kind, list) in answers.iter() {
        let busy = list.iter().filter(|(s, _)| *s == 503).count();
        assert_eq!(busy, 0, "{kind}: {busy} answers were 503\n{report}");
        let other: Vec<u16> = list.iter().map(|(s, _)| *s).filter(|s| *s != 200).collect();
        assert!(other.is_empty(), "{kind}: answers {other:?}\n{report}");
    }
    for kind in [
        "clone",
        "fetch",
        "push",
        "ssh clone",
        "lfs",
        "sign-in",
        "page",
    ] {
        assert!(
            answers.get(kind).is_some_and(|l| !l.is_empty()),
            "no {kind} was answered\n{report}"
        );
    }
    assert!(checked.load(Ordering::SeqCst) >= 1, "no clone was checked");
    // The clones came from the pack cache (they are one request, over and over).
    assert!(cache[0] > 0, "no answer came from the pack cache\n{report}");

    // Every accepted push is there: each branch at the last commit pushed to it, every commit
    // accepted before it in its history.
    let accepted = accepted.lock().unwrap();
    let mut last: BTreeMap<(usize, String), String> = BTreeMap::new();
    for (repo, branch, commit) in accepted.iter() {
        last.insert((*repo, branch.clone()), commit.clone());
    }
    for (repo, branch, commit) in accepted.iter() {
        let path = site.repo_path(&format!("alice/p{repo}"));
        let tip = git_ok(&path, &["rev-parse", &format!("refs/heads/{branch}")])
            .trim()
            .to_string();
        assert_eq!(
            Some(&tip),
            last.get(&(*repo, branch.clone())),
            "alice/p{repo} {branch} is not at its last accepted push"
        );
        let ancestor = run(git(&path).args(["merge-base", "--is-ancestor", commit, &tip]));
        assert!(
            ancestor.status.success(),
            "accepted push {commit} to alice/p{repo} {branch} is missing"
        );
    }
    for j in 0..PUSH_REPOS {
        let path = site.repo_path(&format!("alice/p{j}"));
        let fsck = run(git(&path).args(["fsck", "--no-progress"]));
        assert!(fsck.status.success(), "alice/p{j}: {}", all_output(&fsck));
    }
    eprintln!("{} pushes accepted and present", accepted.len());
    // Bounded memory: spooled output goes to files, entries of the pack cache to disk; what
    // forgelet keeps in memory is per request (at most 512 KiB of a slow client's output) and
    // its caches' fixed budgets.
    assert!(peak < 512, "forgelet's peak RSS was {peak} MiB\n{report}");
    let mut srv = srv;
    srv.assert_forgelet_alive("the load");
}
