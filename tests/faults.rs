//! Faults: forgelet killed outright (SIGKILL, no chance to clean up) in the middle of its writes
//! to the users file and to a repository's settings. Whatever was written before is still there,
//! the files always parse, the next write works, and maintenance removes what the killed writes
//! left.

use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

/// xorshift64: the kill delays, the same on every run.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// 100 writes (a token made, which rewrites users.toml; a visibility set, which rewrites the
/// repository's config), each killed after 0 to 8 ms, every tenth left to finish. After each:
/// `token list` and `repo list` read the files, every token whose command finished is there, and
/// the visibility is the last one set or one a killed command was setting.
#[test]
fn kill_9_during_users_file_and_settings_writes_loses_nothing() {
    let site = Site::new("faults_kill_writes", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/notes"]));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut kept_tokens: Vec<String> = Vec::new();
    let mut visibility = "public".to_string();
    let mut maybe_visibility: Vec<String> = Vec::new();
    let (mut killed, mut finished) = (0, 0);
    for i in 0..100 {
        let token = format!("t{i}");
        let wanted = if (i / 2) % 2 == 0 {
            "private"
        } else {
            "public"
        };
        let mut c = site.forgelet();
        if i % 2 == 0 {
            c.args(["token", "create", "alice", "--name", &token]);
        } else {
            c.args(["repo", "set", "alice/notes", "--visibility", wanted]);
        }
        let mut child = c
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if i % 10 != 9 {
            std::thread::sleep(Duration::from_micros(next(&mut seed) % 8_000));
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let status = out.status;
        if !status.success() && std::os::unix::process::ExitStatusExt::signal(&status).is_none() {
            panic!(
                "write {i} failed without being killed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if status.success() {
            finished += 1;
            if i % 2 == 0 {
                kept_tokens.push(token.clone());
            } else {
                visibility = wanted.to_string();
                maybe_visibility.clear();
            }
        } else {
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "write {i} failed without being killed"
            );
            killed += 1;
            if i % 2 == 1 {
                maybe_visibility.push(wanted.to_string());
            }
        }

        // Both files read; nothing confirmed is lost.
        let tokens = ok(site.forgelet().args(["token", "list", "alice"]));
        for t in &kept_tokens {
            assert!(
                tokens.lines().any(|l| l.split('\t').next() == Some(t)),
                "after write {i}: token {t} is gone:\n{tokens}"
            );
        }
        let repos = ok(site.forgelet().args(["repo", "list"]));
        let shown = repos
            .lines()
            .find_map(|l| l.strip_prefix("alice/notes\t"))
            .and_then(|rest| rest.split('\t').next())
            .unwrap_or_else(|| panic!("after write {i}: alice/notes is not listed:\n{repos}"))
            .to_string();
        assert!(
            shown == visibility || maybe_visibility.contains(&shown),
            "after write {i}: visibility {shown}, expected {visibility} or one of {maybe_visibility:?}"
        );
        // A visibility a killed write may have set is the one to expect from here on.
        if shown != visibility {
            visibility = shown;
            maybe_visibility.clear();
        }
    }
    eprintln!("{killed} writes killed, {finished} finished");
    assert!(killed > 0, "no write was killed: the test saw no fault");
    assert!(finished >= 10, "{finished} writes finished");
    // The next writes work, and the data directory checks out.
    ok(site
        .forgelet()
        .args(["token", "create", "alice", "--name", "after"]));
    ok(site
        .forgelet()
        .args(["repo", "set", "alice/notes", "--visibility", "private"]));
    ok(site.forgelet().arg("check"));
    let tokens = ok(site.forgelet().args(["token", "list", "alice"]));
    assert!(tokens.contains("after\t"), "{tokens}");

    // What the killed writes left (each its temporary copy, `.users.toml.tmp-*` or
    // `.config.tmp-*`), once an hour old, is removed by maintenance; nothing else is.
    let repo = site.repo_path("alice/notes");
    let temps = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .map(|e| e.path())
            .collect()
    };
    // One of each for certain, as a killed write leaves it.
    std::fs::write(site.data_dir.join(".users.toml.tmp-1-000000000000"), "half").unwrap();
    std::fs::write(repo.join(".config.tmp-1-000000000000"), "half").unwrap();
    let left: Vec<_> = temps(&site.data_dir)
        .into_iter()
        .chain(temps(&repo))
        .collect();
    eprintln!(
        "{} temporary files left by killed writes and planted",
        left.len()
    );
    for t in &left {
        ok(std::process::Command::new("touch")
            .args(["-d", "2 hours ago"])
            .arg(t));
    }
    let out = ok(site.forgelet().arg("maintain"));
    assert!(
        temps(&site.data_dir).is_empty() && temps(&repo).is_empty(),
        "left after maintenance: {:?} {:?}\n{out}",
        temps(&site.data_dir),
        temps(&repo)
    );
    ok(site.forgelet().arg("check"));
    let tokens = ok(site.forgelet().args(["token", "list", "alice"]));
    for t in kept_tokens.iter().chain(["after".to_string()].iter()) {
        assert!(
            tokens
                .lines()
                .any(|l| l.split('\t').next() == Some(t.as_str())),
            "token {t} is gone after maintenance:\n{tokens}"
        );
    }
}
