//! The seeded random number generator every op samples its parameters from.
//!
//! rand's docs say `StdRng` "should not be considered reproducible" across versions and
//! recommend rand_chacha directly; ChaCha8 is fast and its stream is fixed by its spec.

use rand_chacha::rand_core::{RngCore, SeedableRng};

/// The generator ops draw from.
pub type AugRng = rand_chacha::ChaCha8Rng;

/// SplitMix64's increment, the golden gamma: output k of the generator seeded with `s` is
/// `splitmix64(s + k · SPLITMIX64_GAMMA)`.
pub const SPLITMIX64_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// One SplitMix64 step (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(SPLITMIX64_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A generator for one stream of a run: `aug_rng(seed, &[epoch, step, view])`.
///
/// Each coordinate is folded in with SplitMix64, so nearby coordinates give unrelated streams.
pub fn aug_rng(seed: u64, stream: &[u64]) -> AugRng {
    let mixed = stream.iter().fold(splitmix64(seed), |h, &s| splitmix64(h ^ splitmix64(s)));
    AugRng::seed_from_u64(mixed)
}

/// A uniform draw from `[lo, hi)` with 53 random bits.
pub(crate) fn uniform(rng: &mut AugRng, lo: f64, hi: f64) -> f64 {
    let unit = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    lo + (hi - lo) * unit
}

/// A uniform integer in `0..n` (`n ≥ 1`), torchvision's `randint(0, n)`.
pub(crate) fn uniform_int(rng: &mut AugRng, n: i64) -> i64 {
    ((uniform(rng, 0.0, 1.0) * n as f64) as i64).min(n - 1)
}

/// `true` with probability `p`.
pub(crate) fn bernoulli(rng: &mut AugRng, p: f64) -> bool {
    uniform(rng, 0.0, 1.0) < p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_reference_sequence() {
        // First outputs of the reference SplitMix64 generator seeded with 0: its state advances
        // by the golden gamma, so output k is splitmix64((k - 1) * gamma).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(0x9E37_79B9_7F4A_7C15), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a = aug_rng(1, &[0, 5, 1]).next_u64();
        assert_eq!(a, aug_rng(1, &[0, 5, 1]).next_u64());
        assert_ne!(a, aug_rng(1, &[0, 5, 0]).next_u64());
        assert_ne!(a, aug_rng(2, &[0, 5, 1]).next_u64());
        assert_ne!(aug_rng(1, &[1, 0]).next_u64(), aug_rng(1, &[0, 1]).next_u64());
    }

    #[test]
    fn uniform_stays_in_range_with_the_right_mean() {
        let mut rng = aug_rng(3, &[]);
        let draws: Vec<f64> = (0..20_000).map(|_| uniform(&mut rng, 2.0, 4.0)).collect();
        assert!(draws.iter().all(|&u| (2.0..4.0).contains(&u)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        // Standard error of the mean: (2 / sqrt(12)) / sqrt(20000) ≈ 0.004.
        assert!((mean - 3.0).abs() < 0.02, "{mean}");
    }
}
