//! Token choice: argmax, and seeded sampling from a probability row.

use super::processors::softmax;

/// A small seeded generator (xoshiro256**, seeded through SplitMix64): the
/// same seed gives the same samples on every platform, wasm32 included.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// A uniform float in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

pub use crate::util::argmax;

/// Draws an index with probability `softmax(logits)` (−∞ entries never).
pub fn sample(logits: &[f32], rng: &mut Rng) -> usize {
    let probs = softmax(logits);
    let r = rng.next_f32();
    let mut cum = 0f32;
    let mut last_ok = argmax(logits);
    for (i, p) in probs.iter().enumerate() {
        if *p > 0.0 {
            cum += p;
            last_ok = i;
            if r < cum {
                return i;
            }
        }
    }
    // Rounding left the cumulative sum just under 1: take the last possible token.
    last_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_follows_the_distribution_and_the_seed() {
        let logits: Vec<f32> = [0.7f32, 0.2, 0.1, 0.0].iter().map(|p| p.ln()).collect();
        let mut rng = Rng::new(7);
        let mut counts = [0usize; 4];
        for _ in 0..20_000 {
            counts[sample(&logits, &mut rng)] += 1;
        }
        assert_eq!(counts[3], 0, "a −∞ logit is never drawn");
        let freq: Vec<f32> = counts.iter().map(|&c| c as f32 / 20_000.0).collect();
        assert!((freq[0] - 0.7).abs() < 0.015, "{freq:?}");
        assert!((freq[1] - 0.2).abs() < 0.015, "{freq:?}");
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(3);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(3);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
    }
}
