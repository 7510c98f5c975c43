//! What `git blame --incremental` prints, read back: for each run of lines, the commit that
//! last changed them, that commit's author and summary (printed the first time the commit
//! appears), and the commit and file name before it (`previous`). Entries come in the order git
//! finds them, not in line order; an entry cut off at the end (git was stopped) is left out,
//! so what was read so far is always usable.

use git2::Oid;

/// A commit that lines are attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlameCommit {
    pub(crate) id: Oid,
    pub(crate) author: String,
    /// Seconds since the Unix epoch.
    pub(crate) time: i64,
    /// The author's offset from UTC, in minutes.
    pub(crate) offset_minutes: i32,
    pub(crate) summary: String,
}

/// A run of lines of the final file, all from one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlameRun {
    /// Index into [`Blame::commits`].
    pub(crate) commit: usize,
    /// The first line of the run in the file blamed, from 1.
    pub(crate) first: usize,
    pub(crate) count: usize,
    /// The commit before, and the file's name there, when the commit has a parent.
    pub(crate) previous: Option<(Oid, Vec<u8>)>,
}

/// What git said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Blame {
    pub(crate) commits: Vec<BlameCommit>,
    pub(crate) runs: Vec<BlameRun>,
}

impl Blame {
    /// For each line of a file of `lines` lines, the run it belongs to (`None` for a line git
    /// had not attributed yet).
    pub(crate) fn by_line(&self, lines: usize) -> Vec<Option<usize>> {
        let mut out = vec![None; lines];
        for (i, run) in self.runs.iter().enumerate() {
            let start = run.first.saturating_sub(1);
            let end = start.saturating_add(run.count).min(lines);
            for slot in out.get_mut(start..end).unwrap_or_default() {
                *slot = Some(i);
            }
        }
        out
    }
}

/// Reads `git blame --incremental` output; a last entry without its `filename` line is left out.
pub(crate) fn parse_incremental(out: &[u8]) -> Blame {
    let mut blame = Blame::default();
    let mut index: std::collections::HashMap<Oid, usize> = std::collections::HashMap::new();
    // The entry being read: its commit, first line, count, and what it says of the commit.
    let mut entry: Option<(Oid, usize, usize)> = None;
    let mut fields = Fields::default();
    let mut previous = None;
    // Only whole lines: what follows the last newline was cut off.
    let end = out.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    for line in out[..end].split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Some((id, first, count)) = entry else {
            entry = header(line);
            fields = Fields::default();
            previous = None;
            continue;
        };
        let (key, value) = match line.iter().position(|&b| b == b' ') {
            Some(p) => (&line[..p], &line[p + 1..]),
            None => (line, &line[line.len()..]),
        };
        match key {
            b"author" => fields.author = Some(lossy(value)),
            b"author-time" => fields.time = text(value).parse().ok(),
            b"author-tz" => fields.offset = offset_minutes(value),
            b"summary" => fields.summary = Some(lossy(value)),
            b"previous" => {
                previous = value.iter().position(|&b| b == b' ').and_then(|p| {
                    let id = Oid::from_str(text(&value[..p])).ok()?;
                    Some((id, unquote(&value[p + 1..])))
                });
            }
            b"filename" => {
                let commit = match index.get(&id) {
                    Some(&i) => i,
                    None => {
                        blame.commits.push(BlameCommit {
                            id,
                            author: fields.author.take().unwrap_or_default(),
                            time: fields.time.unwrap_or(0),
                            offset_minutes: fields.offset.unwrap_or(0),
                            summary: fields.summary.take().unwrap_or_default(),
                        });
                        index.insert(id, blame.commits.len() - 1);
                        blame.commits.len() - 1
                    }
                };
                blame.runs.push(BlameRun {
                    commit,
                    first,
                    count,
                    previous: previous.take(),
                });
                entry = None;
            }
            _ => {}
        }
    }
    blame
}

