//! Git LFS through real nginx with the real client (Debian's `git-lfs`): push and clone of
//! objects of several sizes, the batch API's answers and errors, a resumed download, a lying
//! upload refused with nothing kept, and a private repository's LFS routes closed to strangers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::util::*;

/// `http://USER:PASSWORD@127.0.0.1:PORT/git{path}`.
fn auth_url(site: &Site, user: &str, path: &str) -> String {
    format!(
        "http://{user}:{TEST_PASSWORD}@127.0.0.1:{}{}",
        site.port,
        site.target(path)
    )
}

/// git with the LFS filters on (they are normally set by `git lfs install` in the user's
/// global config, which the tests' git does not read).
fn lfs_git(dir: &Path) -> Command {
    let mut c = smart_git(dir);
    c.args([
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
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where forgelet keeps object `oid` of the repository at `repo`.
fn stored(repo: &Path, oid: &str) -> PathBuf {
    repo.join("lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(oid)
}

/// Bytes that do not compress, `len` of them, from `seed`.
fn noise(seed: u8, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut block = Sha256::digest([seed]).to_vec();
    while out.len() < len {
        block = Sha256::digest(&block).to_vec();
        out.extend_from_slice(&block);
    }
    out.truncate(len);
    out
}

/// A batch request to `path`'s batch URL, with `auth` as the Authorization header.
fn batch(srv: &Server, site: &Site, owner_repo: &str, auth: &str, body: &str) -> Response {
    let target = site.target(&format!("/{owner_repo}.git/info/lfs/objects/batch"));
    let mut headers = vec![
        ("Accept", "application/vnd.git-lfs+json"),
        ("Content-Type", "application/vnd.git-lfs+json"),
    ];
    if !auth.is_empty() {
        headers.push(("Authorization", auth));
    }
    http_request_body(
        srv.port,
        "POST",
        target.as_bytes(),
        &headers,
        body.as_bytes(),
    )
}

fn basic(user: &str) -> String {
    let raw = format!("{user}:{TEST_PASSWORD}");
    format!("Basic {}", base64(raw.as_bytes()))
}

fn base64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn json_of(r: &Response) -> serde_json::Value {
    assert_eq!(
        r.header("Content-Type"),
        Some("application/vnd.git-lfs+json"),
        "{}",
        r.describe()
    );
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.describe()))
}

#[test]
fn lfs_objects_push_and_clone_through_nginx() {
    let site = Site::new("lfs_roundtrip", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let repo = site.repo_path("alice/media");
    let srv = site.start();

    let work = site.dir().join("work");
    fs::create_dir_all(&work).unwrap();
    ok(git(&work).args(["init", "-q"]));
    ok(lfs_git(&work).args(["lfs", "track", "*.bin"]));
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty-ish.bin", b"x".to_vec()),
        ("notes.bin", b"hello from LFS <b>\n".to_vec()),
        ("small.bin", noise(1, 10_000)),
        ("medium.bin", noise(2, 5 << 20)),
        ("big.bin", noise(3, 101 << 20)),
    ];
    for (name, data) in &files {
        fs::write(work.join(name), data).unwrap();
    }
    ok(lfs_git(&work).args(["add", "-A"]));
    ok(lfs_git(&work).args(["commit", "-q", "-m", "LFS files"]));
    let url = auth_url(&site, "alice", "/alice/media.git");
    let out = run(lfs_git(&work).args(["push", "-q", &url, "main"]));
    assert!(out.status.success(), "push failed:\n{}", all_output(&out));

    // Each object is kept once, in the repository's folder, under its SHA-256.
    for (name, data) in &files {
        let oid = sha256_hex(data);
        let kept = stored(&repo, &oid);
        let meta =
            fs::metadata(&kept).unwrap_or_else(|e| panic!("{name}: {}: {e}", kept.display()));
        assert_eq!(meta.len(), data.len() as u64, "{name}");
    }
    let leftovers: Vec<_> = fs::read_dir(repo.join("lfs/tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "uploads left {leftovers:?}");

    // A second push of the same objects sends nothing: the batch says they are kept.
    let again = batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(
            r#"{{"operation":"upload","transfers":["basic"],"objects":[{{"oid":"{}","size":{}}}]}}"#,
            sha256_hex(&files[1].1),
            files[1].1.len()
        ),
    );
    assert_eq!(again.status, 200, "{}", again.describe());
    let v = json_of(&again);
    assert!(v["objects"][0].get("actions").is_none(), "{v}");

    // A clone gets the files' real content.
    let clone = site.dir().join("clone");
    let out = run(lfs_git(site.dir()).args(["clone", "-q", &url, clone.to_str().unwrap()]));
    assert!(out.status.success(), "clone failed:\n{}", all_output(&out));
    for (name, data) in &files {
        let got = fs::read(clone.join(name)).unwrap();
        assert!(
            got == *data,
            "{name}: {} bytes, not the {} pushed",
            got.len(),
            data.len()
        );
    }
    ok(git(&clone).args(["fsck", "--no-progress"]));

    // The settings page counts the objects in the repository's size.
    let mut b = Browser::default();
    sign_in_as(&site, &srv, &mut b, "alice");
    let settings = b.get(&srv, &site.target("/alice/media/settings")).text();
    assert!(
        settings.contains(&format!("Git LFS 106.0 MiB in {} objects", files.len())),
        "{settings}"
    );

    // The pages show the files, not their pointers; raw/ sends the object.
    let page = srv.get(&site.target("/alice/media/blob/main/notes.bin"));
    assert_eq!(page.status, 200, "{}", page.describe());
    let text = page.text();
    assert!(
        text.contains("hello from LFS &#60;b&#62;") && text.contains("Stored with Git LFS"),
        "{text}"
    );
    assert!(!text.contains("git-lfs.github.com/spec"), "{text}");
    let medium = &files.iter().find(|f| f.0 == "medium.bin").unwrap().1;
    let raw = srv.get(&site.target("/alice/media/raw/main/medium.bin"));
    assert_eq!(raw.status, 200, "{}", raw.describe());
    assert!(raw.body == *medium, "raw/ sent {} bytes", raw.body.len());

    // A resumed download: the action's href and header, with a Range, through nginx.
    let big = &files.iter().find(|f| f.0 == "big.bin").unwrap().1;
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(
            r#"{{"operation":"download","objects":[{{"oid":"{}","size":{}}}]}}"#,
            sha256_hex(big),
            big.len()
        ),
    ));
    let action = &v["objects"][0]["actions"]["download"];
    let href = action["href"].as_str().unwrap();
    let header = action["header"]["Authorization"].as_str().unwrap();
    assert!(action["expires_in"].as_u64().unwrap() > 0, "{v}");
    let path = href.split_once("127.0.0.1").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let from = big.len() - 1000;
    let r = http_request(
        srv.port,
        "GET",
        path.as_bytes(),
        &[
            ("Authorization", header),
            ("Range", &format!("bytes={from}-")),
        ],
    );
    assert_eq!(r.status, 206, "{}", r.describe());
    assert!(r.body == big[from..], "the range's bytes differ");
    // The header is for that object only, and for downloads only.
    let other = path.replace(&sha256_hex(big), &sha256_hex(medium));
    let r = http_request(
        srv.port,
        "GET",
        other.as_bytes(),
        &[("Authorization", header)],
    );
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = http_request_body(
        srv.port,
        "PUT",
        path.as_bytes(),
        &[("Authorization", header)],
        b"x",
    );
    assert_eq!(r.status, 401, "{}", r.describe());
    srv.finish();
}

#[test]
fn an_upload_that_is_not_its_object_leaves_nothing() {
    let site = Site::new("lfs_lying", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let repo = site.repo_path("alice/media");
    let srv = site.start();
    let real = noise(7, 4096);
    let oid = sha256_hex(&real);
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(r#"{{"operation":"upload","objects":[{{"oid":"{oid}","size":4096}}]}}"#),
    ));
    let upload = &v["objects"][0]["actions"]["upload"];
    let header = upload["header"]["Authorization"]
        .as_str()
        .unwrap()
        .to_string();
    let target = site.target(&format!("/alice/media.git/info/lfs/objects/{oid}"));
    // Other bytes of the same size.
    let lie = noise(8, 4096);
    let r = http_request_body(
        srv.port,
        "PUT",
        target.as_bytes(),
        &[("Authorization", &header)],
        &lie,
    );
    assert_eq!(r.status, 422, "{}", r.describe());
    assert!(json_of(&r)["message"]
        .as_str()
        .unwrap()
        .contains("nothing was kept"));
    assert!(!stored(&repo, &oid).exists());
    assert_eq!(fs::read_dir(repo.join("lfs/tmp")).unwrap().count(), 0);
    // The verify action says it is not there.
    let verify = &v["objects"][0]["actions"]["verify"];
    let vtarget = site.target("/alice/media.git/info/lfs/verify");
    let vheader = verify["header"]["Authorization"].as_str().unwrap();
    let body = format!(r#"{{"oid":"{oid}","size":4096}}"#);
    let r = http_request_body(
        srv.port,
        "POST",
        vtarget.as_bytes(),
        &[("Authorization", vheader)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 404, "{}", r.describe());
    // The real bytes are kept, and verified.
    let r = http_request_body(
        srv.port,
        "PUT",
        target.as_bytes(),
        &[("Authorization", &header)],
        &real,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(fs::read(stored(&repo, &oid)).unwrap(), real);
    let r = http_request_body(
        srv.port,
        "POST",
        vtarget.as_bytes(),
        &[("Authorization", vheader)],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    // Bad batch requests get LFS's errors.
    for (body, status) in [
        ("not json", 422),
        (r#"{"operation":"delete","objects":[]}"#, 422),
        (
            r#"{"operation":"download","transfers":["tus"],"objects":[]}"#,
            422,
        ),
        (
            r#"{"operation":"download","hash_algo":"sha512","objects":[]}"#,
            409,
        ),
    ] {
        let r = batch(&srv, &site, "alice/media", &basic("alice"), body);
        assert_eq!(r.status, status, "{body}: {}", r.describe());
        assert!(json_of(&r)["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // An object id that is not 64 hex digits is named in the answer as an error of its own.
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        r#"{"operation":"upload","objects":[{"oid":"../../etc/passwd","size":1}]}"#,
    ));
    assert_eq!(v["objects"][0]["error"]["code"], 422, "{v}");
    srv.finish();
}

#[test]
fn a_private_repositorys_lfs_routes_are_closed_to_strangers() {
    let site = Site::new("lfs_private", SiteOptions::default());
    for u in ["alice", "bob", "reader"] {
        site.ensure_user(u);
    }
    ok(site
        .forgelet()
        .args(["repo", "create", "alice/secret", "--private"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/secret", "reader", "read"]));
    let repo = site.repo_path("alice/secret");
    let srv = site.start();
    // alice keeps an object there.
    let data = noise(9, 1000);
    let oid = sha256_hex(&data);
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/secret",
        &basic("alice"),
        &format!(r#"{{"operation":"upload","objects":[{{"oid":"{oid}","size":1000}}]}}"#),
    ));
    let up = v["objects"][0]["actions"]["upload"]["header"]["Authorization"]
        .as_str()
        .unwrap()
        .to_string();
    let obj = site.target(&format!("/alice/secret.git/info/lfs/objects/{oid}"));
    let r = http_request_body(
        srv.port,
        "PUT",
        obj.as_bytes(),
        &[("Authorization", &up)],
        &data,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(stored(&repo, &oid).exists());
    let marker = String::from_utf8_lossy(&data[..40]).to_string();

    let download =
        format!(r#"{{"operation":"download","objects":[{{"oid":"{oid}","size":1000}}]}}"#);
    let upload = format!(r#"{{"operation":"upload","objects":[{{"oid":"{oid}","size":1000}}]}}"#);
    // Every LFS route of the table, by who asks: nobody without read access learns the object
    // exists or gets its bytes.
    let lfs_rows: Vec<_> = forgelet::routes::ROUTES
        .iter()
        .filter(|r| r.is_lfs())
        .collect();
    assert_eq!(lfs_rows.len(), 8, "LFS routes");
    for row in lfs_rows {
        let path = site.target(
            &row.example
                .replace("OWNER/REPO", "alice/secret")
                .replace("{oid}", &oid),
        );
        for (who, auth) in [
            ("anonymous", String::new()),
            ("bob", basic("bob")),
            (
                "wrong password",
                format!("Basic {}", base64(b"alice:wrong")),
            ),
            ("reader", basic("reader")),
            ("alice", basic("alice")),
        ] {
            let mut headers = vec![("Content-Type", "application/vnd.git-lfs+json")];
            if !auth.is_empty() {
                headers.push(("Authorization", auth.as_str()));
            }
            let body: &[u8] = match row.name {
                "lfs.batch" => download.as_bytes(),
                "lfs.locks.create" => br#"{"path":"x.psd"}"#,
                "lfs.locks.verify" | "lfs.locks.unlock" => b"{}",
                "lfs.verify" => br#"{"oid":"0000000000000000000000000000000000000000000000000000000000000000","size":1}"#,
                "lfs.upload" => b"x",
                _ => b"",
            };
            let method = match row.method {
                forgelet::request::Method::Get => "GET",
                forgelet::request::Method::Put => "PUT",
                _ => "POST",
            };
            let r = http_request_body(srv.port, method, path.as_bytes(), &headers, body);
            let want: u16 = match (who, row.name) {
                ("anonymous", _) | ("wrong password", _) => 401,
                ("bob", _) => 404,
                ("reader", "lfs.upload" | "lfs.verify") => 403,
                ("reader", name) if name.starts_with("lfs.locks") => 403,
                ("alice", "lfs.locks.create") => 201,
                ("alice", "lfs.locks.unlock") => 404, // no such lock
                ("reader", "lfs.download") => 200,
                ("reader", _) => 200,
                ("alice", "lfs.upload") => 422, // "x" is not the object
                ("alice", "lfs.verify") => 404, // no such object
                ("alice", _) => 200,
                _ => unreachable!(),
            };
            assert_eq!(r.status, want, "{} as {who}: {}", row.name, r.describe());
            if want >= 400 {
                assert!(
                    !contains(&r.body, marker.as_bytes()) && !contains(&r.body, b"actions"),
                    "{} as {who} leaks: {}",
                    row.name,
                    r.describe()
                );
            }
            if want == 401 {
                assert!(r.header("LFS-Authenticate").is_some(), "{}", r.describe());
            }
        }
    }
    // A reader may not ask to upload.
    let r = batch(&srv, &site, "alice/secret", &basic("reader"), &upload);
    assert_eq!(r.status, 403, "{}", r.describe());
    // Refused before the rest of the request is judged: a reader's upload with a hash the
    // server does not keep is refused as an upload, not answered as a bad request.
    let r = batch(
        &srv,
        &site,
        "alice/secret",
        &basic("reader"),
        r#"{"operation":"upload","hash_algo":"sha512","objects":[]}"#,
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    // The LFS folder is never one of the dumb protocol's files.
    for path in [
        format!(
            "/alice/secret.git/lfs/objects/{}/{}/{oid}",
            &oid[..2],
            &oid[2..4]
        ),
        format!(
            "/alice/secret.git/objects/../lfs/objects/{}/{}/{oid}",
            &oid[..2],
            &oid[2..4]
        ),
    ] {
        let r = http_request(
            srv.port,
            "GET",
            site.target(&path).as_bytes(),
            &[("Authorization", &basic("alice"))],
        );
        assert!(
            r.status == 404 || r.status == 400,
            "{path}: {}",
            r.describe()
        );
        assert!(!contains(&r.body, marker.as_bytes()));
    }
    srv.finish();
}

#[test]
fn locks_belong_to_their_user_and_owners_may_break_them() {
    let site = Site::new("lfs_locks", SiteOptions::default());
    for u in ["alice", "writer", "reader"] {
        site.ensure_user(u);
    }
    ok(site.forgelet().args(["repo", "create", "alice/art"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/art", "writer", "write"]));
    ok(site
        .forgelet()
        .args(["repo", "grant", "alice/art", "reader", "read"]));
    let srv = site.start();
    // A clone per user, with the real client.
    let clone_as = |user: &str| -> PathBuf {
        let dir = site.dir().join(format!("work-{user}"));
        fs::create_dir_all(&dir).unwrap();
        ok(git(&dir).args(["init", "-q"]));
        ok(git(&dir).args([
            "remote",
            "add",
            "origin",
            &auth_url(&site, user, "/alice/art.git"),
        ]));
        dir
    };
    let lfs = |dir: &Path, args: &[&str]| run(lfs_git(dir).arg("lfs").args(args));
    let alice = clone_as("alice");
    let out = lfs(&alice, &["lock", "design.psd"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = lfs(&alice, &["locks"]);
    let text = all_output(&out);
    assert!(
        out.status.success() && text.contains("design.psd") && text.contains("alice"),
        "{text}"
    );

    let writer = clone_as("writer");
    let out = lfs(&writer, &["lock", "design.psd"]);
    assert!(
        !out.status.success(),
        "a second lock of one path: {}",
        all_output(&out)
    );
    let out = lfs(&writer, &["unlock", "design.psd"]);
    assert!(!out.status.success(), "{}", all_output(&out));
    let out = lfs(&writer, &["unlock", "--force", "design.psd"]);
    let text = all_output(&out);
    assert!(
        !out.status.success() && text.contains("owner or an admin"),
        "{text}"
    );
    // A reader may not see or take locks (they need write access).
    let reader = clone_as("reader");
    let out = lfs(&reader, &["locks"]);
    assert!(!out.status.success(), "{}", all_output(&out));
    // The writer's own lock, broken by the owner.
    let out = lfs(&writer, &["lock", "model.blend"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = lfs(&alice, &["unlock", "--force", "model.blend"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = lfs(&alice, &["unlock", "design.psd"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = lfs(&alice, &["locks"]);
    let text = all_output(&out);
    assert!(
        !text.contains("design.psd") && !text.contains("model.blend"),
        "{text}"
    );
    // The locks file stays valid JSON after all that.
    let kept = fs::read(site.repo_path("alice/art").join("lfs/locks.json")).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&kept).unwrap();
    assert_eq!(v["locks"].as_array().map(Vec::len), Some(0), "{v}");
    srv.finish();
}

/// Uploads `data` to `owner_repo` through the batch API and its signed upload action.
fn upload(srv: &Server, site: &Site, owner_repo: &str, data: &[u8]) -> String {
    let oid = sha256_hex(data);
    let v = json_of(&batch(
        srv,
        site,
        owner_repo,
        &basic("alice"),
        &format!(
            r#"{{"operation":"upload","objects":[{{"oid":"{oid}","size":{}}}]}}"#,
            data.len()
        ),
    ));
    let header = v["objects"][0]["actions"]["upload"]["header"]["Authorization"]
        .as_str()
        .unwrap_or_else(|| panic!("no upload action: {v}"))
        .to_string();
    let target = site.target(&format!("/{owner_repo}.git/info/lfs/objects/{oid}"));
    let r = http_request_body(
        srv.port,
        "PUT",
        target.as_bytes(),
        &[("Authorization", &header)],
        data,
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    oid
}

/// Sets a file's modification time `ago` in the past (as `touch -d` does).
fn age(path: &Path, ago: &str) {
    ok(Command::new("touch").arg("-d").arg(ago).arg(path));
}

#[test]
fn objects_nothing_names_are_collected_after_their_grace_period() {
    let site = Site::new("lfs_collect", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let repo = site.repo_path("alice/media");
    let srv = site.start();
    // One file committed (its pointer in git); three objects never named by any pointer.
    let work = site.dir().join("work");
    fs::create_dir_all(&work).unwrap();
    ok(git(&work).args(["init", "-q"]));
    ok(lfs_git(&work).args(["lfs", "track", "*.bin"]));
    let kept_data = noise(20, 5000);
    fs::write(work.join("kept.bin"), &kept_data).unwrap();
    ok(lfs_git(&work).args(["add", "-A"]));
    ok(lfs_git(&work).args(["commit", "-q", "-m", "one LFS file"]));
    let url = auth_url(&site, "alice", "/alice/media.git");
    let out = run(lfs_git(&work).args(["push", "-q", &url, "main"]));
    assert!(out.status.success(), "{}", all_output(&out));
    let kept = sha256_hex(&kept_data);
    let old_orphan = upload(&srv, &site, "alice/media", &noise(21, 3000));
    let new_orphan = upload(&srv, &site, "alice/media", &noise(22, 3000));
    let recent_orphan = upload(&srv, &site, "alice/media", &noise(23, 3000));
    age(&stored(&repo, &kept), "30 days ago");
    age(&stored(&repo, &old_orphan), "30 days ago");
    age(&stored(&repo, &recent_orphan), "2 hours ago");

    // Maintenance: past the cruft period (14 days) and named by nothing.
    let out = run(site.forgelet().args(["maintain", "alice/media"]));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("removed 1 Git LFS object"),
        "{}",
        all_output(&out)
    );
    assert!(
        !stored(&repo, &old_orphan).exists(),
        "an old orphan was kept"
    );
    for (what, oid) in [
        ("named", &kept),
        ("new", &new_orphan),
        ("recent", &recent_orphan),
    ] {
        assert!(
            stored(&repo, oid).exists(),
            "maintenance removed the {what} object"
        );
    }
    // A purge: an hour's grace only.
    let out = run(site.forgelet().args(["repo", "purge", "alice/media"]));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        !stored(&repo, &recent_orphan).exists(),
        "the purge kept an orphan"
    );
    assert!(stored(&repo, &kept).exists() && stored(&repo, &new_orphan).exists());
    // Once no commit names it, a purge removes the committed one too; the clone still works.
    fs::remove_file(work.join("kept.bin")).unwrap();
    fs::write(work.join("other.txt"), "no LFS here\n").unwrap();
    ok(lfs_git(&work).args(["add", "-A"]));
    ok(lfs_git(&work).args(["commit", "-q", "-m", "drop it"]));
    ok(git(&work).args(["checkout", "-q", "--orphan", "fresh"]));
    ok(lfs_git(&work).args(["commit", "-q", "-m", "fresh history"]));
    let out = run(lfs_git(&work).args(["push", "-q", "--force", &url, "fresh:main"]));
    assert!(out.status.success(), "{}", all_output(&out));
    let out = run(site.forgelet().args(["repo", "purge", "alice/media"]));
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(
        !stored(&repo, &kept).exists(),
        "the purge kept an object nothing names"
    );
    srv.finish();
}

/// The actions' addresses are the site as the client reached it when `base_url` names another
/// host (left at its default, or a second name): a regression test for uploads sent to
/// `http://localhost/...` by a package installed with the default config.
#[test]
fn actions_point_where_the_client_reached_the_site() {
    let site = Site::new("lfs_origin", SiteOptions::default());
    let text = fs::read_to_string(&site.config).unwrap();
    let moved: String = text
        .lines()
        .map(|l| {
            if l.starts_with("base_url") {
                "base_url = \"http://forge.invalid/git\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(&site.config, moved).unwrap();
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let srv = site.start();
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(
            r#"{{"operation":"upload","objects":[{{"oid":"{}","size":1}}]}}"#,
            "a".repeat(64)
        ),
    ));
    let href = v["objects"][0]["actions"]["upload"]["href"]
        .as_str()
        .unwrap();
    assert_eq!(
        href,
        format!(
            "http://127.0.0.1:{}/git/alice/media.git/info/lfs/objects/{}",
            site.port,
            "a".repeat(64)
        )
    );
    srv.finish();
}

/// A file stored with Git LFS is sent by nginx, which keeps only some of forgelet's headers
/// across X-Accel-Redirect: an SVG's sandboxing policy and nosniff were dropped, so `raw/` of an
/// LFS-stored SVG holding a script would have run it in the site's origin. Such an SVG is a
/// download now; with `sendfile = "none"` forgelet sends it itself, its policy intact. A PNG
/// stays an image either way.
#[test]
fn an_lfs_svg_from_raw_cannot_run_its_script() {
    for sendfile in ["x-accel-redirect", "none"] {
        let site = Site::new(
            &format!("lfs_svg_{}", sendfile.replace('-', "_")),
            SiteOptions {
                sendfile,
                ..SiteOptions::default()
            },
        );
        site.ensure_user("alice");
        ok(site.forgelet().args(["repo", "create", "alice/art"]));
        let srv = site.start();
        let work = site.dir().join("work");
        fs::create_dir_all(&work).unwrap();
        ok(git(&work).args(["init", "-q"]));
        ok(lfs_git(&work).args(["lfs", "track", "*.svg", "*.png"]));
        let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(document.cookie)</script></svg>\n";
        fs::write(work.join("logo.svg"), svg).unwrap();
        fs::write(work.join("dot.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        ok(lfs_git(&work).args(["add", "-A"]));
        ok(lfs_git(&work).args(["commit", "-q", "-m", "art"]));
        let url = auth_url(&site, "alice", "/alice/art.git");
        let out = run(lfs_git(&work).args(["push", "-q", &url, "main"]));
        assert!(out.status.success(), "{}", all_output(&out));

        let r = srv.get(&site.target("/alice/art/raw/main/logo.svg"));
        assert_eq!(r.status, 200, "{sendfile}: {}", r.describe());
        assert_eq!(r.body, svg, "{sendfile}: the object's bytes");
        let sandboxed = r
            .header("Content-Security-Policy")
            .is_some_and(|p| p.contains("sandbox"));
        let download = r
            .header("Content-Disposition")
            .is_some_and(|d| d.starts_with("attachment"));
        assert!(
            sandboxed || download,
            "{sendfile}: an SVG a browser would run: {}",
            r.describe()
        );
        if sendfile == "x-accel-redirect" {
            assert!(download, "{}", r.describe());
        }
        let r = srv.get(&site.target("/alice/art/raw/main/dot.png"));
        assert_eq!(r.status, 200, "{sendfile}: {}", r.describe());
        assert_eq!(r.header("Content-Type"), Some("image/png"), "{sendfile}");
        assert!(r.header("Content-Disposition").is_none(), "{sendfile}");
        srv.finish();
    }
}

/// `[limits] lfs_object_mib` caps objects: the batch API names a larger object as an error of
/// its own (422, with the cap, as git-lfs shows it) and gives it no upload action, and an upload
/// whose length is over the cap is refused (413) before a byte is kept.
#[test]
fn objects_over_the_size_cap_are_refused_in_the_batch_and_on_upload() {
    let site = Site::new("lfs_cap", SiteOptions::default());
    let mut text = fs::read_to_string(&site.config).unwrap();
    text.push_str("\n[limits]\nlfs_object_mib = 1\n");
    fs::write(&site.config, text).unwrap();
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let repo = site.repo_path("alice/media");
    let srv = site.start();
    let over = noise(30, (1 << 20) + 1);
    let oid = sha256_hex(&over);
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(
            r#"{{"operation":"upload","objects":[{{"oid":"{oid}","size":{}}},{{"oid":"{}","size":{}}}]}}"#,
            over.len(),
            sha256_hex(b"small"),
            5
        ),
    ));
    assert_eq!(v["objects"][0]["error"]["code"], 422, "{v}");
    assert!(
        v["objects"][0]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 MiB")),
        "{v}"
    );
    assert!(v["objects"][0]["actions"].is_null(), "{v}");
    assert!(
        v["objects"][1]["actions"]["upload"]["href"].is_string(),
        "an object under the cap is still taken: {v}"
    );
    // An upload of it anyway, with an upload header for the small one's route shape.
    let target = site.target(&format!("/alice/media.git/info/lfs/objects/{oid}"));
    let r = http_request_body(
        srv.port,
        "PUT",
        target.as_bytes(),
        &[("Authorization", &basic("alice"))],
        &over,
    );
    assert_eq!(r.status, 413, "{}", r.describe());
    assert!(!stored(&repo, &oid).exists());
    let tmp_left = fs::read_dir(repo.join("lfs/tmp"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(tmp_left, 0, "the refused upload left a temporary file");
    srv.finish();
}

/// A signed action header names the user's session stamp: a password change (which gives the
/// user a new stamp, as "sign out everywhere" does) ends every header given before it, so a
/// header copied from a client's log stops working with the password that got it.
#[test]
fn a_password_change_ends_the_signed_headers_given_before_it() {
    let site = Site::new("lfs_stamp", SiteOptions::default());
    site.ensure_user("alice");
    ok(site.forgelet().args(["repo", "create", "alice/media"]));
    let srv = site.start();
    let data = noise(31, 2000);
    let oid = upload(&srv, &site, "alice/media", &data);
    let v = json_of(&batch(
        &srv,
        &site,
        "alice/media",
        &basic("alice"),
        &format!(r#"{{"operation":"download","objects":[{{"oid":"{oid}","size":2000}}]}}"#),
    ));
    let header = v["objects"][0]["actions"]["download"]["header"]["Authorization"]
        .as_str()
        .unwrap_or_else(|| panic!("no download action: {v}"))
        .to_string();
    let target = site.target(&format!("/alice/media.git/info/lfs/objects/{oid}"));
    let r = http_request(
        srv.port,
        "GET",
        target.as_bytes(),
        &[("Authorization", &header)],
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, data);

    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "passwd", "alice", "--password-stdin"]),
        b"another-password-2\n",
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let r = http_request(
        srv.port,
        "GET",
        target.as_bytes(),
        &[("Authorization", &header)],
    );
    assert!(
        r.status == 401 || r.status == 403,
        "a header from before the password change still works: {}",
        r.describe()
    );
    assert_ne!(r.body, data);
    srv.finish();
}
