//! Repository maintenance (`forgelet maintain`, and the runs a push starts): what it leaves
//! (a multi-pack index with its bitmap, one commit-graph file with Bloom filters, packed refs,
//! a repository `git fsck` finds clean and that clones through nginx as before); what it
//! removes (leftovers of a stopped git older than the git deadline, which block pushes) and
//! keeps (fresh locks, unreachable objects within their grace period); that it loses nothing
//! while a push runs; that pushes start it once the repository is worth it and never wait for
//! it; and that a bad name is refused.

use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

use crate::util::*;

/// A running site: the server first, so it stops before the files are removed.
struct Up {
    srv: Server,
    site: Site,
}

/// A site whose config has a `[maintenance]` table holding `lines` (before `[server]`, which
/// the harness appends to for some web servers).
fn site_with(test: &str, lines: &str) -> Site {
    let site = Site::new(test, SiteOptions::default());
    let text = fs::read_to_string(&site.config).unwrap();
    assert!(text.contains("\n[server]\n"), "{text}");
    let text = text.replacen(
        "\n[server]\n",
        &format!("\n[maintenance]\n{lines}\n\n[server]\n"),
        1,
    );
    fs::write(&site.config, text).unwrap();
    site
}

/// A site with `[maintenance]` set as `maintenance` says, the fixture imported as `owner_repo`,
/// started.
fn up(test: &str, fixture: &str, owner_repo: &str, maintenance: &str) -> (Up, PathBuf) {
    let site = site_with(test, maintenance);
    let repo = site.import_fixture(fixture, owner_repo);
    let srv = site.start();
    (Up { srv, site }, repo)
}

/// `http://alice:PASSWORD@127.0.0.1:PORT/git/{owner_repo}.git`.
fn push_url(site: &Site, owner_repo: &str) -> String {
    format!(
        "http://alice:{TEST_PASSWORD}@127.0.0.1:{}{}",
        site.port,
        site.target(&format!("/{owner_repo}.git"))
    )
}

fn maintain(site: &Site, args: &[&str]) -> Output {
    run(site.forgelet().arg("maintain").args(args))
}

fn maintain_ok(site: &Site, args: &[&str]) -> String {
    let out = maintain(site, args);
    let text = all_output(&out);
    assert!(
        out.status.success(),
        "forgelet maintain {args:?} failed:\n{text}"
    );
    text
}

/// A smart clone of the repository through nginx into `dir/name`.
fn clone(up: &Up, owner_repo: &str, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    ok(smart_git(dir)
        .args(["clone", "-q", &push_url(&up.site, owner_repo)])
        .arg(&to));
    to
}

/// A new commit on main in the work tree `work`, pushed; the push's output.
fn commit_and_push(work: &Path, url: &str, n: usize) -> Output {
    fs::write(work.join(format!("file-{n}.txt")), format!("change {n}\n")).unwrap();
    git_ok(work, &["add", "."]);
    git_ok(work, &["commit", "-q", "-m", &format!("change {n}")]);
    run(smart_git(work).args(["push", "-q", url, "HEAD:refs/heads/main"]))
}

