//! Small shared helpers: a leaf module (it imports nothing from the crate),
//! so that any layer may use it.

/// Below this many multiply-adds, splitting work over threads costs more
/// (waking workers, ~µs each) than it saves.
pub const PARALLEL_MIN_WORK: usize = 1 << 18;

/// Index of the largest value (the first one on ties, like `torch.argmax`).
pub fn argmax(logits: &[f32]) -> usize {
    let mut best = (0, f32::NAN);
    for (i, &l) in logits.iter().enumerate() {
        // Strictly greater: the first index wins ties.
        if i == 0 || l > best.1 {
            best = (i, l);
        }
    }
    best.0
}

/// `n` deterministic pseudo-random values in `[-0.5, 0.5)` from a 64-bit LCG
/// (Knuth's MMIX constants). For tests, conformance checks and benchmarks that
/// must see the same data on every platform and run; not for anything random
/// in earnest.
pub fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect()
}

/// splitmix64's finaliser: a well-mixed 64-bit value from any 64-bit input
/// (Steele, Lea & Flood 2014). The one hash behind [`Rng`] and HNSW levels.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small seeded generator (splitmix64 sequence): the same seed gives the
/// same numbers on every platform, which is what reproducible training
/// (shuffles, dropout masks, weight init) needs. Not cryptographic.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose sequence depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(self.state)
    }

    /// Uniform in `(0, 1]` (never 0, so its logarithm is finite).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let (u1, u2) = (self.uniform(), self.uniform());
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// Uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// An inverted-dropout mask of `n` values: 0 with probability `p`,
    /// else `1 / (1 − p)` (so the expected value is 1), as `torch.nn.Dropout`.
    pub fn dropout_mask(&mut self, n: usize, p: f32) -> Vec<f32> {
        let keep = 1.0 / (1.0 - p);
        (0..n)
            .map(|_| if self.uniform() as f32 > p { keep } else { 0.0 })
            .collect()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

/// Dot product with eight independent accumulators, so the compiler can
/// vectorise it (a single running sum forces strict left-to-right order).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for (s, (p, q)) in acc.iter_mut().zip(x.iter().zip(y)) {
            *s += p * q;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out[i] = q · rows[i]` for the `d`-wide rows of `rows` (vector search's
/// scan). On x86-64 with AVX2 the loop is compiled a second time for it — a
/// named `target_feature` function, so [`dot`] is inlined into the AVX2 code
/// (a closure passed to [`with_avx2`] may not be).
pub fn dots_into(q: &[f32], rows: &[f32], d: usize, out: &mut Vec<f32>) {
    fn plain(q: &[f32], rows: &[f32], d: usize, out: &mut Vec<f32>) {
        out.extend(rows.chunks_exact(d.max(1)).map(|r| dot(q, r)));
    }
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2(q: &[f32], rows: &[f32], d: usize, out: &mut Vec<f32>) {
            out.extend(rows.chunks_exact(d.max(1)).map(|r| dot(q, r)));
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function was compiled for.
            return unsafe { avx2(q, rows, d, out) };
        }
    }
    plain(q, rows, d, out)
}

/// `eˣ` without a libm call, branch-free so loops over it vectorise:
/// `2ⁿ · e^r` with `n = round(x / ln 2)`, `r` reduced with a two-part `ln 2`
/// and `e^r` from its degree-6 Taylor polynomial (|r| ≤ ln 2 / 2). Relative
/// error below 2e-7 on `[-87, 88]`; inputs are clamped there, so very
/// negative `x` gives ≈ 1.6e-38 rather than 0.
#[inline(always)]
pub fn fast_exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5·2²³ (no libm `roundf`,
    // which blocks vectorisation on baseline x86-64).
    const SHIFT: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// GELU with the exact (erf) form, `x/2 · (1 + erf(x/√2))`, erf from
/// Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7) with [`fast_exp`]:
/// vectorisable, and within 2e-7 of the libm-based form used by PyTorch.
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let erf_abs = 1.0 - poly * fast_exp(-z * z);
    0.5 * x * (1.0 + erf_abs.copysign(x))
}

/// Runs `f` compiled a second time for AVX2+FMA when the CPU has them
/// (x86-64; the baseline target has only SSE2), so the loops inside it —
/// once inlined, as small closures and `#[inline]` helpers are — run eight
/// lanes at a time. Elsewhere it just calls `f`.
#[inline(always)]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has the features the function was compiled for.
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// `out[i] = f(input[i])` under [`with_avx2`], so branch-free element
/// functions such as [`gelu_erf`] vectorise.
pub fn map_into(out: &mut [f32], input: &[f32], f: impl Fn(f32) -> f32 + Copy) {
    with_avx2(|| {
        for (o, &i) in out.iter_mut().zip(input) {
            *o = f(i);
        }
    })
}

/// serde_json's read-only `v[key]` spelled as a call (the indexing lint
/// cannot tell it from slice indexing): the value under `key`, or `null`
/// when `v` is not an object or has no such key.
pub fn json_at<'a>(v: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    static NULL: serde_json::Value = serde_json::Value::Null;
    v.get(key).unwrap_or(&NULL)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fast_exp_and_gelu_match_libm() {
        let mut worst_exp = 0f32;
        let mut worst_gelu = 0f32;
        for i in -20_000..=20_000 {
            let x = i as f32 * 0.004; // [-80, 80]
            let e = x.exp();
            worst_exp = worst_exp.max(((super::fast_exp(x) - e) / e).abs());
            let g = x * 0.3; // [-24, 24]
            let reference = 0.5 * f64::from(g) * (1.0 + libm_erf(f64::from(g) / 2f64.sqrt()));
            worst_gelu = worst_gelu.max((f64::from(super::gelu_erf(g)) - reference).abs() as f32);
        }
        assert!(worst_exp < 3e-7, "exp relative error {worst_exp}");
        assert!(worst_gelu < 2e-6, "gelu absolute error {worst_gelu}");
        assert_eq!(super::gelu_erf(0.0), 0.0);
        assert!(super::fast_exp(-1000.0) < 1e-37 && super::fast_exp(1000.0).is_finite());
    }

    /// erf in f64 from its Maclaurin series (|x| < 3) or the continued
    /// fraction of erfc (|x| ≥ 3): a reference independent of the code under test.
    fn libm_erf(x: f64) -> f64 {
        let a = x.abs();
        let v = if a < 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            let mut f = 0.0;
            for k in (1..60).rev() {
                f = f64::from(k) / 2.0 / (a + f);
            }
            1.0 - (-a * a).exp() / std::f64::consts::PI.sqrt() / (a + f)
        };
        v.copysign(x)
    }

    #[test]
    fn dots_into_equals_dot_row_by_row() {
        let (q, rows) = (super::pseudo_random(37, 1), super::pseudo_random(37 * 5, 2));
        let mut out = vec![9.0];
        super::dots_into(&q, &rows, 37, &mut out);
        let want: Vec<f32> = std::iter::once(9.0)
            .chain(rows.chunks(37).map(|r| super::dot(&q, r)))
            .collect();
        assert_eq!(out, want);
    }

    #[test]
    fn pseudo_random_is_deterministic_and_in_range() {
        let a = super::pseudo_random(1000, 3);
        assert_eq!(a, super::pseudo_random(1000, 3));
        assert_ne!(a, super::pseudo_random(1000, 4));
        assert!(a.iter().all(|v| (-0.5..0.5).contains(v)));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        for n in [0, 1, 7, 8, 9, 384] {
            let (a, b) = (super::pseudo_random(n, 1), super::pseudo_random(n, 2));
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((super::dot(&a, &b) - plain).abs() < 1e-5, "n = {n}");
        }
    }
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic inside it (a third-party parser failing on
/// malformed input) into `Err(message)`. While it runs,
/// [`panicking_in_guard`] is true on this thread, so a process-wide panic
/// hook can keep such expected panics out of the user's terminal. In wasm,
/// where panics abort, callers must validate before calling.
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let was = GUARDED.with(|g| g.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into())
    })
}

/// Whether this thread is inside [`catch_panic`] (for panic hooks).
pub fn panicking_in_guard() -> bool {
    GUARDED.with(|g| g.get())
}

#[cfg(test)]
mod guard_tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_its_message_and_the_flag_resets() {
        assert!(!panicking_in_guard());
        let r: std::result::Result<(), String> = catch_panic(|| {
            assert!(panicking_in_guard());
            panic!("bad stream {}", 7)
        });
        assert_eq!(r.unwrap_err(), "bad stream 7");
        assert!(!panicking_in_guard());
        assert_eq!(catch_panic(|| 5), Ok(5));
    }
}
