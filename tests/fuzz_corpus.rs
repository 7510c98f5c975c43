//! The fuzz targets (`forgelet::fuzzing`, run under libFuzzer from `fuzz/`) as ordinary tests on
//! stable Rust: every input of the committed corpus (`fuzz/corpus/TARGET/`), then a sweep of
//! mutations of it (bytes flipped, inserted, deleted, pieces spliced from another input) drawn
//! from a generator seeded per target, so every run tries the same inputs. An input that
//! panics fails the test with its target and its bytes in hex; a crash a fuzzer finds is added
//! to the corpus, and so is replayed here for good.

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::time::Instant;

use forgelet::fuzzing::TARGETS;

/// Mutated inputs tried per target: most parsers take microseconds an input; a README's
/// rendering and sanitizing takes milliseconds unoptimised. `FORGELET_FUZZ_SWEEP=N` tries N
/// times as many (the first ones the same), for a longer search by hand.
fn sweep(target: &str) -> usize {
    let times: usize = std::env::var("FORGELET_FUZZ_SWEEP")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    times
        * match target {
            "markdown" => 2_000,
            _ => 20_000,
        }
}
/// The longest mutated input (the targets' own caps are larger, but the bugs are in the shape).
const MAX_LEN: usize = 4_096;

/// xorshift64*: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn seeded(name: &str) -> Rng {
        // FNV-1a of the target's name: each target its own sequence.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that mean something to one parser or another.
const INTERESTING: &[u8] = b"\x00\x01\x7f\x80\xff%/.\\:;=&+?#'\"<>` \t\r\n[]{}()!$*|-_~0aAz";

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(7) {
            // Flip a bit.
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            // Set a byte to one that matters.
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            // Insert a byte, or a run of one.
            2 => {
                let at = rng.below(len + 1);
                let b = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                let n = if rng.below(4) == 0 {
                    1 + rng.below(64)
                } else {
                    1
                };
                data.splice(at..at, std::iter::repeat(b).take(n));
            }
            // Delete a range.
            3 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                data.drain(at..at + n);
            }
            // Duplicate a range in place.
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(32));
                let piece = data[at..at + n].to_vec();
                let to = rng.below(len + 1);
                data.splice(to..to, piece);
            }
            // Splice in a piece of another input.
            5 => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let from = rng.below(other.len());
                    let n = 1 + rng.below((other.len() - from).min(64));
                    let to = rng.below(len + 1);
                    data.splice(to..to, other[from..from + n].iter().copied());
                }
            }
            // Cut the input short.
            _ => {
                let at = rng.below(len + 1);
                data.truncate(at);
            }
        }
    }
    data.truncate(MAX_LEN);
    data
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `input` through `target`; the panic's message when it panics.
fn run(target: fn(&[u8]), input: &[u8]) -> Option<String> {
    panic::catch_unwind(AssertUnwindSafe(|| target(input)))
        .err()
        .map(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic".into())
        })
}

fn corpus(name: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = fs::read(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_fuzz_target_and_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let cargo = fs::read_to_string(root.join("Cargo.toml")).unwrap();
    for (name, _) in TARGETS {
        let target = root.join("fuzz_targets").join(format!("{name}.rs"));
        let text = fs::read_to_string(&target).unwrap_or_default();
        assert!(
            text.contains(&format!("forgelet::fuzzing::{name}(data)")),
            "{} does not run forgelet::fuzzing::{name}",
            target.display()
        );
        assert!(
            cargo.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml has no [[bin]] {name}"
        );
        assert!(
            corpus(name).len() >= 5,
            "fuzz/corpus/{name} has fewer than 5 inputs"
        );
    }
}

#[test]
fn the_corpus_and_a_sweep_of_its_mutations_pass() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let started = Instant::now();
        let files = corpus(name);
        for (file, input) in &files {
            if let Some(why) = run(*target, input) {
                failures.push(format!(
                    "{name}: fuzz/corpus/{name}/{file} panics: {why}\n  input: {}",
                    hex(input)
                ));
            }
        }
        let inputs: Vec<Vec<u8>> = files.into_iter().map(|(_, b)| b).collect();
        let mut rng = Rng::seeded(name);
        for _ in 0..sweep(name) {
            let input = mutate(&mut rng, &inputs);
            if let Some(why) = run(*target, &input) {
                failures.push(format!("{name}: panics: {why}\n  input: {}", hex(&input)));
                break;
            }
        }
        eprintln!(
            "fuzz_corpus: {name}: {} inputs and {} mutations in {:?}",
            inputs.len(),
            sweep(name),
            started.elapsed()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The check on a README's HTML finds what it looks for (and passes what the sanitizer writes).
#[test]
fn the_html_check_finds_scripts_handlers_and_unsafe_urls() {
    use forgelet::fuzzing::check_safe_html;
    let fails = |html: &str| panic::catch_unwind(|| check_safe_html(html)).is_err();
    for bad in [
        "<p>a</p><SCRIPT>x</SCRIPT>",
        "<img src=\"x.png\" onerror=\"alert(1)\">",
        "<a href=\"javascript:alert(1)\">a</a>",
        "<a href=\" JaVa\tScript:x\">a</a>",
        "<a href=\"&#106;avascript:x\">a</a>",
        "<img src=\"data:image/svg+xml,x\">",
        "<source srcset=\"a.png 1x, vbscript:x 2x\">",
        "<div title=\"a > b\" onclick=x>",
    ] {
        assert!(fails(bad), "passed: {bad}");
    }
    for good in [
        "<p>onclick=x &lt;script&gt; javascript:x</p>",
        "<a href=\"https://example.org/?q=javascript:x\" rel=\"nofollow noopener noreferrer\">a</a>",
        "<img src=\"/git/alice/proj/raw/main/data:x.png\" alt=\"<script> onerror=x\">",
        "<h1><a id=\"user-content-online\" class=\"anchor\" href=\"#user-content-online\"></a>Online</h1>",
    ] {
        assert!(!fails(good), "refused: {good}");
    }
}
