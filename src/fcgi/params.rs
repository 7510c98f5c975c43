//! Request parameters (the CGI-style variables of a FastCGI request): name-value pair decoding and
//! encoding, and the size-capped collector for a PARAMS stream.

use std::fmt;

pub use crate::gateway::Params;

/// What can be wrong with a PARAMS stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParamsError {
    /// A length or a name/value ends past the end of the stream.
    Truncated { at: usize },
    /// The stream is larger than the configured cap.
    TooLarge { cap: usize },
}

impl fmt::Display for ParamsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamsError::Truncated { at } => write!(f, "name-value pair cut short at byte {at}"),
            ParamsError::TooLarge { cap } => write!(f, "PARAMS larger than {cap} bytes"),
        }
    }
}

impl std::error::Error for ParamsError {}

/// Name-value pairs in arrival order.
pub(crate) type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads one length: 1 byte when the high bit is clear, else 4 bytes with the high bit masked.
fn read_len(buf: &[u8], pos: &mut usize) -> Result<usize, ParamsError> {
    let first = *buf.get(*pos).ok_or(ParamsError::Truncated { at: *pos })?;
    if first & 0x80 == 0 {
        *pos += 1;
        return Ok(usize::from(first));
    }
    let b = buf
        .get(*pos..*pos + 4)
        .ok_or(ParamsError::Truncated { at: *pos })?;
    *pos += 4;
    let n = u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]);
    usize::try_from(n).map_err(|_| ParamsError::Truncated { at: *pos })
}

fn take<'a>(buf: &'a [u8], pos: &mut usize, len: usize) -> Result<&'a [u8], ParamsError> {
    let end = pos
        .checked_add(len)
        .ok_or(ParamsError::Truncated { at: *pos })?;
    let s = buf
        .get(*pos..end)
        .ok_or(ParamsError::Truncated { at: *pos })?;
    *pos = end;
    Ok(s)
}

