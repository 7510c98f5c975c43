//! The only code that reads CGI variables / FastCGI params. Routing uses `REQUEST_URI`, decoded
//! exactly once here, so nginx, Apache and plain CGI all give forgelet the same path.

use crate::error::{Error, Result};
use crate::gateway::Params;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Other,
}

/// A request as the handlers see it.
pub(crate) struct Request {
    params: Params,
    pub(crate) method: Method,
    /// The decoded path below the base path; always starts with `/`. Bytes that are not
    /// UTF-8 are replaced by U+FFFD here (see `path_bytes`).
    pub(crate) path: String,
    /// The decoded path as bytes, exactly: file names in a repository need not be UTF-8.
    pub(crate) path_bytes: Vec<u8>,
    /// The raw query string (still percent-encoded).
    query: String,
}

/// What a route's variable segments matched: the owner (`/{owner}` and every repository route),
/// the repository's name (without `.git`), and the rest of the path where a route takes any
/// (`tree/{ref}/{path...}`), percent-decoded, split on `/`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Captures {
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) rest: Vec<String>,
}

/// Whether the request is a HEAD (headers only), read before the request is parsed: an answer
/// to a request that could not be parsed keeps to it too.
pub(crate) fn is_head(params: &Params) -> bool {
    params.get(b"REQUEST_METHOD") == Some(b"HEAD")
}

/// What became of the raw request line before routing.
pub(crate) enum Parsed {
    Request(Request),
    /// The base path without its trailing slash: send the client to `{base}/`.
    RedirectToBase,
}

impl Request {
    /// Reads method and `REQUEST_URI` from params. `base_path` is `""` or `/seg...`.
    pub(crate) fn parse(params: Params, base_path: &str) -> Result<Parsed> {
        let method = match params.get(b"REQUEST_METHOD") {
            Some(b"GET") => Method::Get,
            Some(b"HEAD") => Method::Head,
            Some(b"POST") => Method::Post,
            Some(b"PUT") => Method::Put,
            _ => Method::Other,
        };
        let uri = params
            .get(b"REQUEST_URI")
            .ok_or(Error::BadRequest("the web server sent no REQUEST_URI"))?;
        let (raw_path, query) = match uri.iter().position(|&b| b == b'?') {
            Some(i) => (&uri[..i], &uri[i + 1..]),
            None => (uri, &uri[uri.len()..]),
        };
        let Some(rest) = raw_path.strip_prefix(base_path.as_bytes()) else {
            return Err(Error::NotFound);
        };
        if rest.is_empty() {
            return Ok(Parsed::RedirectToBase);
        }
        if rest[0] != b'/' {
            return Err(Error::NotFound);
        }
        let path_bytes = percent_decode_bytes(rest)?;
        let path = String::from_utf8_lossy(&path_bytes).into_owned();
        refuse_controls(&path)?;
        let query = std::str::from_utf8(query)
            .map_err(|_| Error::BadRequest("the query string is not ASCII"))?
            .to_string();
        Ok(Parsed::Request(Request {
            params,
            method,
            path,
            path_bytes,
            query,
        }))
    }

    /// The client's address (`REMOTE_ADDR`), for logs and per-client limits; `unknown` when the
    /// web server sends none.
    pub(crate) fn remote_addr(&self) -> &str {
        self.var("REMOTE_ADDR").unwrap_or("unknown")
    }

    /// The web server says the client came over HTTPS (`HTTPS=on`).
    pub(crate) fn https(&self) -> bool {
        self.var("HTTPS")
            .is_some_and(|h| h.eq_ignore_ascii_case("on"))
    }

