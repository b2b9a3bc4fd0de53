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

#[cfg(test)]
mod tests {
    #[test]
    fn pseudo_random_is_deterministic_and_in_range() {
        let a = super::pseudo_random(1000, 3);
        assert_eq!(a, super::pseudo_random(1000, 3));
        assert_ne!(a, super::pseudo_random(1000, 4));
        assert!(a.iter().all(|v| (-0.5..0.5).contains(v)));
    }
}
