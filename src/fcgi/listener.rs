//! Where connections come from: a socket handed over by systemd or by spawn-fcgi / mod_fcgid on
//! fd 0, or one we bind ourselves from a `--listen` spec (`unix:PATH` or `HOST:PORT`).

use std::ffi::{CString, OsStr};
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::sys::{cvt, set_cloexec, socklen_of, Sock};

/// Where to listen, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenSpec {
    /// A unix socket; `group` (a name or a number), when set, gets the socket file (mode 0660).
    Unix {
        path: PathBuf,
        group: Option<String>,
    },
    /// "HOST:PORT"; IPv6 hosts in brackets.
    Tcp(String),
}

/// Why a listen spec was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpecError {
    spec: String,
    why: &'static str,
}

impl fmt::Display for ListenSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad listen address {:?}: {} (expected unix:/path/to.sock, 127.0.0.1:9000 or [::1]:9000)",
            self.spec, self.why
        )
    }
}

impl std::error::Error for ListenSpecError {}

impl FromStr for ListenSpec {
    type Err = ListenSpecError;

    fn from_str(s: &str) -> Result<ListenSpec, ListenSpecError> {
        let err = |why| ListenSpecError {
            spec: s.to_string(),
            why,
        };
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(err("the unix socket path is empty"));
            }
            if path.contains('\0') {
                return Err(err("the unix socket path contains a NUL byte"));
            }
            return Ok(ListenSpec::Unix {
                path: PathBuf::from(path),
                group: None,
            });
        }
        let Some((host, port)) = s.rsplit_once(':') else {
            return Err(err("no port"));
        };
        if port.is_empty()
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(err("the port is not a number from 0 to 65535"));
        }
        if host.is_empty() {
            return Err(err("no host"));
        }
        if let Some(inner) = host.strip_prefix('[') {
            match inner.strip_suffix(']') {
                Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => {}
                _ => return Err(err("not an IPv6 address in brackets")),
            }
        } else if host.contains(':') {
            return Err(err("put an IPv6 address in brackets, e.g. [::1]:9000"));
        } else if host.contains(['/', ' ', '[', ']']) {
            return Err(err("not a host name or address"));
        }
        Ok(ListenSpec::Tcp(s.to_string()))
    }
}

impl fmt::Display for ListenSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenSpec::Unix { path, .. } => write!(f, "unix:{}", path.display()),
            ListenSpec::Tcp(addr) => f.write_str(addr),
        }
    }
}

/// A socket file we created, remembered by inode so we never remove a successor's socket.
#[derive(Debug)]
struct CreatedSocket {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

/// A listening unix or TCP socket, close-on-exec. Dropping it closes the socket and removes the
/// socket file if [`Listener::bind`] created it.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    created: Option<CreatedSocket>,
    what: String,
}

/// True when `fd` is a socket in the listening state.
fn is_listening(fd: RawFd) -> bool {
    let mut val: libc::c_int = 0;
    let mut len = socklen_of::<libc::c_int>();
    // SAFETY: passes a pointer to a live c_int and its size; a non-socket fd gives ENOTSOCK.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut val as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    r == 0 && val != 0
}

/// True when fd 0 is a listening socket (getsockopt SO_ACCEPTCONN), i.e. we were started by
/// spawn-fcgi or mod_fcgid. Ask before [`Listener::inherited`], which moves the socket off fd 0.
pub fn fd0_is_listening_socket() -> bool {
    is_listening(0)
}

