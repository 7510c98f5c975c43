//! What a fetch asks for, read from its request and written down in one canonical form, and the
//! cache key made of it and of everything else that changes git's answer.
//!
//! Two requests that differ only in what cannot change the answer (the client's `agent`, its
//! `session-id`, the order of capabilities, wants and haves, a want or have repeated) read the
//! same; anything that can change it (side-band or side-band-64k, thin-pack, ofs-delta,
//! include-tag, no-progress, wants, want-refs, haves, `done`, shallow and deepen lines, filter)
//! is kept. A request with a line this reader does not know is not cached at all: git may
//! answer it differently, and a wrong answer served from a cache would be served again and again.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The protocol a fetch speaks: v0 (and v1, whose requests are v0's) or v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    V0,
    V2,
}

/// A fetch request in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    protocol: Protocol,
    /// Capabilities (v0: those on the first want line; v2: the argument lines that are flags,
    /// and the capability lines before the delimiter), sorted, without `agent` and `session-id`.
    caps: BTreeSet<String>,
    wants: BTreeSet<String>,
    want_refs: BTreeSet<String>,
    haves: BTreeSet<String>,
    shallows: BTreeSet<String>,
    /// `deepen N`, `deepen-since T`, `deepen-not REF`, `deepen-relative`, in order.
    deepen: Vec<String>,
    filter: Option<String>,
    done: bool,
}

/// Why a request is not cached (it is still answered, by git).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCached {
    /// Not a sequence of well-formed pkt-lines.
    Malformed(&'static str),
    /// A v2 command other than `fetch` (`ls-refs`, `object-info`, ...).
    NotFetch,
    /// A line this reader does not know, so cannot say does not change the answer.
    Unknown(String),
    /// Nothing is wanted.
    NoWants,
}

/// One pkt-line: its payload, or a flush (`0000`), delimiter (`0001`) or response end (`0002`).
#[derive(Debug, PartialEq, Eq)]
enum Pkt<'a> {
    Data(&'a [u8]),
    Flush,
    Delim,
    End,
}

/// The pkt-lines of `body`.
fn pkt_lines(mut body: &[u8]) -> Result<Vec<Pkt<'_>>, NotCached> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let head = body.get(..4).ok_or(NotCached::Malformed(
            "the request ends inside a pkt-line header",
        ))?;
        let text =
            std::str::from_utf8(head).map_err(|_| NotCached::Malformed("a length is not hex"))?;
        let len = usize::from_str_radix(text, 16)
            .map_err(|_| NotCached::Malformed("a length is not hex"))?;
        match len {
            0 => out.push(Pkt::Flush),
            1 => out.push(Pkt::Delim),
            2 => out.push(Pkt::End),
            3 => return Err(NotCached::Malformed("a pkt-line has the invalid length 3")),
            n => {
                let data = body
                    .get(4..n)
                    .ok_or(NotCached::Malformed("the request ends inside a pkt-line"))?;
                out.push(Pkt::Data(data));
                body = &body[n..];
                continue;
            }
        }
        body = &body[4..];
    }
    Ok(out)
}

/// A line's text without its trailing newline.
fn text(data: &[u8]) -> Result<&str, NotCached> {
    let s = std::str::from_utf8(data).map_err(|_| NotCached::Malformed("a line is not UTF-8"))?;
    Ok(s.strip_suffix('\n').unwrap_or(s))
}

/// An object id as git writes it: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.
fn oid(s: &str) -> Result<String, NotCached> {
    let ok =
        matches!(s.len(), 40 | 64) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(NotCached::Unknown(format!("an object id {s:?}")))
    }
}

/// Capabilities that do not change the answer: who the client is, and its session.
fn ignored_cap(cap: &str) -> bool {
    cap.starts_with("agent=") || cap.starts_with("session-id=")
}

impl FetchRequest {
    fn new(protocol: Protocol) -> FetchRequest {
        FetchRequest {
            protocol,
            caps: BTreeSet::new(),
            wants: BTreeSet::new(),
            want_refs: BTreeSet::new(),
            haves: BTreeSet::new(),
            shallows: BTreeSet::new(),
            deepen: Vec::new(),
            filter: None,
            done: false,
        }
    }

    /// Whether the client says what it has (a fetch), rather than nothing (a clone).
    pub fn has_haves(&self) -> bool {
        !self.haves.is_empty()
    }

    /// Reads the body of a `git-upload-pack` POST (inflated when it came gzipped).
    pub fn parse(body: &[u8], protocol: Protocol) -> Result<FetchRequest, NotCached> {
        let lines = pkt_lines(body)?;
        let req = match protocol {
            Protocol::V0 => Self::parse_v0(&lines)?,
            Protocol::V2 => Self::parse_v2(&lines)?,
        };
        if req.wants.is_empty() && req.want_refs.is_empty() {
            return Err(NotCached::NoWants);
        }
        Ok(req)
    }