/// Names of the files in the repository's `objects/pack`.
fn pack_files(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The version of the changed-path Bloom filters in a commit-graph file (its `BDAT` chunk), or
/// `None` when it has none.
fn bloom_version(graph: &Path) -> Option<u32> {
    let d = fs::read(graph).unwrap();
    assert_eq!(&d[..4], b"CGPH", "{} is no commit-graph", graph.display());
    let chunks = d[6] as usize;
    for i in 0..=chunks {
        let at = 8 + 12 * i;
        let id = &d[at..at + 4];
        let offset = u64::from_be_bytes(d[at + 4..at + 12].try_into().unwrap()) as usize;
        if id == b"BDAT" {
            return Some(u32::from_be_bytes(
                d[offset..offset + 4].try_into().unwrap(),
            ));
        }
    }
    None
}

/// The Bloom filter version the git under test writes when asked for version 2 (1 when it
/// does not know the setting), found in a scratch repository.
fn bloom_version_git_writes(scratch: &Path) -> u32 {
    let repo = scratch.join("bloom-probe");
    ok(git(scratch).args(["init", "-q"]).arg(&repo));
    fs::write(repo.join("a"), "a\n").unwrap();
    git_ok(&repo, &["add", "a"]);
    git_ok(&repo, &["commit", "-q", "-m", "a"]);
    git_ok(
        &repo,
        &[
            "-c",
            "commitGraph.changedPathsVersion=2",
            "commit-graph",
            "write",
            "--reachable",
            "--changed-paths",
        ],
    );
    bloom_version(&repo.join(".git/objects/info/commit-graph")).unwrap()
}

/// Sets a file's (or folder's) modification time `ago` in the past.
fn age(path: &Path, ago: Duration) {
    let when = SystemTime::now() - ago;
    let f = fs::File::open(path).unwrap();
    f.set_modified(when).unwrap();
}

/// A file with `text`, made `ago` old.
fn old_file(path: &Path, text: &str, ago: Duration) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    age(path, ago);
}

/// Processes running `forgelet ... maintain` for the site whose config is `config`.
fn maintain_processes(config: &Path) -> Vec<String> {
    let needle = config.display().to_string();
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let cmd = fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if cmd.contains(&needle) && cmd.contains(" maintain ") {
            out.push(cmd);
        }
    }
    out
}

/// Whether someone holds an exclusive `flock` on `path`.
fn locked(path: &Path) -> bool {
    let f = fs::File::open(path).unwrap();
    // SAFETY: flock on a descriptor this function owns.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    rc != 0
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < until, "waited {secs} s for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn maintain_leaves_bitmaps_a_commit_graph_and_packed_refs_and_clones_stay_the_same() {
    let (up, repo) = up("maintain_shape", "mixed", "alice/proj", "auto = false");
    let tmp = TempDir::new("maintain_shape_work");
    let before = clone(&up, "alice/proj", tmp.path(), "before");
    assert_clone_matches(&repo, &before);
    let refs_before = refs_of(&repo);
    assert!(
        !pack_files(&repo).iter().any(|n| n == "multi-pack-index"),
        "the fixture has a multi-pack index already: the test would prove nothing"
    );

    let said = maintain_ok(&up.site, &["alice/proj"]);
    assert!(said.contains("alice/proj: done"), "{said}");

    let packs = pack_files(&repo);
    assert!(
        packs.iter().any(|n| n == "multi-pack-index"),
        "no multi-pack index: {packs:?}"
    );
    assert!(
        packs
            .iter()
            .any(|n| n.starts_with("multi-pack-index-") && n.ends_with(".bitmap")),
        "no reachability bitmap: {packs:?}"
    );
    assert_eq!(
        packs.iter().filter(|n| n.ends_with(".pack")).count(),
        1,
        "everything reachable in one pack, and nothing unreachable in the fixture: {packs:?}"
    );
    let loose = run(git(&repo).args(["count-objects", "-v"]));
    assert!(
        String::from_utf8_lossy(&loose.stdout).contains("count: 0\n"),
        "loose objects left: {}",
        all_output(&loose)
    );
    let info = repo.join("objects/info");
    assert!(info.join("commit-graph").is_file(), "no commit-graph file");
    assert!(
        !info.join("commit-graphs/commit-graph-chain").exists(),
        "a split commit-graph chain: libgit2 reads only one file"
    );
    let version = bloom_version(&info.join("commit-graph"));
    assert_eq!(
        version,
        Some(bloom_version_git_writes(tmp.path())),
        "the commit-graph's Bloom filters are not the newest version this git writes"
    );
    let packed = fs::read_to_string(repo.join("packed-refs")).expect("no packed-refs");
    for (name, oid) in &refs_before {
        assert!(
            packed.contains(&format!("{oid} {name}\n")),
            "{name} is not in packed-refs:\n{packed}"
        );
    }
    let loose_refs = run(Command::new("find")
        .arg(repo.join("refs"))
        .args(["-type", "f"]));
    assert_eq!(
        String::from_utf8_lossy(&loose_refs.stdout).trim(),
        "",
        "refs left unpacked"
    );
    assert_eq!(refs_of(&repo), refs_before, "maintenance changed the refs");
    assert_fsck(&repo, "the repository after maintenance");
    let verify = run(git(&repo).args(["multi-pack-index", "verify", "--no-progress"]));
    assert!(verify.status.success(), "{}", all_output(&verify));
    let graph = run(git(&repo).args(["commit-graph", "verify", "--no-progress"]));
    assert!(graph.status.success(), "{}", all_output(&graph));

    // Clones through nginx, smart and dumb, and the pages (libgit2) see the same repository.
    let after = clone(&up, "alice/proj", tmp.path(), "after");
    assert_clone_matches(&repo, &after);
    let dumb = tmp.path().join("dumb");
    ok(git(tmp.path())
        .args(["clone", "-q", &up.site.url("/alice/proj.git")])
        .arg(&dumb));
    assert_clone_matches(&repo, &dumb);
    let page = up.srv.get(&up.site.target("/alice/proj/commits/main"));
    assert_eq!(page.status, 200, "{}", page.describe());

    // A second run finds the packs in shape and rewrites nothing.
    let said = maintain_ok(&up.site, &["alice/proj"]);
    assert!(said.contains("in shape already"), "{said}");
    assert_eq!(pack_files(&repo), packs);
}

