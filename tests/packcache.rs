//! The pack cache through real nginx and real git: a fetch seen before is answered from the
//! cache byte for byte (through nginx's sendfile, and by forgelet with `sendfile = "none"`),
//! with the objects and refs git's own answer has; identical clones arriving together run git
//! once; a push, a force-push and a visibility change are seen at once; a private repository's
//! cached answer reaches nobody who may not read it; a full disk and a writer killed mid-write
//! leave the answers right.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::*;

pub(crate) fn pkt(s: &str) -> String {
    format!("{:04x}{s}", s.len() + 4)
}

/// The branches' and tags' targets of `repo`, each once.
pub(crate) fn wants_of(repo: &Path) -> Vec<String> {
    let mut w: Vec<String> = refs_of(repo)
        .into_iter()
        .filter(|(r, _)| r.starts_with("refs/heads/") || r.starts_with("refs/tags/"))
        .map(|(_, id)| id)
        .collect();
    w.sort();
    w.dedup();
    w
}

/// A full clone's request as git sends it: protocol v2 with `agent`, or v0.
pub(crate) fn clone_request(wants: &[String], v2: bool, agent: &str) -> Vec<u8> {
    let mut s = String::new();
    if v2 {
        s += &pkt("command=fetch\n");
        s += &pkt(&format!("agent={agent}\n"));
        s += "0001";
        s += &pkt("thin-pack\n");
        s += &pkt("ofs-delta\n");
        for w in wants {
            s += &pkt(&format!("want {w}\n"));
        }
        s += &pkt("done\n");
        s += "0000";
    } else {
        for (i, w) in wants.iter().enumerate() {
            if i == 0 {
                s += &pkt(&format!(
                    "want {w} multi_ack_detailed side-band-64k thin-pack ofs-delta agent={agent}\n"
                ));
            } else {
                s += &pkt(&format!("want {w}\n"));
            }
        }
        s += "0000";
        s += &pkt("done\n");
    }
    s.into_bytes()
}

pub(crate) fn fetch(
    srv: &Server,
    owner_repo: &str,
    body: &[u8],
    v2: bool,
    auth: Option<&str>,
) -> Response {
    let mut headers = vec![(
        "Content-Type",
        "application/x-git-upload-pack-request".to_string(),
    )];
    if v2 {
        headers.push(("Git-Protocol", "version=2".into()));
    }
    if let Some(a) = auth {
        headers.push(("Authorization", a.to_string()));
    }
    let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    srv.http_body(
        "POST",
        format!("/git/{owner_repo}.git/git-upload-pack").as_bytes(),
        &h,
        body,
    )
}

/// The pack in an upload-pack answer, v0 (after `NAK`) or v2 (after the `packfile` section
/// header): the data of side band 1, pkt-lines joined, progress (band 2) dropped. The answer
/// must end with a whole pkt-line.
pub(crate) fn pack_of(answer: &[u8]) -> Vec<u8> {
    let mut pack = Vec::new();
    let mut rest = answer;
    let mut in_pack = false;
    while rest.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16)
            .expect("a pkt-line length");
        if len < 4 {
            // A flush, delimiter or end-of-response packet.
            rest = &rest[4..];
            continue;
        }
        assert!(len <= rest.len(), "the answer ends inside a pkt-line");
        let data = &rest[4..len];
        rest = &rest[len..];
        if data == b"packfile\n" || data == b"NAK\n" {
            in_pack = true;
            continue;
        }
        if in_pack && data.first() == Some(&1) {
            pack.extend_from_slice(&data[1..]);
        }
    }
    assert!(
        rest.is_empty(),
        "the answer does not end with a whole pkt-line"
    );
    assert!(pack.starts_with(b"PACK"), "no pack in the answer");
    pack
}

