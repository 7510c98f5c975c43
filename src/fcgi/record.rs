//! FastCGI record framing (protocol version 1): constants, header parsing, record encoding and
//! the answers to management records.

use std::fmt;

use super::params::{decode_pairs, encode_pair};

pub(crate) const HEADER_LEN: usize = 8;
pub(crate) const VERSION_1: u8 = 1;
/// Largest content a single record can carry (the length field is 16 bits).
pub(crate) const MAX_CONTENT: usize = 65_535;

pub(crate) const BEGIN_REQUEST: u8 = 1;
pub(crate) const ABORT_REQUEST: u8 = 2;
pub(crate) const END_REQUEST: u8 = 3;
pub(crate) const PARAMS: u8 = 4;
pub(crate) const STDIN: u8 = 5;
pub(crate) const STDOUT: u8 = 6;
pub(crate) const GET_VALUES: u8 = 9;
pub(crate) const GET_VALUES_RESULT: u8 = 10;
pub(crate) const UNKNOWN_TYPE: u8 = 11;

pub(crate) const ROLE_RESPONDER: u16 = 1;
pub(crate) const FLAG_KEEP_CONN: u8 = 1;

pub(crate) const REQUEST_COMPLETE: u8 = 0;
pub(crate) const CANT_MPX_CONN: u8 = 1;
pub(crate) const UNKNOWN_ROLE: u8 = 3;

/// A parsed record header. The version byte is checked while parsing and not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) rtype: u8,
    pub(crate) request_id: u16,
    pub(crate) content_len: usize,
    pub(crate) padding_len: usize,
}

impl Header {
    /// Parses the first 8 bytes of `buf`; `Ok(None)` when fewer than 8 bytes are there yet.
    pub(crate) fn parse(buf: &[u8]) -> Result<Option<Header>, RecordError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if h[0] != VERSION_1 {
            return Err(RecordError::BadVersion(h[0]));
        }
        Ok(Some(Header {
            rtype: h[1],
            request_id: u16::from_be_bytes([h[2], h[3]]),
            content_len: usize::from(u16::from_be_bytes([h[4], h[5]])),
            padding_len: usize::from(h[6]),
        }))
    }

    /// Header, content and padding together.
    pub(crate) fn total_len(&self) -> usize {
        HEADER_LEN + self.content_len + self.padding_len
    }
}

/// What can be wrong with the bytes a peer sent. Any of these closes that one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordError {
    BadVersion(u8),
    /// The stream ended inside a record header.
    TruncatedHeader {
        have: usize,
    },
    /// The stream ended inside a record's content or padding.
    TruncatedContent {
        need: usize,
        have: usize,
    },
    /// A BEGIN_REQUEST whose body is not the 8 bytes the spec gives it.
    BadBeginBody(usize),
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::BadVersion(v) => write!(f, "unsupported FastCGI version {v}"),
            RecordError::TruncatedHeader { have } => {
                write!(f, "stream ended inside a record header ({have} of 8 bytes)")
            }
            RecordError::TruncatedContent { need, have } => {
                write!(f, "stream ended inside a record ({have} of {need} bytes)")
            }
            RecordError::BadBeginBody(len) => {
                write!(f, "BEGIN_REQUEST body of {len} bytes (expected 8)")
            }
        }
    }
}

impl std::error::Error for RecordError {}

/// One complete record borrowed from a read buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record<'a> {
    pub(crate) header: Header,
    pub(crate) content: &'a [u8],
}

/// Takes one complete record (padding included) from the front of `buf`.
/// `Ok(None)` means more bytes are needed; the second value is how many bytes the record used.
pub(crate) fn split_record(buf: &[u8]) -> Result<Option<(Record<'_>, usize)>, RecordError> {
    let Some(header) = Header::parse(buf)? else {
        return Ok(None);
    };
    let total = header.total_len();
    if buf.len() < total {
        return Ok(None);
    }
    let content = &buf[HEADER_LEN..HEADER_LEN + header.content_len];
    Ok(Some((Record { header, content }, total)))
}

/// Called when the peer's stream has ended: leftover bytes are a record cut short.
pub(crate) fn check_end(rest: &[u8]) -> Result<(), RecordError> {
    if rest.is_empty() {
        return Ok(());
    }
    match Header::parse(rest)? {
        None => Err(RecordError::TruncatedHeader { have: rest.len() }),
        Some(h) => Err(RecordError::TruncatedContent {
            need: h.total_len(),
            have: rest.len(),
        }),
    }
}

