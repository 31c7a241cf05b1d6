//! The OVSDB fuzz targets' checks (`fuzz/bodies/ovsdb.rs`), run for a
//! bounded time on the stable toolchain: inputs mutated from the seed
//! corpus (`fuzz/corpus/ovsdb_seed/`), after every input kept from an
//! earlier failure (`tests/vectors/fuzz-ovsdb/`). cargo-fuzz (nightly,
//! coverage-guided) goes deeper; this keeps the targets exercised in every
//! CI run.
//!
//! `OVSNET_FUZZ_SECS` (default 5) bounds each target; `OVSNET_FUZZ_SEED`
//! replays a run. A failing input is written to `target/fuzz-failures/`,
//! named in the failure, to be kept as a regression vector.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

include!("../fuzz/bodies/ovsdb.rs");

/// xorshift64*: enough to mutate inputs, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// Tokens of OVSDB's JSON, spliced into inputs so that mutations reach
/// past the JSON parser into the notation.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "false",
    "-1",
    "0",
    "1e308",
    "-9223372036854775809",
    "18446744073709551616",
    "0.5",
    "\"uuid\"",
    "\"named-uuid\"",
    "\"set\"",
    "\"map\"",
    "\"initial\"",
    "\"insert\"",
    "\"delete\"",
    "\"modify\"",
    "\"old\"",
    "\"new\"",
    "\"update3\"",
    "\"result\"",
    "\"error\"",
    "\"id\"",
    "\"method\"",
    "\"params\"",
    "\\u0000",
    "\\ud800",
    "\"\"",
    "[\"set\",[]]",
    "[\"map\",[[1,2]]]",
    "[\"uuid\",\"00000000-0000-0000-0000-000000000000\"]",
    "\"Host\"",
    "\"Endpoint\"",
    "\"_uuid\"",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(7) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => v.insert(at, rng.next() as u8),
            2 => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                v.drain(at.min(end)..end);
            }
            3 => {
                let end = (at + 1 + rng.below(32)).min(v.len());
                let part = v[at.min(end)..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, part);
            }
            4 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            5 => v.truncate(at),
            _ => {
                // Splice with another seed.
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

fn files_in(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.is_file() && p.file_name().is_none_or(|n| n != "README"))
        .filter_map(|p| Some((p.clone(), std::fs::read(&p).ok()?)))
        .collect();
    out.sort();
    out
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `check` on every regression vector, every seed, and mutated
/// inputs until the time is up.
fn run(name: &str, check: fn(&[u8])) {
    let regressions = files_in(&root().join("tests/vectors/fuzz-ovsdb"));
    for (path, input) in &regressions {
        check(input);
        eprintln!("{name}: regression {} passes", path.display());
    }
    let seeds: Vec<Vec<u8>> = files_in(&root().join("fuzz/corpus/ovsdb_seed")).into_iter().map(|(_, b)| b).collect();
    assert!(seeds.len() >= 5, "the seed corpus is missing");
    for s in &seeds {
        check(s);
    }
    let secs = std::env::var("OVSNET_FUZZ_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5u64);
    let seed = std::env::var("OVSNET_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
    });
    eprintln!("{name}: {secs}s, OVSNET_FUZZ_SEED={seed}");
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let input = mutate(&mut rng, &seeds);
        if std::panic::catch_unwind(|| check(&input)).is_err() {
            let dir = root().join("target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{seed}-{n}"));
            let _ = std::fs::write(&file, &input);
            panic!(
                "{name} failed on input {n} of OVSNET_FUZZ_SEED={seed}, written to {} (keep it in tests/vectors/fuzz-ovsdb/)",
                file.display()
            );
        }
        n += 1;
    }
    eprintln!("{name}: {n} inputs, no failure");
    assert!(n > 0);
}

#[test]
fn ovsdb_framing_takes_whatever_a_peer_sends() {
    run("ovsdb_frames", ovsdb_frames);
}

#[test]
fn ovsdb_updates_and_notation_take_whatever_a_peer_sends() {
    run("ovsdb_updates", ovsdb_updates);
}
