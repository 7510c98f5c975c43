//! Who may do what over git's HTTP routes (issue 3, rules 4-6): every git route, smart and dumb,
//! for every kind of client against a public and a private repository, compared with what the
//! rules say; nothing of a private repository reaches anyone who may not read it; the Basic auth
//! limiter per client and per user; an unknown user name costing what a known one does; password
//! changes and token revocations taking effect at once; and the site switch that requires tokens.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use forgelet::request::Method;
use forgelet::routes::{Lane, Need, Row, ROUTES as ROUTE_TABLE};

use crate::util::*;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A TCP connection to 127.0.0.1:`port` whose source address is `src` (any address of
/// 127.0.0.0/8 is local on Linux), so nginx's `REMOTE_ADDR` is `src`.
fn connect_from(src: Ipv4Addr, port: u16) -> TcpStream {
    // SAFETY: plain socket calls on a descriptor this function owns; the sockaddr_in values
    // outlive the calls that read them, and the descriptor is handed to TcpStream exactly once.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(src).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let rc = libc::bind(fd, std::ptr::addr_of!(sa).cast(), len);
        assert_eq!(rc, 0, "bind {src}: {}", std::io::Error::last_os_error());
        sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        sa.sin_port = port.to_be();
        let rc = libc::connect(fd, std::ptr::addr_of!(sa).cast(), len);
        assert_eq!(
            rc,
            0,
            "connect from {src} to port {port}: {}",
            std::io::Error::last_os_error()
        );
        stream
    }
}

/// One HTTP/1.1 request through nginx from the source address `src`.
fn http_from(
    src: Ipv4Addr,
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Response {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    http_on(
        connect_from(src, port),
        port,
        method,
        target.as_bytes(),
        &headers,
        body,
    )
}

fn fcgi_from(srv: &Server, addr: &str, target: &str, authorization: &str) -> Response {
    let headers: [(&str, &[u8]); 1] = [("Authorization", authorization.as_bytes())];
    let mut params = cgi_params("GET", target.as_bytes(), &headers, srv.port, None);
    for (k, v) in &mut params {
        if k == b"REMOTE_ADDR" {
            *v = addr.as_bytes().to_vec();
        }
    }
    let what = format!("FastCGI GET {target} from {addr}");
    let mut stream = fcgi_connect(&srv.socket);
    stream
        .write_all(&fcgi_request_bytes(1, false, &params, b""))
        .unwrap();
    let reply = fcgi_read_reply(&mut stream, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
    parse_cgi(&reply.stdout, &what).unwrap_or_else(|e| panic!("{e}"))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `forgelet token create USER --name NAME [--expires DAYS]`: the token (last line of stdout).
fn create_token(site: &Site, user: &str, name: &str, expires: Option<&str>) -> String {
    let mut cmd = site.forgelet();
    cmd.args(["token", "create", user, "--name", name]);
    if let Some(days) = expires {
        cmd.args(["--expires", days]);
    }
    let out = ok(&mut cmd);
    let token = out.lines().last().unwrap_or_default().trim().to_string();
    assert!(
        token.starts_with("flt_"),
        "no token on the last line: {out}"
    );
    token
}

fn add_user(site: &Site, name: &str, admin: bool) {
    let mut cmd = site.forgelet();
    cmd.args(["user", "add", name, "--password-stdin"]);
    if admin {
        cmd.arg("--admin");
    }
    let out = run_with_stdin(&mut cmd, format!("{TEST_PASSWORD}\n").as_bytes());
    assert!(
        out.status.success(),
        "user add {name}: {}",
        all_output(&out)
    );
}

fn make_private(site: &Site, owner_repo: &str) {
    ok(site
        .forgelet()
        .args(["repo", "set", owner_repo, "--visibility", "private"]));
}

/// `len` bytes of text that compress poorly, different for every `seed`.
fn noise(seed: &str, len: usize) -> Vec<u8> {
    let mut x: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        x = (x ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut out = format!("{seed}\n").into_bytes();
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let _ = writeln!(out, "{x:016x}");
    }
    out
}

/// The path of a loose object below the repository (`objects/ab/cdef…`).
fn loose_rel(oid: &str) -> String {
    format!("objects/{}/{}", &oid[..2], &oid[2..])
}

/// Files below `repo/objects/pack` ending in `.pack`, as repository-relative paths.
fn packs_of(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".pack"))
        .map(|n| format!("objects/pack/{n}"))
        .collect();
    v.sort();
    v
}

/// Some loose object of the repository (first in directory order, sorted).
fn some_loose(repo: &Path) -> String {
    let mut found = Vec::new();
    for e in fs::read_dir(repo.join("objects")).unwrap() {
        let e = e.unwrap();
        let dir = e.file_name().into_string().unwrap();
        if dir.len() != 2 || !dir.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        for f in fs::read_dir(e.path()).unwrap() {
            found.push(format!(
                "objects/{dir}/{}",
                f.unwrap().file_name().into_string().unwrap()
            ));
        }
    }
    found.sort();
    found
        .into_iter()
        .next()
        .expect("the fixture has loose objects")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------------
// The permission matrix

/// Who sends the request, and with what credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    WrongPassword,
    OtherUser,
    ReadCollaborator,
    WriteCollaborator,
    Owner,
    Admin,
    ValidToken,
    RevokedToken,
    ExpiredToken,
}

const EVERYONE: [Who; 10] = [
    Who::Anonymous,
    Who::WrongPassword,
    Who::OtherUser,
    Who::ReadCollaborator,
    Who::WriteCollaborator,
    Who::Owner,
    Who::Admin,
    Who::ValidToken,
    Who::RevokedToken,
    Who::ExpiredToken,
];

/// A git route: a row of forgelet's route table.
type GitRoute = &'static Row;

/// Every git route, smart and dumb, read from forgelet's route table: the matrix follows the
/// table, so a route added there is in the matrix without a word here.
fn git_routes() -> Vec<GitRoute> {
    let rows: Vec<GitRoute> = ROUTE_TABLE.iter().filter(|r| r.is_git()).collect();
    assert!(
        rows.len() >= 10,
        "the table has only {} git routes",
        rows.len()
    );
    rows
}

/// The git route of this name.
fn git_route(name: &str) -> GitRoute {
    git_routes()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no git route {name} in the route table"))
}

/// Whether the route changes the repository (push), not only reads it.
fn pushes(route: GitRoute) -> bool {
    route.need == Need::Write
}

/// A content-named object file (cached forever, `public` or `private`).
fn is_object(route: GitRoute) -> bool {
    route.lane == Lane::Files
}

/// The answer the issue's rules (ARCHITECTURE.md, "Who may do what") give; written from
/// their text, not from forgelet's code. The site allows anonymous reading (the default).
fn expected(who: Who, private: bool, route: GitRoute) -> u16 {
    assert!(
        matches!(route.need, Need::Read | Need::Write),
        "{}: a git route needs read or write access",
        route.name
    );
    #[derive(PartialEq, PartialOrd)]
    enum May {
        Nothing,
        Read,
        Write,
    }
    let may = match who {
        // "wrong credentials 401": refused, not ignored, on every route.
        Who::WrongPassword | Who::RevokedToken | Who::ExpiredToken => return 401,
        // "public repos readable by anyone"; private ones only by owner, collaborators, admins.
        Who::Anonymous | Who::OtherUser if private => May::Nothing,
        Who::Anonymous | Who::OtherUser => May::Read,
        Who::ReadCollaborator => May::Read,
        // "write for owner, write collaborators and admins"; a token of alice is alice.
        Who::WriteCollaborator | Who::Owner | Who::Admin | Who::ValidToken => May::Write,
    };
    let signed_in = who != Who::Anonymous;
    let need = if pushes(route) { May::Write } else { May::Read };
    if may >= need {
        200
    } else if !signed_in {
        // Anonymous: "a private or missing repo gets 401"; a push needs credentials too.
        401
    } else if may == May::Nothing {
        // "a signed-in user without read access 404".
        404
    } else {
        // "a reader who pushes 403".
        403
    }
}

/// One repository of the matrix and the names of real files in it.
struct MatrixRepo {
    owner_repo: &'static str,
    private: bool,
    pack: String,
    loose: String,
    head: String,
}

impl MatrixRepo {
    /// Method, target path under the base path, extra headers, body: the row's example with
    /// this repository's names and files filled in.
    fn request(
        &self,
        route: GitRoute,
    ) -> (&'static str, String, Vec<(&'static str, String)>, Vec<u8>) {
        let path = route
            .example
            .replace("OWNER/REPO", self.owner_repo)
            .replace("{loose}", self.loose.trim_start_matches("objects/"))
            .replace(
                "{pack}",
                self.pack
                    .trim_start_matches("objects/pack/")
                    .trim_end_matches(".pack"),
            )
            .replace("{head}", &self.head);
        assert!(
            !path.contains('{'),
            "{}: the matrix cannot fill in {path}",
            route.name
        );
        if route.method == Method::Get {
            return ("GET", path, Vec::new(), Vec::new());
        }
        // A POST is a git service: a fetch of the head, or an empty push.
        let service = path.rsplit('/').next().unwrap_or_default().to_string();
        let body = if service == "git-upload-pack" {
            let want = format!("want {}\n", self.head);
            format!("{:04x}{want}00000009done\n", want.len() + 4).into_bytes()
        } else {
            b"0000".to_vec()
        };
        (
            "POST",
            path,
            vec![("Content-Type", format!("application/x-{service}-request"))],
            body,
        )
    }
}