/// The pack of `answer` indexed strictly into a new repository, every want given a ref,
/// and that repository checked by `git fsck`.
pub(crate) fn assert_pack_complete(dir: &Path, answer: &[u8], wants: &[String]) {
    let repo = dir.join(format!("check-{}", unique_marker()));
    ok(Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(&repo));
    let out = run_with_stdin(
        git(&repo).args(["index-pack", "--strict", "--stdin"]),
        &pack_of(answer),
    );
    assert!(
        out.status.success(),
        "index-pack --strict: {}",
        all_output(&out)
    );
    for (i, w) in wants.iter().enumerate() {
        git_ok(&repo, &["update-ref", &format!("refs/want/{i}"), w]);
    }
    let fsck = run(git(&repo).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(fsck.status.success(), "fsck: {}", all_output(&fsck));
}

/// The complete entries in the cache.
pub(crate) fn entries(site: &Site) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = site.data_dir.join("repos/.cache");
    for group in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if !group.path().is_dir() || group.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for f in fs::read_dir(group.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if name.ends_with(".pack") && !name.starts_with('.') {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// The complete entries once `ok` says they are what is expected: an answer is made visible
/// on a thread of its own after it was sent, so a test looks until it is (at most 10 s).
pub(crate) fn entries_when(site: &Site, ok: impl Fn(&[PathBuf]) -> bool) -> Vec<PathBuf> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let e = entries(site);
        if ok(&e) || std::time::Instant::now() > until {
            return e;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_fetch_seen_before_is_answered_from_the_cache_byte_for_byte() {
    let (r, repo) = start_with_fixture("packcache_bytes", "tags", SiteOptions::default());
    let wants = wants_of(&repo);
    for v2 in [true, false] {
        let before = pack_cache_counts(&r.site);
        let first = fetch(
            &r.srv,
            "alice/tags",
            &clone_request(&wants, v2, "git/2.47.3"),
            v2,
            None,
        );
        assert_eq!(first.status, 200, "{}", first.describe());
        assert_eq!(
            first.header("Content-Type"),
            Some("application/x-git-upload-pack-result")
        );
        // Another client's agent changes nothing.
        let again = fetch(
            &r.srv,
            "alice/tags",
            &clone_request(&wants, v2, "JGit/6.9"),
            v2,
            None,
        );
        assert_eq!(again.status, 200, "{}", again.describe());
        assert_eq!(
            again.header("Content-Type"),
            Some("application/x-git-upload-pack-result"),
            "the cached answer's type"
        );
        assert!(
            again.body == first.body,
            "v2={v2}: the cached answer differs from git's"
        );
        let after = pack_cache_counts_when(&r.site, |c| c[0] > before[0] && c[1] > before[1]);
        assert_eq!(
            after[1] - before[1],
            1,
            "v2={v2}: misses {before:?} -> {after:?}"
        );
        assert_eq!(
            after[0] - before[0],
            1,
            "v2={v2}: hits {before:?} -> {after:?}"
        );
        assert_pack_complete(r.site.dir(), &again.body, &wants);
    }
    // What nginx sent is the entry on disk; the entries are reachable only through forgelet.
    let kept = entries(&r.site);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let rel = kept[0].strip_prefix(r.site.data_dir.join("repos")).unwrap();
    let direct = r.srv.get(&format!("/.forgelet-repos/{}", rel.display()));
    assert_eq!(
        direct.status, 404,
        "the internal location answered from outside"
    );
    // Real git clones through it, over both protocols.
    for version in ["0", "2"] {
        let into = r.site.dir().join(format!("clone-v{version}"));
        let out = run(smart_git(r.site.dir())
            .args(["-c", &format!("protocol.version={version}"), "clone", "-q"])
            .arg(r.site.url("/alice/tags.git"))
            .arg(&into));
        assert!(out.status.success(), "{}", all_output(&out));
        assert_clone_matches(&repo, &into);
    }
}

#[test]
fn forgelet_sends_a_cached_answer_itself_when_there_is_no_sendfile_header() {
    let opts = SiteOptions {
        sendfile: "none",
        ..SiteOptions::default()
    };
    let (r, repo) = start_with_fixture("packcache_none", "branches", opts);
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let first = fetch(&r.srv, "alice/branches", &body, true, None);
    let second = fetch(&r.srv, "alice/branches", &body, true, None);
    assert_eq!(second.status, 200, "{}", second.describe());
    assert!(second.body == first.body);
    assert_eq!(
        pack_cache_counts_when(&r.site, |c| c[0] >= 1)[0],
        1,
        "not a hit"
    );
    assert_pack_complete(r.site.dir(), &second.body, &wants);
}

#[test]
fn a_push_a_force_push_and_a_visibility_change_are_seen_at_once() {
    let (r, repo) = start_with_fixture("packcache_push", "tags", SiteOptions::default());
    r.site.ensure_user("alice");
    let url = r.site.url("/alice/tags.git");
    let work = r.site.dir().join("work");
    let out = run(smart_git(r.site.dir())
        .args(["clone", "-q"])
        .arg(&url)
        .arg(&work));
    assert!(out.status.success(), "{}", all_output(&out));
    let body = clone_request(&wants_of(&repo), true, "git/2.47.3");
    fetch(&r.srv, "alice/tags", &body, true, None);
    fetch(&r.srv, "alice/tags", &body, true, None);
    let c = pack_cache_counts_when(&r.site, |c| c[0] >= 1);

    // A push: the same request is git's to answer again (the refs are part of the key).
    git_ok(&work, &["commit", "-q", "--allow-empty", "-m", "pushed"]);
    let push_url = url.replace("http://", &format!("http://alice:{TEST_PASSWORD}@"));
    let push = |args: &[&str]| {
        let out = run(smart_git(&work).arg("push").arg("-q").args(args));
        assert!(out.status.success(), "{}", all_output(&out));
    };
    push(&[&push_url, "HEAD:main"]);
    fetch(&r.srv, "alice/tags", &body, true, None);
    let c2 = pack_cache_counts(&r.site);
    assert_eq!(
        c2[1],
        c[1] + 1,
        "a request after a push was answered from the cache"
    );
    let fresh = r.site.dir().join("fresh");
    let out = run(smart_git(r.site.dir())
        .args(["clone", "-q"])
        .arg(&url)
        .arg(&fresh));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&repo, &fresh);

    // A force-push back: a clone gets the old commit again, never the cached newer one.
    push(&["-f", &push_url, "HEAD~1:main"]);
    let again = r.site.dir().join("again");
    let out = run(smart_git(r.site.dir())
        .args(["clone", "-q"])
        .arg(&url)
        .arg(&again));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&repo, &again);

    // Made private: the cached answer is refused like everything else.
    ok(r.site
        .forgelet()
        .args(["repo", "set", "alice/tags", "--visibility", "private"]));
    let anon = fetch(&r.srv, "alice/tags", &body, true, None);
    assert_eq!(anon.status, 401, "{}", anon.describe());
    assert!(!contains(&anon.body, b"PACK"));
    let owner = fetch(
        &r.srv,
        "alice/tags",
        &body,
        true,
        Some(&basic("alice", TEST_PASSWORD)),
    );
    assert_eq!(owner.status, 200, "{}", owner.describe());
}

#[test]
fn a_private_repositorys_cached_answer_reaches_only_its_readers() {
    let (r, repo) = start_with_fixture("packcache_private", "tags", SiteOptions::default());
    r.site.ensure_user("alice");
    r.site.ensure_user("mallory");
    ok(r.site
        .forgelet()
        .args(["repo", "set", "alice/tags", "--visibility", "private"]));
    let body = clone_request(&wants_of(&repo), true, "git/2.47.3");
    let alice = basic("alice", TEST_PASSWORD);
    let first = fetch(&r.srv, "alice/tags", &body, true, Some(&alice));
    let second = fetch(&r.srv, "alice/tags", &body, true, Some(&alice));
    assert_eq!(second.status, 200);
    assert!(first.body == second.body);
    assert_eq!(entries(&r.site).len(), 1);
    let stranger = fetch(
        &r.srv,
        "alice/tags",
        &body,
        true,
        Some(&basic("mallory", TEST_PASSWORD)),
    );
    assert_eq!(stranger.status, 404, "{}", stranger.describe());
    let anonymous = fetch(&r.srv, "alice/tags", &body, true, None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.describe());
    for a in [&stranger, &anonymous] {
        assert!(!contains(&a.body, b"PACK"), "a cached pack leaked");
    }
    // Another repository with the very same refs never gets this one's entries.
    let twin = r.site.import_fixture("tags", "mallory/tags");
    assert_eq!(refs_of(&twin), refs_of(&repo));
    let c = pack_cache_counts(&r.site);
    let twin_answer = fetch(&r.srv, "mallory/tags", &body, true, None);
    assert_eq!(twin_answer.status, 200);
    assert_eq!(
        pack_cache_counts(&r.site)[1],
        c[1] + 1,
        "the twin was answered from alice's entry"
    );
}

#[test]
fn identical_clones_arriving_together_run_git_once() {
    let (r, repo) = start_with_fixture("packcache_storm", "mixed", SiteOptions::default());
    add_big_commit(&repo, 8 << 20);
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let answers: Vec<Response> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| fetch(&r.srv, "alice/mixed", &body, true, None)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.describe());
        assert!(a.body == answers[0].body, "the answers differ");
    }
    let c = pack_cache_counts_when(&r.site, |c| c[0] >= 7);
    assert_eq!(c[1], 1, "git ran more than once: {c:?}");
    assert_eq!(c[0], 7, "{c:?}");
    assert_pack_complete(r.site.dir(), &answers[0].body, &wants);
}