    /// v0 (stateless RPC): `want OID CAPS`, more `want OID`, `shallow`, `deepen*`, `filter`,
    /// a flush, then `have OID` lines and `done`.
    fn parse_v0(lines: &[Pkt<'_>]) -> Result<FetchRequest, NotCached> {
        let mut req = FetchRequest::new(Protocol::V0);
        let mut first_want = true;
        for pkt in lines {
            let line = match pkt {
                Pkt::Data(d) => text(d)?,
                Pkt::Flush => continue,
                Pkt::Delim | Pkt::End => {
                    return Err(NotCached::Unknown("a v2 delimiter in a v0 request".into()))
                }
            };
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match word {
                "want" => {
                    let mut parts = rest.split(' ');
                    req.wants.insert(oid(parts.next().unwrap_or(""))?);
                    if first_want {
                        for cap in parts.filter(|c| !c.is_empty() && !ignored_cap(c)) {
                            req.caps.insert(cap.to_string());
                        }
                        first_want = false;
                    }
                }
                "have" => {
                    req.haves.insert(oid(rest)?);
                }
                "shallow" => {
                    req.shallows.insert(oid(rest)?);
                }
                "deepen" | "deepen-since" | "deepen-not" => req.deepen.push(line.to_string()),
                "filter" => req.filter = Some(rest.to_string()),
                "done" if rest.is_empty() => req.done = true,
                _ => return Err(NotCached::Unknown(line.to_string())),
            }
        }
        Ok(req)
    }

    /// v2: `command=fetch`, capability lines, a delimiter, then the arguments, a flush.
    fn parse_v2(lines: &[Pkt<'_>]) -> Result<FetchRequest, NotCached> {
        let mut req = FetchRequest::new(Protocol::V2);
        let mut in_args = false;
        let mut command = None;
        for pkt in lines {
            let line = match pkt {
                Pkt::Data(d) => text(d)?,
                Pkt::Delim => {
                    // The arguments are read only for a fetch.
                    if command.as_deref() != Some("fetch") {
                        return Err(NotCached::NotFetch);
                    }
                    in_args = true;
                    continue;
                }
                Pkt::Flush | Pkt::End => continue,
            };
            if !in_args {
                if let Some(c) = line.strip_prefix("command=") {
                    command = Some(c.to_string());
                } else if !ignored_cap(line) {
                    // object-format=..., and whatever else a client announces.
                    req.caps.insert(line.to_string());
                }
                continue;
            }
            let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
            match (word, rest.is_empty()) {
                ("want", false) => {
                    req.wants.insert(oid(rest)?);
                }
                ("want-ref", false) => {
                    req.want_refs.insert(rest.to_string());
                }
                ("have", false) => {
                    req.haves.insert(oid(rest)?);
                }
                ("shallow", false) => {
                    req.shallows.insert(oid(rest)?);
                }
                ("deepen" | "deepen-since" | "deepen-not", false) | ("deepen-relative", true) => {
                    req.deepen.push(line.to_string())
                }
                ("filter", false) => req.filter = Some(rest.to_string()),
                ("done", true) => req.done = true,
                (
                    "thin-pack" | "no-progress" | "include-tag" | "ofs-delta" | "sideband-all"
                    | "wait-for-done",
                    true,
                ) => {
                    req.caps.insert(word.to_string());
                }
                _ => return Err(NotCached::Unknown(line.to_string())),
            }
        }
        match command.as_deref() {
            Some("fetch") => Ok(req),
            _ => Err(NotCached::NotFetch),
        }
    }

    /// The request in canonical text: one line per item, in a fixed order.
    fn canonical(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "protocol {}",
            match self.protocol {
                Protocol::V0 => 0,
                Protocol::V2 => 2,
            }
        );
        for (name, set) in [
            ("cap", &self.caps),
            ("want", &self.wants),
            ("want-ref", &self.want_refs),
            ("have", &self.haves),
            ("shallow", &self.shallows),
        ] {
            for item in set {
                let _ = writeln!(out, "{name} {item}");
            }
        }
        for d in &self.deepen {
            let _ = writeln!(out, "{d}");
        }
        if let Some(f) = &self.filter {
            let _ = writeln!(out, "filter {f}");
        }
        let _ = writeln!(out, "done {}", self.done);
        out
    }
}

/// Everything besides the request that changes git's answer.
pub struct Context<'a> {
    /// The repository's identity, never shared by two repositories (with equal refs, a v2
    /// fetch may still want objects only one of them has).
    pub repository: &'a str,
    /// The repository's refs and what they point to (a push changes it).
    pub ref_state: &'a [u8],
    /// `git version` of the git that answers.
    pub git_version: &'a str,
    /// Every `-c` setting passed to that git, in order.
    pub settings: &'a [String],
    /// `sha1` or `sha256`.
    pub object_format: &'a str,
    /// Raised by a purge: what was reachable before may be gone.
    pub purge_generation: u64,
}

