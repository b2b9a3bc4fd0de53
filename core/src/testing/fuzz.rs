//! A mutation fuzzer on stable Rust, shared by the fuzz targets of every
//! crate (`core/tests/fuzz.rs`, `wasm/tests/fuzz_options.rs`): bit flips,
//! random bytes, interesting integers at random offsets, truncation,
//! insertion, deletion, duplication, splicing and structure characters,
//! applied to real seed inputs until a time budget is spent. Any panic of
//! the target fails the run.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::Rng;

/// Where the last caught panic happened (the hook records it).
static LAST_PANIC: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Integers written at random offsets: the edges of each width.
pub const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    u64::MAX / 2,
    u64::MAX,
];

/// One mutation of `seed` (sometimes spliced with `other`).
pub fn mutate(seed: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next_u64() as u8;
            }
            2 if len > 8 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let w = [1, 2, 4, 8][rng.below(4)];
                let i = rng.below(len - w);
                b[i..i + w].copy_from_slice(&v.to_le_bytes()[..w]);
            }
            3 if len > 0 => b.truncate(rng.below(len)),
            4 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                b.splice(i..i, ins);
            }
            5 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                b.drain(i..i + n);
            }
            6 if len > 1 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = b[i..i + n].to_vec();
                let at = rng.below(len);
                b.splice(at..at, chunk);
            }
            7 if !other.is_empty() && len > 0 => {
                let i = rng.below(len);
                let j = rng.below(other.len());
                b.truncate(i);
                b.extend_from_slice(&other[j..]);
            }
            _ if len > 0 => {
                // ASCII digits or structure characters (JSON, HTML, templates).
                let i = rng.below(len);
                b[i] = b"0123456789{}[]<>\"':,%/-."[rng.below(24)];
            }
            _ => b.push(rng.next_u64() as u8),
        }
    }
    b
}

/// Runs `target` on the committed regression inputs of `regressions/<name>/`,
/// then on mutations of `seeds` for `CAIRN_FUZZ_SECS` seconds (default 4);
/// fails on the first panic, writing the input to the system's temporary
/// folder and naming it.
pub fn fuzz(regressions: &Path, name: &str, seeds: &[Vec<u8>], target: impl Fn(&[u8])) {
    assert!(!seeds.is_empty());
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut l) = LAST_PANIC.lock() {
            *l = info.to_string();
        }
    }));
    let run =
        |input: &[u8]| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(input)));
    let dir = regressions.join(name);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let input = std::fs::read(e.path()).unwrap();
            if let Err(p) = run(&input) {
                let _ = std::panic::take_hook();
                panic!(
                    "{name}: regression input {} panics: {p:?}",
                    e.path().display()
                );
            }
        }
    }
    for s in seeds {
        if let Err(p) = run(s) {
            let _ = std::panic::take_hook();
            panic!("{name}: a seed panics: {p:?}");
        }
    }
    let secs: f64 = std::env::var("CAIRN_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4.0);
    let budget = Duration::from_secs_f64(secs);
    let mut rng = Rng::new(0xC0FFEE ^ name.len() as u64);
    let started = Instant::now();
    let mut execs = 0u64;
    while started.elapsed() < budget {
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(seed, other, &mut rng);
        execs += 1;
        if let Err(p) = run(&input) {
            let _ = std::panic::take_hook();
            let path = std::env::temp_dir().join(format!("fuzz-{name}-{execs}.bin"));
            std::fs::write(&path, &input).unwrap();
            let _ = p;
            let msg = LAST_PANIC.lock().map(|l| l.clone()).unwrap_or_default();
            panic!(
                "{name}: input {} panics after {execs} executions: {msg}",
                path.display()
            );
        }
    }
    let _ = std::panic::take_hook();
    eprintln!(
        "fuzz {name}: {execs} executions in {:.1} s, 0 crashes",
        started.elapsed().as_secs_f64()
    );
}