/// Decodes a whole stream of name-value pairs (PARAMS, or a GET_VALUES body).
pub(crate) fn decode_pairs(buf: &[u8]) -> Result<Pairs, ParamsError> {
    let mut pairs = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let name_len = read_len(buf, &mut pos)?;
        let value_len = read_len(buf, &mut pos)?;
        let name = take(buf, &mut pos, name_len)?;
        let value = take(buf, &mut pos, value_len)?;
        pairs.push((name.to_vec(), value.to_vec()));
    }
    Ok(pairs)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    match u8::try_from(len) {
        Ok(b) if b < 0x80 => out.push(b),
        _ => {
            let n = u32::try_from(len).unwrap_or(u32::MAX >> 1) | 0x8000_0000;
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Encodes one name-value pair (used for GET_VALUES_RESULT, and by tests acting as a web server).
pub(crate) fn encode_pair(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    push_len(out, name.len());
    push_len(out, value.len());
    out.extend_from_slice(name);
    out.extend_from_slice(value);
}

/// Gathers the content of a request's PARAMS records; pairs may span records, so decoding waits
/// for the empty record that ends the stream. The cap bounds what one request can make us hold.
#[derive(Debug)]
pub(crate) struct ParamsCollector {
    raw: Vec<u8>,
    cap: usize,
}

impl ParamsCollector {
    pub(crate) fn new(cap: usize) -> ParamsCollector {
        ParamsCollector {
            raw: Vec::new(),
            cap,
        }
    }

    pub(crate) fn push(&mut self, content: &[u8]) -> Result<(), ParamsError> {
        if self.raw.len().saturating_add(content.len()) > self.cap {
            return Err(ParamsError::TooLarge { cap: self.cap });
        }
        self.raw.extend_from_slice(content);
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Params, ParamsError> {
        decode_pairs(&self.raw).map(Params::from_pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_pair(&mut v, name, value);
        v
    }

    #[test]
    fn one_and_four_byte_lengths() {
        let long_value = vec![b'v'; 300];
        let long_name = vec![b'n'; 128];
        let mut buf = pair(b"REQUEST_METHOD", b"GET");
        buf.extend(pair(b"HTTP_X_BIG", &long_value));
        buf.extend(pair(&long_name, b"x"));
        // 4-byte length form used even for a small length must be accepted too.
        buf.extend_from_slice(&[0x80, 0, 0, 2, 1, b'A', b'B', b'c']);
        let p = Params::from_pairs(decode_pairs(&buf).unwrap());
        assert_eq!(p.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
        assert_eq!(p.get(b"HTTP_X_BIG"), Some(&long_value[..]));
        assert_eq!(p.get(&long_name), Some(&b"x"[..]));
        assert_eq!(p.get(b"AB"), Some(&b"c"[..]));
        assert_eq!(p.iter().count(), 4);
        // The encoder picked the 4-byte form for 300 and 128, the 1-byte form for 3.
        assert_eq!(&pair(b"a", &long_value)[..5], &[1, 0x80, 0, 1, 44]);
    }

    #[test]
    fn empty_names_values_and_non_utf8_bytes() {
        let mut buf = pair(b"", b"");
        buf.extend(pair(b"EMPTY", b""));
        buf.extend(pair(b"HTTP_X", b"\xff\xfe"));
        buf.extend(pair(b"AFTER", b"ok"));
        let p = Params::from_pairs(decode_pairs(&buf).unwrap());
        assert_eq!(p.get(b""), Some(&b""[..]));
        assert_eq!(p.get(b"EMPTY"), Some(&b""[..]));
        assert_eq!(p.get(b"HTTP_X"), Some(&b"\xff\xfe"[..]));
        assert_eq!(p.get(b"AFTER"), Some(&b"ok"[..]));
        assert_eq!(p.get(b"MISSING"), None);
        let names: Vec<&[u8]> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec![&b""[..], b"EMPTY", b"HTTP_X", b"AFTER"]);
    }

    #[test]
    fn first_duplicate_wins() {
        let p = Params::from_pairs(vec![
            (b"A".to_vec(), b"1".to_vec()),
            (b"A".to_vec(), b"2".to_vec()),
        ]);
        assert_eq!(p.get(b"A"), Some(&b"1"[..]));
    }

    #[test]
    fn truncated_pairs_are_errors() {
        let full = pair(b"NAME", b"value");
        for cut in 1..full.len() {
            assert!(decode_pairs(&full[..cut]).is_err(), "cut at {cut}");
        }
        // A 4-byte length cut short.
        assert_eq!(
            decode_pairs(&[0x80, 0]),
            Err(ParamsError::Truncated { at: 0 })
        );
        // A huge declared length must not overflow or allocate.
        assert!(decode_pairs(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert_eq!(decode_pairs(&[]), Ok(vec![]));
    }

    #[test]
    fn pair_split_across_records() {
        let mut buf = pair(b"SCRIPT_NAME", &[b's'; 200]);
        buf.extend(pair(b"QUERY_STRING", b"a=b"));
        let mut c = ParamsCollector::new(1 << 20);
        for piece in buf.chunks(7) {
            c.push(piece).unwrap();
        }
        let p = c.finish().unwrap();
        assert_eq!(p.get(b"SCRIPT_NAME").map(<[u8]>::len), Some(200));
        assert_eq!(p.get(b"QUERY_STRING"), Some(&b"a=b"[..]));
    }

    #[test]
    fn collector_cap_and_truncated_end() {
        let mut c = ParamsCollector::new(10);
        c.push(&[0; 6]).unwrap();
        assert_eq!(c.push(&[0; 5]), Err(ParamsError::TooLarge { cap: 10 }));
        let mut c = ParamsCollector::new(100);
        c.push(&pair(b"A", b"bcd")[..4]).unwrap();
        assert!(matches!(c.finish(), Err(ParamsError::Truncated { .. })));
    }
}