/// The cache key of `req` in `ctx`: 64 hex digits (SHA-256 of every part, each length-prefixed
/// so no two different inputs can run together into the same text).
pub fn key(req: &FetchRequest, ctx: &Context<'_>) -> String {
    let mut h = Sha256::new();
    let mut part = |name: &str, bytes: &[u8]| {
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    part("repository", ctx.repository.as_bytes());
    part("refs", ctx.ref_state);
    part("git", ctx.git_version.as_bytes());
    for s in ctx.settings {
        part("setting", s.as_bytes());
    }
    part("object-format", ctx.object_format.as_bytes());
    part("purge", &ctx.purge_generation.to_be_bytes());
    part("request", req.canonical().as_bytes());
    crate::fsfile::hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn pkt(s: &str) -> String {
        format!("{:04x}{s}", s.len() + 4)
    }

    fn v0(first_caps: &str, wants: &[&str], haves: &[&str], done: bool) -> Vec<u8> {
        let mut s = String::new();
        for (i, w) in wants.iter().enumerate() {
            if i == 0 {
                s += &pkt(&format!("want {w} {first_caps}\n"));
            } else {
                s += &pkt(&format!("want {w}\n"));
            }
        }
        s += "0000";
        for h in haves {
            s += &pkt(&format!("have {h}\n"));
        }
        if done {
            s += &pkt("done\n");
        }
        s.into_bytes()
    }

    fn v2(caps: &[&str], args: &[&str]) -> Vec<u8> {
        let mut s = pkt("command=fetch\n");
        for c in caps {
            s += &pkt(&format!("{c}\n"));
        }
        s += "0001";
        for a in args {
            s += &pkt(&format!("{a}\n"));
        }
        s += "0000";
        s.into_bytes()
    }

    fn ctx<'a>(repository: &'a str, refs: &'a [u8], settings: &'a [String]) -> Context<'a> {
        Context {
            repository,
            ref_state: refs,
            git_version: "git version 2.47.3",
            settings,
            object_format: "sha1",
            purge_generation: 0,
        }
    }

    fn key_of(body: &[u8], protocol: Protocol) -> String {
        let req = FetchRequest::parse(body, protocol).unwrap();
        key(&req, &ctx("alice/proj", b"refs/heads/main 1111", &[]))
    }

    #[test]
    fn what_cannot_change_the_answer_is_left_out() {
        let one = v0(
            "multi_ack_detailed side-band-64k thin-pack ofs-delta agent=git/2.47.3",
            &[A, B],
            &[],
            true,
        );
        let two = v0(
            "ofs-delta thin-pack side-band-64k multi_ack_detailed agent=git/2.39.5",
            &[B, A, B],
            &[],
            true,
        );
        assert_eq!(key_of(&one, Protocol::V0), key_of(&two, Protocol::V0));

        let one = v2(
            &["agent=git/2.47.3", "object-format=sha1", "session-id=abc"],
            &[&format!("want {A}"), "thin-pack", "ofs-delta", "done"],
        );
        let two = v2(
            &["object-format=sha1", "agent=JGit", "session-id=xyz"],
            &["ofs-delta", &format!("want {A}"), "thin-pack", "done"],
        );
        assert_eq!(key_of(&one, Protocol::V2), key_of(&two, Protocol::V2));
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let base = v0("side-band-64k ofs-delta", &[A], &[], true);
        let k = key_of(&base, Protocol::V0);
        for other in [
            v0("side-band ofs-delta", &[A], &[], true),
            v0("side-band-64k ofs-delta thin-pack", &[A], &[], true),
            v0("side-band-64k ofs-delta include-tag", &[A], &[], true),
            v0("side-band-64k ofs-delta no-progress", &[A], &[], true),
            v0("side-band-64k", &[A], &[], true),
            v0("side-band-64k ofs-delta", &[A, B], &[], true),
            v0("side-band-64k ofs-delta", &[A], &[B], true),
            v0("side-band-64k ofs-delta", &[A], &[], false),
        ] {
            assert_ne!(key_of(&other, Protocol::V0), k);
        }
        // The same lines over v2 are another request.
        let as_v2 = v2(&[], &[&format!("want {A}"), "ofs-delta", "done"]);
        assert_ne!(key_of(&as_v2, Protocol::V2), k);

        let shallow = v2(&[], &[&format!("want {A}"), "deepen 1", "done"]);
        let deeper = v2(&[], &[&format!("want {A}"), "deepen 2", "done"]);
        let filtered = v2(&[], &[&format!("want {A}"), "filter blob:none", "done"]);
        let by_ref = v2(&[], &["want-ref refs/heads/main", "done"]);
        let keys: BTreeSet<String> = [&shallow, &deeper, &filtered, &by_ref]
            .iter()
            .map(|b| key_of(b, Protocol::V2))
            .collect();
        assert_eq!(keys.len(), 4);
    }

    #[test]
    fn the_repository_and_its_state_are_part_of_the_key() {
        let req = FetchRequest::parse(&v0("ofs-delta", &[A], &[], true), Protocol::V0).unwrap();
        let none: [String; 0] = [];
        let k = key(&req, &ctx("alice/proj", b"main 1", &none));
        assert_ne!(key(&req, &ctx("bob/proj", b"main 1", &none)), k);
        assert_ne!(key(&req, &ctx("alice/proj", b"main 2", &none)), k);
        let settings = ["pack.threads=1".to_string()];
        assert_ne!(key(&req, &ctx("alice/proj", b"main 1", &settings)), k);
        let mut c = ctx("alice/proj", b"main 1", &none);
        c.purge_generation = 1;
        assert_ne!(key(&req, &c), k);
        let mut c = ctx("alice/proj", b"main 1", &none);
        c.git_version = "git version 2.39.5";
        assert_ne!(key(&req, &c), k);
        let mut c = ctx("alice/proj", b"main 1", &none);
        c.object_format = "sha256";
        assert_ne!(key(&req, &c), k);
        // Parts cannot run together: "ab" + "c" is not "a" + "bc".
        assert_ne!(
            key(&req, &ctx("ab", b"c", &none)),
            key(&req, &ctx("a", b"bc", &none))
        );
        assert_eq!(k.len(), 64);
    }

    #[test]
    fn what_this_reader_does_not_know_is_not_cached() {
        let unknown = v2(&[], &[&format!("want {A}"), "packfile-uris https", "done"]);
        assert!(matches!(
            FetchRequest::parse(&unknown, Protocol::V2),
            Err(NotCached::Unknown(_))
        ));
        let ls_refs = {
            let mut s = pkt("command=ls-refs\n");
            s += "0001";
            s += &pkt("peel\n");
            s += "0000";
            s.into_bytes()
        };
        assert_eq!(
            FetchRequest::parse(&ls_refs, Protocol::V2),
            Err(NotCached::NotFetch)
        );
        assert_eq!(
            FetchRequest::parse(&v2(&[], &["done"]), Protocol::V2),
            Err(NotCached::NoWants)
        );
        for bad in [&b"00"[..], b"0003", b"zzzz", b"0010want"] {
            assert!(matches!(
                FetchRequest::parse(bad, Protocol::V0),
                Err(NotCached::Malformed(_))
            ));
        }
        let bad_oid = v0("ofs-delta", &["1111"], &[], true);
        assert!(matches!(
            FetchRequest::parse(&bad_oid, Protocol::V0),
            Err(NotCached::Unknown(_))
        ));
        // A v2 delimiter in a v0 request.
        let mut mixed = v0("ofs-delta", &[A], &[], true);
        mixed.extend_from_slice(b"0001");
        assert!(matches!(
            FetchRequest::parse(&mixed, Protocol::V0),
            Err(NotCached::Unknown(_))
        ));
    }

    /// The requests real git sends, recorded: a full clone over v0 and v2.
    #[test]
    fn real_clone_requests_are_read() {
        let v0_clone = format!(
            "{}{}0000{}",
            pkt(&format!(
                "want {A} multi_ack_detailed no-done side-band-64k thin-pack ofs-delta deepen-since deepen-not agent=git/2.47.3\n"
            )),
            pkt(&format!("want {B}\n")),
            pkt("done\n")
        );
        let r = FetchRequest::parse(v0_clone.as_bytes(), Protocol::V0).unwrap();
        assert_eq!(r.wants.len(), 2);
        assert!(
            r.done
                && r.caps.contains("side-band-64k")
                && !r.caps.iter().any(|c| c.starts_with("agent"))
        );

        let v2_clone = v2(
            &["agent=git/2.47.3", "object-format=sha1"],
            &[
                "thin-pack",
                "no-progress",
                "ofs-delta",
                &format!("want {A}"),
                &format!("want {B}"),
                "done",
            ],
        );
        let r = FetchRequest::parse(&v2_clone, Protocol::V2).unwrap();
        assert_eq!(r.wants.len(), 2);
        assert!(r.caps.contains("object-format=sha1") && r.caps.contains("no-progress"));
    }
}