#[test]
fn maintain_removes_what_a_stopped_git_left_and_keeps_what_may_be_in_use() {
    let (up, repo) = up("maintain_leftovers", "mixed", "alice/proj", "auto = false");
    // Past the git deadline (3600 s by default), and well within it.
    let stale = Duration::from_secs(2 * 3600);
    let fresh = Duration::from_secs(60);
    let objects = repo.join("objects");
    old_file(
        &objects.join("incoming-Ab12Cd/pack/tmp_pack_Xy"),
        "half a pack",
        stale,
    );
    age(&objects.join("incoming-Ab12Cd/pack"), stale);
    age(&objects.join("incoming-Ab12Cd"), stale);
    old_file(&objects.join("tmp_objdir-incoming-Qz9/ab/cdef"), "x", stale);
    age(&objects.join("tmp_objdir-incoming-Qz9/ab"), stale);
    age(&objects.join("tmp_objdir-incoming-Qz9"), stale);
    old_file(&objects.join("pack/tmp_pack_Old123"), "old", stale);
    old_file(&objects.join("pack/tmp_idx_Old123"), "old", stale);
    old_file(&objects.join("pack/tmp_pack_New456"), "new", fresh);
    // A push stopped between writing its pack and updating its refs leaves the pack kept
    // from every repack; a sysadmin's own .keep says something else and stays.
    old_file(
        &objects.join("pack/pack-0123456789abcdef0123456789abcdef01234567.keep"),
        "receive-pack 4242 on example.org\n",
        stale,
    );
    old_file(
        &objects.join("pack/pack-89abcdef0123456789abcdef0123456789abcdef.keep"),
        "kept by hand\n",
        stale,
    );
    let main = git_ok(&repo, &["rev-parse", "refs/heads/main"]);
    old_file(&repo.join("refs/heads/main.lock"), &main, stale);
    old_file(&repo.join("refs/heads/other.lock"), &main, fresh);
    old_file(&objects.join("incoming-New789/x"), "in use", fresh);

    // The stale lock refuses a push of main while another push holds the repository (a push
    // alone in it removes ref locks itself: `faults::a_ref_lock_left_by_a_killed_push_...`).
    let tmp = TempDir::new("maintain_leftovers_work");
    let work = clone(&up, "alice/proj", tmp.path(), "work");
    let url = push_url(&up.site, "alice/proj");
    let other_push = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(repo.join("forgelet-maintenance.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    let rc = unsafe { libc::flock(other_push.as_raw_fd(), libc::LOCK_SH) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
    let refused = commit_and_push(&work, &url, 1);
    assert!(
        !refused.status.success(),
        "a push went through a stale main.lock: the test would prove nothing\n{}",
        all_output(&refused)
    );
    drop(other_push);

    let said = maintain_ok(&up.site, &["alice/proj"]);
    for gone in [
        "objects/incoming-Ab12Cd",
        "objects/tmp_objdir-incoming-Qz9",
        "objects/pack/tmp_pack_Old123",
        "objects/pack/tmp_idx_Old123",
        "refs/heads/main.lock",
        "objects/pack/pack-0123456789abcdef0123456789abcdef01234567.keep",
    ] {
        assert!(!repo.join(gone).exists(), "{gone} was kept\n{said}");
        assert!(
            said.contains(gone),
            "maintain did not say it removed {gone}:\n{said}"
        );
    }
    for kept in [
        "objects/pack/tmp_pack_New456",
        "refs/heads/other.lock",
        "objects/incoming-New789/x",
        "objects/pack/pack-89abcdef0123456789abcdef0123456789abcdef.keep",
        "forgelet-maintenance.lock",
        "forgelet-maintain.lock",
    ] {
        assert!(repo.join(kept).exists(), "{kept} was removed\n{said}");
    }

    let pushed = run(smart_git(&work).args(["push", "-q", &url, "HEAD:refs/heads/main"]));
    assert!(
        pushed.status.success(),
        "the push after maintenance failed: {}",
        all_output(&pushed)
    );
    assert_eq!(
        git_ok(&repo, &["rev-parse", "refs/heads/main"]),
        git_ok(&work, &["rev-parse", "HEAD"])
    );
    assert_fsck(&repo, "the repository after the push");
}

#[test]
fn unreachable_objects_wait_in_a_cruft_pack_and_go_after_their_grace_period() {
    let (up, repo) = up(
        "maintain_cruft",
        "packs-only",
        "alice/proj",
        "auto = false\ncruft_days = 14",
    );
    let hash = |text: &str| {
        let out = run_with_stdin(
            git(&repo).args(["hash-object", "-w", "--stdin"]),
            text.as_bytes(),
        );
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let recent = hash("unreachable, written a minute ago\n");
    let ancient = hash("unreachable, written a month ago\n");
    let loose = |oid: &str| repo.join("objects").join(&oid[..2]).join(&oid[2..]);
    age(&loose(&ancient), Duration::from_secs(30 * 86_400));
    age(&loose(&recent), Duration::from_secs(60));

    let said = maintain_ok(&up.site, &["alice/proj"]);
    let exists = |oid: &str| {
        run(git(&repo).args(["cat-file", "-e", oid]))
            .status
            .success()
    };
    assert!(
        exists(&recent),
        "an unreachable object within its grace period was dropped\n{said}"
    );
    assert!(
        !exists(&ancient),
        "an unreachable object past its grace period was kept\n{said}"
    );
    let packs = pack_files(&repo);
    assert!(
        packs.iter().any(|n| n.ends_with(".mtimes")),
        "no cruft pack: {packs:?}"
    );
    assert!(
        !loose(&recent).exists(),
        "the unreachable object stayed loose"
    );
    assert_fsck(&repo, "the repository after maintenance");
    // Clones (counted from the bitmap now) do not carry it.
    let tmp = TempDir::new("maintain_cruft_work");
    let c = clone(&up, "alice/proj", tmp.path(), "before-purge");
    assert_clone_matches(&repo, &c);
    assert!(
        !run(git(&c).args(["cat-file", "-e", &recent]))
            .status
            .success(),
        "a clone carries an unreachable object from the cruft pack"
    );

    // A purge still drops it at once.
    ok(up.site.forgelet().args(["repo", "purge", "alice/proj"]));
    assert!(!exists(&recent), "a purge left the cruft pack's object");
    assert_fsck(&repo, "the repository after a purge");
    let c = clone(&up, "alice/proj", tmp.path(), "clone");
    assert_clone_matches(&repo, &c);
}

#[test]
fn maintain_while_a_push_runs_loses_nothing() {
    let (up, repo) = up("maintain_push", "mixed", "alice/proj", "auto = false");
    let tmp = TempDir::new("maintain_push_work");
    let work = clone(&up, "alice/proj", tmp.path(), "work");
    // A large incompressible file, so the push runs long enough to be caught in the act.
    fs::write(work.join("big.bin"), noise(7, 48 << 20)).unwrap();
    git_ok(&work, &["add", "big.bin"]);
    git_ok(&work, &["commit", "-q", "-m", "big"]);
    let url = push_url(&up.site, "alice/proj");
    let objects = repo.join("objects");
    let quarantined = || {
        fs::read_dir(&objects).unwrap().flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("incoming-") || n.starts_with("tmp_objdir-")
        })
    };
    std::thread::scope(|s| {
        let push =
            s.spawn(|| run(smart_git(&work).args(["push", "-q", &url, "HEAD:refs/heads/main"])));
        wait_for("the push's quarantine folder", 60, || {
            quarantined() || push.is_finished()
        });
        assert!(
            !push.is_finished(),
            "the push ended before maintenance could start beside it"
        );
        // The push is under way: maintenance runs beside it, not after it.
        let said = maintain_ok(&up.site, &["alice/proj"]);
        assert!(said.contains("alice/proj: done"), "{said}");
        let pushed = push.join().unwrap();
        assert!(pushed.status.success(), "{}", all_output(&pushed));
    });
    assert_eq!(
        git_ok(&repo, &["rev-parse", "refs/heads/main"]),
        git_ok(&work, &["rev-parse", "HEAD"]),
        "the push's commit is not on main"
    );
    assert_fsck(&repo, "the repository after a push beside maintenance");
    // And once more, now that the pushed pack is there to be repacked.
    maintain_ok(&up.site, &["alice/proj"]);
    assert_fsck(&repo, "the repository after maintenance of the pushed pack");
    let c = clone(&up, "alice/proj", tmp.path(), "clone");
    assert_clone_matches(&repo, &c);
    assert_eq!(
        fs::read(c.join("big.bin")).unwrap().len(),
        48 << 20,
        "the pushed file"
    );
}

#[test]
fn pushes_start_maintenance_once_worth_it_and_never_wait_for_it() {
    // packs-only has no loose objects; each push of one commit adds three.
    let (up, repo) = up(
        "maintain_auto",
        "packs-only",
        "alice/proj",
        "auto_loose = 10\nat_once = 1",
    );
    let tmp = TempDir::new("maintain_auto_work");
    let work = clone(&up, "alice/proj", tmp.path(), "work");
    let url = push_url(&up.site, "alice/proj");
    let status = repo.join("forgelet-maintain.status");
    for n in 1..=3 {
        let out = commit_and_push(&work, &url, n);
        assert!(out.status.success(), "push {n}: {}", all_output(&out));
        assert!(
            maintain_processes(&up.site.config).is_empty() && !status.exists(),
            "push {n} of 3 started maintenance, with fewer loose objects than auto_loose"
        );
    }

    // The next push crosses the line. A backup holds the data folder (as the README says to),
    // so the maintenance it starts waits for its turn: the push must not wait with it.
    let data = fs::File::open(&up.site.data_dir).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(data.as_raw_fd(), libc::LOCK_EX) }, 0);
    let started = Instant::now();
    let (done, pushed) = std::sync::mpsc::channel();
    let (w, u) = (work.clone(), url.clone());
    std::thread::spawn(move || {
        let _ = done.send(commit_and_push(&w, &u, 4));
    });
    let out = pushed
        .recv_timeout(Duration::from_secs(60))
        .expect("the push waited for the maintenance it started");
    assert!(out.status.success(), "push 4: {}", all_output(&out));
    println!("push 4 took {:?}", started.elapsed());
    // The run the push started is there, and (once it has read its config) holds its
    // repository's lock while it waits for the backup.
    wait_for(
        "the maintenance the push started to hold its lock",
        20,
        || locked(&repo.join("forgelet-maintain.lock")),
    );
    let running = maintain_processes(&up.site.config);
    assert_eq!(
        running.len(),
        1,
        "one maintenance started by the push, running now: {running:?}"
    );
    assert!(running[0].contains("--auto alice/proj"), "{running:?}");
    assert!(!status.exists(), "maintenance ran during the backup");

    // A fifth push meanwhile starts no second run of the same repository.
    let out = commit_and_push(&work, &url, 5);
    assert!(out.status.success(), "push 5: {}", all_output(&out));
    assert_eq!(maintain_processes(&up.site.config).len(), 1);

    // The backup ends; the run goes on and leaves the repository maintained.
    drop(data);
    wait_for("the maintenance a push started", 120, || {
        maintain_processes(&up.site.config).is_empty()
    });
    assert_eq!(
        fs::read_to_string(&status).unwrap().lines().next(),
        Some("done"),
        "{}",
        fs::read_to_string(&status).unwrap()
    );
    let packs = pack_files(&repo);
    assert!(
        packs.iter().any(|n| n == "multi-pack-index")
            && packs.iter().any(|n| n.ends_with(".bitmap")),
        "{packs:?}"
    );
    assert!(repo.join("objects/info/commit-graph").is_file());
    assert_fsck(&repo, "the repository after the maintenance a push started");
    let c = clone(&up, "alice/proj", tmp.path(), "clone");
    assert_clone_matches(&repo, &c);
    assert_eq!(
        git_ok(&repo, &["rev-parse", "refs/heads/main"]),
        git_ok(&work, &["rev-parse", "HEAD"])
    );
}