#[derive(Default)]
struct Fields {
    author: Option<String>,
    time: Option<i64>,
    offset: Option<i32>,
    summary: Option<String>,
}

/// `<id> <line in the commit> <line in the file> <count>`.
fn header(line: &[u8]) -> Option<(Oid, usize, usize)> {
    let mut parts = text(line).split(' ');
    let id = Oid::from_str(parts.next().filter(|p| p.len() == 40)?).ok()?;
    let _source = parts.next()?;
    let first = parts.next()?.parse().ok()?;
    let count = parts.next()?.parse().ok()?;
    Some((id, first, count))
}

/// `+0130` as 90.
fn offset_minutes(tz: &[u8]) -> Option<i32> {
    let tz = text(tz);
    let (sign, digits) = match tz.as_bytes().first()? {
        b'-' => (-1, &tz[1..]),
        b'+' => (1, &tz[1..]),
        _ => (1, tz),
    };
    if digits.len() != 4 {
        return None;
    }
    let n: i32 = digits.parse().ok()?;
    Some(sign * (n / 100 * 60 + n % 100))
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A file name as git prints it: as it is, or in double quotes with C escapes when it holds a
/// quote, a backslash or a control character (high bytes stay as they are: `core.quotePath`
/// is off).
pub(crate) fn unquote(name: &[u8]) -> Vec<u8> {
    let Some(inner) = name.strip_prefix(b"\"").and_then(|n| n.strip_suffix(b"\"")) else {
        return name.to_vec();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        let b = inner[i];
        i += 1;
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let Some(&e) = inner.get(i) else {
            out.push(b'\\');
            break;
        };
        i += 1;
        let c = match e {
            b'a' => 7,
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'v' => 11,
            b'0'..=b'3' => {
                let digits = inner.get(i..i + 2).unwrap_or_default();
                if digits.len() == 2 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                    i += 2;
                    ((e - b'0') << 6) | ((digits[0] - b'0') << 3) | (digits[1] - b'0')
                } else {
                    e
                }
            }
            other => other,
        };
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    fn sample() -> String {
        format!(
            "{B} 2 2 1\nauthor Bea\nauthor-mail <b@x>\nauthor-time 1700000000\nauthor-tz +0130\n\
             committer Bea\ncommitter-mail <b@x>\ncommitter-time 1700000000\ncommitter-tz +0130\n\
             summary two\nprevious {A} old name.txt\nfilename new.txt\n\
             {A} 1 1 1\nauthor Al\nauthor-time 1600000000\nauthor-tz -0500\nsummary one\nboundary\nfilename old name.txt\n\
             {A} 3 3 2\nfilename old name.txt\n"
        )
    }

    #[test]
    fn runs_and_commits_are_read_back() {
        let b = parse_incremental(sample().as_bytes());
        assert_eq!(b.commits.len(), 2);
        assert_eq!(b.commits[0].author, "Bea");
        assert_eq!(b.commits[0].offset_minutes, 90);
        assert_eq!(b.commits[1].offset_minutes, -300);
        assert_eq!(b.commits[1].summary, "one");
        assert_eq!(
            b.runs[0].previous,
            Some((Oid::from_str(A).unwrap(), b"old name.txt".to_vec()))
        );
        assert_eq!(b.runs[2].commit, 1);
        assert_eq!(b.runs[2].previous, None);
        let lines = b.by_line(5);
        assert_eq!(lines, vec![Some(1), Some(0), Some(2), Some(2), None]);
    }

    #[test]
    fn an_entry_cut_off_is_left_out() {
        let whole = sample();
        let cut = &whole[..whole.rfind("filename").unwrap() + 4];
        let b = parse_incremental(cut.as_bytes());
        assert_eq!(b.runs.len(), 2);
    }

    #[test]
    fn quoted_names() {
        assert_eq!(unquote(b"plain"), b"plain");
        assert_eq!(
            unquote(b"\"a\\\"b\\\\c\\n\\303\\251\""),
            b"a\"b\\c\n\xc3\xa9"
        );
    }
}
