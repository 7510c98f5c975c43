//! What `git grep --heading --break -n` prints for a tree, read as it comes: a file's name on a
//! line of its own (after an empty line, but for the first), then its lines as `N:text` (a
//! match) or `N-text` (context), runs of lines apart split by `--`. The reader keeps at most a
//! number of files and of matching lines, and a bounded part of each line, and says when it has
//! had enough so git can be stopped. Also the check of a regular expression as git compiles it.

/// A line of a result: a match or its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrepLine {
    pub(crate) number: usize,
    pub(crate) text: String,
    pub(crate) matched: bool,
}

/// One file's results: runs of adjacent lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrepFile {
    pub(crate) path: Vec<u8>,
    pub(crate) runs: Vec<Vec<GrepLine>>,
}

/// Bytes of a line kept (the rest is not shown).
const LINE_KEPT: usize = 8 << 10;
/// Characters of a line shown.
const LINE_SHOWN: usize = 400;

/// Reads git's output in parts as they come.
pub(crate) struct GrepReader {
    /// What git puts before every file name: `{id}:`.
    prefix: Vec<u8>,
    max_files: usize,
    max_matches: usize,
    pub(crate) files: Vec<GrepFile>,
    pub(crate) matches: usize,
    /// A cap was reached: there is more than what was kept.
    pub(crate) more: bool,
    /// The line being read (its first [`LINE_KEPT`] bytes).
    line: Vec<u8>,
    /// The next line is a file's name.
    heading: bool,
}

impl GrepReader {
    pub(crate) fn new(prefix: &str, max_files: usize, max_matches: usize) -> GrepReader {
        GrepReader {
            prefix: prefix.as_bytes().to_vec(),
            max_files,
            max_matches,
            files: Vec::new(),
            matches: 0,
            more: false,
            line: Vec::new(),
            heading: true,
        }
    }

    /// Takes a part of git's output; `false` once a cap is reached (git may be stopped).
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> bool {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(p) => {
                    self.keep(&chunk[..p]);
                    chunk = &chunk[p + 1..];
                    let line = std::mem::take(&mut self.line);
                    if !self.take_line(&line) {
                        self.more = true;
                        return false;
                    }
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.keep(chunk);
                    break;
                }
            }
        }
        true
    }

    fn keep(&mut self, part: &[u8]) {
        let room = LINE_KEPT.saturating_sub(self.line.len());
        self.line.extend_from_slice(&part[..part.len().min(room)]);
    }

    /// One whole line; `false` when it goes past a cap.
    fn take_line(&mut self, line: &[u8]) -> bool {
        if line.is_empty() {
            self.heading = true;
            return true;
        }
        if self.heading {
            self.heading = false;
            if self.files.len() == self.max_files {
                return false;
            }
            let name = super::blame::unquote(line);
            let path = name
                .strip_prefix(self.prefix.as_slice())
                .unwrap_or(&name)
                .to_vec();
            self.files.push(GrepFile {
                path,
                runs: vec![Vec::new()],
            });
            return true;
        }
        let Some(file) = self.files.last_mut() else {
            return true;
        };
        if line == b"--" {
            file.runs.push(Vec::new());
            return true;
        }
        let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
        let (Some(&sep), Ok(number)) = (
            line.get(digits),
            std::str::from_utf8(&line[..digits])
                .unwrap_or("")
                .parse::<usize>(),
        ) else {
            return true;
        };
        let matched = sep == b':';
        if matched {
            if self.matches == self.max_matches {
                return false;
            }
            self.matches += 1;
        }
        let text: String = String::from_utf8_lossy(&line[digits + 1..])
            .chars()
            .take(LINE_SHOWN)
            .collect();
        if let Some(run) = file.runs.last_mut() {
            run.push(GrepLine {
                number,
                text,
                matched,
            });
        }
        true
    }
}