/// Under CGI forgelet's process ends with the answer; the maintenance it started must neither
/// keep the web server waiting (it writes nowhere the web server reads) nor die with it.
#[test]
fn a_push_to_forgelet_as_cgi_starts_maintenance_that_outlives_it() {
    let site = site_with("maintain_cgi", "auto_loose = 1");
    let repo = site.import_fixture("packs-only", "alice/proj");
    let srv = site.start_behind(Front::ApacheCgi);
    let tmp = TempDir::new("maintain_cgi_work");
    let url = push_url(&site, "alice/proj");
    let work = tmp.path().join("work");
    ok(smart_git(tmp.path()).args(["clone", "-q", &url]).arg(&work));

    let data = fs::File::open(&site.data_dir).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(data.as_raw_fd(), libc::LOCK_EX) }, 0);
    let (done, pushed) = std::sync::mpsc::channel();
    let (w, u) = (work.clone(), url.clone());
    std::thread::spawn(move || {
        let _ = done.send(commit_and_push(&w, &u, 1));
    });
    let out = pushed
        .recv_timeout(Duration::from_secs(60))
        .expect("the push under CGI waited for the maintenance it started");
    assert!(out.status.success(), "{}", all_output(&out));
    wait_for(
        "the maintenance the push started to hold its lock",
        20,
        || locked(&repo.join("forgelet-maintain.lock")),
    );
    assert_eq!(maintain_processes(&site.config).len(), 1);
    drop(data);
    wait_for("the maintenance a push started", 120, || {
        maintain_processes(&site.config).is_empty()
    });
    let status = fs::read_to_string(repo.join("forgelet-maintain.status")).unwrap();
    assert!(status.starts_with("done\n"), "{status}");
    assert!(pack_files(&repo).iter().any(|n| n == "multi-pack-index"));
    assert_fsck(&repo, "the repository after maintenance under CGI");
    srv.finish();
}

