//! Random grayscale: the luma on every channel.

use tch::{Kind, Tensor};

use crate::aug::{apply_through_owned_if, check_batch};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::{AugRng, BatchAug, FlipParams, Result};

/// Settings of [`RandomGrayscale`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct RandomGrayscaleConfig {
    /// Probability of graying each sample (SimCLR, MoCo v2 and BYOL: 0.2).
    pub p: f64,
}

impl Default for RandomGrayscaleConfig {
    fn default() -> Self {
        Self { p: 0.2 }
    }
}

impl RandomGrayscaleConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`crate::AugError::InvalidConfig`] when `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<RandomGrayscale> {
        check_probability("grayscale", "p", self.p)?;
        Ok(RandomGrayscale { p: self.p })
    }
}

/// Replaces each sample, with probability p, by its luma on all of its channels, as
/// torchvision's `RandomGrayscale`:
///
/// ```text
/// l = 0.2989 R + 0.587 G + 0.114 B,   y = (l, l, l)      (one channel: y = x)
/// ```
///
/// uint8 batches are computed in f32 and cast back by truncation, as torchvision does.
///
/// # Shapes
/// `x`: `[N, C, H, W]`, C = 1 or 3, float or uint8 → same shape and dtype.
#[derive(Debug, Clone, Copy)]
pub struct RandomGrayscale {
    p: f64,
}

/// The luma of a 3-channel batch, `[N, 1, H, W]`, in x's dtype (uint8 truncated).
fn luma(x: &Tensor) -> Tensor {
    let compute = if x.is_floating_point() { x.kind() } else { Kind::Float };
    let w = Tensor::from_slice(&[0.2989f32, 0.587, 0.114]).to_device(x.device()).to_kind(compute);
    let l = (x.to_kind(compute) * w.view([1, 3, 1, 1])).sum_dim_intlist(1, true, compute);
    l.to_kind(x.kind()) // [N, 1, H, W]
}

impl BatchAug for RandomGrayscale {
    type Params = FlipParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> FlipParams {
        FlipParams { apply: sample_mask(size[0], self.p, rng) }
    }

    apply_through_owned_if!(FlipParams);
}

impl RandomGrayscale {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, mut x: Tensor, owned: bool, params: &FlipParams) -> Tensor {
        check_batch("RandomGrayscale", &x, params.apply.len());
        let c = x.size()[1];
        assert!(c == 1 || c == 3, "RandomGrayscale: x {:?} must have 1 or 3 channels", x.size());
        if c == 1 {
            return x;
        }
        let y =
            where_chosen(x.shallow_clone(), owned, &params.apply, |x, _| luma(&x).expand_as(&x));
        if owned && !y.is_contiguous() {
            // Every sample chosen: the luma expanded over the channels, written into x so that
            // the next op of a pipeline may write in place too.
            x.copy_(&y);
            return x;
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::Device;

    #[test]
    fn hand_computed_luma_in_float_and_uint8() {
        // (0.9, 0.2, 0.4): 0.26901 + 0.1174 + 0.0456 = 0.43201 (torchvision: 0.4320099949836731).
        let x = Tensor::from_slice(&[0.9f32, 0.2, 0.4]).view([1, 3, 1, 1]);
        let op = RandomGrayscaleConfig::default().build().unwrap();
        let y =
            Vec::<f32>::try_from(op.apply(&x, &FlipParams { apply: vec![true] }).flatten(0, -1))
                .unwrap();
        assert!(y.iter().all(|&v| (v - 0.43201).abs() < 1e-6), "{y:?}");
        // uint8 (200, 100, 50): 59.78 + 58.7 + 5.7 = 124.18 → 124 (truncated).
        let x = Tensor::from_slice(&[200u8, 100, 50]).view([1, 3, 1, 1]);
        let y = op.apply(&x, &FlipParams { apply: vec![true] });
        assert_eq!(Vec::<u8>::try_from(y.flatten(0, -1)).unwrap(), vec![124, 124, 124]);
    }

    #[test]
    fn unchosen_and_one_channel_samples_are_left_as_they_are() {
        let op = RandomGrayscaleConfig::default().build().unwrap();
        let x = Tensor::rand([3, 3, 4, 4], (Kind::Float, Device::Cpu));
        let y = op.apply(&x, &FlipParams { apply: vec![false, true, false] });
        assert!(y.get(0).equal(&x.get(0)) && y.get(2).equal(&x.get(2)));
        assert!(y.get(1).get(0).equal(&y.get(1).get(2)));
        let one = Tensor::rand([2, 1, 4, 4], (Kind::Float, Device::Cpu));
        assert!(op.apply(&one, &FlipParams { apply: vec![true, true] }).equal(&one));
    }

    #[test]
    fn the_rate_is_p() {
        let op = RandomGrayscaleConfig { p: 0.2 }.build().unwrap();
        let p = op.sample(&[20_000, 3, 1, 1], &mut aug_rng(8, &[]));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        assert!((rate - 0.2).abs() < 0.012, "{rate}"); // standard error 0.0028
    }
}