#[test]
fn a_purge_clears_the_repositorys_cached_answers() {
    let (r, repo) = start_with_fixture("packcache_purge", "tags", SiteOptions::default());
    let body = clone_request(&wants_of(&repo), true, "git/2.47.3");
    fetch(&r.srv, "alice/tags", &body, true, None);
    fetch(&r.srv, "alice/tags", &body, true, None);
    assert_eq!(entries(&r.site).len(), 1);
    // The count of stored answers follows the answer's rename.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        let out = ok(r.site.forgelet().arg("cache"));
        // The hit is counted once forgelet's answer is written, maybe after the client is done.
        if (out.contains("answers stored: 1") && out.contains("fetches from the cache: 1 "))
            || std::time::Instant::now() > until
        {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    for line in [
        "answers kept: 1,",
        "fetches from the cache: 1 (50%)",
        "fetches by git, the answer written for the cache: 1",
        "answers stored: 1",
    ] {
        assert!(status.contains(line), "{line:?} not in:\n{status}");
    }
    ok(r.site.forgelet().args(["repo", "purge", "alice/tags"]));
    assert!(entries(&r.site).is_empty(), "{:?}", entries(&r.site));
    let c = pack_cache_counts(&r.site);
    let after = fetch(&r.srv, "alice/tags", &body, true, None);
    assert_eq!(after.status, 200);
    assert_eq!(
        pack_cache_counts(&r.site)[1],
        c[1] + 1,
        "answered from before the purge"
    );
    // Maintenance takes out answers unused for [pack_cache] max_age_days, and deletes them.
    fetch(&r.srv, "alice/tags", &body, true, None);
    let kept = entries_when(&r.site, |e| e.len() == 1);
    assert_eq!(kept.len(), 1);
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 86_400);
    fs::File::options()
        .write(true)
        .open(&kept[0])
        .unwrap()
        .set_modified(old)
        .unwrap();
    let out = ok(r.site.forgelet().arg("maintain"));
    assert!(
        out.contains("took out 1 answers unused for 7 days"),
        "{out}"
    );
    assert!(entries(&r.site).is_empty());
    // Emptied by hand: the next request is git's again.
    fetch(&r.srv, "alice/tags", &body, true, None);
    assert_eq!(entries_when(&r.site, |e| e.len() == 1).len(), 1);
    let out = ok(r.site.forgelet().args(["cache", "clear"]));
    assert!(out.contains("1 of 1 answers taken out"), "{out}");
    assert!(entries(&r.site).is_empty());
    let bad = run(r.site.forgelet().args(["cache", "empty"]));
    assert_eq!(bad.status.code(), Some(2), "{}", all_output(&bad));
    assert!(all_output(&bad).contains("cache takes no argument or `clear`"));
}