/// What the private repository holds that nobody without read access may ever see.
struct Secrets {
    needles: Vec<(&'static str, Vec<u8>)>,
}

impl Secrets {
    fn leaked_in(&self, r: &Response) -> Vec<&'static str> {
        let mut all: Vec<u8> = Vec::new();
        for (k, v) in &r.headers {
            let _ = writeln!(all, "{k}: {v}");
        }
        all.extend_from_slice(&r.body);
        self.needles
            .iter()
            .filter(|(_, n)| contains(&all, n))
            .map(|(what, _)| *what)
            .collect()
    }
}

/// Adds to the private repository a branch named after `marker` whose commit and tree are loose,
/// one blob loose and one blob in a pack of its own. Returns (loose blob path, pack path,
/// branch commit).
fn add_secret_branch(repo: &Path, marker: &str) -> (String, String, String) {
    let write_blob = |data: &[u8]| {
        let out = run_with_stdin(git(repo).args(["hash-object", "-w", "--stdin"]), data);
        assert!(out.status.success(), "{}", all_output(&out));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let loose_blob = write_blob(&noise(&format!("{marker} loose"), 6000));
    let packed_blob = write_blob(&noise(&format!("{marker} packed"), 6000));
    let before = packs_of(repo);
    let out = run_with_stdin(
        git(repo).args(["pack-objects", "-q", "objects/pack/pack"]),
        format!("{packed_blob}\n").as_bytes(),
    );
    assert!(out.status.success(), "{}", all_output(&out));
    fs::remove_file(repo.join(loose_rel(&packed_blob))).unwrap();
    let pack = packs_of(repo)
        .into_iter()
        .find(|p| !before.contains(p))
        .expect("pack-objects made a pack");
    let tree = run_with_stdin(
        git(repo).arg("mktree"),
        format!("100644 blob {loose_blob}\tloose.txt\n100644 blob {packed_blob}\tpacked.txt\n")
            .as_bytes(),
    );
    assert!(tree.status.success(), "{}", all_output(&tree));
    let tree = String::from_utf8(tree.stdout).unwrap();
    let head = git_ok(repo, &["rev-parse", "refs/heads/main"]);
    let commit = git_ok(
        repo,
        &["commit-tree", tree.trim(), "-p", head.trim(), "-m", marker],
    )
    .trim()
    .to_string();
    git_ok(
        repo,
        &["update-ref", &format!("refs/heads/{marker}"), &commit],
    );
    (loose_rel(&loose_blob), pack, commit)
}

/// Moves the token `name` of `user` into the past by editing users.toml (kept valid TOML and
/// mode 0600), as if it had been created two days ago and expired yesterday.
fn expire_token(site: &Site, user: &str, name: &str) {
    let file = site.data_dir.join("users.toml");
    let text = fs::read_to_string(&file).unwrap();
    let mut doc: toml::Table = text.parse().unwrap();
    let now = now_secs() as i64;
    let mut done = false;
    for u in doc["user"].as_array_mut().unwrap() {
        if u["name"].as_str() != Some(user) {
            continue;
        }
        for t in u["token"].as_array_mut().unwrap() {
            if t["name"].as_str() == Some(name) {
                let t = t.as_table_mut().unwrap();
                t.insert("created".into(), toml::Value::Integer(now - 2 * 86_400));
                t.insert("expires".into(), toml::Value::Integer(now - 86_400));
                done = true;
            }
        }
    }
    assert!(done, "no token {name} of {user} in {text}");
    fs::write(&file, toml::to_string(&doc).unwrap()).unwrap();
    set_mode(&file, 0o600);
    // forgelet reads the edited file.
    let list = ok(site.forgelet().args(["token", "list", user]));
    assert!(list.contains(name), "{list}");
}

#[test]
fn permission_matrix_every_git_route() {
    let started = Instant::now();
    let routes = git_routes();
    let site = Site::new("perm_matrix", SiteOptions::default());
    let public_path = site.import_fixture("mixed", "alice/pub");
    let private_path = site.import_fixture("mixed", "alice/priv");
    make_private(&site, "alice/priv");
    for u in ["bob", "reader", "writer"] {
        site.ensure_user(u);
    }
    add_user(&site, "root", true);
    for repo in ["alice/pub", "alice/priv"] {
        ok(site
            .forgelet()
            .args(["repo", "grant", repo, "reader", "read"]));
        ok(site
            .forgelet()
            .args(["repo", "grant", repo, "writer", "write"]));
    }
    let valid = create_token(&site, "alice", "valid", None);
    let revoked = create_token(&site, "alice", "revoked", None);
    ok(site
        .forgelet()
        .args(["token", "revoke", "alice", "revoked"]));
    let expired = create_token(&site, "alice", "old", Some("1"));
    expire_token(&site, "alice", "old");

    let marker = unique_marker();
    let (secret_loose, secret_pack, secret_commit) = add_secret_branch(&private_path, &marker);
    let head = git_ok(&public_path, &["rev-parse", "refs/heads/main"])
        .trim()
        .to_string();
    let repos = [
        MatrixRepo {
            owner_repo: "alice/pub",
            private: false,
            pack: packs_of(&public_path)[0].clone(),
            loose: some_loose(&public_path),
            head: head.clone(),
        },
        MatrixRepo {
            owner_repo: "alice/priv",
            private: true,
            pack: secret_pack.clone(),
            loose: secret_loose.clone(),
            head: secret_commit.clone(),
        },
    ];
    let pack_bytes = fs::read(private_path.join(&secret_pack)).unwrap();
    let loose_bytes = fs::read(private_path.join(&secret_loose)).unwrap();
    let mid = loose_bytes.len() / 2;
    let pack_name = Path::new(&secret_pack)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let secrets = Secrets {
        needles: vec![
            (
                "the private pack's first 64 bytes after its header",
                pack_bytes[12..76].to_vec(),
            ),
            (
                "64 bytes of a private loose object",
                loose_bytes[mid..mid + 64].to_vec(),
            ),
            ("the private branch's name", marker.clone().into_bytes()),
            (
                "the private branch's commit id",
                secret_commit.clone().into_bytes(),
            ),
            ("the private pack's name", pack_name.into_bytes()),
        ],
    };

    let srv = site.start();
    let credentials = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::WrongPassword => Some(basic("alice", "not-the-password")),
            Who::OtherUser => Some(basic("bob", TEST_PASSWORD)),
            Who::ReadCollaborator => Some(basic("reader", TEST_PASSWORD)),
            Who::WriteCollaborator => Some(basic("writer", TEST_PASSWORD)),
            Who::Owner => Some(basic("alice", TEST_PASSWORD)),
            Who::Admin => Some(basic("root", TEST_PASSWORD)),
            Who::ValidToken => Some(basic("alice", &valid)),
            Who::RevokedToken => Some(basic("alice", &revoked)),
            Who::ExpiredToken => Some(basic("alice", &expired)),
        }
    };
    // Each wrong password is a real failed check: the per-client limiter (10 at once) would turn
    // the 20 cells of that row into 429s. The row's requests come from addresses of their own, and
    // run last, after every password that must work has been verified and remembered.
    let mut wrong_from = 0u8;
    let mut source = |who: Who| -> Ipv4Addr {
        if who == Who::WrongPassword {
            wrong_from += 1;
            Ipv4Addr::new(127, 0, 3, wrong_from)
        } else {
            Ipv4Addr::LOCALHOST
        }
    };
    let ask = |src: Ipv4Addr, who: Who, repo: &MatrixRepo, route: GitRoute| -> Response {
        let (method, path, mut headers, body) = repo.request(route);
        if let Some(c) = credentials(who) {
            headers.push(("Authorization", c));
        }
        http_from(src, site.port, method, &site.target(&path), &headers, &body)
    };
    let missing = MatrixRepo {
        owner_repo: "alice/nosuch",
        private: true,
        pack: repos[1].pack.clone(),
        loose: repos[1].loose.clone(),
        head: repos[1].head.clone(),
    };

    // Every password that must work is verified once, before anything else.
    for who in [
        Who::OtherUser,
        Who::ReadCollaborator,
        Who::WriteCollaborator,
        Who::Owner,
        Who::Admin,
    ] {
        let r = ask(Ipv4Addr::LOCALHOST, who, &repos[0], git_route("git.head"));
        assert_eq!(r.status, 200, "{who:?} signing in: {}", r.describe());
    }

    let mut problems: Vec<String> = Vec::new();
    let mut table: Vec<String> = Vec::new();
    let mut cells = 0;
    let order: Vec<Who> = EVERYONE
        .iter()
        .copied()
        .filter(|w| *w != Who::WrongPassword)
        .chain([Who::WrongPassword])
        .collect();
    let mut dumb_clone_checked = false;
    for who in order {
        if who == Who::WrongPassword && !dumb_clone_checked {
            dumb_clone_checked = true;
            check_fcgi_rows(&srv, &site, &repos, &credentials, &mut problems);
            check_dumb_clone(&site, &marker, &secret_commit, &mut problems);
            check_internal_location(&site, &repos[1], &secrets, &mut problems);
        }
        let mut row = format!("{:<18}", format!("{who:?}"));
        for repo in &repos {
            for &route in &routes {
                cells += 1;
                let want = expected(who, repo.private, route);
                let r = ask(source(who), who, repo, route);
                let cell = format!("{} {}", repo.owner_repo, route.name);
                if r.status == want {
                    let _ = write!(row, " {}", r.status);
                } else {
                    let _ = write!(row, " {}≠{want}", r.status);
                    problems.push(format!(
                        "{who:?} {cell}: expected {want}, got {} ({:?})",
                        r.status,
                        String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
                    ));
                }
                if r.status == 401 {
                    let challenge = r.header("WWW-Authenticate").unwrap_or_default();
                    if !challenge.starts_with("Basic realm=") {
                        problems.push(format!(
                            "{who:?} {cell}: 401 without a Basic challenge (WWW-Authenticate: {challenge:?})"
                        ));
                    }
                }
                if r.status == 403 && r.text().trim().is_empty() {
                    problems.push(format!("{who:?} {cell}: 403 without a message"));
                }
                let may_read_private = expected(who, true, git_route("git.info-refs")) == 200;
                if !may_read_private {
                    let leaks = secrets.leaked_in(&r);
                    if !leaks.is_empty() {
                        problems.push(format!(
                            "{who:?} {cell}: the answer ({}) contains {}",
                            r.status,
                            leaks.join(", ")
                        ));
                    }
                }
                if is_object(route) && r.status == 200 {
                    let cc = r.header("Cache-Control").unwrap_or_default();
                    let scope = cc.split(',').next().unwrap_or_default().trim();
                    let want_scope = if repo.private { "private" } else { "public" };
                    if scope != want_scope {
                        problems.push(format!(
                            "{who:?} {cell}: Cache-Control {cc:?}, expected {want_scope}"
                        ));
                    }
                }
                // A hidden repository answers exactly like a missing one.
                if repo.private && matches!(who, Who::Anonymous | Who::OtherUser) {
                    let m = ask(source(who), who, &missing, route);
                    let same = m.status == r.status
                        && m.body == r.body
                        && m.header("WWW-Authenticate") == r.header("WWW-Authenticate")
                        && m.header("Content-Type") == r.header("Content-Type");
                    if !same {
                        problems.push(format!(
                            "{who:?} {cell}: answer differs from a missing repository's:\n  private: {}\n  missing: {}",
                            r.describe(),
                            m.describe()
                        ));
                    }
                }
            }
        }
        table.push(row);
    }
    let names: Vec<&str> = routes.iter().map(|r| r.name).collect();
    let header = format!(
        "{:<18} routes {names:?}, first for alice/pub then for alice/priv",
        ""
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) in the permission matrix ({cells} cells):\n{}\n\nthe whole matrix (got≠expected):\n{header}\n{}",
        problems.len(),
        problems.join("\n"),
        table.join("\n")
    );
    assert_eq!(cells, EVERYONE.len() * repos.len() * routes.len());
    eprintln!(
        "permission matrix: {cells} cells in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    srv.finish();
}

