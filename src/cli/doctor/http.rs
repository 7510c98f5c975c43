//! doctor's HTTP client, a client as git is one: the URL it checks, a small HTTP/1.1 client over
//! a plain TCP connection for `http://`, and the `curl` program for `https://` (forgelet has no
//! TLS of its own). Each answer keeps the times of its first byte and of its last.

use std::fs;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one exchange may take before doctor gives up on it.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The URL doctor checks: where forgelet's root is, as a client reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Url {
    pub(super) https: bool,
    /// As written, without brackets for an IPv6 address.
    pub(super) host: String,
    pub(super) port: u16,
    /// `""` or `/seg...`, no trailing slash.
    pub(super) base_path: String,
}

impl Url {
    /// `http[s]://host[:port][/path]`.
    pub(super) fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(r) = text.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = text.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!(
                "{text:?} is not an http:// or https:// URL (give forgelet's root, e.g. https://git.example.org/git)"
            ));
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "{text:?} carries credentials: give the URL without them (doctor makes its own token)"
            ));
        }
        if path.contains(['?', '#']) {
            return Err(format!(
                "{text:?} has a query or fragment: give forgelet's root only"
            ));
        }
        let default_port = if https { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("{text:?}: unclosed [ in the host"));
            };
            let port = match after.strip_prefix(':') {
                Some(p) => parse_port(p, text)?,
                None if after.is_empty() => default_port,
                None => return Err(format!("{text:?}: unexpected {after:?} after the host")),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p, text)?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        Ok(Url {
            https,
            host,
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    fn default_port(&self) -> bool {
        self.port == if self.https { 443 } else { 80 }
    }

    /// `host[:port]` as the `Host` header and URLs write it.
    pub(super) fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// `scheme://host[:port]`, no path.
    pub(super) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.authority())
    }

    /// forgelet's root as given.
    pub(super) fn root(&self) -> String {
        format!("{}{}", self.origin(), self.base_path)
    }

    /// Whether every address the host names is a loopback address (or none could be found,
    /// for a name such as `localhost` that never leaves the host).
    pub(super) fn is_loopback(&self) -> bool {
        if self.host.eq_ignore_ascii_case("localhost") {
            return true;
        }
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return ip.is_loopback();
        }
        match (self.host.as_str(), self.port).to_socket_addrs() {
            Ok(addrs) => {
                let addrs: Vec<SocketAddr> = addrs.collect();
                !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
            }
            Err(_) => false,
        }
    }
}

fn parse_port(p: &str, url: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{url:?}: the port {p:?} is not a number from 1 to 65535"))
}

/// An HTTP answer, with when its first byte and its last arrived (from the request's start).
#[derive(Debug, Default)]
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// The first byte of the body (of the answer, over curl).
    pub(super) first_byte: Duration,
    pub(super) total: Duration,
}

impl Reply {
    /// A header's value by name, ignoring case.
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The status and the start of the body, for a message.
    pub(super) fn describe(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(120)]);
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            format!("{}", self.status)
        } else {
            format!("{} ({text})", self.status)
        }
    }
}

/// One request: method, path (from the host's root, query included), headers, body.
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) headers: &'a [(&'a str, &'a str)],
    pub(super) body: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    pub(super) fn get(path: &'a str, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
        Request {
            method: "GET",
            path,
            headers,
            body: None,
        }
    }
}

/// How requests are made: plain TCP for `http://`, `curl` for `https://`.
pub(super) enum Client {
    Plain(Url),
    /// The curl binary, and a private folder for the files it reads and writes.
    Curl {
        url: Url,
        bin: PathBuf,
        scratch: PathBuf,
    },
}

impl Client {
    /// The client for `url`; for `https://`, curl from `PATH` with `scratch` (a private folder)
    /// for its files, or why there is none.
    pub(super) fn for_url(url: &Url, scratch: &Path) -> Result<Client, String> {
        if !url.https {
            return Ok(Client::Plain(url.clone()));
        }
        let bin = find_on_path("curl").ok_or_else(|| {
            "doctor speaks https:// through the curl program, which is not on PATH (install it: apt-get install curl)".to_string()
        })?;
        Ok(Client::Curl {
            url: url.clone(),
            bin,
            scratch: scratch.to_path_buf(),
        })
    }

