//! Faults of the disk: the site's data directory on a small tmpfs filled up (a push, a write of
//! the users file from the command line and from the web, an answer for the pack cache), and
//! repositories damaged on disk (an object overwritten, a ref broken, a pack gone). Each time
//! the client gets a clear error, nothing already there is lost or half-written, the rest of
//! the site goes on, and once the disk has room again the same action works without a restart;
//! `forgelet maintain` and `forgelet doctor` name a damaged repository.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// A small disk

/// A tmpfs of its own mounted on a folder, which a filler file can fill; unmounted when dropped,
/// so a test that fails leaves no mount behind.
struct Disk {
    dir: PathBuf,
    filler: PathBuf,
}

impl Disk {
    /// Mounts a tmpfs of `mib` MiB on `dir` (made if missing; whatever it held is hidden).
    fn mount(dir: &Path, mib: u32) -> Disk {
        fs::create_dir_all(dir).unwrap();
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={mib}m,mode=0755"))
            .arg("tmpfs")
            .arg(dir));
        Disk {
            dir: dir.to_path_buf(),
            filler: dir.join("filler"),
        }
    }

    /// Bytes free on the disk.
    fn avail(&self) -> u64 {
        let out = ok(Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&self.dir));
        out.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df says {out:?}"))
    }

    /// Grows the filler file until `leave` bytes are free (at most).
    fn fill(&self, leave: u64) {
        let have = fs::metadata(&self.filler).map(|m| m.len()).unwrap_or(0);
        let avail = self.avail();
        assert!(
            avail >= leave,
            "only {avail} bytes free, {leave} to be left"
        );
        let size = have + avail - leave;
        ok(Command::new("fallocate")
            .args(["-l", &size.to_string()])
            .arg(&self.filler));
        let now = self.avail();
        assert!(
            now <= leave,
            "{now} bytes free after filling, {leave} wanted"
        );
    }

    /// Deletes the filler: the disk has room again.
    fn free(&self) {
        fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Something still has a file open there (a process the failing test left): detach
            // the mount anyway, it goes once that process does.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// A site whose data directory is a tmpfs of `mib` MiB (with `[pack_cache] free_mib = 0`, so
/// the cache finds the disk full itself): the site, then the disk, so the disk is unmounted
/// before the site's files are removed.
fn site_on_small_disk(test: &str, mib: u32) -> (Site, Disk) {
    let site = Site::new(test, SiteOptions::default());
    let disk = Disk::mount(&site.data_dir, mib);
    fs::create_dir_all(site.data_dir.join("repos")).unwrap();
    let config = fs::read_to_string(&site.config).unwrap();
    assert!(config.contains("free_mib = 0"), "{config}");
    (site, disk)
}

/// Runs a command that must fail; its whole output.
fn fails(cmd: &mut Command, what: &str) -> String {
    let out = run(cmd);
    let text = all_output(&out);
    assert!(!out.status.success(), "{what} succeeded:\n{text}");
    text
}

/// `http://alice:PASSWORD@.../path`.
fn alice_url(site: &Site, path: &str) -> String {
    site.url(path)
        .replace("://", &format!("://alice:{TEST_PASSWORD}@"))
}

/// Every file below `dir`, as paths below it.
fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// A full disk

/// A push of 6 MiB to a disk with 1 MiB free: git's client says the push failed and why (no
/// space left on the server's device), the ref is as it was, `git fsck` is clean, no half-written
/// pack or quarantine is left; once the disk has room, the same push goes through.
#[test]
fn a_push_to_a_full_disk_fails_clearly_and_changes_nothing() {
    let started = Instant::now();
    let (site, disk) = site_on_small_disk("faults_disk_push", 32);
    let repo = site.import_fixture("mixed", "alice/mixed");
    let srv = site.start();
    let work = site.dir().join("work");
    ok(smart_git(site.dir())
        .args(["clone", "-q"])
        .arg(alice_url(&site, "/alice/mixed.git"))
        .arg(&work));
    // On `main` one object of 6 MiB (receive-pack unpacks it into loose objects); on `many`
    // 150 objects of 40 KiB (it keeps the pack, written by index-pack).
    fs::write(work.join("big.bin"), noise(7, 6 << 20)).unwrap();
    git_ok(&work, &["add", "big.bin"]);
    git_ok(&work, &["commit", "-q", "-m", "six MiB"]);
    git_ok(&work, &["checkout", "-q", "-b", "many", "HEAD~1"]);
    for i in 0..150 {
        fs::write(
            work.join(format!("part{i}.bin")),
            noise(1001 + 2 * i, 40 << 10),
        )
        .unwrap();
    }
    git_ok(&work, &["add", "."]);
    git_ok(&work, &["commit", "-q", "-m", "150 parts"]);
    let before = refs_of(&repo);
    let files_before = files_below(&repo);

    disk.fill(1 << 20);
    for branch in ["main", "many"] {
        let said = fails(
            smart_git(&work).args(["push", "origin", branch]),
            "a push to a full disk",
        );
        eprintln!("git push {branch} to a full disk said:\n{said}");
        assert!(
            said.contains("No space left on device"),
            "git's client does not say the server's disk is full:\n{said}"
        );
        assert!(
            said.contains(&format!("[remote rejected] {branch} -> {branch}")),
            "git's client does not say the branch was refused:\n{said}"
        );
    }
    assert_eq!(refs_of(&repo), before, "a ref moved in a failed push");
    assert_fsck(&repo, "the repository after the failed push");
    // What is new in the repository after the failed push: nothing but what maintenance removes
    // (its leftovers, once older than the git deadline) or forgelet's own bookkeeping.
    let new: Vec<String> = files_below(&repo)
        .into_iter()
        .filter(|f| !files_before.contains(f))
        .collect();
    let objects: Vec<&String> = new.iter().filter(|f| f.starts_with("objects/")).collect();
    assert!(
        objects.is_empty(),
        "the failed push left files in objects/: {objects:?}"
    );
    let page = srv.get(&site.target("/alice/mixed"));
    assert_eq!(
        page.status,
        200,
        "the page after the failed push: {}",
        page.describe()
    );

    disk.free();
    for branch in ["main", "many"] {
        let out = run(smart_git(&work).args(["push", "origin", branch]));
        assert!(
            out.status.success(),
            "the push of {branch} once the disk has room: {}",
            all_output(&out)
        );
        assert_eq!(
            refs_of(&repo).get(&format!("refs/heads/{branch}")),
            Some(&git_ok(&work, &["rev-parse", branch]).trim().to_string())
        );
    }
    assert_fsck(&repo, "the repository after the push");
    srv.finish();
    drop(disk);
    eprintln!("took {:?}", started.elapsed());
}

/// A token made and a user added while the disk is full, from the command line and from the
/// web settings page: a clear error (the command names the file and the full disk; the page
/// says the server could not save, 507), users.toml byte for byte as it was and every earlier
/// user and token still there; once the disk has room, the same actions work.
#[test]
fn a_full_disk_during_a_users_file_write_is_told_as_such_and_loses_nothing() {
    let started = Instant::now();
    let (site, disk) = site_on_small_disk("faults_disk_users", 8);
    site.ensure_user("alice");
    site.ensure_user("bob");
    ok(site
        .forgelet()
        .args(["token", "create", "alice", "--name", "before"]));
    let srv = site.start();
    let mut b = Browser::default();
    sign_in_as(&site, &srv, &mut b, "alice");
    let url = site.target("/-/settings/tokens");
    let csrf = csrf_of(&b.get(&srv, &url));
    let users = site.data_dir.join("users.toml");
    let before = fs::read(&users).unwrap();

    disk.fill(0);
    let said = fails(
        site.forgelet()
            .args(["token", "create", "alice", "--name", "during"]),
        "token create on a full disk",
    );
    eprintln!("token create on a full disk said:\n{said}");
    // The file it could not write (not its temporary copy) and why.
    for words in [
        "/users.toml:",
        "No space left on device",
        "disk holding it is full",
    ] {
        assert!(
            said.contains(words),
            "token create does not say {words:?}:\n{said}"
        );
    }
    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "add", "carol", "--password-stdin"]),
        format!("{TEST_PASSWORD}\n").as_bytes(),
    );
    let said = all_output(&out);
    eprintln!("user add on a full disk said:\n{said}");
    assert!(!out.status.success(), "user add on a full disk succeeded");
    for words in [
        "/users.toml:",
        "No space left on device",
        "disk holding it is full",
    ] {
        assert!(
            said.contains(words),
            "user add does not say {words:?}:\n{said}"
        );
    }
    let page = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "create"),
            ("name", "web-during"),
        ],
    );
    eprintln!("the settings page on a full disk: {}", page.describe());
    // 507 Insufficient Storage, not a bare 500: forgelet once answered "Something went wrong".
    assert_eq!(
        page.status,
        507,
        "the settings page on a full disk: {}",
        page.describe()
    );
    let text = page.text();
    assert!(
        text.contains("could not save") && text.contains("disk"),
        "the page does not say the server could not save: {text}"
    );
    assert!(
        text.contains("<html") || text.contains("<!DOCTYPE"),
        "not a page of the site: {text}"
    );
    assert_eq!(fs::read(&users).unwrap(), before, "users.toml changed");
    let users_now = ok(site.forgelet().args(["user", "list"]));
    for u in ["alice", "bob"] {
        assert!(
            users_now.lines().any(|l| l.split('\t').next() == Some(u)),
            "{u} is gone:\n{users_now}"
        );
    }
    assert!(!users_now.contains("carol"), "{users_now}");
    let tokens = ok(site.forgelet().args(["token", "list", "alice"]));
    assert!(tokens.contains("before\t"), "{tokens}");
    assert!(!tokens.contains("during"), "{tokens}");
    let temps: Vec<String> = files_below(&site.data_dir)
        .into_iter()
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "the failed writes left {temps:?}");

    disk.free();
    ok(site
        .forgelet()
        .args(["token", "create", "alice", "--name", "during"]));
    site.ensure_user("carol");
    let page = b.post(
        &srv,
        &url,
        &[
            ("csrf", &csrf),
            ("action", "create"),
            ("name", "web-during"),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.describe());
    let tokens = ok(site.forgelet().args(["token", "list", "alice"]));
    for t in ["before", "during", "web-during"] {
        assert!(
            tokens.contains(&format!("{t}\t")),
            "{t} is missing:\n{tokens}"
        );
    }
    ok(site.forgelet().arg("check"));
    srv.finish();
    drop(disk);
    eprintln!("took {:?}", started.elapsed());
}

