//! Random horizontal flip.

use tch::Tensor;

use crate::aug::{apply_through_owned_if, check_batch, rows_of};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::{AugRng, BatchAug, BatchParams, Result};

/// Settings of [`HorizontalFlip`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct HorizontalFlipConfig {
    /// Probability of flipping each sample (torchvision `RandomHorizontalFlip(p=0.5)`).
    pub p: f64,
}

impl Default for HorizontalFlipConfig {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl HorizontalFlipConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`crate::AugError::InvalidConfig`] when `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<HorizontalFlip> {
        check_probability("horizontal_flip", "p", self.p)?;
        Ok(HorizontalFlip { p: self.p })
    }
}

/// Mirrors each sample left–right with probability p: `y[n, c, h, w] = x[n, c, h, W − 1 − w]`.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → `[N, C, H, W]`, any dtype and device.
#[derive(Debug, Clone, Copy)]
pub struct HorizontalFlip {
    p: f64,
}

/// Which samples of a batch [`HorizontalFlip`] mirrors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlipParams {
    /// `apply[i]`: whether sample `i` is flipped; length N.
    pub apply: Vec<bool>,
}

impl BatchParams for FlipParams {
    fn len(&self) -> usize {
        self.apply.len()
    }

    fn rows(&self, start: usize, len: usize) -> Self {
        Self { apply: rows_of(&self.apply, start, len) }
    }
}

impl BatchAug for HorizontalFlip {
    type Params = FlipParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> FlipParams {
        FlipParams { apply: sample_mask(size[0], self.p, rng) }
    }

    apply_through_owned_if!(FlipParams);
}

impl HorizontalFlip {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, params: &FlipParams) -> Tensor {
        check_batch("HorizontalFlip", &x, params.apply.len());
        where_chosen(x, owned, &params.apply, |x, _| x.flip([3]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    #[test]
    fn flips_exactly_the_chosen_samples() {
        // Two 1×1×3 images: [0, 1, 2] and [3, 4, 5]; only the second is flipped.
        let x = Tensor::arange(6, (Kind::Float, Device::Cpu)).view([2, 1, 1, 3]);
        let flip = HorizontalFlipConfig::default().build().unwrap();
        let y = flip.apply(&x, &FlipParams { apply: vec![false, true] });
        let got = Vec::<f32>::try_from(y.flatten(0, -1)).unwrap();
        assert_eq!(got, vec![0.0, 1.0, 2.0, 5.0, 4.0, 3.0]);
    }

    #[test]
    fn flipping_twice_is_the_identity_and_p_zero_never_flips() {
        let x = Tensor::rand([5, 3, 4, 6], (Kind::Float, Device::Cpu));
        let flip = HorizontalFlipConfig { p: 1.0 }.build().unwrap();
        let all = flip.sample(&[5, 3, 4, 6], &mut aug_rng(0, &[]));
        assert!(all.apply.iter().all(|&a| a));
        assert!(flip.apply(&flip.apply(&x, &all), &all).equal(&x));
        let never = HorizontalFlipConfig { p: 0.0 }.build().unwrap();
        assert!(never.sample(&[5, 3, 4, 6], &mut aug_rng(0, &[])).apply.iter().all(|&a| !a));
    }

    #[test]
    fn the_flip_rate_is_p() {
        let flip = HorizontalFlipConfig { p: 0.3 }.build().unwrap();
        let params = flip.sample(&[20_000, 1, 1, 1], &mut aug_rng(9, &[]));
        let rate = params.apply.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        // Standard error sqrt(0.3 · 0.7 / 20000) ≈ 0.0032.
        assert!((rate - 0.3).abs() < 0.015, "{rate}");
    }

    #[test]
    fn p_outside_the_unit_interval_is_rejected() {
        let err = HorizontalFlipConfig { p: 1.5 }.build().unwrap_err().to_string();
        assert!(err.contains("horizontal_flip.p = 1.5"), "{err}");
    }
}