    pub(super) fn send(&self, req: &Request<'_>) -> Result<Reply, String> {
        match self {
            Client::Plain(url) => plain(url, req),
            Client::Curl { url, bin, scratch } => curl(url, bin, scratch, req),
        }
    }
}

/// The full path of `name` in a folder of `PATH`.
pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn plain(url: &Url, req: &Request<'_>) -> Result<Reply, String> {
    let start = Instant::now();
    let addrs: Vec<SocketAddr> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .collect();
    let mut last = format!("{} has no address", url.host);
    let mut stream = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, Duration::from_secs(10)) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let io = |e: io::Error| format!("{} {}: {e}", req.method, req.path);
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: forgelet-doctor/{}\r\nConnection: close\r\n",
        req.method,
        req.path,
        url.authority(),
        env!("CARGO_PKG_VERSION")
    );
    for (k, v) in req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(body) = req.body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    if let Some(body) = req.body {
        stream.write_all(body).map_err(io)?;
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut body_at = None;
    let mut first_byte = None;
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if super::interrupted() {
                    return Err("interrupted".into());
                }
                continue;
            }
            // A server that answered and reset the connection (e.g. a 413 while the body was
            // still on its way) has said what it had to say.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && body_at.is_some() => break,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if body_at.is_none() {
            body_at = find(&raw, b"\r\n\r\n").map(|i| i + 4);
        }
        if first_byte.is_none() && body_at.is_some_and(|at| raw.len() > at) {
            first_byte = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let mut reply = parse_head(&raw).ok_or_else(|| {
        format!(
            "{} {}: the answer is not HTTP ({} bytes)",
            req.method,
            req.path,
            raw.len()
        )
    })?;
    let at = body_at.unwrap_or(raw.len());
    let body = &raw[at.min(raw.len())..];
    reply.body = if reply
        .header("Transfer-Encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(body).ok_or_else(|| {
            format!(
                "{} {}: the chunked answer is cut short",
                req.method, req.path
            )
        })?
    } else {
        body.to_vec()
    };
    reply.first_byte = first_byte.unwrap_or(total);
    reply.total = total;
    Ok(reply)
}