/// Whether git can compile `pattern` as an extended regular expression (as `git grep -E` does,
/// with the C library's `regcomp`); the library's message when it cannot.
pub(crate) fn check_regex(pattern: &str, ignore_case: bool) -> Result<(), String> {
    // The C library expands a bounded repeat into copies of what it repeats, so nested repeats
    // multiply: `(a{32767}){32767}`, 17 bytes, made a process allocate 24 GB. Refused from
    // their count before anything is compiled.
    if expanded_size(pattern) > MAX_EXPANDED {
        return Err(format!(
            "its repeats would make it more than {MAX_EXPANDED} parts long; use smaller {{n}} counts"
        ));
    }
    let Ok(c) = std::ffi::CString::new(pattern) else {
        return Err("the pattern holds a NUL character".into());
    };
    let mut flags = libc::REG_EXTENDED | libc::REG_NEWLINE | libc::REG_NOSUB;
    if ignore_case {
        flags |= libc::REG_ICASE;
    }
    // SAFETY: regex_t is plain data that regcomp fills in; zeroed is a valid start.
    let mut re: libc::regex_t = unsafe { std::mem::zeroed() };
    // SAFETY: a live regex_t and a NUL-terminated pattern.
    let rc = unsafe { libc::regcomp(&mut re, c.as_ptr(), flags) };
    if rc == 0 {
        // SAFETY: compiled successfully above, freed once.
        unsafe { libc::regfree(&mut re) };
        return Ok(());
    }
    let mut buf = [0u8; 256];
    // SAFETY: regerror writes at most buf.len() bytes, NUL-terminated, about this error code.
    unsafe { libc::regerror(rc, &re, buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Err(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// How many parts (characters, classes) a regular expression may have once its repeats are
/// written out; git's grep compiles the expression again, in its own process, bounded in memory.
const MAX_EXPANDED: u64 = 100_000;

/// An upper bound of the parts of extended regular expression `re` once its repeats are
/// written out, as the C library compiles them: `x{m,n}` counts `x` `max(m, n)` times (nested
/// ones multiply), `x+` twice; what is not a valid interval counts as the characters it is. A
/// cheap scan, never a parse: only the bound matters.
fn expanded_size(re: &str) -> u64 {
    let b = re.as_bytes();
    // Per open group: its size so far and the size of its last atom (what a repeat repeats).
    let mut frames: Vec<(u64, u64)> = vec![(0, 0)];
    let mut i = 0;
    while i < b.len() {
        let mut atom = 1u64;
        match b[i] {
            b'\\' => i += 1,
            b'[' => {
                // To the closing bracket; a `]` first (after an optional `^`) is a member.
                i += 1;
                if b.get(i) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i) == Some(&b']') {
                    i += 1;
                }
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
            }
            b'(' => {
                frames.push((0, 0));
                i += 1;
                continue;
            }
            b')' if frames.len() > 1 => {
                let (total, _) = frames.pop().unwrap_or((0, 0));
                atom = total.max(1);
            }
            b'|' => atom = 0,
            b'*' | b'?' => atom = 0,
            b'+' => {
                if let Some(f) = frames.last_mut() {
                    f.0 = f.0.saturating_add(f.1);
                    f.1 = f.1.saturating_mul(2);
                }
                i += 1;
                continue;
            }
            b'{' => {
                if let Some((count, len)) = interval(&b[i..]) {
                    if let Some(f) = frames.last_mut() {
                        let grown = f.1.saturating_mul(count);
                        f.0 = f.0.saturating_sub(f.1).saturating_add(grown);
                        f.1 = grown;
                    }
                    i += len;
                    continue;
                }
            }
            _ => {}
        }
        if let Some(f) = frames.last_mut() {
            f.0 = f.0.saturating_add(atom);
            f.1 = atom;
        }
        i += 1;
    }
    // Groups never closed count as they are.
    frames.iter().fold(0u64, |sum, f| sum.saturating_add(f.0))
}

/// `{m}`, `{m,}`, `{,n}` or `{m,n}` at the start of `b`: the larger count (`m` for `{m,}`) and the
/// interval's length in bytes.
fn interval(b: &[u8]) -> Option<(u64, usize)> {
    let end = b.iter().position(|&c| c == b'}')?;
    let inner = std::str::from_utf8(&b[1..end]).ok()?;
    let (m, n) = match inner.split_once(',') {
        Some((m, n)) => (m, n),
        None => (inner, inner),
    };
    // `{,n}` is `{0,n}` to the C library.
    let m: u64 = if m.is_empty() { 0 } else { m.parse().ok()? };
    let n: u64 = if n.is_empty() { m } else { n.parse().ok()? };
    Some((m.max(n).max(1), end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_repeats_are_refused_before_they_are_compiled() {
        assert_eq!(expanded_size("abc"), 3);
        assert_eq!(expanded_size("a{10}"), 10);
        assert_eq!(expanded_size("(ab){10}c"), 21);
        assert_eq!(expanded_size("(a{10}){10}"), 100);
        assert_eq!(expanded_size("[{}]{5}"), 5);
        assert_eq!(expanded_size("a\\{3}"), 4);
        assert!(expanded_size("(a{32767}){32767}") > MAX_EXPANDED);
        assert!(expanded_size("(a{,32767}){,32767}") > MAX_EXPANDED);
        assert!(expanded_size("(a{1,32767}){32767,}") > MAX_EXPANDED);
        assert!(expanded_size("((a{1000}){1000}){1000}") > MAX_EXPANDED);
        assert!(expanded_size(&"a{1000}".repeat(140)) > MAX_EXPANDED);
        // Unbalanced or odd input still gives a bound.
        assert_eq!(expanded_size("(((a"), 1);
        assert_eq!(expanded_size("a{x}"), 4);
        assert_eq!(expanded_size(")a"), 2);
        let started = std::time::Instant::now();
        let e = check_regex("(a{32767}){32767}", false).unwrap_err();
        assert!(e.contains("smaller {n} counts"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(check_regex("(ab|c){2,300}[0-9]+", true).is_ok());
    }

    #[test]
    fn files_lines_and_runs() {
        let mut r = GrepReader::new("abc:", 10, 10);
        let out = b"abc:src/a.rs\n1-x\n2:yes\n3-z\n--\n9:yes again\n\n\"abc:we\\\"ird\"\n4:12:34\n";
        // Fed a byte at a time, as a pipe may give it.
        for b in out.iter() {
            assert!(r.feed(std::slice::from_ref(b)));
        }
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files[0].path, b"src/a.rs");
        assert_eq!(r.files[0].runs.len(), 2);
        assert_eq!(r.files[0].runs[0][1].text, "yes");
        assert!(r.files[0].runs[0][1].matched && !r.files[0].runs[0][0].matched);
        assert_eq!(r.files[1].path, b"we\"ird");
        assert_eq!(r.files[1].runs[0][0].number, 4);
        assert_eq!(r.files[1].runs[0][0].text, "12:34");
        assert_eq!(r.matches, 3);
        assert!(!r.more);
    }

    #[test]
    fn caps_stop_the_reading() {
        let mut r = GrepReader::new("abc:", 1, 100);
        assert!(!r.feed(b"abc:a\n1:x\n\nabc:b\n1:x\n"));
        assert!(r.more && r.files.len() == 1);
        let mut r = GrepReader::new("abc:", 10, 2);
        assert!(!r.feed(b"abc:a\n1:x\n2:x\n3:x\n"));
        assert_eq!(r.matches, 2);
    }

    #[test]
    fn regex_errors_are_told() {
        assert!(check_regex("a(b|c)+", false).is_ok());
        assert!(check_regex("a(b", true).is_err());
    }
}