/// Unmounts when dropped.
struct Mount(PathBuf);
impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_degrades_to_answers_by_git() {
    let site = Site::new("packcache_full", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/mixed");
    add_big_commit(&repo, 2 << 20);
    // The cache's folder on a disk of 1 MiB: the 2 MiB answer cannot be written there.
    let dir = site.data_dir.join("repos/.cache");
    fs::create_dir_all(&dir).unwrap();
    ok(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&dir));
    let _mount = Mount(dir.clone());
    let srv = site.start();
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let first = fetch(&srv, "alice/mixed", &body, true, None);
    let second = fetch(&srv, "alice/mixed", &body, true, None);
    for a in [&first, &second] {
        assert_eq!(a.status, 200, "{}", a.describe());
        assert_pack_complete(site.dir(), &a.body, &wants);
    }
    assert!(entries(&site).is_empty());
    let left: Vec<_> = fs::read_dir(&dir).unwrap().flatten().collect();
    for group in left.iter().filter(|e| e.path().is_dir()) {
        for f in fs::read_dir(group.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".tmp-"),
                "a half-written answer was left: {name}"
            );
        }
    }
    drop(srv);
}

#[test]
fn a_writer_killed_mid_write_leaves_nothing_that_is_ever_served() {
    let site = Site::new("packcache_kill", SiteOptions::default());
    let repo = site.import_fixture("mixed", "alice/mixed");
    add_big_commit(&repo, 64 << 20);
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let body_file = site.dir().join("request");
    fs::write(&body_file, &body).unwrap();
    let cache = site.data_dir.join("repos/.cache");
    let growing = || -> Option<u64> {
        for group in fs::read_dir(&cache).ok()?.flatten() {
            for f in fs::read_dir(group.path()).into_iter().flatten().flatten() {
                if f.file_name().to_string_lossy().starts_with(".tmp-") {
                    let len = f.metadata().ok()?.len();
                    if len > 0 {
                        return Some(len);
                    }
                }
            }
        }
        None
    };
    {
        let srv = site.start();
        let mut curl = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-H", "Git-Protocol: version=2"])
            .args(["-H", "Content-Type: application/x-git-upload-pack-request"])
            .arg("--data-binary")
            .arg(format!("@{}", body_file.display()))
            .arg(site.url("/alice/mixed.git/git-upload-pack"))
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while growing().is_none() {
            assert!(
                std::time::Instant::now() < until,
                "the answer was never being written"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // forgelet and its git, killed while the answer is half written.
        let mut pids = vec![srv.forgelet_pid().to_string()];
        for p in processes_in(&repo) {
            pids.push(p.split_whitespace().next().unwrap_or_default().to_string());
        }
        let _ = Command::new("kill").arg("-9").args(&pids).status();
        let _ = curl.wait();
    }
    assert!(entries(&site).is_empty(), "a half answer became an entry");
    assert!(
        growing().is_some(),
        "the killed writer's file is not there to test with"
    );
    let srv = site.start();
    let first = fetch(&srv, "alice/mixed", &body, true, None);
    let second = fetch(&srv, "alice/mixed", &body, true, None);
    assert_eq!(second.status, 200, "{}", second.describe());
    assert!(first.body == second.body);
    assert_pack_complete(site.dir(), &second.body, &wants);
    let kept = entries(&site);
    assert_eq!(kept.len(), 1);
    assert!(fs::read(&kept[0]).unwrap() == second.body);
}

/// A site whose `[pack_cache]` table (the last of the test config) gets `lines` too.
fn site_with_cache(test: &str, lines: &str) -> Site {
    let site = Site::new(test, SiteOptions::default());
    let text = fs::read_to_string(&site.config).unwrap();
    assert!(text.trim_end().ends_with("free_mib = 0"), "{text}");
    fs::write(&site.config, format!("{text}{lines}\n")).unwrap();
    site
}

#[test]
fn the_cache_stays_within_its_size() {
    let site = site_with_cache("packcache_cap", "max_mib = 1");
    let big = site.import_fixture("mixed", "alice/big");
    add_big_commit(&big, 2 << 20);
    let smalls: Vec<PathBuf> = (0..4)
        .map(|i| {
            let r = site.import_fixture("tags", &format!("alice/small{i}"));
            add_big_commit(&r, 400 << 10);
            r
        })
        .collect();
    let srv = site.start();
    // An answer larger than the whole cache is never kept; git answers each time.
    let body = clone_request(&wants_of(&big), true, "git/2.47.3");
    for _ in 0..2 {
        let a = fetch(&srv, "alice/big", &body, true, None);
        assert_eq!(a.status, 200);
        assert_pack_complete(site.dir(), &a.body, &wants_of(&big));
    }
    assert!(entries(&site).is_empty(), "{:?}", entries(&site));
    // Answers of 400 KiB and more, four of them: the least recently used go past 1 MiB.
    for (i, r) in smalls.iter().enumerate() {
        let body = clone_request(&wants_of(r), true, "git/2.47.3");
        let a = fetch(&srv, &format!("alice/small{i}"), &body, true, None);
        assert_eq!(a.status, 200);
        assert!(a.body.len() > 400 << 10);
    }
    let size = |e: &[PathBuf]| -> u64 {
        e.iter()
            .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .sum()
    };
    let kept = entries_when(&site, |e| {
        !e.is_empty() && e.len() < 4 && size(e) <= 1 << 20
    });
    let held = size(&kept);
    assert!(
        !kept.is_empty() && kept.len() < 4 && held <= 1 << 20,
        "{} answers of {held} bytes kept",
        kept.len()
    );
    // The last one is among them: it was used most recently.
    let last = clone_request(&wants_of(&smalls[3]), true, "git/2.47.3");
    let c = pack_cache_counts(&site);
    fetch(&srv, "alice/small3", &last, true, None);
    assert_eq!(
        pack_cache_counts_when(&site, |n| n[0] > c[0])[0],
        c[0] + 1,
        "the most recent answer was evicted"
    );
    drop(srv);
}

#[test]
fn an_identical_request_is_sent_the_answer_as_git_makes_it_after_follow_wait() {
    let site = site_with_cache("packcache_follow", "follow_wait = 1");
    let repo = site.import_fixture("mixed", "alice/slow");
    add_big_commit(&repo, 160 << 20);
    let srv = site.start();
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(|| fetch(&srv, "alice/slow", &body, true, None));
        std::thread::sleep(std::time::Duration::from_millis(200));
        let b = s.spawn(|| fetch(&srv, "alice/slow", &body, true, None));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(first.status, 200, "{}", first.describe());
    assert_eq!(second.status, 200, "{}", second.describe());
    assert!(first.body == second.body, "the follower's answer differs");
    let c = pack_cache_counts_when(&site, |c| c[0] >= 1);
    assert_eq!((c[0], c[1]), (1, 1), "hits and misses: {c:?}");
    assert!(
        srv.forgelet_stderr()
            .contains("sending an answer as git makes it"),
        "the follower waited for the whole answer instead: {}",
        srv.forgelet_stderr()
    );
    assert_pack_complete(site.dir(), &second.body, &wants);
}

/// A clone whose client stopped reading kept every identical clone waiting for that client:
/// the entry became visible only once the stalled client had taken the whole answer (or nginx
/// dropped it a minute later), so followers waited for `follow_wait` and then read a file
/// that would not end. The entry is kept as soon as git is done now.
#[test]
fn a_client_that_stops_reading_does_not_hold_up_identical_clones() {
    use std::io::{Read, Write};
    let site = site_with_cache("packcache_stalled_leader", "follow_wait = 120");
    let repo = site.import_fixture("mixed", "alice/big");
    add_big_commit(&repo, 12 << 20);
    let srv = site.start();
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    // The leader: a client that takes the headers and a few KiB, then nothing.
    let mut leader = tcp_from_with("127.0.0.2", srv.port, Some(4096));
    leader
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "POST /git/alice/big.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-git-upload-pack-request\r\nGit-Protocol: version=2\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    leader.write_all(&request).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            leader.read(&mut byte).unwrap(),
            1,
            "no headers for the leader"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // The same clone from another client is answered whole, from the cache's entry, while the
    // leader is still connected (nginx drops it after its send_timeout of 60 s, which is when
    // the entry appeared before).
    let start = std::time::Instant::now();
    let second = fetch(&srv, "alice/big", &body, true, None);
    assert_eq!(second.status, 200, "{}", second.describe());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(40),
        "the second clone took {:?}",
        start.elapsed()
    );
    assert_pack_complete(site.dir(), &second.body, &wants);
    let c = pack_cache_counts_when(&site, |c| c[0] >= 1);
    assert_eq!((c[0], c[1]), (1, 1), "hits and misses: {c:?}");
    assert!(
        !srv.forgelet_stderr()
            .contains("sending an answer as git makes it"),
        "the second clone waited for the stalled one: {}",
        srv.forgelet_stderr()
    );
    drop(leader);
}