/// How many sockets systemd passed to this process (0 unless LISTEN_PID names us).
fn systemd_fd_count(listen_pid: Option<&OsStr>, listen_fds: Option<&OsStr>, our_pid: u32) -> usize {
    let parse = |v: Option<&OsStr>| {
        v.and_then(|v| v.to_str())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    match (parse(listen_pid), parse(listen_fds)) {
        (Some(pid), Some(n)) if pid == u64::from(our_pid) => usize::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

impl Listener {
    /// The socket handed to us: systemd socket activation (LISTEN_PID is our pid and
    /// LISTEN_FDS >= 1: fd 3, and the LISTEN_* variables are removed so children do not see
    /// them), else fd 0 if it is a listening socket (spawn-fcgi, mod_fcgid). `Ok(None)` when
    /// neither. Both kinds end up close-on-exec, so git children never inherit the socket; the fd
    /// 0 socket is moved to a new fd and fd 0 becomes /dev/null. Call this early, before other
    /// threads run (it changes the environment).
    pub fn inherited() -> io::Result<Option<Listener>> {
        let n = systemd_fd_count(
            std::env::var_os("LISTEN_PID").as_deref(),
            std::env::var_os("LISTEN_FDS").as_deref(),
            std::process::id(),
        );
        if n >= 1 {
            for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
                std::env::remove_var(var);
            }
            const SD_FD: RawFd = 3;
            if !is_listening(SD_FD) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "systemd passed fd 3 but it is not a listening socket (use Accept=no)",
                ));
            }
            set_cloexec(SD_FD)?;
            if n > 1 {
                log::warn!("systemd passed {n} sockets; only the first (fd 3) is used");
            }
            // SAFETY: the socket-activation protocol hands fd 3 to us; it is open (checked above)
            // and nothing else in this process owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(SD_FD) };
            return Ok(Some(Listener {
                fd,
                created: None,
                what: "socket from systemd (fd 3)".to_string(),
            }));
        }
        if !fd0_is_listening_socket() {
            return Ok(None);
        }
        // SAFETY: fcntl has no memory effects; F_DUPFD_CLOEXEC returns a new fd we own.
        let moved = cvt(unsafe { libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3) })?;
        // SAFETY: `moved` was just created by fcntl and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(moved) };
        // Put /dev/null on fd 0: a child given our stdin must not get the listening socket, and
        // fd 0 must stay taken so that a later open() does not land there.
        let devnull = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        // SAFETY: dup2 between two fds that are open; fd 0 is replaced atomically.
        cvt(unsafe { libc::dup2(devnull.as_raw_fd(), 0) })?;
        Ok(Some(Listener {
            fd,
            created: None,
            what: "socket on fd 0".to_string(),
        }))
    }

    /// Binds a listening socket. For a unix socket: a stale socket file is removed first (but
    /// not a live one, and never anything that is not a socket), the mode is 0660 and the group
    /// is `group` if given.
    pub fn bind(spec: &ListenSpec) -> io::Result<Listener> {
        match spec {
            // Errors carry no "cannot listen on ..." prefix: the caller names the address.
            ListenSpec::Tcp(addr) => {
                // std sets SOCK_CLOEXEC and SO_REUSEADDR.
                let l = std::net::TcpListener::bind(addr.as_str())?;
                Ok(Listener {
                    fd: OwnedFd::from(l),
                    created: None,
                    what: addr.clone(),
                })
            }
            ListenSpec::Unix { path, group } => bind_unix(path, group.as_deref()),
        }
    }

    /// Accepts one connection, non-blocking and close-on-exec.
    pub(crate) fn accept(&self) -> io::Result<Sock> {
        // SAFETY: null address pointers are allowed; accept4 returns a new fd or -1.
        let fd = cvt(unsafe {
            libc::accept4(
                self.fd.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        })?;
        // SAFETY: accept4 succeeded, so `fd` is a new descriptor owned by nobody else.
        Ok(Sock::new(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// For log lines: where this listener came from.
    pub fn describe(&self) -> &str {
        &self.what
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let Some(c) = &self.created else { return };
        match fs::symlink_metadata(&c.path) {
            Ok(md) if md.file_type().is_socket() && md.dev() == c.dev && md.ino() == c.ino => {
                if let Err(e) = fs::remove_file(&c.path) {
                    log::warn!("cannot remove socket {}: {e}", c.path.display());
                }
            }
            _ => {}
        }
    }
}

/// The id of a group given by name or number.
pub fn group_id(group: &str) -> io::Result<u32> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let name = CString::new(group)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "group name contains NUL"))?;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: all-zero is a valid `group` (null pointers and zero ids).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: getgrnam_r writes into `grp` and `buf`, whose sizes we pass, and sets `result`.
        let r = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if r == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if r != 0 {
            return Err(io::Error::from_raw_os_error(r));
        }
        if result.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no group named {group:?}"),
            ));
        }
        return Ok(grp.gr_gid);
    }
}