    /// The `Host` header, when it is a plain host name or address with an optional port (what
    /// a link back to this site may be built on); `None` otherwise.
    pub(crate) fn host(&self) -> Option<&str> {
        self.header("HOST").filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        })
    }

    /// The port the web server took the request on (`SERVER_PORT`), when it is a number.
    pub(crate) fn server_port(&self) -> Option<u16> {
        self.var("SERVER_PORT").and_then(|p| p.parse().ok())
    }

    /// The `Cookie` header.
    pub(crate) fn cookies(&self) -> Option<&str> {
        self.header("COOKIE")
    }

    /// The `Authorization` header.
    pub(crate) fn authorization(&self) -> Option<&str> {
        self.header("AUTHORIZATION")
    }

    /// The body's length as the client declared it (`CONTENT_LENGTH`), when it is a number.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.var("CONTENT_LENGTH")
            .and_then(|l| l.trim().parse().ok())
    }

    /// The body is gzip-compressed (`Content-Encoding: gzip` or `x-gzip`).
    pub(crate) fn gzipped(&self) -> bool {
        self.header("CONTENT_ENCODING")
            .is_some_and(|e| e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip"))
    }

    /// The `Git-Protocol` header, as the client sent it (see `gitrun::service::protocol_version`).
    pub(crate) fn git_protocol(&self) -> Option<&str> {
        self.header("GIT_PROTOCOL")
    }

    /// The `Range` header of a GET (a HEAD has no body to take a range of).
    pub(crate) fn range(&self) -> Option<&str> {
        (self.method == Method::Get)
            .then(|| self.header("RANGE"))
            .flatten()
    }

    /// A request header, e.g. `header("RANGE")` reads `HTTP_RANGE`.
    fn header(&self, name: &str) -> Option<&str> {
        let key = format!("HTTP_{name}");
        self.var(&key)
    }

    /// A CGI variable as text, when it is valid UTF-8.
    fn var(&self, name: &str) -> Option<&str> {
        self.params
            .get(name.as_bytes())
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The last `n` segments of the path (split on `/`, a trailing `/` left out) as bytes: the
    /// part of a browse URL that names a file, which routing saw with U+FFFD in place of bytes
    /// that are not UTF-8.
    pub(crate) fn last_segments(&self, n: usize) -> Vec<&[u8]> {
        let path = self.path_bytes.as_slice();
        let path = path.strip_suffix(b"/").unwrap_or(path);
        let all: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        all[all.len().saturating_sub(n)..].to_vec()
    }

    /// The raw query string (still percent-encoded).
    pub(crate) fn query(&self) -> &str {
        &self.query
    }

    /// The first value of a query parameter, decoded.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name)
                .then(|| percent_decode(v.as_bytes()).ok())
                .flatten()
        })
    }
}

/// What per-client limits count a client address as: an IPv4 address as it is, an IPv6 address
/// by its /64 (one host or home network gets a /64 and can use any address in it), an
/// IPv4-mapped IPv6 address as its IPv4 address; anything else as written.
pub(crate) fn client_key(addr: &str) -> String {
    let addr = addr.trim();
    let bare = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => addr.to_string(),
    }
}

/// Decodes `%XX` once. The result must be UTF-8 without control characters or backslashes:
/// none of those belong in a forgelet URL, and refusing them here keeps every later check simple.
pub(crate) fn percent_decode(raw: &[u8]) -> Result<String> {
    let s = String::from_utf8(percent_decode_bytes(raw)?)
        .map_err(|_| Error::BadRequest("the URL is not UTF-8"))?;
    refuse_controls(&s)?;
    Ok(s)
}

/// The control characters beyond ASCII (U+0080 to U+009F), which `percent_decode_bytes` cannot
/// see as single bytes.
fn refuse_controls(s: &str) -> Result<()> {
    if s.chars().any(char::is_control) {
        return Err(Error::BadRequest("the URL holds a control character"));
    }
    Ok(())
}

