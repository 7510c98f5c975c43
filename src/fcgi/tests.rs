//! Tests that run the server on a unix socket in a temporary directory and talk raw FastCGI to it,
//! plus the small helpers they share (temp dirs, a client that reads records, a test app).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::params::{decode_pairs, encode_pair};
use super::record::{
    push_records, split_record, Header, ABORT_REQUEST, BEGIN_REQUEST, CANT_MPX_CONN, END_REQUEST,
    GET_VALUES, GET_VALUES_RESULT, PARAMS, REQUEST_COMPLETE, STDIN, STDOUT, UNKNOWN_ROLE,
    UNKNOWN_TYPE,
};
use super::server::{serve_until, Stop};
use super::{App, Call, Config, LaneConfig, ListenSpec, Listener, Params};

/// A directory removed (with its contents) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!("fcgi-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Raw FastCGI, as a web server would send it.

fn rec(rtype: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_records(&mut out, rtype, id, content);
    out
}

fn begin(id: u16, role: u16, keep: bool) -> Vec<u8> {
    let r = role.to_be_bytes();
    rec(
        BEGIN_REQUEST,
        id,
        &[r[0], r[1], u8::from(keep), 0, 0, 0, 0, 0],
    )
}

fn params(id: u16, pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (n, v) in pairs {
        encode_pair(&mut body, n.as_bytes(), v.as_bytes());
    }
    // Split the stream across records at an awkward size, like a server might.
    let mut out = Vec::new();
    for chunk in body.chunks(5) {
        out.extend(rec(PARAMS, id, chunk));
    }
    out.extend(rec(PARAMS, id, b""));
    out
}

/// A whole request: BEGIN, PARAMS, the body in STDIN records of at most 1000 bytes, empty STDIN.
fn request(id: u16, keep: bool, pairs: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = begin(id, 1, keep);
    out.extend(params(id, pairs));
    for chunk in body.chunks(1000) {
        out.extend(rec(STDIN, id, chunk));
    }
    out.extend(rec(STDIN, id, b""));
    out
}

struct Client {
    s: UnixStream,
    buf: Vec<u8>,
}