#[test]
fn pushes_start_no_maintenance_when_auto_is_off() {
    let (up, repo) = up(
        "maintain_auto_off",
        "packs-only",
        "alice/proj",
        "auto = false\nauto_loose = 1",
    );
    let tmp = TempDir::new("maintain_auto_off_work");
    let work = clone(&up, "alice/proj", tmp.path(), "work");
    let out = commit_and_push(&work, &push_url(&up.site, "alice/proj"), 1);
    assert!(out.status.success(), "{}", all_output(&out));
    std::thread::sleep(Duration::from_millis(500));
    assert!(maintain_processes(&up.site.config).is_empty());
    assert!(!repo.join("forgelet-maintain.status").exists());
    assert!(!pack_files(&repo).iter().any(|n| n == "multi-pack-index"));
}

#[test]
fn maintain_of_the_whole_site_empties_old_trash_and_refuses_bad_names() {
    let site = site_with("maintain_site", "trash_days = 30");
    let repo = site.import_fixture("tags", "alice/tags");
    site.ensure_user("bob");
    ok(site.forgelet().args(["repo", "create", "bob/empty"]));
    let trash = site.data_dir.join("trash");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = trash.join(format!("alice-gone-{}.git", now - 40 * 86_400));
    let recent = trash.join(format!("alice-recent-{}.git", now - 86_400));
    for t in [&old, &recent] {
        fs::create_dir_all(t.join("objects")).unwrap();
    }

    let said = maintain_ok(&site, &[]);
    assert!(said.contains("alice/tags: done"), "{said}");
    assert!(said.contains("bob/empty: done"), "{said}");
    assert!(said.contains("maintained 2 of 2 repositories"), "{said}");
    assert!(
        !old.exists(),
        "trash older than trash_days was kept\n{said}"
    );
    assert!(recent.exists(), "recent trash was removed");
    assert!(repo.join("objects/pack/multi-pack-index").is_file());

    for (args, code, says) in [
        (
            &["nobody/none"][..],
            1,
            "there is no repository named nobody/none",
        ),
        (
            &["alice/missing"][..],
            1,
            "there is no repository named alice/missing",
        ),
        (&["justone"][..], 1, "expected OWNER/NAME"),
        (
            &["alice/tags", "bob/empty"][..],
            2,
            "at most one OWNER/NAME",
        ),
        (&["--auto"][..], 2, "maintain --auto takes OWNER/NAME"),
        (&["--bogus"][..], 2, "unknown option --bogus"),
    ] {
        let out = maintain(&site, args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "forgelet maintain {args:?}: {}",
            all_output(&out)
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "forgelet maintain {args:?} said: {err}");
    }
}

