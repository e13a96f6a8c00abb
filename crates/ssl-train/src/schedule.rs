//! Learning-rate schedules.

use std::f64::consts::PI;

/// Linear warm-up from 0 to `base` over `warmup` steps, then a cosine decay to 0 at `total`
/// (SimCLR, Chen et al. 2020, Sec. B.1; Goyal et al. 2017 for the warm-up; Loshchilov & Hutter
/// 2017 for the cosine).
///
/// ```text
/// lr(t) = base · (t + 1) / warmup                               t < warmup
/// lr(t) = base · ½ (1 + cos(π (t − warmup) / (total − warmup)))   warmup ≤ t < total
/// ```
/// Steps at or past `total` get 0.
pub fn warmup_cosine(step: u64, warmup: u64, total: u64, base: f64) -> f64 {
    if step >= total {
        return 0.0;
    }
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let progress = (step - warmup) as f64 / (total - warmup) as f64;
    base * 0.5 * (1.0 + (PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form_at_landmarks() {
        assert_eq!(warmup_cosine(0, 10, 110, 2.0), 0.2);
        assert_eq!(warmup_cosine(9, 10, 110, 2.0), 2.0);
        assert_eq!(warmup_cosine(10, 10, 110, 2.0), 2.0); // cos 0 = 1
        assert!((warmup_cosine(60, 10, 110, 2.0) - 1.0).abs() < 1e-12); // cos(π/2) = 0
        assert!((warmup_cosine(35, 10, 110, 2.0) - (1.0 + 0.5f64.sqrt())).abs() < 1e-12);
        assert_eq!(warmup_cosine(110, 10, 110, 2.0), 0.0);
        assert_eq!(warmup_cosine(5, 0, 10, 1.0), 0.5 * (1.0 + (PI / 2.0).cos()));
    }
}
