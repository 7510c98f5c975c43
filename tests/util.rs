//! Test harness: temporary sites with real repositories (built by `tests/fixtures/*.sh`), the
//! built forgelet binary (FastCGI on a unix socket, CGI, admin commands), real nginx running the
//! shipped `nginx/forgelet.conf`, real git, and two tiny clients (HTTP/1.1 and raw FastCGI).
//!
//! Everything a test makes lives in its own directory under cargo's target tmp dir; the directory is
//! removed when the test passes and kept (with nginx's and forgelet's logs printed) when it fails.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_forgelet");
const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const TARGET_TMP: &str = env!("CARGO_TARGET_TMPDIR");

/// How long any single network exchange or child process may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Temporary directories

/// A directory of its own for one test; removed on success, kept (and named) on failure.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let leaf = format!("{name}-{}-{n}", std::process::id());
        // Unix socket paths are limited to 108 bytes; fall back to the system temp dir.
        let mut root = PathBuf::from(TARGET_TMP);
        if root.join(&leaf).join("forgelet.sock").as_os_str().len() > 100 {
            root = std::env::temp_dir();
        }
        let path = root.join(leaf);
        if path.exists() {
            fs::remove_dir_all(&path).unwrap();
        }
        fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// A string no file of the test tree contains by accident.
pub fn unique_marker() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("FORGELETMARKER{:x}x{:x}", nanos, std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// Runs a command with a deadline, capturing stdout and stderr.
pub fn run(cmd: &mut Command) -> Output {
    run_with_stdin(cmd, &[])
}

/// Runs a command with `input` on stdin and a deadline, capturing stdout and stderr.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = writer.join();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Panics with the command's output unless it succeeded; returns stdout as text.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    if !out.status.success() {
        panic!(
            "{cmd:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stdout and stderr of an output as one text, for messages.
pub fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `git` in a hermetic environment: no user or system config, no prompts, no proxies, fixed
/// identity and dates, and `GIT_SMART_HTTP=0` so every HTTP transfer uses the dumb protocol.
pub fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir);
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS",
        "GIT_NAMESPACE",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("GIT_SMART_HTTP", "0")
        .env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@test.invalid")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@test.invalid")
        .env("GIT_AUTHOR_DATE", "1710000000 +0000")
        .env("GIT_COMMITTER_DATE", "1710000000 +0000")
        .env("LC_ALL", "C")
        .env("GIT_CONFIG_COUNT", "4")
        .env("GIT_CONFIG_KEY_0", "init.defaultBranch")
        .env("GIT_CONFIG_VALUE_0", "main")
        .env("GIT_CONFIG_KEY_1", "gc.auto")
        .env("GIT_CONFIG_VALUE_1", "0")
        .env("GIT_CONFIG_KEY_2", "maintenance.auto")
        .env("GIT_CONFIG_VALUE_2", "false")
        // Repositories of a site whose data a CGI forgelet owns (as www-data) are read by the
        // tests too.
        .env("GIT_CONFIG_KEY_3", "safe.directory")
        .env("GIT_CONFIG_VALUE_3", "*");
    cmd
}

/// Runs git with `args` in `dir` and returns its stdout; panics on failure.
pub fn git_ok<S: AsRef<OsStr>>(dir: &Path, args: &[S]) -> String {
    ok(git(dir).args(args))
}

/// Builds the fixture `tests/fixtures/{name}.sh` as the bare repository `out`.
pub fn build_fixture(name: &str, out: &Path) {
    let script = Path::new(MANIFEST_DIR)
        .join("tests/fixtures")
        .join(format!("{name}.sh"));
    ok(Command::new("bash").arg(&script).arg(out));
}

/// `refname -> object id` of every ref under refs/ of a repository.
pub fn refs_of(repo: &Path) -> BTreeMap<String, String> {
    git_ok(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
        .lines()
        .map(|l| {
            let (name, oid) = l.split_once(' ').unwrap();
            (name.to_string(), oid.to_string())
        })
        .collect()
}

/// A listing of every entry below `dir` (path, kind, mode, size, content hash), sorted: equal
/// listings mean an untouched tree.
pub fn tree_listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let md = fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            if ft.is_symlink() {
                out.push(format!(
                    "L {rel} -> {}",
                    fs::read_link(&p).unwrap().display()
                ));
            } else if ft.is_dir() {
                out.push(format!("D {rel} {:o}", md.mode()));
                walk(root, &p, out);
            } else {
                out.push(format!(
                    "F {rel} {:o} {} {:016x}",
                    md.mode(),
                    md.len(),
                    fnv1a(&fs::read(&p).unwrap())
                ));
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out
}

fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------------------------
// Sites: config, data dir, repositories

/// The web server in front of forgelet, with the config forgelet ships for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// nginx with `nginx/forgelet.conf`, forgelet serving FastCGI on its socket.
    Nginx,
    /// Apache with `deploy/apache/forgelet-fcgi.conf` (mod_proxy_fcgi to forgelet's socket).
    ApacheFcgi,
    /// Apache with `deploy/apache/forgelet-cgi.conf`: forgelet as a CGI program, no daemon.
    ApacheCgi,
    /// lighttpd with `deploy/lighttpd/forgelet.conf` (mod_fastcgi, X-Sendfile).
    Lighttpd,
}

/// How a site is set up.
#[derive(Clone, Copy)]
pub struct SiteOptions {
    /// `"/git"` or `""` (forgelet at the root of the host).
    pub base_path: &'static str,
    /// `"x-accel-redirect"` or `"none"`.
    pub sendfile: &'static str,
    /// Extra lines for the `[server]` table of the config.
    pub server_extra: &'static str,
    /// Top-level lines for the config (before any table).
    pub extra: &'static str,
    /// `base_url` says `https://` (nginx still answers plain HTTP on loopback), so forgelet
    /// makes its cookies as for HTTPS.
    pub https: bool,
}

impl Default for SiteOptions {
    fn default() -> Self {
        SiteOptions {
            base_path: "/git",
            sendfile: "x-accel-redirect",
            server_extra: "",
            extra: "",
            https: false,
        }
    }
}

/// The password of the users the tests add (`Site::ensure_user`).
pub const TEST_PASSWORD: &str = "test-password-1";

/// A forgelet site on disk: config file, data dir, the port nginx will listen on.
pub struct Site {
    pub opts: SiteOptions,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    // Last, so it is removed after everything else is dropped.
    pub tmp: TempDir,
}

impl Site {
    pub fn new(name: &str, opts: SiteOptions) -> Site {
        let tmp = TempDir::new(name);
        let data_dir = tmp.path().join("data");
        fs::create_dir_all(data_dir.join("repos")).unwrap();
        let socket = tmp.path().join("forgelet.sock");
        let port = free_port();
        let config = tmp.path().join("config.toml");
        let text = format!(
            "data_dir = \"{data}\"\n\
             base_url = \"{scheme}://127.0.0.1:{port}{base}\"\n\
             sendfile = \"{sendfile}\"\n\
             internal_prefix = \"/.forgelet-repos\"\n\
             {top}\n\
             \n\
             [server]\n\
             listen = \"unix:{socket}\"\n\
             {extra}\n\
             \n\
             [pack_cache]\n\
             min_hits = 1\n\
             free_mib = 0\n",
            data = data_dir.display(),
            base = opts.base_path,
            sendfile = opts.sendfile,
            socket = socket.display(),
            extra = opts.server_extra,
            top = opts.extra,
            scheme = if opts.https { "https" } else { "http" },
        );
        fs::write(&config, text).unwrap();
        Site {
            opts,
            data_dir,
            config,
            socket,
            port,
            tmp,
        }
    }

    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    /// `{data_dir}/repos/{owner}/{repo}.git`.
    pub fn repo_path(&self, owner_repo: &str) -> PathBuf {
        self.data_dir
            .join("repos")
            .join(format!("{owner_repo}.git"))
    }

