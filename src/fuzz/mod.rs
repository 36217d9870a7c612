//! Fuzzing on stable Rust, inside the unit-test binary: a small mutation fuzzer driven by a corpus.
//!
//! Each target (`fuzz::targets` and `edge::auth::token`'s `fuzz` module) replays every file of
//! `fuzz/corpus/<target>/`, then mutates corpus entries (bit flips, byte edits, range copies and
//! deletions, splices, dictionary tokens, boundary numbers) and feeds the results to its check,
//! which must not panic and asserts the target's own properties (round trips, two decoders
//! agreeing). Stable Rust has no coverage-guided engine without extra tooling, so this is a
//! grammar-aware random search; the corpus and the dictionaries carry the structure.
//!
//! Bounds: by default each target stops after [`DEFAULT_BUDGET`] or [`DEFAULT_ITERATIONS`] inputs,
//! whichever comes first, with a fixed seed, so `cargo nextest run` stays fast and repeatable.
//! `TAI_FUZZ_SECS=600` runs each target for that many seconds with no input limit and a seed
//! from the clock (`TAI_FUZZ_SEED` picks one). A failing input is written to
//! `fuzz/findings/<target>/` and its path and seed are in the panic message: move it into the
//! corpus and add a regression test for it.

pub(crate) mod targets;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Time each target gets in a normal test run.
const DEFAULT_BUDGET: Duration = Duration::from_millis(250);
/// Inputs each target gets at most in a normal test run.
const DEFAULT_ITERATIONS: u64 = 2_000;
/// Longest input a mutation may grow.
const MAX_LEN: usize = 4096;
/// Seed of a normal test run.
const DEFAULT_SEED: u64 = 0x7a1_9a7e_u64;

/// Runs `check` over the corpus of `target` and then over mutated inputs, within the bounds.
pub(crate) fn run(target: &str, dictionary: &[&[u8]], check: impl Fn(&[u8])) {
    let corpus = load_corpus(target);
    for input in &corpus {
        attempt(target, input, 0, &check);
    }
    let (budget, iterations, seed) = bounds();
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let mut done = 0u64;
    while done < iterations && started.elapsed() < budget {
        let input = mutate(&mut rng, &corpus, dictionary);
        attempt(target, &input, seed, &check);
        done += 1;
    }
}

fn bounds() -> (Duration, u64, u64) {
    let env = |name: &str| std::env::var(name).ok();
    let seed = env("TAI_FUZZ_SEED").and_then(|s| s.parse().ok());
    match env("TAI_FUZZ_SECS").and_then(|s| s.parse::<f64>().ok()) {
        Some(secs) if secs > 0.0 => {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            (
                Duration::from_secs_f64(secs),
                u64::MAX,
                seed.unwrap_or(clock),
            )
        }
        _ => (
            DEFAULT_BUDGET,
            DEFAULT_ITERATIONS,
            seed.unwrap_or(DEFAULT_SEED),
        ),
    }
}

/// Runs one input; a panic saves it under `fuzz/findings/` and fails the test naming it.
fn attempt(target: &str, input: &[u8], seed: u64, check: &impl Fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| check(input))).is_ok() {
        return;
    }
    let saved = save_finding(target, input);
    panic!(
        "fuzz target `{target}` failed (seed {seed}) on {:?}; saved as {}",
        String::from_utf8_lossy(input),
        saved.display()
    );
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file of `fuzz/corpus/<target>/`, sorted by name; at least one (empty) input.
fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    let mut corpus: Vec<Vec<u8>> = paths.iter().filter_map(|p| std::fs::read(p).ok()).collect();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    corpus
}

fn save_finding(target: &str, input: &[u8]) -> PathBuf {
    let dir = fuzz_dir().join("findings").join(target);
    let name = format!("{:016x}", fnv1a(input));
    let path = dir.join(name);
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input));
    path
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// xorshift64*: enough randomness for choosing mutations, and reproducible from a seed.
pub(crate) struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// A corpus entry changed by one to eight mutations.
fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    let mut data = corpus[rng.below(corpus.len())].clone();
    for _ in 0..=rng.below(8) {
        mutate_once(rng, &mut data, corpus, dictionary);
    }
    data.truncate(MAX_LEN);
    data
}

fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, corpus: &[Vec<u8>], dictionary: &[&[u8]]) {
    let at = rng.below(data.len() + 1);
    let last = data.len().saturating_sub(1);
    match rng.below(9) {
        0 if !data.is_empty() => data[at.min(last)] ^= 1 << rng.below(8),
        1 if !data.is_empty() => data[at.min(last)] = rng.next() as u8,
        2 => data.insert(at, rng.next() as u8),
        3 if !data.is_empty() => {
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at.min(end)..end);
        }
        4 if !data.is_empty() => {
            let start = rng.below(data.len());
            let end = (start + 1 + rng.below(32)).min(data.len());
            let copy = data[start..end].to_vec();
            data.splice(at..at, copy);
        }
        5 if !dictionary.is_empty() => {
            let token = dictionary[rng.below(dictionary.len())];
            data.splice(at..at, token.iter().copied());
        }
        6 => {
            let other = &corpus[rng.below(corpus.len())];
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        7 => {
            const BOUNDARY: &[&[u8]] = &[
                b"0",
                b"-1",
                b"2147483648",
                b"18446744073709551616",
                b"1e309",
                b"-0",
                b"1.5",
                b"\"\"",
                b"null",
                b"\xff\xff\xff\xff",
                b"\0\0\0\0",
            ];
            let token = BOUNDARY[rng.below(BOUNDARY.len())];
            data.splice(at..at, token.iter().copied());
        }
        _ => data.truncate(at),
    }
}