#[derive(Debug, Default)]
struct Reply {
    stdout: Vec<u8>,
    record_sizes: Vec<usize>,
    /// (appStatus, protocolStatus)
    end: (u32, u8),
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl Client {
    fn connect(path: &Path) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        Client { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// The next record, or `Err` when the server closed the connection (or the read timed out).
    fn record(&mut self) -> io::Result<(Header, Vec<u8>)> {
        loop {
            if let Some((r, used)) = split_record(&self.buf).unwrap() {
                let out = (r.header, r.content.to_vec());
                self.buf.drain(..used);
                return Ok(out);
            }
            let mut chunk = [0u8; 65536];
            let n = read_retrying(&mut self.s, &mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads STDOUT records of request `id` up to its END_REQUEST.
    fn reply(&mut self, id: u16) -> io::Result<Reply> {
        let mut reply = Reply::default();
        loop {
            let (h, content) = self.record()?;
            assert_eq!(h.request_id, id, "record for another request: {h:?}");
            match h.rtype {
                STDOUT => {
                    reply.record_sizes.push(content.len());
                    reply.stdout.extend_from_slice(&content);
                }
                END_REQUEST => {
                    let s = u32::from_be_bytes([content[0], content[1], content[2], content[3]]);
                    reply.end = (s, content[4]);
                    return Ok(reply);
                }
                other => panic!("unexpected record type {other}"),
            }
        }
    }

    /// True when the server closed the connection (EOF or reset) within `WAIT`.
    fn closed_by_server(&mut self) -> bool {
        let mut b = [0u8; 1024];
        loop {
            match read_retrying(&mut self.s, &mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// One read, again when a signal interrupted it: a test of the server's SIGTERM handling sends
/// SIGTERM to this very process, and a read with a timeout (SO_RCVTIMEO) on another test's
/// thread is not restarted by SA_RESTART, so it would fail with EINTR.
fn read_retrying(s: &mut UnixStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match s.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The test app: MODE picks the behaviour, LANE the lane; events go to the test.

struct TestApp {
    events: Mutex<Sender<String>>,
    gate: Mutex<Receiver<()>>,
}

impl TestApp {
    fn event(&self, e: String) {
        let _ = self.events.lock().unwrap().send(e);
    }
}

fn header(out: &mut dyn Write, status: &str) -> io::Result<()> {
    write!(
        out,
        "Status: {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    )
}

impl App for TestApp {
    fn call(self: Arc<Self>, params: Params) -> Box<dyn Call> {
        if params.get(b"MODE") == Some(b"call-panic") {
            panic!("call panic");
        }
        Box::new(TestCall { app: self, params })
    }
}

struct TestCall {
    app: Arc<TestApp>,
    params: Params,
}

impl Call for TestCall {
    fn lane(&self) -> usize {
        match self.params.get(b"LANE") {
            Some(b"git") => 1,
            Some(b"bogus") => 99,
            Some(b"panic") => panic!("lane panic"),
            _ => 0,
        }
    }

    fn respond(
        self: Box<Self>,
        stdin: &mut (dyn Read + Send),
        stdout: &mut (dyn Write + Send),
    ) -> io::Result<()> {
        let params = &self.params;
        let mode = params.get(b"MODE").unwrap_or(b"echo");
        match mode {
            b"echo" => {
                let mut body = Vec::new();
                if let Err(e) = stdin.read_to_end(&mut body) {
                    self.app.event(format!("stdin-error:{:?}", e.kind()));
                    return Err(e);
                }
                header(stdout, "200 OK")?;
                let uri = params.get(b"REQUEST_URI").unwrap_or(b"");
                stdout.write_all(b"uri=")?;
                stdout.write_all(uri)?;
                stdout.write_all(b"\nbody=")?;
                stdout.write_all(&body)?;
                Ok(())
            }
            b"big" => {
                header(stdout, "200 OK")?;
                // Odd-sized writes, so record boundaries fall mid-write.
                let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
                for chunk in data.chunks(7_001) {
                    stdout.write_all(chunk)?;
                }
                Ok(())
            }
            b"parts" => {
                // As git's output is relayed: a part at a time, each flushed; large parts go
                // out straight from the caller's bytes.
                header(stdout, "200 OK")?;
                stdout.flush()?;
                let data: Vec<u8> = (0..600_000u32).map(|i| (i % 241) as u8).collect();
                let mut at = 0;
                // 270,000: more records than one direct write sends.
                for n in [70_000, 20_000, 100, 65_535, 16_384, 16_383, 1, 270_000] {
                    stdout.write_all(&data[at..at + n])?;
                    stdout.flush()?;
                    at += n;
                }
                stdout.write_all(&data[at..])
            }
            b"noread" => header(stdout, "200 OK").and_then(|()| stdout.write_all(b"no body read")),
            b"slow" => {
                self.app.event("started".into());
                let _ = self.app.gate.lock().unwrap().recv_timeout(WAIT);
                header(stdout, "200 OK")?;
                stdout.write_all(b"slow done")
            }
            b"read-then-wait" => {
                let mut first = [0u8; 4];
                stdin.read_exact(&mut first)?;
                self.app.event("started".into());
                let mut rest = Vec::new();
                if let Err(e) = stdin.read_to_end(&mut rest) {
                    self.app.event(format!("stdin-error:{:?}", e.kind()));
                    return Err(e);
                }
                header(stdout, "200 OK")
            }
            b"panic" => {
                stdout.write_all(b"Status: 200 OK\r\n")?;
                panic!("test panic before output went out")
            }
            b"panic-after-flush" => {
                header(stdout, "200 OK")?;
                stdout.write_all(b"partial")?;
                stdout.flush()?;
                panic!("test panic after output went out")
            }
            b"error" => Err(io::Error::other("app failed")),
            _ => header(stdout, "404 Not Found"),
        }
    }
}

struct TestServer {
    _dir: TempDir,
    path: PathBuf,
    stop: Arc<Stop>,
    handle: Option<JoinHandle<io::Result<()>>>,
    events: Receiver<String>,
    gate: Sender<()>,
}

fn test_config() -> Config {
    Config {
        lanes: vec![
            LaneConfig {
                name: "pages".into(),
                workers: 2,
                queue: 2,
                nice: 0,
            },
            LaneConfig {
                name: "git".into(),
                workers: 1,
                queue: 0,
                nice: 5,
            },
        ],
        max_connections: 64,
        io_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        params_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(5),
        max_params_bytes: 8 * 1024,
        retry_after_secs: 7,
        drain_timeout: Duration::from_secs(5),
    }
}

impl TestServer {
    fn start(config: Config) -> TestServer {
        let dir = TempDir::new("srv");
        let path = dir.path().join("fcgi.sock");
        let listener = Listener::bind(&ListenSpec::Unix {
            path: path.clone(),
            group: None,
        })
        .unwrap();
        let (ev_tx, events) = mpsc::channel();
        let (gate, gate_rx) = mpsc::channel();
        let app = Arc::new(TestApp {
            events: Mutex::new(ev_tx),
            gate: Mutex::new(gate_rx),
        });
        let stop = Stop::new().unwrap();
        let stop2 = Arc::clone(&stop);
        let handle = std::thread::spawn(move || serve_until(listener, config, app, stop2));
        TestServer {
            _dir: dir,
            path,
            stop,
            handle: Some(handle),
            events,
            gate,
        }
    }

    fn client(&self) -> Client {
        Client::connect(&self.path)
    }

    fn event(&self) -> String {
        self.events.recv_timeout(WAIT).expect("app event")
    }

    /// One request on a fresh connection.
    fn get(&self, pairs: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut c = self.client();
        c.send(&request(1, false, pairs, body));
        c.reply(1).unwrap()
    }

    fn shutdown(mut self) -> io::Result<()> {
        self.stop.request();
        self.handle.take().map_or(Ok(()), |h| h.join().unwrap())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn assert_ok_echo(r: &Reply, uri: &str, body: &str) {
    let text = r.text();
    assert!(text.starts_with("Status: 200 OK\r\n"), "{text}");
    assert!(text.ends_with(&format!("uri={uri}\nbody={body}")), "{text}");
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
}

// ---------------------------------------------------------------------------------------------

#[test]
fn echoes_a_request_body_then_closes_without_keep_conn() {
    let srv = TestServer::start(test_config());
    let body = vec![b'x'; 2500];
    let mut c = srv.client();
    c.send(&request(
        1,
        false,
        &[("REQUEST_URI", "/a?b=c"), ("MODE", "echo")],
        &body,
    ));
    let r = c.reply(1).unwrap();
    assert_ok_echo(&r, "/a?b=c", std::str::from_utf8(&body).unwrap());
    assert!(c.closed_by_server());
    // Request id other than 1, and a non-UTF-8 param value.
    let mut c = srv.client();
    let mut req = begin(513, 1, false);
    let mut p = Vec::new();
    encode_pair(&mut p, b"REQUEST_URI", b"/\xff");
    req.extend(rec(PARAMS, 513, &p));
    req.extend(rec(PARAMS, 513, b""));
    req.extend(rec(STDIN, 513, b""));
    c.send(&req);
    let r = c.reply(513).unwrap();
    assert!(r.stdout.ends_with(b"uri=/\xff\nbody="));
    srv.shutdown().unwrap();
}

#[test]
fn large_stdout_goes_out_in_records_of_at_most_65535_bytes() {
    let srv = TestServer::start(test_config());
    let r = srv.get(&[("MODE", "big")], b"");
    assert!(r.record_sizes.len() >= 5, "{:?}", r.record_sizes);
    assert!(r.record_sizes.iter().all(|&n| n <= 65_535));
    let head = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    assert_eq!(r.stdout.len(), head.len() + 300_000);
    let data = &r.stdout[head.len()..];
    assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
}

#[test]
fn flushed_parts_keep_their_bytes_and_record_framing() {
    let srv = TestServer::start(test_config());
    let r = srv.get(&[("MODE", "parts")], b"");
    assert!(r.record_sizes.iter().all(|&n| n <= 65_535));
    let head = b"Status: 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n";
    assert_eq!(r.stdout.len(), head.len() + 600_000);
    let data = &r.stdout[head.len()..];
    assert!(data.iter().enumerate().all(|(i, &b)| b == (i % 241) as u8));
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    c.send(&request(1, true, &[("REQUEST_URI", "/one")], b"first"));
    assert_ok_echo(&c.reply(1).unwrap(), "/one", "first");
    // The app does not read the (empty) body; the connection must still be reusable.
    c.send(&request(1, true, &[("MODE", "noread")], b""));
    assert!(c.reply(1).unwrap().text().ends_with("no body read"));
    // Two requests sent back to back: the second is already buffered when the first ends.
    let mut both = request(1, true, &[("REQUEST_URI", "/two")], b"second");
    both.extend(request(2, true, &[("REQUEST_URI", "/three")], b"third"));
    c.send(&both);
    assert_ok_echo(&c.reply(1).unwrap(), "/two", "second");
    assert_ok_echo(&c.reply(2).unwrap(), "/three", "third");
}

#[test]
fn get_values_and_unknown_management_types() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    let mut q = Vec::new();
    for n in [
        "FCGI_MAX_CONNS",
        "FCGI_MAX_REQS",
        "FCGI_MPXS_CONNS",
        "SOMETHING_ELSE",
    ] {
        encode_pair(&mut q, n.as_bytes(), b"");
    }
    c.send(&rec(GET_VALUES, 0, &q));
    let (h, content) = c.record().unwrap();
    assert_eq!((h.rtype, h.request_id), (GET_VALUES_RESULT, 0));
    let pairs = decode_pairs(&content).unwrap();
    let get = |n: &[u8]| pairs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get(b"FCGI_MAX_CONNS"), Some(b"64".to_vec()));
    assert_eq!(get(b"FCGI_MAX_REQS"), Some(b"5".to_vec()));
    assert_eq!(get(b"FCGI_MPXS_CONNS"), Some(b"0".to_vec()));
    assert_eq!(pairs.len(), 3);
    c.send(&rec(42, 0, b"whatever"));
    let (h, content) = c.record().unwrap();
    assert_eq!((h.rtype, h.request_id), (UNKNOWN_TYPE, 0));
    assert_eq!(content, vec![42, 0, 0, 0, 0, 0, 0, 0]);
    // The connection is still good for a request.
    c.send(&request(1, false, &[("REQUEST_URI", "/x")], b""));
    assert_ok_echo(&c.reply(1).unwrap(), "/x", "");
}

#[test]
fn other_roles_get_unknown_role() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    // Authorizer with keep-alive: refused, connection stays usable.
    c.send(&begin(1, 2, true));
    c.send(&params(1, &[("A", "b")]));
    let r = c.reply(1).unwrap();
    assert_eq!(r.end, (0, UNKNOWN_ROLE));
    assert!(r.stdout.is_empty());
    c.send(&request(1, false, &[("REQUEST_URI", "/after")], b""));
    assert_ok_echo(&c.reply(1).unwrap(), "/after", "");
    // Filter without keep-alive: refused and closed.
    let mut c = srv.client();
    c.send(&begin(3, 3, false));
    assert_eq!(c.reply(3).unwrap().end, (0, UNKNOWN_ROLE));
    assert!(c.closed_by_server());
}

#[test]
fn second_request_id_gets_cant_mpx_conn() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    c.send(&begin(1, 1, true));
    c.send(&begin(2, 1, true));
    let r = c.reply(2).unwrap();
    assert_eq!(r.end, (0, CANT_MPX_CONN));
    let mut rest = params(1, &[("REQUEST_URI", "/one")]);
    rest.extend(rec(STDIN, 1, b""));
    c.send(&rest);
    assert_ok_echo(&c.reply(1).unwrap(), "/one", "");
    // During a running request (worker side), too.
    c.send(&begin(1, 1, true));
    c.send(&params(1, &[("MODE", "read-then-wait")]));
    c.send(&rec(STDIN, 1, b"abcd"));
    assert_eq!(srv.event(), "started");
    c.send(&begin(9, 1, false));
    assert_eq!(c.reply(9).unwrap().end, (0, CANT_MPX_CONN));
    c.send(&rec(STDIN, 1, b""));
    assert!(c.reply(1).unwrap().text().starts_with("Status: 200 OK"));
}

#[test]
fn malformed_records_close_only_that_connection() {
    let srv = TestServer::start(test_config());
    let mut bad_version = begin(1, 1, false);
    bad_version[0] = 2;
    let mut truncated_pair = begin(1, 1, false);
    truncated_pair.extend(rec(PARAMS, 1, &[4, 10, b'N', b'A']));
    truncated_pair.extend(rec(PARAMS, 1, b""));
    let short_begin = rec(BEGIN_REQUEST, 1, &[0, 1]);
    let mut too_big = begin(1, 1, false);
    for _ in 0..3 {
        too_big.extend(rec(PARAMS, 1, &[0u8; 4000]));
    }
    let mut stdin_too_early = begin(1, 1, false);
    stdin_too_early.extend(rec(STDIN, 1, b"x"));
    let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    for (name, bytes) in [
        ("bad version", bad_version),
        ("truncated pair", truncated_pair),
        ("short begin", short_begin),
        ("params over cap", too_big),
        ("stdin before params end", stdin_too_early),
        ("http", http),
    ] {
        let mut c = srv.client();
        c.send(&bytes);
        assert!(c.closed_by_server(), "{name}");
    }
    // A record cut short, then the peer goes away.
    let mut c = srv.client();
    c.send(&begin(1, 1, false)[..5]);
    drop(c);
    assert_ok_echo(&srv.get(&[("REQUEST_URI", "/ok")], b"fine"), "/ok", "fine");
}

#[test]
fn peer_disconnecting_mid_body_gives_the_app_an_error() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    let mut req = begin(1, 1, false);
    req.extend(params(1, &[("MODE", "echo")]));
    req.extend(rec(STDIN, 1, b"partial body"));
    c.send(&req);
    drop(c);
    assert_eq!(srv.event(), "stdin-error:UnexpectedEof");
    // Cut inside a STDIN record's content.
    let mut c = srv.client();
    let mut req = begin(1, 1, false);
    req.extend(params(1, &[("MODE", "echo")]));
    let full = rec(STDIN, 1, &[b'z'; 100]);
    req.extend_from_slice(&full[..50]);
    c.send(&req);
    drop(c);
    assert_eq!(srv.event(), "stdin-error:UnexpectedEof");
    assert_ok_echo(&srv.get(&[("REQUEST_URI", "/next")], b""), "/next", "");
}

#[test]
fn abort_request_gives_the_app_an_error_and_ends_the_request() {
    let srv = TestServer::start(test_config());
    let mut c = srv.client();
    let mut req = begin(1, 1, true);
    req.extend(params(1, &[("MODE", "read-then-wait")]));
    req.extend(rec(STDIN, 1, b"abcd"));
    c.send(&req);
    assert_eq!(srv.event(), "started");
    // Records for other ids meanwhile are ignored.
    c.send(&rec(STDIN, 7, b"not ours"));
    c.send(&rec(ABORT_REQUEST, 1, b""));
    assert_eq!(srv.event(), "stdin-error:ConnectionAborted");
    let r = c.reply(1).unwrap();
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
    // Aborted before the params were complete: answered by the poll thread.
    let mut c = srv.client();
    c.send(&begin(1, 1, false));
    c.send(&rec(ABORT_REQUEST, 1, b""));
    assert_eq!(c.reply(1).unwrap().end, (0, REQUEST_COMPLETE));
    assert!(c.closed_by_server());
    assert_ok_echo(&srv.get(&[("REQUEST_URI", "/x")], b"y"), "/x", "y");
}

#[test]
fn idle_connections_make_room_at_the_cap() {
    let mut config = test_config();
    config.max_connections = 3;
    let srv = TestServer::start(config);
    let mut idle: Vec<Client> = (0..3).map(|_| srv.client()).collect();
    // Make sure the three are accepted (each answers a GET_VALUES).
    for c in &mut idle {
        c.send(&rec(GET_VALUES, 0, b""));
        assert_eq!(c.record().unwrap().0.rtype, GET_VALUES_RESULT);
    }
    // Many more arrive while the idle ones stay open: the longest-idle connections are closed
    // to make room, and every request is answered.
    let mut waiting: Vec<Client> = (0..20).map(|_| srv.client()).collect();
    for c in &mut waiting {
        c.send(&request(1, false, &[("REQUEST_URI", "/queued")], b""));
    }
    for c in &mut waiting {
        assert_ok_echo(&c.reply(1).unwrap(), "/queued", "");
    }
    for c in &mut idle {
        let mut buf = [0u8; 8];
        let n = read_retrying(&mut c.s, &mut buf).unwrap_or(0);
        assert_eq!(n, 0, "an idle connection was not closed to make room");
    }
    assert_ok_echo(&srv.get(&[("REQUEST_URI", "/later")], b""), "/later", "");
}

#[test]
fn full_lane_answers_503_and_the_other_lane_still_serves() {
    let mut config = test_config();
    config.lanes[0].workers = 1;
    config.lanes[0].queue = 0;
    let srv = TestServer::start(config);
    let mut slow = srv.client();
    slow.send(&request(1, false, &[("MODE", "slow")], b""));
    assert_eq!(srv.event(), "started");
    let r = srv.get(&[("REQUEST_URI", "/busy")], b"");
    let text = r.text();
    assert!(
        text.starts_with("Status: 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nRetry-After: 7\r\n"), "{text}");
    assert!(
        text.contains("Content-Type: text/plain; charset=utf-8\r\n\r\n"),
        "{text}"
    );
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
    // An out-of-range lane index means lane 0, which is full too.
    let r = srv.get(&[("LANE", "bogus")], b"");
    assert!(r.text().starts_with("Status: 503"));
    // 503 on a keep-alive connection: the connection stays usable.
    let mut k = srv.client();
    k.send(&request(1, true, &[("REQUEST_URI", "/k")], b"some body"));
    assert!(k.reply(1).unwrap().text().starts_with("Status: 503"));
    k.send(&request(
        1,
        true,
        &[("LANE", "git"), ("REQUEST_URI", "/g")],
        b"",
    ));
    assert_ok_echo(&k.reply(1).unwrap(), "/g", "");
    // The git lane is still served.
    let r = srv.get(
        &[("LANE", "git"), ("REQUEST_URI", "/repo.git/info/refs")],
        b"",
    );
    assert_ok_echo(&r, "/repo.git/info/refs", "");
    srv.gate.send(()).unwrap();
    assert!(slow.reply(1).unwrap().text().ends_with("slow done"));
    // Free again.
    assert_ok_echo(&srv.get(&[("REQUEST_URI", "/free")], b""), "/free", "");
}

#[test]
fn panics_and_errors_become_500_and_workers_survive() {
    let mut config = test_config();
    config.lanes[0].workers = 1;
    let srv = TestServer::start(config);
    let r = srv.get(&[("MODE", "panic")], b"");
    let text = r.text();
    assert!(
        text.starts_with("Status: 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
    let r = srv.get(&[("MODE", "panic-after-flush")], b"");
    assert!(r.text().ends_with("partial"), "{}", r.text());
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
    let r = srv.get(&[("MODE", "error")], b"");
    assert!(r.text().starts_with("Status: 500"));
    // A panic in App::call is a 500; one in Call::lane falls back to lane 0.
    let r = srv.get(&[("MODE", "call-panic")], b"");
    assert!(r.text().starts_with("Status: 500"), "{}", r.text());
    assert_eq!(r.end, (0, REQUEST_COMPLETE));
    assert_ok_echo(
        &srv.get(&[("LANE", "panic"), ("REQUEST_URI", "/l")], b""),
        "/l",
        "",
    );
    // The single worker still serves.
    assert_ok_echo(
        &srv.get(&[("REQUEST_URI", "/after")], b"ok"),
        "/after",
        "ok",
    );
}

#[test]
fn idle_connections_are_closed_after_idle_timeout() {
    let mut config = test_config();
    config.idle_timeout = Duration::from_millis(150);
    config.params_timeout = Duration::from_millis(300);
    let srv = TestServer::start(config);
    let t = Instant::now();
    let mut c = srv.client();
    assert!(c.closed_by_server());
    assert!(t.elapsed() < Duration::from_secs(3));
    // A keep-alive connection after its request, too.
    let mut c = srv.client();
    c.send(&request(1, true, &[("REQUEST_URI", "/k")], b""));
    c.reply(1).unwrap();
    assert!(c.closed_by_server());
    // A client that starts a request and stalls is cut off after params_timeout.
    let mut c = srv.client();
    c.send(&begin(1, 1, false));
    assert!(c.closed_by_server());
}

#[test]
fn stop_waits_for_requests_in_flight_and_removes_the_socket() {
    let srv = TestServer::start(test_config());
    let mut idle = srv.client();
    idle.send(&rec(GET_VALUES, 0, b""));
    idle.record().unwrap();
    let mut slow = srv.client();
    slow.send(&request(1, false, &[("MODE", "slow")], b""));
    assert_eq!(srv.event(), "started");
    srv.stop.request();
    // The idle connection is closed at once and new connections are refused.
    assert!(idle.closed_by_server());
    let deadline = Instant::now() + WAIT;
    while srv.path.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!srv.path.exists(), "socket file removed");
    // The request in flight still completes.
    srv.gate.send(()).unwrap();
    assert!(slow.reply(1).unwrap().text().ends_with("slow done"));
    srv.shutdown().unwrap();
}

#[test]
fn drain_gives_up_after_drain_timeout() {
    let mut config = test_config();
    config.drain_timeout = Duration::from_millis(100);
    let srv = TestServer::start(config);
    let mut slow = srv.client();
    slow.send(&request(1, false, &[("MODE", "slow")], b""));
    assert_eq!(srv.event(), "started");
    let t = Instant::now();
    let gate = srv.gate.clone();
    srv.shutdown().unwrap();
    assert!(t.elapsed() < Duration::from_secs(3));
    gate.send(()).unwrap();
}

#[test]
fn config_is_validated() {
    let dir = TempDir::new("cfg");
    for broken in [
        Config {
            lanes: vec![],
            ..test_config()
        },
        Config {
            max_connections: 0,
            ..test_config()
        },
    ] {
        let l = Listener::bind(&ListenSpec::Unix {
            path: dir.path().join("c.sock"),
            group: None,
        })
        .unwrap();
        let (tx, _rx) = mpsc::channel();
        let (_gtx, grx) = mpsc::channel();
        let app = Arc::new(TestApp {
            events: Mutex::new(tx),
            gate: Mutex::new(grx),
        });
        let e = serve_until(l, broken, app, Stop::new().unwrap()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
    let d = Config::default();
    assert_eq!(d.lanes.len(), 2);
    assert_eq!((d.lanes[0].workers, d.lanes[1].workers), (8, 4));
    assert_eq!(d.max_connections, 512);
}

/// The only test that uses the real `serve` (it may run once per process): SIGTERM stops it.
#[test]
fn serve_returns_on_sigterm() {
    let dir = TempDir::new("sig");
    let path = dir.path().join("s.sock");
    let listener = Listener::bind(&ListenSpec::Unix {
        path: path.clone(),
        group: None,
    })
    .unwrap();
    let (tx, _rx) = mpsc::channel();
    let (_gtx, grx) = mpsc::channel();
    let app = Arc::new(TestApp {
        events: Mutex::new(tx),
        gate: Mutex::new(grx),
    });
    let h = std::thread::spawn(move || super::serve(listener, test_config(), app));
    // A served request proves the handlers are installed (serve installs them before polling).
    let mut c = Client::connect(&path);
    c.send(&request(1, false, &[("REQUEST_URI", "/s")], b""));
    assert_ok_echo(&c.reply(1).unwrap(), "/s", "");
    // SAFETY: sends SIGTERM to our own process, whose handler serve() installed.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGTERM);
    }
    h.join().unwrap().unwrap();
    assert!(!path.exists());
    // A second call is refused.
    let l2 = Listener::bind(&ListenSpec::Unix {
        path: path.clone(),
        group: None,
    })
    .unwrap();
    let (tx, _rx) = mpsc::channel();
    let (_gtx, grx) = mpsc::channel();
    let app = Arc::new(TestApp {
        events: Mutex::new(tx),
        gate: Mutex::new(grx),
    });
    assert!(super::serve(l2, test_config(), app).is_err());
}

const EMFILE_ENV: &str = "FCGI_TEST_EMFILE_CHILD_SOCKET";

/// Run in a child process by `accept_survives_running_out_of_file_descriptors`, where lowering
/// the file descriptor limit cannot disturb other tests. Serves until SIGTERM.
#[test]
#[ignore = "helper: run in a child process by accept_survives_running_out_of_file_descriptors"]
fn emfile_child() {
    let Some(path) = std::env::var_os(EMFILE_ENV) else {
        return;
    };
    let listener = Listener::bind(&ListenSpec::Unix {
        path: PathBuf::from(path),
        group: None,
    })
    .unwrap();
    let open: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .collect();
    // The lowest limit that leaves six free descriptor numbers: serve's wake pipe and about
    // four connections (new descriptors take the lowest free numbers).
    let mut free = 0;
    let mut n = 0;
    while free < 6 {
        if !open.contains(&n) {
            free += 1;
        }
        n += 1;
    }
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: libc::RLIM_INFINITY,
    };
    let mut old = lim;
    // SAFETY: getrlimit/setrlimit get pointers to live rlimit structs.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut old), 0);
        let new = libc::rlimit {
            rlim_max: old.rlim_max,
            ..lim
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &new), 0);
    }
    let (tx, _rx) = mpsc::channel();
    let (_gtx, grx) = mpsc::channel();
    let app = Arc::new(TestApp {
        events: Mutex::new(tx),
        gate: Mutex::new(grx),
    });
    let mut config = test_config();
    config.max_connections = 1000;
    super::serve(listener, config, app).unwrap();
}

#[test]
fn accept_survives_running_out_of_file_descriptors() {
    struct Child(std::process::Child);
    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = TempDir::new("emfile");
    let path = dir.path().join("e.sock");
    let mut child = Child(
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "fcgi::tests::emfile_child", "--ignored"])
            .args(["--test-threads=1", "--quiet"])
            .env(EMFILE_ENV, &path)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Served once the child is up.
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = UnixStream::connect(&path) {
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut c = Client { s, buf: Vec::new() };
            c.send(&request(1, false, &[("REQUEST_URI", "/up")], b""));
            assert_ok_echo(&c.reply(1).unwrap(), "/up", "");
            break;
        }
        assert!(Instant::now() < deadline, "child server did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    // More idle connections than the child has descriptors for: accept fails with EMFILE.
    let idle: Vec<Client> = (0..10).map(|_| Client::connect(&path)).collect();
    let mut waiting = Client::connect(&path);
    waiting.send(&request(1, false, &[("REQUEST_URI", "/w")], b""));
    waiting
        .s
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        waiting.reply(1).is_err(),
        "served despite no free descriptor"
    );
    assert!(child.0.try_wait().unwrap().is_none(), "child died");
    // Descriptors free up: everything waiting is served.
    drop(idle);
    waiting.s.set_read_timeout(Some(WAIT)).unwrap();
    assert_ok_echo(&waiting.reply(1).unwrap(), "/w", "");
    for i in 0..12 {
        let mut c = Client::connect(&path);
        c.send(&request(1, false, &[("REQUEST_URI", "/again")], b""));
        assert_ok_echo(&c.reply(1).unwrap(), "/again", "");
        assert!(c.closed_by_server(), "request {i}");
    }
    // SAFETY: signals our own child process.
    unsafe {
        libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.0.wait().unwrap();
    assert!(status.success(), "child exit: {status:?}");
}
