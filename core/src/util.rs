//! Small shared helpers.

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

/// Dot product with eight independent accumulators, so the compiler can
/// vectorise it (a single running sum forces strict left-to-right order).
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
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
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