/// Decodes `%XX` once into bytes, which may be any but ASCII control characters and the
/// backslash (a path may name a file whose name is not UTF-8).
pub(crate) fn percent_decode_bytes(raw: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(Error::BadRequest("malformed percent-encoding in the URL"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return Err(Error::BadRequest(
            "the URL holds a control character or a backslash",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(method: &str, uri: &str) -> Params {
        Params::from_pairs(vec![
            (b"REQUEST_METHOD".to_vec(), method.as_bytes().to_vec()),
            (b"REQUEST_URI".to_vec(), uri.as_bytes().to_vec()),
            (b"HTTP_RANGE".to_vec(), b"bytes=1-2".to_vec()),
        ])
    }

    fn path(uri: &str, base: &str) -> Result<String> {
        let p = params("GET", uri);
        match Request::parse(p.clone(), base)? {
            Parsed::Request(r) => Ok(r.path),
            Parsed::RedirectToBase => Ok("<redirect>".into()),
        }
    }

    #[test]
    fn base_path_is_stripped_once() {
        assert_eq!(path("/git/a/b.git/HEAD", "/git").unwrap(), "/a/b.git/HEAD");
        assert_eq!(path("/git", "/git").unwrap(), "<redirect>");
        assert_eq!(path("/git/", "/git").unwrap(), "/");
        assert!(matches!(path("/gitx/a", "/git"), Err(Error::NotFound)));
        assert!(matches!(path("/x/../git/a", "/git"), Err(Error::NotFound)));
        assert_eq!(path("/", "").unwrap(), "/");
    }

    #[test]
    fn decodes_once_and_refuses_bad_bytes() {
        assert_eq!(path("/a%2e%2e/b", "").unwrap(), "/a../b");
        assert_eq!(path("/a%252e/b", "").unwrap(), "/a%2e/b");
        assert_eq!(path("/a%2Fb?x=1", "").unwrap(), "/a/b");
        for bad in [
            "/a%00b", "/a%5cb", "/a\\b", "/a%zz", "/a%2", "/a%0ab", "/a%7f", "/a%c2%85",
        ] {
            assert!(matches!(path(bad, ""), Err(Error::BadRequest(_))), "{bad}");
        }
        // Bytes that are not UTF-8 reach the handlers as they are (routing sees U+FFFD).
        let p = params("GET", "/o/r/blob/main/a%ffb/c");
        let Ok(Parsed::Request(r)) = Request::parse(p.clone(), "") else {
            panic!("parse failed")
        };
        assert_eq!(r.path, "/o/r/blob/main/a\u{fffd}b/c");
        assert_eq!(r.last_segments(2), [&b"a\xffb"[..], b"c"]);
        assert_eq!(r.last_segments(9).len(), 7);
        // A trailing slash (`tree/main/`) ends no segment.
        let p = params("GET", "/o/r/tree/main/");
        let Ok(Parsed::Request(r)) = Request::parse(p.clone(), "") else {
            panic!("parse failed")
        };
        assert_eq!(r.last_segments(1), [&b"main"[..]]);
        assert!(matches!(percent_decode(b"a%ff"), Err(Error::BadRequest(_))));
    }

    #[test]
    fn client_keys_group_ipv6_by_64() {
        assert_eq!(client_key("127.0.0.2"), "127.0.0.2");
        assert_eq!(client_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            client_key("2001:db8:1:2:bbbb:cccc:dddd:eeee"),
            "2001:db8:1:2::/64"
        );
        assert_ne!(client_key("2001:db8:1:3::1"), client_key("2001:db8:1:2::1"));
        assert_eq!(client_key("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(client_key("[::1]"), "0:0:0:0::/64");
        assert_eq!(client_key("unknown"), "unknown");
    }

    #[test]
    fn method_headers_and_query() {
        let p = params("HEAD", "/x?service=git-upload-pack&a=%41");
        let Ok(Parsed::Request(r)) = Request::parse(p.clone(), "") else {
            panic!("parse failed")
        };
        assert_eq!(r.method, Method::Head);
        assert_eq!(r.header("RANGE"), Some("bytes=1-2"));
        assert_eq!(r.query_param("service").as_deref(), Some("git-upload-pack"));
        assert_eq!(r.query_param("a").as_deref(), Some("A"));
        assert_eq!(r.query_param("b"), None);
    }
}
