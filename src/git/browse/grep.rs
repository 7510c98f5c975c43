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
pub(crate) const LINE_SHOWN: usize = 400;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