/// The body of a BEGIN_REQUEST record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BeginRequest {
    pub(crate) role: u16,
    pub(crate) keep_conn: bool,
}

pub(crate) fn parse_begin(content: &[u8]) -> Result<BeginRequest, RecordError> {
    if content.len() != 8 {
        return Err(RecordError::BadBeginBody(content.len()));
    }
    Ok(BeginRequest {
        role: u16::from_be_bytes([content[0], content[1]]),
        keep_conn: content[2] & FLAG_KEEP_CONN != 0,
    })
}

/// Padding that brings `content_len` to a multiple of 8, as the spec recommends.
pub(crate) fn padding_for(content_len: usize) -> usize {
    (8 - content_len % 8) % 8
}

/// Writes a record header for `content_len` (at most [`MAX_CONTENT`]) and `padding` bytes.
pub(crate) fn header_bytes(rtype: u8, id: u16, content_len: usize, padding: usize) -> [u8; 8] {
    let len = u16::try_from(content_len).unwrap_or(u16::MAX).to_be_bytes();
    let id = id.to_be_bytes();
    let pad = u8::try_from(padding).unwrap_or(0);
    [VERSION_1, rtype, id[0], id[1], len[0], len[1], pad, 0]
}

/// Appends `content` as one or more records of type `rtype` (one empty record if `content` is
/// empty), splitting at [`MAX_CONTENT`] and padding each to 8 bytes.
pub(crate) fn push_records(out: &mut Vec<u8>, rtype: u8, id: u16, content: &[u8]) {
    let mut chunks = content.chunks(MAX_CONTENT);
    let mut next = chunks.next().or(Some(&[][..]));
    while let Some(chunk) = next {
        let pad = padding_for(chunk.len());
        out.extend_from_slice(&header_bytes(rtype, id, chunk.len(), pad));
        out.extend_from_slice(chunk);
        out.resize(out.len() + pad, 0);
        next = chunks.next();
    }
}

pub(crate) fn push_end_request(out: &mut Vec<u8>, id: u16, app_status: u32, protocol_status: u8) {
    let s = app_status.to_be_bytes();
    let body = [s[0], s[1], s[2], s[3], protocol_status, 0, 0, 0];
    push_records(out, END_REQUEST, id, &body);
}

/// What GET_VALUES reports about this server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) max_conns: usize,
    pub(crate) max_reqs: usize,
}

