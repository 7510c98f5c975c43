//! Responses: status, headers and a body that is bytes or a (part of a) file, written out CGI-style.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// What goes after the headers.
pub(crate) enum Body {
    Empty,
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `start` on.
    File {
        file: File,
        start: u64,
        len: u64,
    },
}

/// What a request turns into: a response ready to send, or something that writes its own answer
/// as it runs (git's output, a snapshot, a large file), borrowing from the site for as long.
pub(crate) enum Answer<'s> {
    Response(Response),
    Stream(Box<dyn Stream + 's>),
}

impl From<Response> for Answer<'_> {
    fn from(r: Response) -> Self {
        Answer::Response(r)
    }
}

/// An answer that writes itself.
pub(crate) trait Stream {
    /// Writes a CGI answer to `out`, reading the request body from `input` as it needs it.
    /// `head_only`: the request is a HEAD (headers, no body).
    fn run(
        self: Box<Self>,
        input: &mut (dyn Read + Send),
        out: &mut (dyn Write + Send),
        head_only: bool,
    ) -> io::Result<()>;
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Body,
}

/// One year: objects and packs are named by their content and never change.
const FOREVER_SECS: u64 = 31_536_000;

impl Response {
    pub(crate) fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    pub(crate) fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        let mut r = Response::new(status);
        r.header("Content-Type", content_type);
        r.body = Body::Bytes(body);
        r
    }

    pub(crate) fn text(status: u16, body: String) -> Response {
        Response::bytes(status, "text/plain; charset=utf-8", body.into_bytes())
    }

    pub(crate) fn html(status: u16, body: String) -> Response {
        Response::bytes(status, "text/html; charset=utf-8", body.into_bytes())
    }

    pub(crate) fn redirect(status: u16, location: String) -> Response {
        let mut r = Response::text(status, format!("See {location}\n"));
        r.header("Location", location);
        r
    }

    pub(crate) fn header(&mut self, name: &'static str, value: impl Into<String>) {
        self.headers.push((name, value.into()));
    }

    /// For anything that changes (refs, HEAD, pages): never reuse a stored copy.
    pub(crate) fn no_cache(&mut self) {
        self.header("Expires", "Fri, 01 Jan 1980 00:00:00 GMT");
        self.header("Pragma", "no-cache");
        self.header("Cache-Control", "no-cache, max-age=0, must-revalidate");
    }

    /// For what is one signed-in person's (their private pages, a token shown once): not
    /// kept at all, not even in the browser's history cache.
    pub(crate) fn no_store(&mut self) {
        self.headers
            .retain(|(k, _)| !matches!(*k, "Cache-Control" | "Pragma" | "Expires"));
        self.header("Expires", "Fri, 01 Jan 1980 00:00:00 GMT");
        self.header("Pragma", "no-cache");
        self.header("Cache-Control", "private, no-store");
    }

    /// For content-named files. Shared caches may keep them only when anyone may read the repo.
    pub(crate) fn cache_forever(&mut self, public: bool) {
        let scope = if public { "public" } else { "private" };
        self.header(
            "Cache-Control",
            format!("{scope}, max-age={FOREVER_SECS}, immutable"),
        );
    }

    /// Writes the response as a CGI program does: `Status:` line, headers, blank line, body.
    /// `head_only` leaves the body out (HEAD requests) but keeps its `Content-Length`.
    pub(crate) fn write_cgi(self, out: &mut dyn Write, head_only: bool) -> io::Result<()> {
        let mut head = format!("Status: {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            // Header values are built by forgelet, but never let a line break through.
            let value: String = value.chars().filter(|c| !c.is_control()).collect();
            head.push_str(name);
            head.push_str(": ");
            head.push_str(&value);
            head.push_str("\r\n");
        }
        let len = match &self.body {
            Body::Empty => None,
            Body::Bytes(b) => Some(b.len() as u64),
            Body::File { len, .. } => Some(*len),
        };
        if let Some(len) = len {
            head.push_str(&format!("Content-Length: {len}\r\n"));
        }
        head.push_str("\r\n");
        out.write_all(head.as_bytes())?;
        if !head_only {
            match self.body {
                Body::Empty => {}
                Body::Bytes(b) => out.write_all(&b)?,
                Body::File {
                    mut file,
                    start,
                    len,
                } => {
                    file.seek(SeekFrom::Start(start))?;
                    let copied = io::copy(&mut file.take(len), out)?;
                    if copied != len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shrank while it was being sent",
                        ));
                    }
                }
            }
        }
        out.flush()
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_output_and_head() {
        let mut r = Response::text(404, "Not found.\n".into());
        r.header("X-Test", "a\r\nSet-Cookie: b");
        let mut out = Vec::new();
        r.write_cgi(&mut out, false).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("Status: 404 Not Found\r\n"));
        assert!(s.contains("X-Test: aSet-Cookie: b\r\n"), "{s}");
        assert!(s.contains("Content-Length: 11\r\n"));
        assert!(s.ends_with("\r\n\r\nNot found.\n"));

        let mut out = Vec::new();
        Response::text(200, "body".into())
            .write_cgi(&mut out, true)
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with("Content-Length: 4\r\n\r\n"), "{s}");
    }
}