/// A damaged repository is named once per run, not twice: the failure the last run kept in
/// `forgelet-maintain.status` is said again only when this run did not fail the same way. A
/// failure this run does not repeat (a run a push started, which prints nowhere) is still
/// told by the next run, after its own steps, as the one before it.
#[test]
fn maintain_says_a_damaged_repository_once_and_an_earlier_failure_once() {
    let site = site_with("maintain_damage_once", "");
    let repo = site.import_fixture("packs-only", "alice/broken");
    let sound = site.import_fixture("packs-only", "alice/sound");
    fs::remove_file(repo.join(largest_pack(&repo))).unwrap();
    let told = "the repository is damaged, so maintenance left it as it was";
    for args in [&["alice/broken"][..], &["alice/broken"], &[]] {
        let out = maintain(&site, args);
        let text = all_output(&out);
        assert_eq!(out.status.code(), Some(1), "maintain {args:?}:\n{text}");
        assert_eq!(
            text.matches(told).count(),
            1,
            "maintain {args:?} does not say the damage exactly once:\n{text}"
        );
        assert!(!text.contains("before this one"), "{text}");
    }

    // A failure kept by an earlier run, which this run does not repeat.
    let why = "git repack failed: fatal: No space left on device";
    fs::write(
        sound.join("forgelet-maintain.status"),
        format!("failed\n1796511495\n{why}\n"),
    )
    .unwrap();
    let out = maintain(&site, &["alice/sound"]);
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");
    assert_eq!(
        text.matches("alice/sound: the maintenance before this one (at 2026-12-05 ")
            .count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches(why).count(), 1, "{text}");
    assert!(
        text.contains("alice/sound: done"),
        "the run itself did not end:\n{text}"
    );
    // It is said once: this run's success replaced it.
    let again = maintain_ok(&site, &["alice/sound"]);
    assert!(!again.contains(why), "{again}");
}