/// Answers a management record (request id 0): GET_VALUES gets GET_VALUES_RESULT with the
/// names we know, anything else gets UNKNOWN_TYPE.
pub(crate) fn push_management_reply(out: &mut Vec<u8>, rtype: u8, content: &[u8], limits: &Limits) {
    if rtype != GET_VALUES {
        push_records(out, UNKNOWN_TYPE, 0, &[rtype, 0, 0, 0, 0, 0, 0, 0]);
        return;
    }
    // A malformed query gets an empty result rather than a closed connection: nothing depends on it.
    let asked = decode_pairs(content).unwrap_or_default();
    let known: [(&[u8], String); 3] = [
        (b"FCGI_MAX_CONNS", limits.max_conns.to_string()),
        (b"FCGI_MAX_REQS", limits.max_reqs.to_string()),
        (b"FCGI_MPXS_CONNS", "0".to_string()),
    ];
    let mut body = Vec::new();
    for (name, value) in &known {
        // Each name answered once, so a query repeating a name cannot inflate the answer.
        if asked.iter().any(|(n, _)| n == name) {
            encode_pair(&mut body, name, value.as_bytes());
        }
    }
    push_records(out, GET_VALUES_RESULT, 0, &body);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rtype: u8, id: u16, content: &[u8], pad: usize) -> Vec<u8> {
        let mut v = header_bytes(rtype, id, content.len(), pad).to_vec();
        v.extend_from_slice(content);
        v.resize(v.len() + pad, 0);
        v
    }

    #[test]
    fn parses_a_good_record_with_padding() {
        let mut buf = rec(STDIN, 1, b"hello", 3);
        buf.extend_from_slice(&rec(STDIN, 1, b"", 0));
        let (r, used) = split_record(&buf).unwrap().unwrap();
        assert_eq!(used, 16);
        assert_eq!(r.header.rtype, STDIN);
        assert_eq!(r.header.request_id, 1);
        assert_eq!(r.content, b"hello");
        let (r2, used2) = split_record(&buf[used..]).unwrap().unwrap();
        assert_eq!((r2.content.len(), used2), (0, 8));
        assert_eq!(check_end(&buf[used + used2..]), Ok(()));
    }

    #[test]
    fn truncated_header_needs_more_then_errors_at_end() {
        let buf = rec(STDIN, 1, b"abc", 0);
        assert_eq!(split_record(&buf[..5]), Ok(None));
        assert_eq!(
            check_end(&buf[..5]),
            Err(RecordError::TruncatedHeader { have: 5 })
        );
        assert_eq!(split_record(&[]), Ok(None));
    }

    #[test]
    fn truncated_content_and_padding() {
        let buf = rec(PARAMS, 7, b"0123456789", 6);
        assert_eq!(split_record(&buf[..12]), Ok(None));
        // Content complete but padding missing: still incomplete.
        assert_eq!(split_record(&buf[..20]), Ok(None));
        assert_eq!(
            check_end(&buf[..20]),
            Err(RecordError::TruncatedContent { need: 24, have: 20 })
        );
        assert!(split_record(&buf).unwrap().is_some());
    }

    #[test]
    fn bad_version_is_an_error() {
        let mut buf = rec(STDIN, 1, b"x", 0);
        buf[0] = 2;
        assert_eq!(split_record(&buf), Err(RecordError::BadVersion(2)));
        assert_eq!(check_end(&buf), Err(RecordError::BadVersion(2)));
        assert_eq!(
            split_record(b"GET / HTTP/1.1\r\n"),
            Err(RecordError::BadVersion(b'G'))
        );
    }

    #[test]
    fn begin_request_body() {
        let b = parse_begin(&[0, 1, 1, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            b,
            BeginRequest {
                role: 1,
                keep_conn: true
            }
        );
        let b = parse_begin(&[0, 3, 0, 0, 0, 0, 0, 0]).unwrap();
        assert_eq!(
            b,
            BeginRequest {
                role: 3,
                keep_conn: false
            }
        );
        assert_eq!(parse_begin(&[0, 1]), Err(RecordError::BadBeginBody(2)));
    }

    #[test]
    fn push_records_splits_and_pads() {
        let mut out = Vec::new();
        push_records(&mut out, STDOUT, 1, &vec![b'a'; MAX_CONTENT + 10]);
        let (r1, u1) = split_record(&out).unwrap().unwrap();
        assert_eq!(r1.content.len(), MAX_CONTENT);
        assert_eq!(u1 % 8, 0);
        let (r2, u2) = split_record(&out[u1..]).unwrap().unwrap();
        assert_eq!(r2.content.len(), 10);
        assert_eq!(u1 + u2, out.len());
        let mut empty = Vec::new();
        push_records(&mut empty, STDOUT, 1, b"");
        assert_eq!(empty, vec![1, STDOUT, 0, 1, 0, 0, 0, 0]);
    }

    #[test]
    fn management_replies() {
        let limits = Limits {
            max_conns: 10,
            max_reqs: 3,
        };
        let mut q = Vec::new();
        for name in [
            "FCGI_MAX_CONNS",
            "FCGI_MPXS_CONNS",
            "NOPE",
            "FCGI_MAX_CONNS",
        ] {
            encode_pair(&mut q, name.as_bytes(), b"");
        }
        let mut out = Vec::new();
        push_management_reply(&mut out, GET_VALUES, &q, &limits);
        let (r, _) = split_record(&out).unwrap().unwrap();
        assert_eq!(r.header.rtype, GET_VALUES_RESULT);
        let pairs = decode_pairs(r.content).unwrap();
        assert_eq!(
            pairs,
            vec![
                (b"FCGI_MAX_CONNS".to_vec(), b"10".to_vec()),
                (b"FCGI_MPXS_CONNS".to_vec(), b"0".to_vec())
            ]
        );
        let mut out = Vec::new();
        push_management_reply(&mut out, 200, b"", &limits);
        let (r, _) = split_record(&out).unwrap().unwrap();
        assert_eq!(r.header.rtype, UNKNOWN_TYPE);
        assert_eq!(r.content, &[200, 0, 0, 0, 0, 0, 0, 0]);
    }
}
