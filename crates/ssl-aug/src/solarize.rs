//! Random solarize: invert the pixels at or above a threshold.

use tch::{Kind, Tensor};

use crate::aug::{apply_through_owned_if, check_batch};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::{AugError, AugRng, BatchAug, FlipParams, Result};

/// Settings of [`RandomSolarize`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct RandomSolarizeConfig {
    /// The threshold as a fraction of the dtype's maximum (1.0 for floats, 255 for uint8);
    /// BYOL's 0.5 is PIL's 128 on uint8 images.
    pub threshold: f64,
    /// Probability of solarizing each sample (BYOL: 0 for the first view, 0.2 for the second).
    pub p: f64,
}

impl Default for RandomSolarizeConfig {
    /// BYOL's second view (Grill et al. 2020, Table 6): threshold 0.5, p = 0.2.
    fn default() -> Self {
        Self { threshold: 0.5, p: 0.2 }
    }
}

impl RandomSolarizeConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] when `threshold` or `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<RandomSolarize> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(AugError::InvalidConfig {
                op: "solarize",
                field: "threshold",
                value: self.threshold.to_string(),
                reason: "must be in [0, 1] (a fraction of the dtype's maximum)",
            });
        }
        check_probability("solarize", "p", self.p)?;
        Ok(RandomSolarize { cfg: self })
    }
}

/// Solarizes each sample with probability p, as torchvision's `RandomSolarize`:
///
/// ```text
/// y = max − x  where x ≥ t·max,  x elsewhere        (max = 1 for floats, 255 for uint8)
/// ```
///
/// # Shapes
/// `x`: `[N, C, H, W]`, float in `[0, 1]` or uint8 → same shape and dtype.
#[derive(Debug, Clone, Copy)]
pub struct RandomSolarize {
    cfg: RandomSolarizeConfig,
}

impl BatchAug for RandomSolarize {
    type Params = FlipParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> FlipParams {
        FlipParams { apply: sample_mask(size[0], self.cfg.p, rng) }
    }

    apply_through_owned_if!(FlipParams);
}

impl RandomSolarize {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, params: &FlipParams) -> Tensor {
        check_batch("RandomSolarize", &x, params.apply.len());
        let max = if x.kind() == Kind::Uint8 { 255.0 } else { 1.0 };
        let threshold = self.cfg.threshold * max;
        where_chosen(x, owned, &params.apply, |x, _| {
            let inverted = x.neg().g_add_scalar(max); // max − x (no uint8 wrap-around: x ≤ max)
            inverted.where_self(&x.ge(threshold), &x)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::Device;

    #[test]
    fn inverts_at_and_above_the_threshold_in_float_and_uint8() {
        let op = RandomSolarizeConfig { threshold: 0.5, p: 1.0 }.build().unwrap();
        let all = FlipParams { apply: vec![true] };
        let x = Tensor::from_slice(&[0.1f32, 0.5, 0.9]).view([1, 1, 1, 3]);
        let y = Vec::<f32>::try_from(op.apply(&x, &all).flatten(0, -1)).unwrap();
        assert_eq!(y, vec![0.1, 0.5, 0.100000024]); // 1 − 0.9 in f32
        let x = Tensor::from_slice(&[127u8, 128, 255]).view([1, 1, 1, 3]);
        let y = Vec::<u8>::try_from(op.apply(&x, &all).flatten(0, -1)).unwrap();
        assert_eq!(y, vec![127, 127, 0]); // PIL's solarize(128)
    }

    #[test]
    fn a_second_pass_leaves_the_inverted_pixels_and_the_rate_is_p() {
        // Pixels in [0.6, 0.99) all invert to (0.01, 0.4], below the threshold 0.6: a second
        // pass changes nothing.
        let op = RandomSolarizeConfig { threshold: 0.6, p: 0.2 }.build().unwrap();
        let all = FlipParams { apply: vec![true; 4] };
        let x = Tensor::rand([4, 3, 5, 5], (Kind::Double, Device::Cpu)) * 0.39 + 0.6;
        let once = op.apply(&x, &all);
        assert!(once.allclose(&(x.neg() + 1.0), 1e-12, 1e-12, false));
        assert!(op.apply(&once, &all).equal(&once));
        let p = op.sample(&[20_000, 1, 1, 1], &mut aug_rng(1, &[]));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        assert!((rate - 0.2).abs() < 0.012, "{rate}"); // standard error 0.0028
    }

    #[test]
    fn a_threshold_outside_the_unit_interval_is_rejected() {
        let err = RandomSolarizeConfig { threshold: 128.0, p: 0.2 }.build().unwrap_err();
        assert!(err.to_string().contains("solarize.threshold = 128"), "{err}");
    }
}