/// A clone's answer that cannot be written for the pack cache because the disk is full (a real
/// one: `free_mib = 0`, so the cache's own floor does not stop it first): the clones are
/// answered by git, whole; no entry is kept and nothing half-written is left, so none is ever
/// served; once the disk has room, the next clone's answer is kept and the one after is
/// answered from the cache, byte for byte.
#[test]
fn a_full_disk_under_the_pack_cache_leaves_clones_to_git_and_caches_again_once_freed() {
    use crate::packcache::{
        assert_pack_complete, clone_request, entries, entries_when, fetch, wants_of,
    };
    let started = Instant::now();
    let (site, disk) = site_on_small_disk("faults_disk_cache", 24);
    let repo = site.import_fixture("mixed", "alice/mixed");
    add_big_commit(&repo, 3 << 20);
    let srv = site.start();
    let wants = wants_of(&repo);
    let body = clone_request(&wants, true, "git/2.47.3");
    let cache = site.data_dir.join("repos/.cache");
    let half_written = || -> Vec<String> {
        files_below(&cache)
            .into_iter()
            .filter(|f| f.contains(".tmp-"))
            .collect()
    };

    disk.fill(1 << 20);
    for round in 0..2 {
        let a = fetch(&srv, "alice/mixed", &body, true, None);
        assert_eq!(
            a.status,
            200,
            "clone {round} on a full disk: {}",
            a.describe()
        );
        assert!(a.body.len() > 3 << 20, "{} bytes", a.body.len());
        assert_pack_complete(site.dir(), &a.body, &wants);
        assert!(
            entries(&site).is_empty(),
            "an entry was kept: {:?}",
            entries(&site)
        );
        assert_eq!(half_written(), Vec::<String>::new(), "left half-written");
    }
    let into = site.dir().join("clone-full");
    let out = run(smart_git(site.dir())
        .args(["clone", "-q"])
        .arg(site.url("/alice/mixed.git"))
        .arg(&into));
    assert!(
        out.status.success(),
        "git clone on a full disk: {}",
        all_output(&out)
    );
    assert_clone_matches(&repo, &into);
    // The cache did try, and found the disk full (not its floor, which is 0).
    let log = srv.forgelet_stderr();
    assert!(
        log.contains("pack cache: cannot write an entry")
            && log.contains("No space left on device"),
        "the cache never met the full disk:\n{log}"
    );
    let counts = pack_cache_counts(&site);
    assert_eq!(
        counts[0], 0,
        "a clone was answered from the cache: {counts:?}"
    );
    assert_eq!(counts[3], 0, "an entry was stored: {counts:?}");
    assert!(entries(&site).is_empty() && half_written().is_empty());

    disk.free();
    let first = fetch(&srv, "alice/mixed", &body, true, None);
    assert_eq!(first.status, 200, "{}", first.describe());
    let kept = entries_when(&site, |e| e.len() == 1);
    assert_eq!(
        kept.len(),
        1,
        "no entry kept once the disk has room: {kept:?}"
    );
    assert!(
        fs::read(&kept[0]).unwrap() == first.body,
        "the entry is not git's answer"
    );
    let before = pack_cache_counts(&site);
    let second = fetch(&srv, "alice/mixed", &body, true, None);
    assert_eq!(second.status, 200, "{}", second.describe());
    assert!(
        second.body == first.body,
        "the cached answer differs from git's"
    );
    let after = pack_cache_counts_when(&site, |c| c[0] > before[0]);
    assert_eq!(
        after[0],
        before[0] + 1,
        "not answered from the cache: {after:?}"
    );
    assert_pack_complete(site.dir(), &second.body, &wants);
    assert!(half_written().is_empty(), "{:?}", half_written());
    srv.finish();
    drop(disk);
    eprintln!("took {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Damaged repositories

/// How a repository is damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// The newest commit's loose object overwritten with other bytes.
    CorruptObject,
    /// `main` points at an object that does not exist, and `side` holds garbage.
    BrokenRef,
    /// The larger pack deleted, its index kept.
    MissingPack,
}

/// The loose object file of `id` in `repo`.
fn loose_path(repo: &Path, id: &str) -> PathBuf {
    repo.join("objects").join(&id[..2]).join(&id[2..])
}

/// Damages `repo` as `damage` says.
fn damage(repo: &Path, damage: Damage) {
    match damage {
        Damage::CorruptObject => {
            let head = git_ok(repo, &["rev-parse", "refs/heads/main"]);
            let path = loose_path(repo, head.trim());
            let len = fs::metadata(&path)
                .unwrap_or_else(|e| panic!("the newest commit is not loose ({e})"))
                .len();
            set_mode(&path, 0o644);
            // A zlib stream's header kept, its body overwritten.
            let mut bytes = fs::read(&path).unwrap();
            for (i, b) in bytes.iter_mut().enumerate().skip(2) {
                *b = (i as u8).wrapping_mul(151) ^ 0x5a;
            }
            assert_eq!(bytes.len() as u64, len);
            fs::write(&path, bytes).unwrap();
        }
        Damage::BrokenRef => {
            fs::create_dir_all(repo.join("refs/heads")).unwrap();
            fs::write(
                repo.join("refs/heads/main"),
                "1234567890123456789012345678901234567890\n",
            )
            .unwrap();
            fs::write(repo.join("refs/heads/side"), "this is not an object id\n").unwrap();
        }
        Damage::MissingPack => {
            fs::remove_file(repo.join(largest_pack(repo))).unwrap();
        }
    }
}

/// A site with three damaged repositories beside a sound one: each damaged repository's pages
/// and a clone of it give a clear error in bounded time, forgelet stays up and the rest of the
/// site works; `forgelet maintain OWNER/NAME` and `forgelet doctor` name each damaged
/// repository, say what is wrong and exit non-zero.
#[test]
fn damaged_repositories_are_told_as_such_and_the_rest_of_the_site_goes_on() {
    let started = Instant::now();
    let site = Site::new("faults_disk_damaged", SiteOptions::default());
    let good = site.import_fixture("mixed", "alice/good");
    let cases = [
        ("alice/corrupt", "mixed", Damage::CorruptObject),
        ("alice/brokenref", "mixed", Damage::BrokenRef),
        ("alice/nopack", "packs-only", Damage::MissingPack),
    ];
    let mut heads = Vec::new();
    for (name, fixture, how) in cases {
        let repo = site.import_fixture(fixture, name);
        heads.push(
            git_ok(&repo, &["rev-parse", "refs/heads/main"])
                .trim()
                .to_string(),
        );
        damage(&repo, how);
    }
    let mut srv = site.start();
    let damaged_page = "cannot be read: its data on the server is damaged";
    for ((name, _, how), head) in cases.iter().zip(&heads) {
        for (path, readable) in [
            (format!("/{name}"), false),
            (format!("/{name}/tree/main"), false),
            (format!("/{name}/blob/main/README.md"), false),
            (format!("/{name}/commits/main"), false),
            // With a broken ref the commit itself is sound and is shown.
            (
                format!("/{name}/commit/{head}"),
                matches!(how, Damage::BrokenRef),
            ),
        ] {
            let t = Instant::now();
            let r = srv.get(&site.target(&path));
            let took = t.elapsed();
            eprintln!("{how:?} {path}: {} in {took:?}", r.status);
            assert!(took.as_secs() < 10, "{path} took {took:?}");
            srv.assert_forgelet_alive(&path);
            if readable {
                assert_eq!(r.status, 200, "{path}: {}", r.describe());
                continue;
            }
            assert_eq!(r.status, 500, "{path}: {}", r.describe());
            let text = r.text();
            assert!(
                text.contains(damaged_page) && text.contains(&format!("forgelet maintain {name}")),
                "{path} does not say the repository is damaged: {text}"
            );
        }
        let into = site.dir().join(format!("clone-{}", name.replace('/', "-")));
        let t = Instant::now();
        let out = run(smart_git(site.dir())
            .args(["clone", "-q"])
            .arg(site.url(&format!("/{name}.git")))
            .arg(&into));
        let said = all_output(&out);
        eprintln!(
            "{how:?} clone: {} in {:?}:\n{said}",
            out.status,
            t.elapsed()
        );
        assert!(
            !out.status.success(),
            "a clone of {name} succeeded:\n{said}"
        );
        let expected = match how {
            // forgelet's answer when git fails before its first word.
            Damage::CorruptObject => format!("remote error: {name} is damaged on the server"),
            // The advertisement names the ref; git refuses the missing object in its words.
            Damage::BrokenRef => "remote error: upload-pack: not our ref ".to_string(),
            // git itself says so in the answer's side band.
            Damage::MissingPack => "repository corruption on the remote side".to_string(),
        };
        assert!(
            said.contains(&expected),
            "the clone of {name} does not say {expected:?}:\n{said}"
        );
        srv.assert_forgelet_alive("the damaged repository's clone");

        let out = run(site.forgelet().args(["maintain", name]));
        let said = all_output(&out);
        eprintln!("{how:?} maintain: {}:\n{said}", out.status);
        assert_eq!(out.status.code(), Some(1), "maintain {name}:\n{said}");
        for words in [
            format!("{name}: the repository is damaged, so maintenance left it as it was"),
            "Restore it from a backup".to_string(),
        ] {
            assert!(
                said.contains(&words),
                "maintain {name} does not say {words:?}:\n{said}"
            );
        }
        let what = match how {
            Damage::CorruptObject => {
                format!("refs/heads/main points at {head}, which cannot be read")
            }
            Damage::BrokenRef => {
                "refs/heads/side holds neither an object id nor a ref name".to_string()
            }
            Damage::MissingPack => ".pack is missing (its index".to_string(),
        };
        assert!(
            said.contains(&what),
            "maintain {name} does not say {what:?}:\n{said}"
        );
    }

    // The rest of the site goes on.
    let front = srv.get(&site.target("/"));
    assert_eq!(front.status, 200, "{}", front.describe());
    for path in [
        "/alice/good",
        "/alice/good/tree/main",
        "/alice/good/commits/main",
    ] {
        let r = srv.get(&site.target(path));
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
    }
    let into = site.dir().join("clone-good");
    let out = run(smart_git(site.dir())
        .args(["clone", "-q"])
        .arg(site.url("/alice/good.git"))
        .arg(&into));
    assert!(out.status.success(), "{}", all_output(&out));
    assert_clone_matches(&good, &into);
    let out = run(site.forgelet().args(["maintain", "alice/good"]));
    assert!(
        out.status.success(),
        "maintain alice/good: {}",
        all_output(&out)
    );

    // doctor names each damaged repository, and not the sound one.
    let t = Instant::now();
    let out = run(site.forgelet().arg("doctor"));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("doctor took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(1), "doctor:\n{said}");
    let line = said
        .lines()
        .find(|l| l.starts_with("FAILED") && l.contains(" repositories: "))
        .unwrap_or_else(|| panic!("no failed repositories line:\n{said}"));
    for (name, _, _) in cases {
        assert!(
            line.contains(&format!("{name}: ")),
            "doctor does not name {name}:\n{line}"
        );
    }
    assert!(!line.contains("alice/good"), "{line}");
    assert!(
        line.contains("forgelet maintain OWNER/NAME") && line.contains("backup"),
        "{line}"
    );
    srv.finish();
    eprintln!("took {:?}", started.elapsed());
}
