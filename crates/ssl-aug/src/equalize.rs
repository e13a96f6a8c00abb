//! Random histogram equalization, per sample and channel.

use tch::{Kind, Tensor};

use crate::aug::{apply_through_owned_if, check_batch};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::to_float::LEVELS_PER_UNIT;
use crate::{AugRng, BatchAug, FlipParams, Result};

/// Settings of [`RandomEqualize`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct RandomEqualizeConfig {
    /// Probability of equalizing each sample (torchvision's `RandomEqualize`: 0.5).
    pub p: f64,
}

impl Default for RandomEqualizeConfig {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl RandomEqualizeConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`crate::AugError::InvalidConfig`] when `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<RandomEqualize> {
        check_probability("equalize", "p", self.p)?;
        Ok(RandomEqualize { p: self.p })
    }
}

/// Equalizes the histogram of each channel of each sample with probability p, as
/// torchvision's `RandomEqualize` (PIL's `ImageOps.equalize`), on 256 levels:
///
/// ```text
/// hist_k = #{pixels = k},  cum_k = Σ_{j ≤ k} hist_j,  step = ⌊(HW − hist_top) / 255⌋
/// lut_0 = 0,  lut_k = min(255, ⌊(cum_{k−1} + ⌊step/2⌋) / step⌋),  y = lut_x
/// ```
///
/// where `top` is the channel's largest value; a channel with `step = 0` (fewer than 255
/// pixels below its top value) is left as it is. Float samples are binned as torchvision
/// does, `u = ⌊255.999·x⌋`, and come back as `lut_u / 255`.
///
/// # Shapes
/// `x`: `[N, C, H, W]`, float in `[0, 1]` or uint8 → same shape and dtype.
#[derive(Debug, Clone, Copy)]
pub struct RandomEqualize {
    p: f64,
}

impl BatchAug for RandomEqualize {
    type Params = FlipParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> FlipParams {
        FlipParams { apply: sample_mask(size[0], self.p, rng) }
    }

    apply_through_owned_if!(FlipParams);
}

impl RandomEqualize {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, params: &FlipParams) -> Tensor {
        check_batch("RandomEqualize", &x, params.apply.len());
        where_chosen(x, owned, &params.apply, |x, _| equalize(&x))
    }
}

/// Every channel of every sample of `x` equalized (the formula of [`RandomEqualize`]).
fn equalize(x: &Tensor) -> Tensor {
    let size = x.size();
    let (n, c) = (size[0], size[1]);
    let levels = match x.kind() {
        Kind::Uint8 => x.shallow_clone(),
        _ => (x.clamp(0.0, 1.0) * LEVELS_PER_UNIT).to_kind(Kind::Uint8),
    };
    let flat = levels.flatten(2, 3).to_kind(Kind::Int64); // [N, C, HW]
    let pixels = flat.size()[2];
    let mut hist = Tensor::zeros([n, c, 256], (Kind::Int64, x.device()));
    let _ = hist.scatter_add_(2, &flat, &flat.ones_like()); // [N, C, 256]
    let cum = hist.cumsum(2, Kind::Int64);
    // The first level where cum reaches its maximum is the channel's top value.
    let top = cum.argmax(2, true); // [N, C, 1]
    let step = (hist.gather(2, &top, false).neg() + pixels).floor_divide_scalar(255); // [N, C, 1]
    let lut = (cum.narrow(2, 0, 255) + step.floor_divide_scalar(2))
        .floor_divide(&step.clamp_min(1))
        .clamp(0, 255); // lut_1 … lut_255
    let lut = Tensor::cat(&[Tensor::zeros([n, c, 1], (Kind::Int64, x.device())), lut], 2); // [N, C, 256]
    let equalized = lut.gather(2, &flat, false).view(size.as_slice()); // [N, C, H, W]
    let kept = levels.to_kind(Kind::Int64);
    let out = equalized.where_self(&step.ne(0).unsqueeze(-1), &kept).to_kind(Kind::Uint8);
    match x.kind() {
        Kind::Uint8 => out,
        kind => out.to_kind(kind) * (1.0 / 255.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::Device;

    /// One channel of 700 pixels: 300 of level 0, 300 of 50, 100 of 255.
    fn three_levels() -> Tensor {
        let mut v = vec![0u8; 300];
        v.extend([50u8; 300]);
        v.extend([255u8; 100]);
        Tensor::from_slice(&v).view([1, 1, 20, 35])
    }

    #[test]
    fn hand_computed_lut_of_three_levels() {
        // Top 255 (100 pixels), step ⌊600/255⌋ = 2; lut_k = min(255, ⌊(cum_{k−1} + 1)/2⌋):
        // cum = 300 below 50 → lut_50 = 150; cum = 600 from 50 on → lut_255 = 255 (clamped).
        let x = three_levels();
        let y = equalize(&x);
        let want = x.where_scalarother(&x.ne(50), 150i64).to_kind(Kind::Uint8);
        assert!(y.equal(&want), "{:?}", y.unique_dim(-1, true, false, false).0);
        // The same image as float: 50/255 → 150/255.
        let xf = x.to_kind(Kind::Float) / 255.0;
        let yf = equalize(&xf);
        assert!(yf.allclose(&(want.to_kind(Kind::Float) / 255.0), 1e-7, 1e-7, false));
    }

    #[test]
    fn a_channel_with_too_few_pixels_below_its_top_is_kept_and_others_are_not() {
        // Channel 0: the three levels (equalized); channel 1: all level 7 (step 0, kept).
        let x = Tensor::cat(&[three_levels(), three_levels().full_like(7)], 1);
        let p = FlipParams { apply: vec![true] };
        let y = RandomEqualizeConfig::default().build().unwrap().apply(&x, &p);
        assert!(y.get(0).get(1).equal(&x.get(0).get(1)));
        assert!(!y.get(0).get(0).equal(&x.get(0).get(0)));
    }

    #[test]
    fn the_rate_is_p() {
        let op = RandomEqualizeConfig { p: 0.3 }.build().unwrap();
        let p = op.sample(&[20_000, 1, 1, 1], &mut aug_rng(6, &[]));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 20_000.0;
        assert!((rate - 0.3).abs() < 0.013, "{rate}"); // standard error 0.0032
        let x = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert!(op.apply(&x, &FlipParams { apply: vec![false; 2] }).equal(&x));
    }
}