fn bind_unix(path: &Path, group: Option<&str>) -> io::Result<Listener> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    "another process is listening on it",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => fs::remove_file(path)?,
            Err(e) => return Err(e),
        },
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket; refusing to remove it",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }

    // SAFETY: all-zero is a valid sockaddr_un.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).unwrap_or(1);
    let bytes = path.as_os_str().as_bytes();
    // Keep one byte for the terminating NUL.
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the path is longer than {} bytes", addr.sun_path.len() - 1),
        ));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }

    // SAFETY: plain socket creation; returns a new fd or -1.
    let raw =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `raw` is a fresh descriptor owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: passes a pointer to a live sockaddr_un and its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            socklen_of::<libc::sockaddr_un>(),
        )
    })?;
    let md = fs::symlink_metadata(path)?;
    let created = CreatedSocket {
        path: path.to_path_buf(),
        dev: md.dev(),
        ino: md.ino(),
    };
    // From here on a failure must not leave the socket file behind: the Listener's Drop removes it.
    let listener = Listener {
        fd,
        created: Some(created),
        what: format!("unix:{}", path.display()),
    };
    // Mode and group are set before listen(), so nobody can connect while they are still wrong.
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    if let Some(group) = group {
        let gid = group_id(group)?;
        std::os::unix::fs::chown(path, None, Some(gid))?;
    }
    // SAFETY: listen on a bound socket we own.
    cvt(unsafe { libc::listen(listener.raw(), libc::SOMAXCONN) })?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcgi::tests::TempDir;

    #[test]
    fn parses_listen_specs() {
        assert_eq!(
            "unix:/run/forgelet.sock".parse::<ListenSpec>(),
            Ok(ListenSpec::Unix {
                path: PathBuf::from("/run/forgelet.sock"),
                group: None
            })
        );
        for ok in [
            "127.0.0.1:9000",
            "[::1]:9000",
            "localhost:9000",
            "0.0.0.0:0",
        ] {
            assert_eq!(
                ok.parse::<ListenSpec>(),
                Ok(ListenSpec::Tcp(ok.to_string())),
                "{ok}"
            );
        }
        for bad in [
            "",
            "unix:",
            "9000",
            "127.0.0.1",
            "127.0.0.1:",
            ":9000",
            "::1:9000",
            "[::1]",
            "[nope]:80",
            "127.0.0.1:70000",
            "127.0.0.1:http",
            "/run/forgelet.sock",
        ] {
            let e = bad.parse::<ListenSpec>().expect_err(bad);
            assert!(e.to_string().contains("expected unix:"), "{e}");
        }
    }

    #[test]
    fn systemd_fds_only_for_our_pid() {
        let os = |s: &'static str| Some(OsStr::new(s));
        assert_eq!(systemd_fd_count(os("42"), os("1"), 42), 1);
        assert_eq!(systemd_fd_count(os("42"), os("2"), 42), 2);
        assert_eq!(systemd_fd_count(os("41"), os("1"), 42), 0);
        assert_eq!(systemd_fd_count(None, os("1"), 42), 0);
        assert_eq!(systemd_fd_count(os("42"), os("x"), 42), 0);
        assert_eq!(systemd_fd_count(os("42"), None, 42), 0);
    }

    #[test]
    fn bind_unix_mode_stale_socket_and_refusals() {
        let dir = TempDir::new("bind");
        let path = dir.path().join("s.sock");
        let spec = ListenSpec::Unix {
            path: path.clone(),
            group: None,
        };
        let l = Listener::bind(&spec).unwrap();
        assert!(is_listening(l.raw()));
        let md = fs::symlink_metadata(&path).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o660);
        // A live socket is not taken over.
        let e = Listener::bind(&spec).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(l);
        assert!(!path.exists(), "our socket file is removed on drop");
        // A stale socket file (nobody listening) is replaced.
        let stale = std::os::unix::net::UnixListener::bind(dir.path().join("stale.sock")).unwrap();
        drop(stale);
        let stale_spec = ListenSpec::Unix {
            path: dir.path().join("stale.sock"),
            group: None,
        };
        let l2 = Listener::bind(&stale_spec).unwrap();
        drop(l2);
        assert!(!dir.path().join("stale.sock").exists(), "removed on drop");
        // Something that is not a socket is never removed.
        let file = dir.path().join("file");
        fs::write(&file, b"keep me").unwrap();
        let e = Listener::bind(&ListenSpec::Unix {
            path: file.clone(),
            group: None,
        })
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&file).unwrap(), b"keep me");
        // Numeric group of our own.
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let g = ListenSpec::Unix {
            path: dir.path().join("g.sock"),
            group: Some(gid.to_string()),
        };
        let l3 = Listener::bind(&g).unwrap();
        assert_eq!(fs::metadata(dir.path().join("g.sock")).unwrap().gid(), gid);
        drop(l3);
        let long = ListenSpec::Unix {
            path: dir.path().join("x".repeat(200)),
            group: None,
        };
        assert_eq!(
            Listener::bind(&long).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
    }

    fn fd_flags(fd: RawFd) -> (bool, bool) {
        // SAFETY: fcntl queries on our own fd.
        let (fd_flags, fl) = unsafe {
            (
                libc::fcntl(fd, libc::F_GETFD),
                libc::fcntl(fd, libc::F_GETFL),
            )
        };
        (fd_flags & libc::FD_CLOEXEC != 0, fl & libc::O_NONBLOCK != 0)
    }

    #[test]
    fn accepted_sockets_are_cloexec_and_nonblocking() {
        let dir = TempDir::new("accept");
        let path = dir.path().join("a.sock");
        let l = Listener::bind(&ListenSpec::Unix {
            path: path.clone(),
            group: None,
        })
        .unwrap();
        let _client = UnixStream::connect(&path).unwrap();
        let s = l.accept().unwrap();
        assert_eq!(fd_flags(s.raw()), (true, true));
        assert!(fd_flags(l.raw()).0);
    }

    const INHERIT_ENV: &str = "FCGI_TEST_INHERIT_CHILD";

    /// Run in a child process by `inherits_sockets_from_fd0_and_systemd`, whose fd 0 is a
    /// listening socket; it may change its own environment and fds freely.
    #[test]
    #[ignore = "helper: run in a child process by inherits_sockets_from_fd0_and_systemd"]
    fn inherit_child() {
        if std::env::var_os(INHERIT_ENV).is_none() {
            return;
        }
        // spawn-fcgi / mod_fcgid style.
        assert!(fd0_is_listening_socket());
        let l = Listener::inherited().unwrap().expect("fd 0 socket");
        assert!(is_listening(l.raw()));
        assert_ne!(l.raw(), 0);
        assert!(fd_flags(l.raw()).0, "moved socket is close-on-exec");
        assert!(!fd0_is_listening_socket(), "fd 0 is /dev/null now");
        drop(l);
        assert!(Listener::inherited().unwrap().is_none());

        // systemd style: a listening socket on fd 3 without FD_CLOEXEC, LISTEN_PID = us.
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // Leaked on purpose: it may itself be fd 3, which must stay open.
        let tcp_fd = std::os::fd::IntoRawFd::into_raw_fd(tcp);
        // SAFETY: dup2 onto fd 3, which this single-test child process does not otherwise use.
        assert_eq!(unsafe { libc::dup2(tcp_fd, 3) }, 3);
        if tcp_fd != 3 {
            // dup2 leaves the new fd without FD_CLOEXEC, as systemd would pass it.
            // SAFETY: closing the spare descriptor we own.
            unsafe { libc::close(tcp_fd) };
        } else {
            // SAFETY: clearing FD_CLOEXEC on our own fd 3, as systemd would pass it.
            unsafe { libc::fcntl(3, libc::F_SETFD, 0) };
        }
        assert!(!fd_flags(3).0);
        std::env::set_var("LISTEN_PID", "1");
        std::env::set_var("LISTEN_FDS", "1");
        assert!(Listener::inherited().unwrap().is_none(), "not our pid");
        std::env::set_var("LISTEN_PID", std::process::id().to_string());
        std::env::set_var("LISTEN_FDNAMES", "forgelet");
        let l = Listener::inherited().unwrap().expect("systemd socket");
        assert_eq!(l.raw(), 3);
        assert!(fd_flags(3).0, "fd 3 is close-on-exec");
        for var in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            assert!(std::env::var_os(var).is_none(), "{var} unset");
        }
        drop(l);
        // fd 3 that is not a listening socket is refused.
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { libc::dup2(a.as_raw_fd(), 3) }, 3);
        std::env::set_var("LISTEN_PID", std::process::id().to_string());
        std::env::set_var("LISTEN_FDS", "1");
        assert!(Listener::inherited().is_err());
    }

    #[test]
    fn inherits_sockets_from_fd0_and_systemd() {
        let dir = TempDir::new("inherit");
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("i.sock")).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fcgi::listener::tests::inherit_child",
                "--ignored",
            ])
            .args(["--test-threads=1", "--quiet"])
            .env(INHERIT_ENV, "1")
            .env_remove("LISTEN_PID")
            .env_remove("LISTEN_FDS")
            .stdin(std::process::Stdio::from(OwnedFd::from(l)))
            .stdout(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stdout)
        );
    }

    #[test]
    fn tcp_bind_and_fd0_check() {
        let l = Listener::bind(&ListenSpec::Tcp("127.0.0.1:0".into())).unwrap();
        assert!(is_listening(l.raw()));
        // SAFETY: F_GETFD on our own fd.
        let flags = unsafe { libc::fcntl(l.raw(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        // The test harness's stdin is not a listening socket.
        assert!(!fd0_is_listening_socket());
    }
}