/// The status and headers of an answer (the last header block, after any `100 Continue`).
fn parse_head(raw: &[u8]) -> Option<Reply> {
    let end = find(raw, b"\r\n\r\n")?;
    let text = String::from_utf8_lossy(&raw[..end]);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut words = status_line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = words.next()?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if status == 100 {
        return parse_head(&raw[end + 4..]);
    }
    Some(Reply {
        status,
        headers,
        ..Reply::default()
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A chunked body decoded; `None` when it stops before its last chunk.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size_text = size_text.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// One request through curl: headers and body from private files (so no credential is in the
/// arguments another user can list), the answer's head and body into files.
fn curl(url: &Url, bin: &Path, scratch: &Path, req: &Request<'_>) -> Result<Reply, String> {
    let file = |name: &str| scratch.join(name);
    let write = |path: &PathBuf, bytes: &[u8]| {
        fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let mut header_text = String::new();
    for (k, v) in req.headers {
        header_text.push_str(&format!("{k}: {v}\n"));
    }
    header_text.push_str(&format!(
        "User-Agent: forgelet-doctor/{}\n",
        env!("CARGO_PKG_VERSION")
    ));
    write(&file("request-headers"), header_text.as_bytes())?;
    let mut c = Command::new(bin);
    c.arg("-sS")
        .arg("--http1.1")
        .args(["--max-time", "120", "--connect-timeout", "10"])
        .arg("-X")
        .arg(req.method)
        .arg("-H")
        .arg(format!("@{}", file("request-headers").display()))
        .arg("-D")
        .arg(file("answer-head"))
        .arg("-o")
        .arg(file("answer-body"))
        .args(["-w", "%{time_starttransfer} %{time_total}"]);
    if let Some(body) = req.body {
        write(&file("request-body"), body)?;
        c.arg("--data-binary")
            .arg(format!("@{}", file("request-body").display()));
    }
    c.arg(format!("{}{}", url.origin(), req.path));
    let out = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "curl: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let head = fs::read(file("answer-head")).map_err(|e| format!("curl's answer: {e}"))?;
    let body = fs::read(file("answer-body")).unwrap_or_default();
    for name in [
        "request-headers",
        "request-body",
        "answer-head",
        "answer-body",
    ] {
        let _ = fs::remove_file(file(name));
    }
    let mut reply = parse_curl_head(&head).ok_or("curl printed no HTTP answer")?;
    reply.body = body;
    let times = String::from_utf8_lossy(&out.stdout);
    let mut t = times
        .split_whitespace()
        .map(|s| s.replace(',', ".").parse::<f64>().unwrap_or(0.0));
    reply.first_byte = Duration::from_secs_f64(t.next().unwrap_or(0.0).max(0.0));
    reply.total = Duration::from_secs_f64(t.next().unwrap_or(0.0).max(0.0));
    Ok(reply)
}

/// The last header block curl wrote (`-D`), after any `100 Continue`.
fn parse_curl_head(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let last = text
        .split("\n\n")
        .filter(|b| b.starts_with("HTTP/"))
        .filter(|b| !b.split_whitespace().nth(1).is_some_and(|s| s == "100"))
        .last()?;
    let block = last.replace('\n', "\r\n") + "\r\n\r\n";
    parse_head(block.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_with_their_defaults() {
        let u = Url::parse("https://git.example.org/git/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.base_path.as_str()),
            (true, "git.example.org", 443, "/git")
        );
        assert_eq!(u.root(), "https://git.example.org/git");
        let u = Url::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.base_path.as_str()), (8080, ""));
        assert_eq!(u.authority(), "127.0.0.1:8080");
        assert!(u.is_loopback());
        let u = Url::parse("http://[::1]:81/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert_eq!(u.origin(), "http://[::1]:81");
        assert!(u.is_loopback());
        assert!(!Url::parse("http://192.0.2.1/").unwrap().is_loopback());
        for bad in [
            "ftp://x",
            "http://",
            "http://a:0/",
            "http://u:p@host/",
            "http://h/?q",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    /// A one-shot HTTP server on loopback: what it received, once it has answered `answer`.
    fn serve_once(answer: &'static [u8]) -> (u16, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The head, then the body its Content-Length announces.
            loop {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
                if let Some(end) = find(&got, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            s.write_all(answer).unwrap();
            got
        });
        (port, t)
    }

    #[test]
    fn both_clients_send_headers_and_bodies_and_read_answers() {
        let answer: &[u8] =
            b"HTTP/1.1 200 OK\r\nServer: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let scratch = std::env::temp_dir().join(format!("doctor-http-{}", std::process::id()));
        fs::create_dir_all(&scratch).unwrap();
        let mut clients = vec!["plain"];
        if find_on_path("curl").is_some() {
            clients.push("curl");
        }
        for which in clients {
            let (port, server) = serve_once(answer);
            let url = Url::parse(&format!("http://127.0.0.1:{port}/git")).unwrap();
            let client = match which {
                "plain" => Client::Plain(url),
                _ => Client::Curl {
                    url,
                    bin: find_on_path("curl").unwrap(),
                    scratch: scratch.clone(),
                },
            };
            let reply = client
                .send(&Request {
                    method: "POST",
                    path: "/git/x",
                    headers: &[("Authorization", "Basic eA==")],
                    body: Some(b"0000"),
                })
                .unwrap();
            assert_eq!(reply.status, 200, "{which}");
            assert_eq!(reply.header("server"), Some("test"), "{which}");
            assert_eq!(reply.body, b"hello", "{which}");
            assert!(reply.first_byte <= reply.total, "{which}");
            let got = String::from_utf8_lossy(&server.join().unwrap()).into_owned();
            assert!(
                got.starts_with("POST /git/x HTTP/1.1\r\n"),
                "{which}: {got}"
            );
            assert!(
                got.contains("Authorization: Basic eA==\r\n"),
                "{which}: {got}"
            );
            assert!(got.ends_with("\r\n\r\n0000"), "{which}: {got}");
        }
        // curl's files are removed once read.
        assert_eq!(fs::read_dir(&scratch).unwrap().count(), 0);
        fs::remove_dir_all(&scratch).unwrap();
    }

    #[test]
    fn answers_are_parsed_and_dechunked() {
        let r = parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\n\r\n").unwrap();
        assert_eq!(r.status, 401);
        assert_eq!(r.header("www-authenticate"), Some("Basic"));
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"3\r\nab").is_none());
        let r = parse_curl_head(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nServer: nginx\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.header("Server")), (200, Some("nginx")));
    }
}
