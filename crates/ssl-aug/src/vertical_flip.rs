//! Random vertical flip.

use tch::Tensor;

use crate::aug::{apply_through_owned_if, check_batch};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::{AugRng, BatchAug, FlipParams, Result};

/// Settings of [`VerticalFlip`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct VerticalFlipConfig {
    /// Probability of flipping each sample (torchvision `RandomVerticalFlip(p=0.5)`).
    pub p: f64,
}

impl Default for VerticalFlipConfig {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl VerticalFlipConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`crate::AugError::InvalidConfig`] when `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<VerticalFlip> {
        check_probability("vertical_flip", "p", self.p)?;
        Ok(VerticalFlip { p: self.p })
    }
}

/// Mirrors each sample top–bottom with probability p: `y[n, c, h, w] = x[n, c, H − 1 − h, w]`.
///
/// # Shapes
/// `x`: `[N, C, H, W]` → `[N, C, H, W]`, any dtype (uint8 included) and device.
#[derive(Debug, Clone, Copy)]
pub struct VerticalFlip {
    p: f64,
}

impl BatchAug for VerticalFlip {
    type Params = FlipParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> FlipParams {
        FlipParams { apply: sample_mask(size[0], self.p, rng) }
    }

    apply_through_owned_if!(FlipParams);
}

impl VerticalFlip {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, params: &FlipParams) -> Tensor {
        check_batch("VerticalFlip", &x, params.apply.len());
        where_chosen(x, owned, &params.apply, |x, _| x.flip([2]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    #[test]
    fn flips_the_rows_of_exactly_the_chosen_samples() {
        // Two 1×3×1 uint8 images: rows [0, 1, 2] and [3, 4, 5]; only the first is flipped.
        let x = Tensor::arange(6, (Kind::Uint8, Device::Cpu)).view([2, 1, 3, 1]);
        let flip = VerticalFlipConfig::default().build().unwrap();
        let y = flip.apply(&x, &FlipParams { apply: vec![true, false] });
        assert_eq!(Vec::<u8>::try_from(y.flatten(0, -1)).unwrap(), vec![2, 1, 0, 3, 4, 5]);
    }

    #[test]
    fn flipping_twice_is_the_identity_and_the_rate_is_p() {
        let x = Tensor::rand([5, 3, 4, 6], (Kind::Float, Device::Cpu));
        let flip = VerticalFlipConfig { p: 1.0 }.build().unwrap();
        let all = flip.sample(&[5, 3, 4, 6], &mut aug_rng(0, &[]));
        assert!(flip.apply(&flip.apply(&x, &all), &all).equal(&x));
        let p = VerticalFlipConfig { p: 0.3 }
            .build()
            .unwrap()
            .sample(&[20_000, 1, 1, 1], &mut aug_rng(2, &[]));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        assert!((rate - 0.3).abs() < 0.015, "{rate}"); // standard error 0.0032
    }

    #[test]
    fn p_outside_the_unit_interval_is_rejected() {
        let err = VerticalFlipConfig { p: -0.1 }.build().unwrap_err().to_string();
        assert!(err.contains("vertical_flip.p = -0.1"), "{err}");
    }
}
