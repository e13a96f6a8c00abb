//! Momentum schedules for the EMA target encoder.

use std::f64::consts::PI;

/// BYOL's cosine increase of the EMA coefficient from `base` at step 0 to `last` at `total`.
///
/// Paper: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020,
/// <https://arxiv.org/abs/2006.07733>, Sec. 3.2 (there `last` = 1).
///
/// ```text
/// τ(k) = last − (last − τ_base) · (cos(π k / K) + 1) / 2
/// ```
/// Steps past `total` stay at `last`; `total = 0` gives `last`.
pub fn momentum_at(step: u64, total: u64, base: f64, last: f64) -> f64 {
    if total == 0 || step >= total {
        return last;
    }
    let progress = step as f64 / total as f64;
    last - (last - base) * ((PI * progress).cos() + 1.0) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_closed_form_at_landmarks() {
        let (base, last) = (0.996, 1.0);
        assert_eq!(momentum_at(0, 100, base, last), base);
        assert!((momentum_at(50, 100, base, last) - 0.998).abs() < 1e-15); // cos(π/2) = 0
        assert!(
            (momentum_at(25, 100, base, last) - (1.0 - 0.004 * (0.5f64.sqrt() + 1.0) / 2.0)).abs()
                < 1e-15
        );
        assert_eq!(momentum_at(100, 100, base, last), last);
        assert_eq!(momentum_at(500, 100, base, last), last);
    }

    #[test]
    fn never_decreases() {
        let values: Vec<f64> = (0..=1000).map(|k| momentum_at(k, 1000, 0.99, 1.0)).collect();
        assert!(values.windows(2).all(|w| w[1] >= w[0]));
    }
}