/// Every Git LFS route of the table, for every kind of client of the git matrix, against a
/// public and a private repository that each keep an LFS object: the same rules as git's routes
/// (read to download, write to upload or lock; a private repository is the 401 challenge of a
/// missing one to anonymous clients, 404 to signed-in strangers), LFS's `LFS-Authenticate` with
/// every 401, and nothing of the private object (its bytes, its id) in any answer to someone who
/// may not read it. A route added to the table is in this matrix without a word here.
#[test]
fn permission_matrix_every_lfs_route() {
    let routes: Vec<&'static Row> = ROUTE_TABLE.iter().filter(|r| r.is_lfs()).collect();
    assert!(routes.len() >= 8, "only {} LFS routes", routes.len());
    let site = Site::new("perm_lfs", SiteOptions::default());
    for u in ["bob", "reader", "writer"] {
        site.ensure_user(u);
    }
    site.ensure_user("alice");
    add_user(&site, "root", true);
    ok(site.forgelet().args(["repo", "create", "alice/pub"]));
    ok(site
        .forgelet()
        .args(["repo", "create", "alice/priv", "--private"]));
    for repo in ["alice/pub", "alice/priv"] {
        ok(site
            .forgelet()
            .args(["repo", "grant", repo, "reader", "read"]));
        ok(site
            .forgelet()
            .args(["repo", "grant", repo, "writer", "write"]));
    }
    let valid = create_token(&site, "alice", "valid", None);
    let revoked = create_token(&site, "alice", "revoked", None);
    ok(site
        .forgelet()
        .args(["token", "revoke", "alice", "revoked"]));
    let expired = create_token(&site, "alice", "old", Some("1"));
    expire_token(&site, "alice", "old");
    // Each repository keeps an object, put where an upload would leave it.
    let mut objects = Vec::new();
    for (repo, seed) in [("alice/pub", "public lfs"), ("alice/priv", "private lfs")] {
        let data = noise(&format!("{seed} {}", unique_marker()), 3000);
        let oid: String = {
            use sha2::Digest;
            sha2::Sha256::digest(&data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let dir = site
            .repo_path(repo)
            .join("lfs/objects")
            .join(&oid[..2])
            .join(&oid[2..4]);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(&oid), &data).unwrap();
        objects.push((repo, oid, data));
    }
    let secret = &objects[1];
    let secrets = Secrets {
        needles: vec![
            (
                "64 bytes of the private LFS object",
                secret.2[100..164].to_vec(),
            ),
            ("the private LFS object's id", secret.1.clone().into_bytes()),
        ],
    };
    let srv = site.start();
    let credentials = |who: Who| -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::WrongPassword => Some(basic("alice", "not-the-password")),
            Who::OtherUser => Some(basic("bob", TEST_PASSWORD)),
            Who::ReadCollaborator => Some(basic("reader", TEST_PASSWORD)),
            Who::WriteCollaborator => Some(basic("writer", TEST_PASSWORD)),
            Who::Owner => Some(basic("alice", TEST_PASSWORD)),
            Who::Admin => Some(basic("root", TEST_PASSWORD)),
            Who::ValidToken => Some(basic("alice", &valid)),
            Who::RevokedToken => Some(basic("alice", &revoked)),
            Who::ExpiredToken => Some(basic("alice", &expired)),
        }
    };
    let mut wrong_from = 0u8;
    let mut problems = Vec::new();
    let mut cells = 0;
    let order: Vec<Who> = EVERYONE
        .iter()
        .copied()
        .filter(|w| *w != Who::WrongPassword)
        .chain([Who::WrongPassword])
        .collect();
    for who in order {
        for (repo, oid, data) in &objects {
            let private = *repo == "alice/priv";
            for &route in &routes {
                cells += 1;
                let path = route
                    .example
                    .replace("OWNER/REPO", repo)
                    .replace("{oid}", oid)
                    .replace("{lock}", &"e".repeat(24));
                // What an allowed client gets: the answer, or (for a request this matrix makes
                // wrong on purpose) the error after the access check.
                let (method, body, allowed): (&str, Vec<u8>, u16) = match route.name {
                    "lfs.batch" => (
                        "POST",
                        format!(
                            r#"{{"operation":"download","objects":[{{"oid":"{oid}","size":{}}}]}}"#,
                            data.len()
                        )
                        .into_bytes(),
                        200,
                    ),
                    "lfs.download" => ("GET", Vec::new(), 200),
                    // Not the object's bytes: refused after the access check, nothing kept.
                    "lfs.upload" => ("PUT", b"not the object".to_vec(), 422),
                    "lfs.verify" => (
                        "POST",
                        format!(r#"{{"oid":"{}","size":1}}"#, "0".repeat(64)).into_bytes(),
                        404,
                    ),
                    "lfs.locks" => ("GET", Vec::new(), 200),
                    "lfs.locks.create" => (
                        "POST",
                        format!(r#"{{"path":"{who:?}.psd"}}"#).into_bytes(),
                        201,
                    ),
                    "lfs.locks.verify" => ("POST", b"{}".to_vec(), 200),
                    "lfs.locks.unlock" => ("POST", b"{}".to_vec(), 404),
                    other => panic!("the LFS matrix does not know the route {other}"),
                };
                let want = match expected(who, private, route) {
                    200 => allowed,
                    denied => denied,
                };
                let mut headers =
                    vec![("Content-Type", "application/vnd.git-lfs+json".to_string())];
                if let Some(c) = credentials(who) {
                    headers.push(("Authorization", c));
                }
                let src = if who == Who::WrongPassword {
                    wrong_from += 1;
                    Ipv4Addr::new(127, 0, 4, wrong_from)
                } else {
                    Ipv4Addr::LOCALHOST
                };
                let r = http_from(src, site.port, method, &site.target(&path), &headers, &body);
                let cell = format!("{who:?} {repo} {}", route.name);
                if r.status != want {
                    problems.push(format!("{cell}: expected {want}, got {}", r.describe()));
                }
                if r.status == 401 && r.header("LFS-Authenticate").is_none() {
                    problems.push(format!("{cell}: 401 without LFS-Authenticate"));
                }
                if r.status == 200 && route.name == "lfs.download" && r.body != *data {
                    problems.push(format!("{cell}: the object's bytes differ"));
                }
                // Whoever may not read the private repository learns nothing of its object.
                if expected(who, true, routes[0]) != 200 {
                    let leaks = secrets.leaked_in(&r);
                    if !leaks.is_empty() {
                        problems.push(format!("{cell}: the answer contains {}", leaks.join(", ")));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in the LFS permission matrix ({cells} cells):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(cells, EVERYONE.len() * objects.len() * routes.len());
    srv.finish();
}

/// Every page route of the table that names a repository, for every kind of viewer signed in
/// with the web form, against a public, a private and a missing repository: the pages follow the
/// same rules as git's routes, seen from a browser. Whoever may not read a repository gets the
/// same 404 page as for a missing one, with nothing of it inside; a reader gets the page; only
/// the owner and admins reach settings (a reader gets 403). Forms are sent with a valid CSRF
/// token, so what answers is the access decision, then the form's handler. The route list is
/// the table's: a new page route is in this matrix without a word here.
#[test]
fn permission_matrix_every_page_route() {
    let site = Site::new("perm_pages", SiteOptions::default());
    let public_path = site.import_fixture("mixed", "alice/pub");
    let private_path = site.import_fixture("mixed", "alice/priv");
    make_private(&site, "alice/priv");
    for u in ["bob", "reader", "writer"] {
        site.ensure_user(u);
    }
    add_user(&site, "root", true);
    for (user, perm) in [("reader", "read"), ("writer", "write")] {
        ok(site
            .forgelet()
            .args(["repo", "grant", "alice/priv", user, perm]));
    }
    let marker = unique_marker();
    let (_, _, secret_commit) = add_secret_branch(&private_path, &marker);
    let file = git_ok(&public_path, &["ls-tree", "--name-only", "main"])
        .lines()
        .find(|n| n.ends_with(".md") || n.ends_with(".txt"))
        .expect("the fixture has a text file at its top")
        .to_string();
    let rows: Vec<&'static Row> = ROUTE_TABLE
        .iter()
        .filter(|r| {
            (r.is_page() || r.is_feed())
                && matches!(r.need, Need::Read | Need::Write | Need::Manage)
        })
        .collect();
    assert!(rows.len() >= 10, "only {} repository pages", rows.len());
    let srv = site.start();
    let target = |row: &Row, owner_repo: &str, head: &str| -> String {
        let path = row
            .example
            .replace("OWNER/REPO", owner_repo)
            .replace("{file}", &file)
            .replace("{head}", head);
        assert!(!path.contains('{'), "{}: cannot fill in {path}", row.name);
        site.target(&path)
    };
    let heads = [
        (
            "alice/pub",
            false,
            git_ok(&public_path, &["rev-parse", "main"]),
        ),
        ("alice/priv", true, secret_commit.clone()),
    ];

    let mut problems: Vec<String> = Vec::new();
    let mut cells = 0;
    for who in [
        Who::Anonymous,
        Who::OtherUser,
        Who::ReadCollaborator,
        Who::WriteCollaborator,
        Who::Owner,
        Who::Admin,
    ] {
        let mut b = Browser::default();
        let user = match who {
            Who::Anonymous => None,
            Who::OtherUser => Some("bob"),
            Who::ReadCollaborator => Some("reader"),
            Who::WriteCollaborator => Some("writer"),
            Who::Owner => Some("alice"),
            Who::Admin => Some("root"),
            _ => unreachable!(),
        };
        if let Some(u) = user {
            sign_in_as(&site, &srv, &mut b, u);
        }
        // A token from a page's form, valid for this browser.
        let csrf = csrf_of(&b.get(&srv, &site.target("/-/login")));
        for &row in &rows {
            for (owner_repo, private, head) in &heads {
                cells += 1;
                let head = head.trim();
                let may_read = !private || !matches!(who, Who::Anonymous | Who::OtherUser);
                let may_manage = matches!(who, Who::Owner | Who::Admin);
                let post = row.method == Method::Post;
                let want = if !may_read {
                    // A feed reader not signed in is asked for a token, as git is.
                    if row.is_feed() && matches!(who, Who::Anonymous) {
                        401
                    } else {
                        404
                    }
                } else {
                    match (row.need, post) {
                        // Someone not signed in is asked to sign in; a form is refused.
                        (Need::Manage, false) if matches!(who, Who::Anonymous) => 303,
                        (Need::Manage, _) if !may_manage => 403,
                        (Need::Write, _)
                            if !matches!(who, Who::WriteCollaborator | Who::Owner | Who::Admin) =>
                        {
                            403
                        }
                        // A form without an action: its handler says it does not know it.
                        (_, true) => 400,
                        (_, false) => 200,
                    }
                };
                let ask = |b: &mut Browser, t: &str| {
                    if post {
                        b.post(&srv, t, &[("csrf", &csrf)])
                    } else {
                        b.get(&srv, t)
                    }
                };
                let r = ask(&mut b, &target(row, owner_repo, head));
                let cell = format!("{who:?} {} {owner_repo}", row.name);
                if r.status != want {
                    problems.push(format!("{cell}: expected {want}, got {}", r.describe()));
                }
                if !may_read {
                    let body = r.text();
                    for needle in [marker.as_str(), head, "alice/priv"] {
                        if body.contains(needle)
                            || r.headers.iter().any(|(_, v)| v.contains(needle))
                        {
                            problems.push(format!("{cell}: the answer contains {needle:?}"));
                        }
                    }
                    // The same answer as for a repository that does not exist.
                    let m = ask(&mut b, &target(row, "alice/nosuch", head));
                    if (m.status, m.text()) != (r.status, r.text()) {
                        problems.push(format!(
                            "{cell}: differs from a missing repository's answer:\n  private: {}\n  missing: {}",
                            r.describe(),
                            m.describe()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) in the page permission matrix ({cells} cells):\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(cells, 6 * 2 * rows.len());
    srv.finish();
}

/// The anonymous and owner rows straight on the FastCGI socket, for the routes a GET reaches.
fn check_fcgi_rows(
    srv: &Server,
    site: &Site,
    repos: &[MatrixRepo],
    credentials: &dyn Fn(Who) -> Option<String>,
    problems: &mut Vec<String>,
) {
    for who in [Who::Anonymous, Who::Owner] {
        for repo in repos {
            for route in git_routes().into_iter().filter(|r| r.method == Method::Get) {
                let (_, path, _, _) = repo.request(route);
                let auth = credentials(who).unwrap_or_default();
                let mut headers: Vec<(&str, &[u8])> = Vec::new();
                if !auth.is_empty() {
                    headers.push(("Authorization", auth.as_bytes()));
                }
                let r = srv.fcgi("GET", site.target(&path).as_bytes(), &headers);
                let want = expected(who, repo.private, route);
                let cell = format!("FastCGI {who:?} {} {}", repo.owner_repo, route.name);
                if r.status != want {
                    problems.push(format!("{cell}: expected {want}, got {}", r.describe()));
                }
                if r.status == 401 && r.header("WWW-Authenticate").is_none() {
                    problems.push(format!("{cell}: 401 without WWW-Authenticate"));
                }
                if is_object(route) && r.status == 200 {
                    let cc = r.header("Cache-Control").unwrap_or_default();
                    let want_scope = if repo.private { "private" } else { "public" };
                    if !cc.starts_with(want_scope) || r.header("X-Accel-Redirect").is_none() {
                        problems.push(format!("{cell}: {}", r.describe()));
                    }
                }
            }
        }
    }
}

/// A dumb clone of the private repository: with the owner's password in the URL it works and
/// brings the private branch; anonymously it fails.
fn check_dumb_clone(site: &Site, marker: &str, secret_commit: &str, problems: &mut Vec<String>) {
    let url = site.url("/alice/priv.git");
    let with_password = url.replacen("http://", &format!("http://alice:{TEST_PASSWORD}@"), 1);
    let clone = site.dir().join("dumb-owner");
    let out = run(git(site.dir()).arg("clone").arg(&with_password).arg(&clone));
    if !out.status.success() {
        problems.push(format!(
            "dumb clone of alice/priv as the owner failed: {}",
            all_output(&out)
        ));
    } else {
        let refs = refs_of(&clone);
        let got = refs.get(&format!("refs/remotes/origin/{marker}"));
        if got.map(String::as_str) != Some(secret_commit) {
            problems.push(format!(
                "dumb clone of alice/priv as the owner: the private branch is {got:?}, expected {secret_commit}"
            ));
        }
        let fsck = run(git(&clone).args(["fsck", "--no-progress"]));
        if !fsck.status.success() {
            problems.push(format!("fsck of the dumb clone: {}", all_output(&fsck)));
        }
    }
    let anon = site.dir().join("dumb-anonymous");
    let out = run(git(site.dir()).arg("clone").arg(&url).arg(&anon));
    if out.status.success() {
        problems.push("an anonymous dumb clone of alice/priv succeeded".into());
    }
    if anon.join(".git/refs/remotes").exists() && !refs_of(&anon).is_empty() {
        problems.push(format!(
            "an anonymous dumb clone of alice/priv got refs: {:?}",
            refs_of(&anon)
        ));
    }
}

/// nginx's internal location that sends repository files cannot be asked for from outside, by
/// any spelling.
fn check_internal_location(
    site: &Site,
    private: &MatrixRepo,
    secrets: &Secrets,
    problems: &mut Vec<String>,
) {
    let internal = format!(
        "/.forgelet-repos/{}.git/{}",
        private.owner_repo, private.pack
    );
    for target in [
        internal.clone(),
        format!("{}/..{internal}", site.opts.base_path),
        format!("/.forgelet-repos/{}.git/config", private.owner_repo),
    ] {
        let r = http_from(Ipv4Addr::LOCALHOST, site.port, "GET", &target, &[], b"");
        let leaks = secrets.leaked_in(&r);
        if r.status == 200 || !leaks.is_empty() {
            problems.push(format!(
                "GET {target} from outside: {} (contains {leaks:?})",
                r.status
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Limiter, timing, changes taking effect, tokens only

/// A site with alice (password [`TEST_PASSWORD`]) and her private repository alice/priv.
fn private_site(test: &str, top_level_config: &str) -> (Site, PathBuf) {
    let site = Site::new(test, SiteOptions::default());
    if !top_level_config.is_empty() {
        // Top-level keys go before the first table.
        let text = fs::read_to_string(&site.config).unwrap();
        fs::write(&site.config, format!("{top_level_config}\n{text}")).unwrap();
    }
    let repo = site.import_fixture("mixed", "alice/priv");
    make_private(&site, "alice/priv");
    (site, repo)
}

#[test]
fn password_guessing_is_limited_per_client_and_per_user() {
    let (site, _repo) = private_site("perm_limiter", "");
    let srv = site.start();
    let target = site.target("/alice/priv.git/info/refs");
    let started = Instant::now();
    let wrong = basic("alice", "guess-0000");

    // One client guessing: 401s, then 429 with Retry-After and a message.
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..12 {
        let r = srv.http("GET", target.as_bytes(), &[("Authorization", &wrong)]);
        statuses.push(r.status);
        if r.status == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status, 401, "a wrong password: {}", r.describe());
    }
    let limited = limited
        .unwrap_or_else(|| panic!("12 wrong passwords from one client and no 429: {statuses:?}"));
    let first_401s = statuses.iter().filter(|&&s| s == 401).count();
    assert!(
        first_401s >= 5,
        "a person mistyping is slowed too soon: {statuses:?}"
    );
    let retry: u64 = limited
        .header("Retry-After")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {}", limited.describe()));
    assert!((1..=60).contains(&retry), "{}", limited.describe());
    assert!(
        limited.text().to_lowercase().contains("try again"),
        "429 without a message: {}",
        limited.describe()
    );
    // The right password from the limited client is not even checked.
    let right = basic("alice", TEST_PASSWORD);
    let r = srv.http("GET", target.as_bytes(), &[("Authorization", &right)]);
    assert_eq!(
        r.status,
        429,
        "the right password from a limited client: {}",
        r.describe()
    );
    assert!(r.header("Retry-After").is_some(), "{}", r.describe());

    // Many clients guessing one name: each new address passes the client limiter, until the
    // user's own bucket (20) is spent.
    let mut fresh = Vec::new();
    let mut user_limited = None;
    for i in 0..25u8 {
        let r = fcgi_from(&srv, &format!("10.9.0.{}", i + 1), &target, &wrong);
        fresh.push(r.status);
        if r.status == 429 {
            user_limited = Some(r);
            break;
        }
        assert_eq!(
            r.status,
            401,
            "a wrong password from a new address: {}",
            r.describe()
        );
    }
    assert_eq!(
        fresh.first(),
        Some(&401),
        "a new address was refused at once after another address was limited: {fresh:?}"
    );
    let user_limited = user_limited
        .unwrap_or_else(|| panic!("25 addresses guessing alice's password, no 429: {fresh:?}"));
    assert!(user_limited.header("Retry-After").is_some());
    // 20 at once, plus one for every 3 s that passed.
    let checked = first_401s + fresh.iter().filter(|&&s| s == 401).count();
    let allowed = 20 + (started.elapsed().as_secs() / 3) as usize + 1;
    assert!(
        checked <= allowed,
        "{checked} wrong passwords for alice were checked (at most {allowed} expected): from one client {statuses:?}, from new addresses {fresh:?}"
    );
    // The user is limited now whatever the address, for the right password too.
    let r = fcgi_from(&srv, "10.9.1.1", &target, &right);
    assert_eq!(
        r.status,
        429,
        "the right password from a new address while alice is limited: {}",
        r.describe()
    );
    // Another user is not affected.
    site.ensure_user("bob");
    let r = fcgi_from(&srv, "10.9.1.2", &target, &basic("bob", TEST_PASSWORD));
    assert_eq!(
        r.status,
        404,
        "bob while alice is limited: {}",
        r.describe()
    );
    srv.finish();
}

#[test]
fn unknown_user_costs_what_a_known_one_does() {
    let (site, _repo) = private_site("perm_timing", "");
    let srv = site.start();
    let target = site.target("/alice/priv.git/info/refs");
    let known = basic("alice", "wrong-password-1");
    let unknown = basic("nobody-at-all", "wrong-password-1");
    let timed = |addr: String, auth: &str| -> Duration {
        let t = Instant::now();
        let r = fcgi_from(&srv, &addr, &target, auth);
        let d = t.elapsed();
        assert_eq!(r.status, 401, "from {addr}: {}", r.describe());
        d
    };
    // Warm up both paths once.
    timed("10.8.0.1".into(), &known);
    timed("10.8.1.1".into(), &unknown);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..7u8 {
        // Alternate which goes first, so load from elsewhere hits both alike.
        if i % 2 == 0 {
            a.push(timed(format!("10.8.0.{}", i + 2), &known));
            b.push(timed(format!("10.8.1.{}", i + 2), &unknown));
        } else {
            b.push(timed(format!("10.8.1.{}", i + 2), &unknown));
            a.push(timed(format!("10.8.0.{}", i + 2), &known));
        }
    }
    let (ma, mb) = (median(a.clone()), median(b.clone()));
    let ratio = mb.as_secs_f64() / ma.as_secs_f64();
    eprintln!("median failed check: known user {ma:?}, unknown user {mb:?}, ratio {ratio:.2}");
    assert!(
        // A missing dummy hash makes an unknown name ~100x cheaper; a loaded machine moves
        // single medians by far less than 4x.
        (0.25..=4.0).contains(&ratio),
        "an unknown user name costs {ratio:.2}x a known one (medians {mb:?} vs {ma:?}; known {a:?}, unknown {b:?})"
    );
    srv.finish();
}

#[test]
fn password_change_and_token_revocation_apply_at_once() {
    let (site, _repo) = private_site("perm_changes", "");
    let token = create_token(&site, "alice", "laptop", None);
    let srv = site.start();
    let target = site.target("/alice/priv.git/info/refs");
    let get = |auth: &str| srv.http("GET", target.as_bytes(), &[("Authorization", auth)]);
    let old = basic("alice", TEST_PASSWORD);
    let r = get(&old);
    assert_eq!(r.status, 200, "{}", r.describe());
    // Remembered now: a second request is served from the process's cache.
    assert_eq!(get(&old).status, 200);

    let out = run_with_stdin(
        site.forgelet()
            .args(["user", "passwd", "alice", "--password-stdin"]),
        b"the-new-password\n",
    );
    assert!(out.status.success(), "{}", all_output(&out));
    let r = get(&old);
    assert_eq!(
        r.status,
        401,
        "the old password right after a change: {}",
        r.describe()
    );
    assert!(r.header("WWW-Authenticate").is_some());
    let r = get(&basic("alice", "the-new-password"));
    assert_eq!(r.status, 200, "the new password: {}", r.describe());

    let with_token = basic("alice", &token);
    assert_eq!(get(&with_token).status, 200);
    // A token is a password, never a user name, and only for its own user.
    for (what, auth) in [
        ("a token as the user name", basic(&token, "x-oauth-basic")),
        ("alice's token under another name", basic("bob", &token)),
    ] {
        let r = get(&auth);
        assert_eq!(r.status, 401, "{what}: {}", r.describe());
    }
    assert_eq!(get(&with_token).status, 200);
    ok(site.forgelet().args(["token", "revoke", "alice", "laptop"]));
    let r = get(&with_token);
    assert_eq!(r.status, 401, "a revoked token: {}", r.describe());
    assert!(r.header("WWW-Authenticate").is_some());
    srv.finish();
}

#[test]
fn git_requires_token_refuses_passwords() {
    let (site, _repo) = private_site("perm_tokens_only", "git_requires_token = true");
    let token = create_token(&site, "alice", "ci", None);
    let srv = site.start();
    let target = site.target("/alice/priv.git/info/refs");
    let r = srv.http(
        "GET",
        target.as_bytes(),
        &[("Authorization", &basic("alice", TEST_PASSWORD))],
    );
    assert_eq!(r.status, 401, "a password: {}", r.describe());
    assert!(r.header("WWW-Authenticate").is_some(), "{}", r.describe());
    assert!(
        r.text().to_lowercase().contains("token"),
        "the refusal does not say tokens are needed: {}",
        r.describe()
    );
    let r = srv.http(
        "GET",
        target.as_bytes(),
        &[("Authorization", &basic("alice", &token))],
    );
    assert_eq!(r.status, 200, "a token: {}", r.describe());
    srv.finish();
}