    /// A forgelet admin command (`--config` set) for this site.
    pub fn forgelet(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config);
        cmd.env_remove("FORGELET_CONFIG").env("RUST_LOG", "info");
        cmd
    }

    /// Adds the user `name` (password [`TEST_PASSWORD`]) unless there is one: repositories
    /// belong to users, so `repo create` and `repo import` need the owner first.
    pub fn ensure_user(&self, name: &str) {
        let list = ok(self.forgelet().args(["user", "list"]));
        if list.lines().any(|l| l.split('\t').next() == Some(name)) {
            return;
        }
        let out = run_with_stdin(
            self.forgelet()
                .args(["user", "add", name, "--password-stdin"]),
            format!("{TEST_PASSWORD}\n").as_bytes(),
        );
        assert!(
            out.status.success(),
            "forgelet user add {name}: {}",
            all_output(&out)
        );
    }

    /// Builds the fixture outside the data dir and adopts it with `forgelet repo import`.
    pub fn import_fixture(&self, fixture: &str, owner_repo: &str) -> PathBuf {
        self.ensure_user(owner_repo.split('/').next().unwrap_or_default());
        let src_dir = self.dir().join("src");
        fs::create_dir_all(&src_dir).unwrap();
        let src = src_dir.join(format!("{}.git", owner_repo.replace('/', "-")));
        build_fixture(fixture, &src);
        ok(self
            .forgelet()
            .args(["repo", "import", owner_repo])
            .arg(&src));
        let repo = self.repo_path(owner_repo);
        assert!(
            repo.is_dir(),
            "repo import did not create {}",
            repo.display()
        );
        repo
    }

    /// Builds the fixture straight into the repos dir (no import).
    pub fn place_fixture(&self, fixture: &str, owner_repo: &str) -> PathBuf {
        let repo = self.repo_path(owner_repo);
        fs::create_dir_all(repo.parent().unwrap()).unwrap();
        build_fixture(fixture, &repo);
        repo
    }

    /// A request target under the base path: `target("/alice/r.git/HEAD")`.
    pub fn target(&self, path: &str) -> String {
        format!("{}{path}", self.opts.base_path)
    }

    /// The URL git uses for `path` under the base path.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.target(path))
    }

    /// Answers one request by running the binary in CGI mode, as a CGI server would.
    pub fn cgi(&self, method: &str, target: &[u8], headers: &[(&str, &[u8])]) -> Response {
        let params = cgi_params(method, target, headers, self.port, None);
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FORGELET_CONFIG", &self.config)
            .env("RUST_LOG", "info");
        for (k, v) in &params {
            cmd.env(OsStr::from_bytes(k), OsStr::from_bytes(v));
        }
        let out = run(&mut cmd);
        let what = format!("CGI {method} {}", String::from_utf8_lossy(target));
        parse_cgi(&out.stdout, &what).unwrap_or_else(|e| {
            panic!(
                "{e}\nexit: {}\nstderr:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Starts forgelet on its unix socket, then nginx in front of it.
    pub fn start(&self) -> Server {
        self.start_behind(Front::Nginx)
    }

    /// Starts forgelet (unless the front runs it as CGI), then `front` in front of it.
    pub fn start_behind(&self, front: Front) -> Server {
        self.start_behind_with(front, |text| text)
    }

    /// As [`Site::start_behind`], with `edit` applied to the text of the shipped config for
    /// `front` (its values already set for this site) before the web server reads it: a
    /// deployment broken on purpose.
    pub fn start_behind_with(&self, front: Front, edit: impl Fn(String) -> String) -> Server {
        let dir = self.dir();
        let forgelet_log = dir.join("forgelet.stderr");
        let front_dir = dir.join(match front {
            Front::Nginx => "nginx",
            Front::ApacheFcgi | Front::ApacheCgi => "apache",
            Front::Lighttpd => "lighttpd",
        });
        let front_log = front_dir.join("error.log");
        fs::create_dir_all(&front_dir).unwrap();
        let mut server = Server {
            forgelet: None,
            others: Vec::new(),
            front: None,
            kind: front,
            front_pid_file: front_dir.join("front.pid"),
            forgelet_log,
            front_log,
            socket: self.socket.clone(),
            port: self.port,
        };
        if front != Front::Nginx && effective_uid_is_root() {
            // Apache's workers and lighttpd run as www-data: forgelet gives its socket to that
            // group (as a sysadmin sets socket_group), and a CGI forgelet, running as www-data,
            // owns the data.
            let mut config = fs::read_to_string(&self.config).unwrap();
            if !config.contains("socket_group") {
                config =
                    config.replacen("[server]\n", "[server]\nsocket_group = \"www-data\"\n", 1);
                fs::write(&self.config, config).unwrap();
            }
            if front == Front::ApacheCgi {
                ok(Command::new("chown")
                    .args(["-R", "www-data:www-data"])
                    .arg(&self.data_dir));
            }
        }
        if front == Front::ApacheCgi {
            self.start_apache(&mut server, &front_dir, &edit);
            return server;
        }
        fs::File::create(&server.forgelet_log).unwrap();
        self.spawn_forgelet(&mut server);
        match front {
            Front::ApacheFcgi => {
                self.start_apache(&mut server, &front_dir, &edit);
                return server;
            }
            Front::Lighttpd => {
                self.start_lighttpd(&mut server, &front_dir, &edit);
                return server;
            }
            Front::Nginx | Front::ApacheCgi => {}
        }
        self.start_nginx(&mut server, &front_dir, &edit(self.nginx_snippet()), "", "");
        server
    }

    /// A forgelet process of this site's that [`Site::start_frontends`] starts: the site's
    /// config listening on a socket of its own, `forgelet-{n}.sock` (n from 1), which a test may
    /// change further (`config`) before the process starts.
    pub fn frontend(&self, n: usize) -> Frontend {
        let socket = self.dir().join(format!("forgelet-{n}.sock"));
        let config = fs::read_to_string(&self.config).unwrap();
        let own = format!("listen = \"unix:{}\"\n", socket.display());
        let mine = config.replacen(
            &format!("listen = \"unix:{}\"\n", self.socket.display()),
            &own,
            1,
        );
        assert!(
            mine.contains(&own),
            "the site's config names no socket:\n{config}"
        );
        Frontend {
            n,
            socket,
            config: mine,
        }
    }

    /// Several forgelet FastCGI processes on this site's one data directory, each on its own
    /// socket with its own config (`frontends`, from [`Site::frontend`]), behind one nginx: the
    /// shipped snippet passes every request to the upstream named `forgelet`, which `http` (lines
    /// for nginx's `http` block) declares, listing the sockets (nginx takes them in turn, round
    /// robin); `server` is added to the server block beside the snippet. nginx's access log
    /// says which socket answered each request ([`Server::upstreams`]).
    pub fn start_frontends(&self, frontends: &[Frontend], http: &str, server: &str) -> Server {
        assert!(!frontends.is_empty());
        let dir = self.dir();
        let nginx_dir = dir.join("nginx");
        fs::create_dir_all(&nginx_dir).unwrap();
        let mut srv = Server {
            forgelet: None,
            others: Vec::new(),
            front: None,
            kind: Front::Nginx,
            front_pid_file: nginx_dir.join("front.pid"),
            forgelet_log: dir.join("forgelet-1.stderr"),
            front_log: nginx_dir.join("error.log"),
            socket: frontends[0].socket.clone(),
            port: self.port,
        };
        for f in frontends {
            let config = dir.join(format!("config-{}.toml", f.n));
            fs::write(&config, &f.config).unwrap();
            let log = dir.join(format!("forgelet-{}.stderr", f.n));
            let child = spawn_forgelet(
                &config,
                &f.socket,
                &dir.join(format!("forgelet-{}.stdout", f.n)),
                &log,
            );
            if srv.forgelet.is_none() {
                srv.forgelet = Some(child);
                srv.forgelet_log = log;
            } else {
                srv.others.push((child, log));
            }
            let socket = f.socket.clone();
            srv.wait_for(&format!("socket of forgelet {}", f.n), |_| {
                UnixStream::connect(&socket).is_ok()
            });
        }
        let snippet = self.nginx_snippet();
        let set = format!("set $forgelet_fastcgi unix:{};", self.socket.display());
        assert!(snippet.contains(&set), "the snippet has no line {set}");
        let snippet = snippet.replace(&set, "set $forgelet_fastcgi forgelet;");
        self.start_nginx(&mut srv, &nginx_dir, &snippet, http, server);
        srv
    }

    /// nginx with `snippet` in its server block (and `extra` beside it), `http` in its http
    /// block.
    fn start_nginx(
        &self,
        server: &mut Server,
        nginx_dir: &Path,
        snippet: &str,
        http: &str,
        extra: &str,
    ) {
        fs::create_dir_all(nginx_dir.join("temp")).unwrap();
        fs::write(nginx_dir.join("forgelet.conf"), snippet).unwrap();
        // The snippet includes nginx's stock fastcgi_params by a relative name (resolved against
        // the main config's directory); use the one installed with nginx.
        fs::copy(
            "/etc/nginx/fastcgi_params",
            nginx_dir.join("fastcgi_params"),
        )
        .expect("copy /etc/nginx/fastcgi_params");
        fs::write(
            nginx_dir.join("nginx.conf"),
            self.nginx_main_conf(nginx_dir, http, extra),
        )
        .unwrap();
        let nginx_bin = std::env::var_os("NGINX_BIN").unwrap_or_else(|| "/usr/sbin/nginx".into());
        let child = Command::new(nginx_bin)
            // nginx reads NGINX itself (sockets inherited across a binary upgrade).
            .env_remove("NGINX")
            .arg("-p")
            .arg(nginx_dir)
            .arg("-c")
            .arg(nginx_dir.join("nginx.conf"))
            .arg("-e")
            .arg(&server.front_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(appending(&server.front_log))
            .spawn()
            .expect("start nginx");
        server.front = Some(child);
        server.wait_for("nginx port", |s| {
            TcpStream::connect(("127.0.0.1", s.port)).is_ok()
        });
    }

    /// Starts `forgelet serve` on the site's socket for `server` (its stderr appended to
    /// `server.forgelet_log`) and waits for the socket.
    fn spawn_forgelet(&self, server: &mut Server) {
        let child = spawn_forgelet(
            &self.config,
            &self.socket,
            &self.dir().join("forgelet.stdout"),
            &server.forgelet_log,
        );
        server.forgelet = Some(child);
        server.wait_for("forgelet socket", |s| {
            UnixStream::connect(&s.socket).is_ok()
        });
    }

    /// The shipped snippet with its four documented values replaced for this site.
    fn nginx_snippet(&self) -> String {
        let path = Path::new(MANIFEST_DIR).join("nginx/forgelet.conf");
        let text = fs::read_to_string(&path).expect("read nginx/forgelet.conf");
        let repos = format!("{}/", self.data_dir.join("repos").display());
        let socket = format!("unix:{}", self.socket.display());
        let location = format!("location ^~ {}/ {{", self.opts.base_path);
        // Each value a sysadmin edits appears once: the socket was named in three places (the
        // nested git locations do not inherit fastcgi_pass), and editing only the first broke
        // pushes.
        for once in [
            "location ^~ /git/ {",
            "unix:/run/forgelet/forgelet.sock;",
            "alias /var/lib/forgelet/repos/;",
            "location ^~ /.forgelet-repos/ {",
        ] {
            assert_eq!(
                text.matches(once).count(),
                1,
                "nginx/forgelet.conf should name `{once}` exactly once"
            );
        }
        let mut text = text;
        for (from, to) in [
            ("location ^~ /git/ {", location.as_str()),
            ("unix:/run/forgelet/forgelet.sock;", &format!("{socket};")),
            (
                "alias /var/lib/forgelet/repos/;",
                &format!("alias {repos};"),
            ),
            (
                "location ^~ /.forgelet-repos/ {",
                "location ^~ /.forgelet-repos/ {",
            ),
        ] {
            assert!(
                text.contains(from),
                "nginx/forgelet.conf no longer contains `{from}`; update the test harness"
            );
            text = text.replace(from, to);
        }
        text
    }

    fn nginx_main_conf(&self, nginx_dir: &Path, http: &str, extra: &str) -> String {
        let d = nginx_dir.display();
        let user = if effective_uid_is_root() {
            "user root root;\n"
        } else {
            ""
        };
        format!(
            "{user}daemon off;\n\
             master_process on;\n\
             worker_processes 1;\n\
             worker_rlimit_nofile 4096;\n\
             pid {d}/front.pid;\n\
             error_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20   log_format upstreams '$status $upstream_addr $request_method $request_uri';\n\
             \x20   access_log {d}/access.log upstreams;\n\
             {http}\n\
             \x20   client_body_temp_path {d}/temp/body;\n\
             \x20   proxy_temp_path {d}/temp/proxy;\n\
             \x20   fastcgi_temp_path {d}/temp/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/temp/uwsgi;\n\
             \x20   scgi_temp_path {d}/temp/scgi;\n\
             \x20   types {{ text/html html; text/plain txt; }}\n\
             \x20   default_type application/octet-stream;\n\
             \x20   server {{\n\
             \x20       listen 127.0.0.1:{port};\n\
             \x20       server_name localhost;\n\
             \x20       root {d}/empty-root;\n\
             {outside}\
             \x20       include {d}/forgelet.conf;\n\
             {extra}\n\
             \x20   }}\n\
             }}\n",
            port = self.port,
            // As in nginx/example-server.conf: nothing but forgelet on this server.
            outside = if self.opts.base_path.is_empty() {
                ""
            } else {
                "        location / { return 404; }\n"
            },
        )
    }
}

impl Site {
    /// The shipped Apache config for `front`, with its `Define` values set for this site.
    pub fn apache_snippet(&self, front: Front) -> String {
        let (file, values): (&str, Vec<(&str, String)>) = match front {
            Front::ApacheFcgi => (
                "deploy/apache/forgelet-fcgi.conf",
                vec![
                    ("FORGELET_BASE", self.opts.base_path.to_string()),
                    ("FORGELET_SOCKET", self.socket.display().to_string()),
                    (
                        "FORGELET_REPOS",
                        self.data_dir.join("repos").display().to_string(),
                    ),
                ],
            ),
            Front::ApacheCgi => (
                "deploy/apache/forgelet-cgi.conf",
                vec![
                    ("FORGELET_BASE", self.opts.base_path.to_string()),
                    ("FORGELET_BIN", BIN.to_string()),
                    ("FORGELET_CONFIG", self.config.display().to_string()),
                    (
                        "FORGELET_REPOS",
                        self.data_dir.join("repos").display().to_string(),
                    ),
                ],
            ),
            Front::Nginx | Front::Lighttpd => panic!("{front:?} has its own config"),
        };
        // Each value a sysadmin edits is one `Define` line.
        let values: Vec<(String, String)> = values
            .into_iter()
            .map(|(name, value)| (format!("Define {name} "), value))
            .collect();
        shipped_with(file, &values)
    }

    /// Writes Apache's config (its own, loading only the modules forgelet's config needs) and
    /// starts it in the foreground on the site's port.
    fn start_apache(&self, server: &mut Server, dir: &Path, edit: &dyn Fn(String) -> String) {
        let d = dir.display();
        fs::create_dir_all(dir.join("run")).unwrap();
        fs::create_dir_all(dir.join("empty-root")).unwrap();
        fs::write(
            dir.join("forgelet.conf"),
            edit(self.apache_snippet(server.kind)),
        )
        .unwrap();
        let modules = [
            ("mpm_event", "mod_mpm_event.so"),
            ("authz_core", "mod_authz_core.so"),
            ("alias", "mod_alias.so"),
            ("env", "mod_env.so"),
            ("cgid", "mod_cgid.so"),
            ("proxy", "mod_proxy.so"),
            ("proxy_fcgi", "mod_proxy_fcgi.so"),
            ("xsendfile", "mod_xsendfile.so"),
        ];
        let load: String = modules
            .iter()
            .map(|(name, file)| {
                format!("LoadModule {name}_module /usr/lib/apache2/modules/{file}\n")
            })
            .collect();
        let user = if effective_uid_is_root() {
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let conf = format!(
            "ServerRoot \"{d}\"\n\
             ServerName 127.0.0.1\n\
             Listen 127.0.0.1:{port}\n\
             PidFile {d}/front.pid\n\
             DefaultRuntimeDir {d}/run\n\
             ScriptSock {d}/run/cgid.sock\n\
             ErrorLog {d}/error.log\n\
             LogLevel warn\n\
             LogFormat \"%h %u \\\"%r\\\" %>s %b\" short\n\
             CustomLog {d}/access.log short\n\
             Timeout 300\n\
             {user}\
             {load}\
             DocumentRoot {d}/empty-root\n\
             Include {d}/forgelet.conf\n",
            port = self.port,
        );
        fs::write(dir.join("apache2.conf"), conf).unwrap();
        if effective_uid_is_root() {
            // Its logs and runtime files are written by the workers too.
            ok(Command::new("chown")
                .args(["-R", "www-data:www-data"])
                .arg(dir.join("run")));
        }
        let bin = std::env::var_os("APACHE_BIN").unwrap_or_else(|| "/usr/sbin/apache2".into());
        let child = Command::new(bin)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .arg("-f")
            .arg(dir.join("apache2.conf"))
            .arg("-DFOREGROUND")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(appending(&server.front_log))
            .spawn()
            .expect("start apache2");
        server.front = Some(child);
        server.wait_for("Apache port", |s| {
            TcpStream::connect(("127.0.0.1", s.port)).is_ok()
        });
    }
}

impl Site {
    /// The shipped lighttpd config with its `var.forgelet.*` values set for this site.
    pub fn lighttpd_snippet(&self) -> String {
        let values = [
            ("base", self.opts.base_path.to_string()),
            ("socket", self.socket.display().to_string()),
            ("repos", self.data_dir.join("repos").display().to_string()),
        ]
        .map(|(name, value)| (format!("var.forgelet.{name} = "), value));
        shipped_with("deploy/lighttpd/forgelet.conf", &values)
    }

    /// Writes lighttpd's config (its own, including the shipped one) and starts it in the
    /// foreground on the site's port.
    fn start_lighttpd(&self, server: &mut Server, dir: &Path, edit: &dyn Fn(String) -> String) {
        let d = dir.display();
        fs::create_dir_all(dir.join("empty-root")).unwrap();
        fs::create_dir_all(dir.join("upload")).unwrap();
        fs::write(dir.join("forgelet.conf"), edit(self.lighttpd_snippet())).unwrap();
        let user = if effective_uid_is_root() {
            // lighttpd opens its error log after leaving root.
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&server.front_log)
                .unwrap();
            ok(Command::new("chown")
                .args(["www-data:www-data"])
                .arg(dir.join("upload"))
                .arg(&server.front_log));
            "server.username = \"www-data\"\nserver.groupname = \"www-data\"\n"
        } else {
            ""
        };
        let conf = format!(
            "server.document-root = \"{d}/empty-root\"\n\
             server.bind = \"127.0.0.1\"\n\
             server.port = {port}\n\
             server.errorlog = \"{d}/error.log\"\n\
             server.pid-file = \"{d}/front.pid\"\n\
             server.upload-dirs = ( \"{d}/upload\" )\n\
             {user}\
             include \"{d}/forgelet.conf\"\n",
            port = self.port,
        );
        fs::write(dir.join("lighttpd.conf"), conf).unwrap();
        let bin = std::env::var_os("LIGHTTPD_BIN").unwrap_or_else(|| "/usr/sbin/lighttpd".into());
        let child = Command::new(bin)
            .arg("-D")
            .arg("-f")
            .arg(dir.join("lighttpd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(appending(&server.front_log))
            .spawn()
            .expect("start lighttpd");
        server.front = Some(child);
        server.wait_for("lighttpd port", |s| {
            TcpStream::connect(("127.0.0.1", s.port)).is_ok()
        });
    }
}

/// `path` opened for appending, as a child's output.
fn appending(path: &Path) -> Stdio {
    Stdio::from(
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap(),
    )
}

/// The shipped config `file` with each line that begins with one of `values`' leads (`Define
/// NAME `, `var.forgelet.NAME = `) set to that lead and its value, quoted. Each lead must begin
/// exactly one line: the config names each value a sysadmin edits once.
fn shipped_with(file: &str, values: &[(String, String)]) -> String {
    let text = fs::read_to_string(Path::new(MANIFEST_DIR).join(file))
        .unwrap_or_else(|e| panic!("read {file}: {e}"));
    for (lead, _) in values {
        let lines = text
            .lines()
            .filter(|l| l.starts_with(lead.as_str()))
            .count();
        assert_eq!(lines, 1, "{file} should have exactly one line `{lead}...`");
    }
    text.lines()
        .map(|line| {
            match values
                .iter()
                .find(|(lead, _)| line.starts_with(lead.as_str()))
            {
                Some((lead, value)) => format!("{lead}\"{value}\""),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn effective_uid_is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A forgelet process [`Site::start_frontends`] starts: its number (from 1), socket and config.
pub struct Frontend {
    pub n: usize,
    pub socket: PathBuf,
    /// The config file's text.
    pub config: String,
}

/// `forgelet serve` with `config`, on the unix socket `socket` (removed first), logging at
/// debug to `log` (appended to: a restarted forgelet's lines follow the killed one's).
fn spawn_forgelet(config: &Path, socket: &Path, stdout: &Path, log: &Path) -> Child {
    let _ = fs::remove_file(socket);
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .arg("--listen")
        .arg(format!("unix:{}", socket.display()))
        .env_remove("FORGELET_CONFIG")
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(appending(stdout))
        .stderr(appending(log))
        .spawn()
        .expect("start forgelet serve")
}

/// A process killed with forgelet: its command line and the files it had open then.
#[derive(Debug)]
pub struct Killed {
    pub command: String,
    pub files: Vec<PathBuf>,
}

/// The pids of the children of process `pid` (of all its threads), their children, and so on.
pub fn descendants_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let tasks = fs::read_dir(format!("/proc/{p}/task"))
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for task in tasks {
            let children = fs::read_to_string(task.join("children")).unwrap_or_default();
            for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                if !out.contains(&c) {
                    out.push(c);
                    todo.push(c);
                }
            }
        }
    }
    out
}

/// Fields of `/proc/PID/stat` after the command's closing parenthesis: state, ppid, pgrp, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The process group of `pid`, if it is there.
fn process_group_of(pid: u32) -> Option<i32> {
    stat_fields(pid)?.get(2)?.parse().ok()
}

/// Whether `pid` exists and is not a zombie.
fn is_running(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s != "Z" && s != "X"))
}

/// Every process (by pid) whose process group is one of `groups`.
fn processes_in_groups(groups: &std::collections::BTreeSet<i32>) -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|p| process_group_of(*p).is_some_and(|g| groups.contains(&g)))
                .collect()
        })
        .unwrap_or_default()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Running forgelet (FastCGI; none when Apache runs it as CGI) and the web server in front of
/// it; both are stopped on drop, logs printed if the test failed.
pub struct Server {
    forgelet: Option<Child>,
    /// More forgelet processes on the same site, and their logs ([`Site::start_frontends`]).
    others: Vec<(Child, PathBuf)>,
    front: Option<Child>,
    pub kind: Front,
    front_pid_file: PathBuf,
    pub forgelet_log: PathBuf,
    pub front_log: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
}

impl Server {
    fn wait_for(&mut self, what: &str, ready: impl Fn(&Server) -> bool) {
        let start = Instant::now();
        loop {
            if ready(self) {
                return;
            }
            for (name, child) in [("forgelet", &mut self.forgelet), ("front", &mut self.front)] {
                if let Some(c) = child {
                    if let Some(status) = c.try_wait().unwrap() {
                        panic!("{name} exited ({status}) while waiting for the {what}");
                    }
                }
            }
            for (c, log) in &mut self.others {
                if let Some(status) = c.try_wait().unwrap() {
                    panic!(
                        "forgelet ({}) exited ({status}) while waiting for the {what}",
                        log.display()
                    );
                }
            }
            if start.elapsed() > Duration::from_secs(15) {
                panic!("timed out waiting for the {what}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics unless the forgelet process is still running (a CGI forgelet has none).
    pub fn assert_forgelet_alive(&mut self, after: &str) {
        for (c, log) in &mut self.others {
            if let Some(status) = c.try_wait().unwrap() {
                panic!(
                    "forgelet ({}) exited ({status}) after {after}",
                    log.display()
                );
            }
        }
        let Some(child) = self.forgelet.as_mut() else {
            return;
        };
        if let Some(status) = child.try_wait().unwrap() {
            panic!("forgelet exited ({status}) after {after}");
        }
    }

    /// Which upstream answered each request nginx logged so far, in order: `(status, upstream
    /// address, method and URI)`; the address is `unix:SOCKET` (`-` when nginx answered alone).
    pub fn upstreams(&self) -> Vec<(u16, String, String)> {
        let log =
            fs::read_to_string(self.front_log.with_file_name("access.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                let mut w = l.splitn(3, ' ');
                let status = w.next()?.parse().ok()?;
                Some((status, w.next()?.to_string(), w.next()?.to_string()))
            })
            .collect()
    }

    /// The forgelet process's id.
    pub fn forgelet_pid(&self) -> u32 {
        self.forgelet.as_ref().unwrap().id()
    }

    /// Kills forgelet outright (SIGKILL) and, at the same moment, every process of its
    /// children's process groups and their descendants: the git it runs for requests (each in a
    /// group of its own, with what it starts, such as index-pack) and the maintenance runs it
    /// starts. As a crash of the whole service leaves things: nobody cleans up. forgelet is
    /// stopped (SIGSTOP) first, so it starts nothing while its children are listed. Returns
    /// the processes listed (forgelet's descendants), once they are all gone.
    pub fn kill_forgelet_and_children(&mut self) -> Vec<Killed> {
        let mut child = self.forgelet.take().expect("a forgelet to kill");
        let pid = child.id() as libc::pid_t;
        // SAFETY: kill(2) and getpgrp(2) with plain integers; no memory is involved.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let own_group = unsafe { libc::getpgrp() };
        let mut descendants = descendants_of(pid as u32);
        let groups: std::collections::BTreeSet<i32> = descendants
            .iter()
            .filter_map(|p| process_group_of(*p))
            .filter(|g| *g != own_group && *g > 1)
            .collect();
        let killed: Vec<Killed> = descendants
            .iter()
            .map(|p| Killed {
                command: fs::read(format!("/proc/{p}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                    .unwrap_or_default(),
                files: fs::read_dir(format!("/proc/{p}/fd"))
                    .map(|d| {
                        d.flatten()
                            .filter_map(|e| fs::read_link(e.path()).ok())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect();
        for g in &groups {
            // SAFETY: as above; a negative pid names the process group.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
        for p in &descendants {
            // SAFETY: as above.
            unsafe { libc::kill(*p as libc::pid_t, libc::SIGKILL) };
        }
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = child.wait();
        // Whatever was in those groups and not listed (started in the instant before) is gone
        // too; wait until none of them runs (a killed process is a zombie until its new parent
        // reaps it).
        for p in processes_in_groups(&groups) {
            if !descendants.contains(&p) {
                descendants.push(p);
            }
        }
        let until = Instant::now() + Duration::from_secs(10);
        while descendants.iter().any(|p| is_running(*p)) {
            assert!(
                Instant::now() < until,
                "processes still running 10 s after SIGKILL: {descendants:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        killed
    }

    /// Starts forgelet again on the same site and socket after
    /// [`Server::kill_forgelet_and_children`]; the web server keeps running. Its log goes on in
    /// the same file.
    pub fn restart_forgelet(&mut self, site: &Site) {
        assert!(self.forgelet.is_none(), "forgelet is still running");
        site.spawn_forgelet(self);
    }

    /// The most memory forgelet has used so far (its peak resident set, VmHWM), in MiB.
    pub fn forgelet_peak_mib(&self) -> u64 {
        let status = fs::read_to_string(format!("/proc/{}/status", self.forgelet_pid())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib / 1024
    }

    /// The most memory any process of the web server (its parent or a worker) has used so far
    /// (peak resident set, VmHWM), in MiB.
    pub fn front_peak_mib(&self) -> u64 {
        let parent = self.front.as_ref().unwrap().id();
        let mut pids = vec![parent];
        let children = fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap_or_default();
        pids.extend(
            children
                .split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok()),
        );
        pids.iter()
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
            .max()
            .unwrap_or(0)
            / 1024
    }

    /// Text forgelet wrote to stderr so far (as a CGI program: the lines Apache logged for it).
    pub fn forgelet_stderr(&self) -> String {
        if self.kind == Front::ApacheCgi {
            let log = fs::read_to_string(&self.front_log).unwrap_or_default();
            return log
                .lines()
                .filter(|l| l.contains("AH01215"))
                .collect::<Vec<_>>()
                .join("\n");
        }
        fs::read_to_string(&self.forgelet_log).unwrap_or_default()
    }

    /// One HTTP request through nginx.
    pub fn http(&self, method: &str, target: &[u8], headers: &[(&str, &str)]) -> Response {
        http_request(self.port, method, target, headers)
    }

    /// A request with a body through nginx.
    pub fn http_body(
        &self,
        method: &str,
        target: &[u8],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        http_request_body(self.port, method, target, headers, body)
    }

    /// `GET` through nginx.
    pub fn get(&self, target: &str) -> Response {
        self.http("GET", target.as_bytes(), &[])
    }

    /// One request straight at forgelet's FastCGI socket.
    pub fn fcgi(&self, method: &str, target: &[u8], headers: &[(&str, &[u8])]) -> Response {
        let params = cgi_params(method, target, headers, self.port, None);
        let what = format!("FastCGI {method} {}", String::from_utf8_lossy(target));
        let mut stream = fcgi_connect(&self.socket);
        stream
            .write_all(&fcgi_request_bytes(1, false, &params, b""))
            .unwrap();
        let reply = fcgi_read_reply(&mut stream, 1).unwrap_or_else(|e| panic!("{what}: {e}"));
        parse_cgi(&reply.stdout, &what).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Ends the test's use of the server: forgelet must still be running and must not have
    /// logged a panic.
    pub fn finish(mut self) {
        self.assert_forgelet_alive("the test");
        let log = self.forgelet_stderr();
        assert!(!log.contains("panicked"), "forgelet logged a panic:\n{log}");
        for (_, path) in &self.others {
            let log = fs::read_to_string(path).unwrap_or_default();
            assert!(
                !log.contains("panicked"),
                "forgelet ({}) logged a panic:\n{log}",
                path.display()
            );
        }
        // The web server logs what went wrong between it and forgelet (a broken FastCGI
        // answer, a sendfile header naming a missing file) at level error or worse. Apache
        // logs a CGI program's stderr (AH01215) at level error too: that is forgelet's own log.
        let front = fs::read_to_string(&self.front_log).unwrap_or_default();
        let levels: &[&str] = match self.kind {
            Front::Nginx => &["[error]", "[crit]", "[alert]", "[emerg]"],
            Front::ApacheFcgi | Front::ApacheCgi => &[":error]", ":crit]", ":alert]", ":emerg]"],
            // lighttpd's log has no levels: anything but starting and stopping is a problem.
            Front::Lighttpd => &[""],
        };
        let bad: Vec<&str> = front
            .lines()
            .filter(|l| levels.iter().any(|lvl| l.contains(lvl)) && !l.contains("AH01215"))
            .filter(|l| !(l.contains("server started") || l.contains("server stopped")))
            .collect();
        assert!(
            bad.is_empty(),
            "the web server ({:?}) logged errors:\n{}",
            self.kind,
            bad.join("\n")
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut front) = self.front.take() {
            // TERM to the master (nginx, Apache's parent) stops its workers too; SIGKILL would
            // orphan them.
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(front.id().to_string())
                .status();
            let start = Instant::now();
            while front.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(5) {
                    let _ = front.kill();
                    let _ = front.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = fs::remove_file(&self.front_pid_file);
        }
        if let Some(mut forgelet) = self.forgelet.take() {
            let _ = forgelet.kill();
            let _ = forgelet.wait();
        }
        for (c, _) in &mut self.others {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let logs = [
                ("web server error log", &self.front_log),
                ("forgelet stderr", &self.forgelet_log),
            ];
            let others = self.others.iter().map(|(_, log)| ("forgelet stderr", log));
            for (name, path) in logs.into_iter().chain(others) {
                let text = fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(150)..];
                eprintln!(
                    "----- {name} ({}), last {} lines -----\n{}",
                    path.display(),
                    tail.len(),
                    tail.join("\n")
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// An HTTP answer, from nginx or parsed from forgelet's CGI/FastCGI output.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Status, headers and the start of the body, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = format!("status {}\n", self.status);
        for (k, v) in &self.headers {
            let _ = writeln!(s, "{k}: {v}");
        }
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]).into_owned();
        let _ = write!(s, "body ({} bytes): {body:?}", self.body.len());
        s
    }
}

/// Parses a CGI response (`Status:` header optional, then headers, blank line, body).
pub fn parse_cgi(raw: &[u8], what: &str) -> Result<Response, String> {
    let (head, body) = split_head(raw).ok_or_else(|| {
        format!(
            "{what}: no end of headers in {:?}",
            String::from_utf8_lossy(raw)
        )
    })?;
    let head = String::from_utf8(head.to_vec())
        .map_err(|_| format!("{what}: headers are not UTF-8: {head:?}"))?;
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.lines() {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("{what}: bad header line {line:?}"))?;
        let v = v.trim().to_string();
        if k.eq_ignore_ascii_case("Status") {
            status = v
                .get(..3)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("{what}: bad Status {v:?}"))?;
        } else {
            headers.push((k.to_string(), v));
        }
    }
    if status == 200
        && headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("Location"))
    {
        status = 302;
    }
    Ok(Response {
        status,
        headers,
        body: body.to_vec(),
    })
}

/// Splits at the first blank line (`\r\n\r\n` or `\n\n`).
fn split_head(raw: &[u8]) -> Option<(&[u8], &[u8])> {
    let crlf = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let (i, n) = match (crlf, lf) {
        (Some(a), Some(b)) => {
            if a.0 <= b.0 {
                a
            } else {
                b
            }
        }
        (a, b) => a.or(b)?,
    };
    Some((&raw[..i], &raw[i + n..]))
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 client

/// Sends one request (the target is sent byte for byte, unnormalized) and reads the answer.
pub fn http_request(port: u16, method: &str, target: &[u8], headers: &[(&str, &str)]) -> Response {
    http_request_body(port, method, target, headers, b"")
}

/// One HTTP/1.1 request with a body (`Content-Length` added when the body is not empty).
pub fn http_request_body(
    port: u16,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    http_on(stream, port, method, target, headers, body)
}

/// One HTTP/1.1 request on a stream already connected to nginx on `port`.
pub fn http_on(
    mut stream: TcpStream,
    port: u16,
    method: &str,
    target: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let what = format!("{method} {}", String::from_utf8_lossy(target));
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\n");
    let _ = write!(
        req,
        "Host: 127.0.0.1:{port}\r\nUser-Agent: forgelet-tests\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    if !body.is_empty() {
        let _ = write!(req, "Content-Length: {}\r\n", body.len());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body);
    // A server may answer (413) and close before the whole body is taken.
    let _ = stream.write_all(&req);
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        panic!(
            "{what}: reading the answer failed after {} bytes: {e}",
            raw.len()
        );
    }
    let (head, rest) = split_head(&raw).unwrap_or_else(|| {
        panic!(
            "{what}: no end of headers in {:?}",
            String::from_utf8_lossy(&raw)
        )
    });
    let head = String::from_utf8_lossy(head).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let chunked = resp
        .header("Transfer-Encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    resp.body = if method == "HEAD" {
        // Whatever came after the headers: must be nothing.
        rest.to_vec()
    } else if chunked {
        dechunk(rest).unwrap_or_else(|| panic!("{what}: bad chunked body"))
    } else {
        rest.to_vec()
    };
    if let (false, false, Some(len)) = (method == "HEAD", chunked, resp.header("Content-Length")) {
        let len: usize = len.parse().unwrap();
        assert_eq!(
            resp.body.len(),
            len,
            "{what}: body length differs from Content-Length"
        );
    }
    resp
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// CGI variables (shared by the CGI runner and the FastCGI client)

/// The variables nginx's `fastcgi_params` would send for this request, as bytes.
pub fn cgi_params(
    method: &str,
    target: &[u8],
    headers: &[(&str, &[u8])],
    port: u16,
    content_length: Option<usize>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &b""[..]),
    };
    let port_s = port.to_string();
    let length = content_length.map(|n| n.to_string()).unwrap_or_default();
    let mut p: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"QUERY_STRING".to_vec(), query.to_vec()),
        (b"REQUEST_METHOD".to_vec(), method.as_bytes().to_vec()),
        (b"CONTENT_TYPE".to_vec(), Vec::new()),
        (b"CONTENT_LENGTH".to_vec(), length.into_bytes()),
        (b"SCRIPT_NAME".to_vec(), path.to_vec()),
        (b"REQUEST_URI".to_vec(), target.to_vec()),
        (b"DOCUMENT_URI".to_vec(), path.to_vec()),
        (b"DOCUMENT_ROOT".to_vec(), b"/nonexistent".to_vec()),
        (b"SERVER_PROTOCOL".to_vec(), b"HTTP/1.1".to_vec()),
        (b"REQUEST_SCHEME".to_vec(), b"http".to_vec()),
        (b"GATEWAY_INTERFACE".to_vec(), b"CGI/1.1".to_vec()),
        (b"SERVER_SOFTWARE".to_vec(), b"forgelet-tests".to_vec()),
        (b"REMOTE_ADDR".to_vec(), b"127.0.0.1".to_vec()),
        (b"REMOTE_PORT".to_vec(), b"40000".to_vec()),
        (b"SERVER_ADDR".to_vec(), b"127.0.0.1".to_vec()),
        (b"SERVER_PORT".to_vec(), port_s.clone().into_bytes()),
        (b"SERVER_NAME".to_vec(), b"localhost".to_vec()),
        (
            b"HTTP_HOST".to_vec(),
            format!("127.0.0.1:{port_s}").into_bytes(),
        ),
        (b"HTTP_USER_AGENT".to_vec(), b"forgelet-tests".to_vec()),
    ];
    for (k, v) in headers {
        let name = format!("HTTP_{}", k.to_ascii_uppercase().replace('-', "_"));
        p.push((name.into_bytes(), v.to_vec()));
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Raw FastCGI client (records built by hand, as in the FastCGI 1.0 specification)

pub const FCGI_BEGIN_REQUEST: u8 = 1;
pub const FCGI_ABORT_REQUEST: u8 = 2;
pub const FCGI_END_REQUEST: u8 = 3;
pub const FCGI_PARAMS: u8 = 4;
pub const FCGI_STDIN: u8 = 5;
pub const FCGI_STDOUT: u8 = 6;
pub const FCGI_STDERR: u8 = 7;
pub const FCGI_GET_VALUES: u8 = 9;
pub const FCGI_GET_VALUES_RESULT: u8 = 10;
pub const FCGI_UNKNOWN_TYPE: u8 = 11;

/// Connects to the socket with read and write timeouts.
pub fn fcgi_connect(socket: &Path) -> UnixStream {
    let s =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connect {}: {e}", socket.display()));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// One record: 8-byte header, content, padding to a multiple of 8.
pub fn fcgi_record(rtype: u8, id: u16, content: &[u8]) -> Vec<u8> {
    assert!(content.len() <= 0xffff);
    let len = content.len() as u16;
    let pad = (8 - content.len() % 8) % 8;
    let mut r = vec![
        1,
        rtype,
        (id >> 8) as u8,
        id as u8,
        (len >> 8) as u8,
        len as u8,
        pad as u8,
        0,
    ];
    r.extend_from_slice(content);
    r.resize(r.len() + pad, 0);
    r
}

/// A name-value pair in FastCGI's length-prefixed encoding.
pub fn fcgi_nv(name: &[u8], value: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 128 {
            out.push(n as u8);
        } else {
            out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
        }
    }
    let mut out = Vec::new();
    len(&mut out, name.len());
    len(&mut out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
    out
}

/// FCGI_BEGIN_REQUEST for the responder role.
pub fn fcgi_begin(id: u16, keep_conn: bool) -> Vec<u8> {
    fcgi_record(
        FCGI_BEGIN_REQUEST,
        id,
        &[0, 1, u8::from(keep_conn), 0, 0, 0, 0, 0],
    )
}

/// A stream (PARAMS or STDIN) split into records, ended by an empty record.
pub fn fcgi_stream(rtype: u8, id: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(0xfff8) {
        out.extend(fcgi_record(rtype, id, chunk));
    }
    out.extend(fcgi_record(rtype, id, b""));
    out
}

/// The encoded PARAMS stream content (without records).
pub fn fcgi_params_content(params: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    params.iter().flat_map(|(k, v)| fcgi_nv(k, v)).collect()
}

/// A whole request: BEGIN_REQUEST, PARAMS, STDIN.
pub fn fcgi_request_bytes(
    id: u16,
    keep_conn: bool,
    params: &[(Vec<u8>, Vec<u8>)],
    stdin: &[u8],
) -> Vec<u8> {
    let mut out = fcgi_begin(id, keep_conn);
    out.extend(fcgi_stream(FCGI_PARAMS, id, &fcgi_params_content(params)));
    out.extend(fcgi_stream(FCGI_STDIN, id, stdin));
    out
}

/// One record read from a stream: type, request id, content.
pub fn fcgi_read_record(stream: &mut impl Read) -> std::io::Result<(u8, u16, Vec<u8>)> {
    let mut h = [0u8; 8];
    stream.read_exact(&mut h)?;
    if h[0] != 1 {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("record with version {}", h[0]),
        ));
    }
    let id = u16::from_be_bytes([h[2], h[3]]);
    let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let mut content = vec![0u8; len + usize::from(h[6])];
    stream.read_exact(&mut content)?;
    content.truncate(len);
    Ok((h[1], id, content))
}

/// What a responder sent for one request.
pub struct FcgiReply {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub app_status: u32,
    pub protocol_status: u8,
}

/// Reads records until the END_REQUEST of request `id`.
pub fn fcgi_read_reply(stream: &mut impl Read, id: u16) -> Result<FcgiReply, String> {
    let mut reply = FcgiReply {
        stdout: Vec::new(),
        stderr: Vec::new(),
        app_status: 0,
        protocol_status: 0,
    };
    loop {
        let (t, rid, content) = fcgi_read_record(stream).map_err(|e| {
            format!(
                "FastCGI reply broken after {} stdout bytes: {e}",
                reply.stdout.len()
            )
        })?;
        if rid != id {
            return Err(format!(
                "record of type {t} for request {rid}, expected {id}"
            ));
        }
        match t {
            FCGI_STDOUT => reply.stdout.extend_from_slice(&content),
            FCGI_STDERR => reply.stderr.extend_from_slice(&content),
            FCGI_END_REQUEST => {
                if content.len() < 8 {
                    return Err("short END_REQUEST".into());
                }
                reply.app_status =
                    u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                reply.protocol_status = content[4];
                return Ok(reply);
            }
            other => return Err(format!("unexpected record type {other}")),
        }
    }
}

/// Writes `bytes`, then closes the connection without waiting for an answer.
pub fn fcgi_send_and_close(socket: &Path, bytes: &[u8]) {
    let mut s = fcgi_connect(socket);
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Both);
}

/// Writes `bytes`, then reads whatever comes back until the peer closes or `wait` passes.
pub fn fcgi_send_and_drain(socket: &Path, bytes: &[u8], wait: Duration) -> Vec<u8> {
    let mut s = fcgi_connect(socket);
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(wait)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let start = Instant::now();
    while start.elapsed() < wait {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Sets a file's permission bits (e.g. 0o755 for a hook script).
pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Repositories made by a test

/// Makes `owner_repo` on the site from a work tree's commits (a bare clone imported with
/// `forgelet repo import`, its owner added first); returns the repository's path on the site.
pub fn import_work_tree(site: &Site, work: &Path, owner_repo: &str) -> PathBuf {
    let bare = site
        .dir()
        .join(format!("bare-{}", owner_repo.replace('/', "-")));
    git_ok(
        site.dir(),
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    site.ensure_user(owner_repo.split('/').next().unwrap());
    ok(site
        .forgelet()
        .args(["repo", "import", owner_repo])
        .arg(&bare));
    site.repo_path(owner_repo)
}

// ---------------------------------------------------------------------------------------------
// Browsers and clients from other addresses

/// A browser's cookie jar, just enough for these tests.
#[derive(Default)]
pub struct Browser {
    pub cookies: Vec<(String, String)>,
    /// The local address requests come from (127.0.0.1 unless set).
    pub from: Option<String>,
}

impl Browser {
    pub fn header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Takes the `Set-Cookie` headers of a response (a `Max-Age=0` deletes).
    pub fn take(&mut self, r: &Response) {
        for (k, v) in &r.headers {
            if !k.eq_ignore_ascii_case("Set-Cookie") {
                continue;
            }
            let first = v.split(';').next().unwrap_or_default();
            let Some((name, value)) = first.split_once('=') else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != name);
            if !v.contains("Max-Age=0") {
                self.cookies.push((name.to_string(), value.to_string()));
            }
        }
    }

    pub fn get(&mut self, srv: &Server, target: &str) -> Response {
        let cookie = self.header();
        let mut h = Vec::new();
        if !cookie.is_empty() {
            h.push(("Cookie", cookie.as_str()));
        }
        let r = self.request(srv, "GET", target, &h, b"");
        self.take(&r);
        r
    }

    pub fn post(&mut self, srv: &Server, target: &str, form: &[(&str, &str)]) -> Response {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        let cookie = self.header();
        let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if !cookie.is_empty() {
            h.push(("Cookie", cookie.as_str()));
        }
        let r = self.request(srv, "POST", target, &h, body.as_bytes());
        self.take(&r);
        r
    }

    fn request(
        &self,
        srv: &Server,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let stream = match &self.from {
            Some(addr) => tcp_from(addr, srv.port),
            None => TcpStream::connect(("127.0.0.1", srv.port)).unwrap(),
        };
        http_on(stream, srv.port, method, target.as_bytes(), headers, body)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &Response) -> String {
    let text = page.text();
    let at = text
        .find("name=\"csrf\" value=\"")
        .unwrap_or_else(|| panic!("no csrf field in:\n{text}"));
    let rest = &text[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// A TCP connection to nginx on `port` (on 127.0.0.1) from the local address `source` (any of
/// 127.0.0.0/8 is this host on Linux), so per-address limits see distinct clients.
pub fn tcp_from(source: &str, port: u16) -> TcpStream {
    tcp_from_with(source, port, None)
}

/// [`tcp_from`], with the socket's receive buffer set to `rcvbuf` bytes before it connects (a
/// small one makes a client that stops reading stall the sender at once).
pub fn tcp_from_with(source: &str, port: u16, rcvbuf: Option<i32>) -> TcpStream {
    use std::os::fd::FromRawFd;
    let src: std::net::Ipv4Addr = source.parse().expect("an IPv4 source address");
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor this function owns until it is handed to
    // TcpStream; the addresses are valid sockaddr_in values that live across the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        if let Some(size) = rcvbuf {
            let rc = libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &size as *const i32 as *const libc::c_void,
                std::mem::size_of::<i32>() as libc::socklen_t,
            );
            assert_eq!(rc, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
        }
        let from = sockaddr(src, 0);
        let rc = libc::bind(fd, &from as *const _ as *const libc::sockaddr, len);
        assert_eq!(rc, 0, "bind {source}: {}", std::io::Error::last_os_error());
        let to = sockaddr(std::net::Ipv4Addr::LOCALHOST, port);
        let rc = libc::connect(fd, &to as *const _ as *const libc::sockaddr, len);
        assert_eq!(
            rc,
            0,
            "connect from {source}: {}",
            std::io::Error::last_os_error()
        );
        TcpStream::from_raw_fd(fd)
    }
}

/// Signs `user` (password [`TEST_PASSWORD`]) in with the web form.
pub fn sign_in_as(site: &Site, srv: &Server, b: &mut Browser, user: &str) {
    let form = b.get(srv, &site.target("/-/login"));
    let csrf = csrf_of(&form);
    let r = b.post(
        srv,
        &site.target("/-/login"),
        &[("csrf", &csrf), ("user", user), ("password", TEST_PASSWORD)],
    );
    assert_eq!(r.status, 303, "{user} signs in: {}", r.describe());
}

// ---------------------------------------------------------------------------------------------
// Sites started for one test

/// A running site: the server is declared first so it stops before the files are removed.
pub struct Running {
    pub srv: Server,
    pub site: Site,
}

/// A site with the fixture `fixture` imported as `alice/{fixture}`, started; and the
/// repository's path.
pub fn start_with_fixture(test: &str, fixture: &str, opts: SiteOptions) -> (Running, PathBuf) {
    let site = Site::new(test, opts);
    let repo = site.import_fixture(fixture, &format!("alice/{fixture}"));
    let srv = site.start();
    (Running { srv, site }, repo)
}

// ---------------------------------------------------------------------------------------------
// Clones and the repositories they come from

/// Every branch and tag of the server repository is in the clone, with the same object, and
/// nothing else is.
pub fn assert_clone_matches(repo: &Path, clone: &Path) {
    let want: Vec<(String, String)> = refs_of(repo)
        .into_iter()
        .filter(|(r, _)| r.starts_with("refs/heads/") || r.starts_with("refs/tags/"))
        .collect();
    let got: Vec<(String, String)> = refs_of(clone)
        .into_iter()
        .filter_map(|(r, oid)| {
            if let Some(b) = r.strip_prefix("refs/remotes/origin/") {
                (b != "HEAD").then(|| (format!("refs/heads/{b}"), oid))
            } else if r.starts_with("refs/tags/") {
                Some((r, oid))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(got, want, "refs of the clone differ from the server's");
    let fsck = run(git(clone).args(["fsck", "--full", "--strict", "--no-progress"]));
    assert!(
        fsck.status.success(),
        "git fsck of the clone: {}",
        all_output(&fsck)
    );
}

/// Adds history straight into the server's bare repository with git plumbing (no
/// `update-server-info`): a commit on main, an annotated tag, a new branch, one branch deleted.
pub fn add_history_on_server(repo: &Path) {
    let blob = run_with_stdin(
        git(repo).args(["hash-object", "-w", "--stdin"]),
        b"added on the server\n",
    );
    assert!(blob.status.success());
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = run_with_stdin(
        git(repo).arg("mktree"),
        format!("100644 blob {}\tadded.txt\n", blob.trim()).as_bytes(),
    );
    assert!(tree.status.success(), "{}", all_output(&tree));
    let tree = String::from_utf8(tree.stdout).unwrap();
    let parent = run(git(repo).args(["rev-parse", "-q", "--verify", "refs/heads/main^{commit}"]));
    let mut args = vec!["commit-tree".to_string(), tree.trim().to_string()];
    if parent.status.success() {
        args.push("-p".into());
        args.push(String::from_utf8(parent.stdout).unwrap().trim().to_string());
    }
    args.push("-m".into());
    args.push("added on the server".into());
    let commit = git_ok(repo, &args).trim().to_string();
    let refs = refs_of(repo);
    let to_delete = refs
        .keys()
        .find(|r| r.starts_with("refs/heads/") && r.as_str() != "refs/heads/main")
        .cloned();
    git_ok(repo, &["update-ref", "refs/heads/main", &commit]);
    git_ok(
        repo,
        &["update-ref", "refs/heads/server/new-branch", &commit],
    );
    git_ok(
        repo,
        &[
            "tag",
            "-a",
            "-m",
            "tagged on the server",
            "v9.9-server",
            &commit,
        ],
    );
    if let Some(r) = to_delete {
        git_ok(repo, &["update-ref", "-d", &r]);
    }
}

/// `r` may not be cached (`what` names it in the message).
pub fn assert_no_cache(r: &Response, what: &str) {
    let cc = r
        .header("Cache-Control")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        cc.contains("no-cache") || cc.contains("no-store") || cc.contains("max-age=0"),
        "{what}: expected Cache-Control no-cache, got {cc:?}"
    );
}

/// The largest pack of `repo` (over 100 bytes), as a path below the repository.
pub fn largest_pack(repo: &Path) -> String {
    let mut best = (0, String::new());
    for e in fs::read_dir(repo.join("objects/pack")).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let len = e.metadata().unwrap().len();
        if name.ends_with(".pack") && len > best.0 {
            best = (len, format!("objects/pack/{name}"));
        }
    }
    assert!(best.0 > 100, "no pack over 100 bytes in {}", repo.display());
    best.1
}

/// The pack and one loose object of `repo`, as paths below the repository.
pub fn object_paths(repo: &Path) -> Vec<String> {
    let mut out = vec![largest_pack(repo)];
    for entry in fs::read_dir(repo.join("objects")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.len() == 2 {
            let dir = repo.join("objects").join(&name);
            if let Some(f) = fs::read_dir(&dir).unwrap().next() {
                let f = f.unwrap().file_name().into_string().unwrap();
                out.push(format!("objects/{name}/{f}"));
                break;
            }
        }
    }
    assert_eq!(
        out.len(),
        2,
        "the mixed fixture has a pack and loose objects"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Smart HTTP clients and the git processes a request leaves

/// `git` that may use the smart protocol (the harness's `git` forces dumb HTTP).
pub fn smart_git(dir: &Path) -> Command {
    let mut c = git(dir);
    c.env_remove("GIT_SMART_HTTP");
    c
}

/// Processes that use `repo`: named on their command line, or working inside it (index-pack
/// does not name the repository).
pub fn processes_in(repo: &Path) -> Vec<String> {
    let needle = repo.display().to_string();
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().into_string().unwrap_or_default();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmd = fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let cwd = fs::read_link(entry.path().join("cwd")).unwrap_or_default();
        if cmd.contains(&needle) || cwd.starts_with(repo) {
            out.push(format!("{name} (cwd {}): {cmd}", cwd.display()));
        }
    }
    out
}

/// Waits up to `secs` for no process to use `repo`.
pub fn assert_no_process_left(repo: &Path, secs: u64, what: &str) {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = processes_in(repo);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < until,
            "{what}: processes left:\n{}",
            left.join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Makes `repo` hold a commit with a large incompressible file, so a clone takes a while.
pub fn add_big_commit(repo: &Path, bytes: usize) {
    let mut data = Vec::with_capacity(bytes);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < bytes {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let blob = run_with_stdin(git(repo).args(["hash-object", "-w", "--stdin"]), &data);
    assert!(blob.status.success());
    let blob = String::from_utf8(blob.stdout).unwrap();
    let tree = run_with_stdin(
        git(repo).arg("mktree"),
        format!("100644 blob {}\tbig.bin\n", blob.trim()).as_bytes(),
    );
    let tree = String::from_utf8(tree.stdout).unwrap();
    let head = git_ok(repo, &["rev-parse", "HEAD"]);
    let commit = git_ok(
        repo,
        &["commit-tree", tree.trim(), "-p", head.trim(), "-m", "big"],
    );
    git_ok(repo, &["update-ref", "refs/heads/main", commit.trim()]);
}

/// The pack cache's counts for the whole site (`repos/.cache/counters`): fetches answered from
/// the cache, by git with the answer written for it, by git alone, and answers stored.
pub fn pack_cache_counts(site: &Site) -> [u64; 4] {
    pack_cache_counts_in(&site.data_dir.join("repos/.cache"))
}

/// The counts of the pack cache whose folder is `dir` (`[pack_cache] dir`), as
/// [`pack_cache_counts`].
pub fn pack_cache_counts_in(dir: &Path) -> [u64; 4] {
    let bytes = fs::read(dir.join("counters")).unwrap_or_default();
    let mut c = [0u64; 4];
    for (i, v) in c.iter_mut().enumerate() {
        if let Some(b) = bytes.get(i * 8..i * 8 + 8) {
            *v = u64::from_le_bytes(b.try_into().unwrap());
        }
    }
    c
}

/// The pack cache's counters once `done` says they are there, or as they are after 10 s. A hit
/// is counted when forgelet's answer is written, and nginx may have sent the entry (it needs
/// only the headers) and the client finished before that: a test reading the counters right
/// after its fetch could see them a step behind.
pub fn pack_cache_counts_when(site: &Site, done: impl Fn(&[u64; 4]) -> bool) -> [u64; 4] {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let c = pack_cache_counts(site);
        if done(&c) || std::time::Instant::now() >= until {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `Basic base64(name:secret)`.
pub fn basic(name: &str, secret: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("{name}:{secret}").into_bytes();
    let mut out = String::from("Basic ");
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `len` bytes from a seeded xorshift generator: incompressible (a push is as large on the
/// wire as on disk), the same every run for a `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `git fsck --full` of `repo` finds nothing wrong (dangling objects, which pushes and
/// force-pushes leave, are not wrong); `what` names the repository and the moment for the
/// failure's message.
pub fn assert_fsck(repo: &Path, what: &str) {
    let out = run(git(repo).args(["fsck", "--full", "--no-dangling", "--no-progress"]));
    let text = all_output(&out);
    assert!(
        out.status.success() && text.trim().is_empty(),
        "git fsck --full of {what} ({}, {}):\n{text}",
        repo.display(),
        out.status
    );
}
