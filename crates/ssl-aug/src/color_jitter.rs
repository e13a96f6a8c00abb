//! Random colour jitter: brightness, contrast and saturation in a random order per sample.

use tch::{Kind, Tensor};

use crate::aug::check_batch;
use crate::error::check_probability;
use crate::mask::{mask_tensor, sample_mask};
use crate::rng::{uniform, uniform_int};
use crate::{AugError, AugRng, BatchAug, Result};

/// Settings of [`ColorJitter`]; a strength of 0 disables that adjustment.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct ColorJitterConfig {
    /// Brightness factor drawn from `U(max(0, 1 − b), 1 + b)`.
    pub brightness: f64,
    /// Contrast factor drawn from `U(max(0, 1 − c), 1 + c)`.
    pub contrast: f64,
    /// Saturation factor drawn from `U(max(0, 1 − s), 1 + s)`; no effect on one channel.
    pub saturation: f64,
    /// Probability of jittering each sample (SimCLR: 0.8).
    pub p: f64,
}

impl Default for ColorJitterConfig {
    /// SimCLR's strength-0.5 jitter without hue: `ColorJitter(0.4, 0.4, 0.4)` applied with
    /// p = 0.8 (Chen et al. 2020, Appendix A).
    fn default() -> Self {
        Self { brightness: 0.4, contrast: 0.4, saturation: 0.4, p: 0.8 }
    }
}

impl ColorJitterConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] when a strength is negative or not finite, or `p` is
    /// outside `[0, 1]`.
    pub fn build(self) -> Result<ColorJitter> {
        for (field, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(AugError::InvalidConfig {
                    op: "color_jitter",
                    field,
                    value: v.to_string(),
                    reason: "must be a finite number ≥ 0",
                });
            }
        }
        check_probability("color_jitter", "p", self.p)?;
        Ok(ColorJitter { cfg: self })
    }
}

/// Randomly changes brightness, contrast and saturation, as torchvision's `ColorJitter`: the
/// three adjustments run in a random order per sample, each clamped to `[0, 1]`.
///
/// ```text
/// brightness(x, b) = clamp(b·x)
/// contrast(x, c)   = clamp(c·x + (1 − c)·mean(gray(x)))     mean over the whole image
/// saturation(x, s) = clamp(s·x + (1 − s)·gray(x))
/// gray(x) = 0.299 R + 0.587 G + 0.114 B  (ITU-R 601-2), or x itself for one channel
/// ```
///
/// # Shapes
/// `x`: float `[N, C, H, W]` in `[0, 1]`, C = 1 or 3 → same shape.
#[derive(Debug, Clone, Copy)]
pub struct ColorJitter {
    cfg: ColorJitterConfig,
}

/// Per-sample factors and order of [`ColorJitter`]; factor 1 leaves the image as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct JitterParams {
    /// Whether sample `i` is jittered at all.
    pub apply: Vec<bool>,
    /// Brightness factor per sample.
    pub brightness: Vec<f32>,
    /// Contrast factor per sample.
    pub contrast: Vec<f32>,
    /// Saturation factor per sample.
    pub saturation: Vec<f32>,
    /// The order of the three adjustments per sample: 0 brightness, 1 contrast, 2 saturation.
    pub order: Vec<[u8; 3]>,
}

impl JitterParams {
    /// Factors of 1 in the default order for `n` samples: the identity.
    pub fn identity(n: usize) -> Self {
        Self {
            apply: vec![true; n],
            brightness: vec![1.0; n],
            contrast: vec![1.0; n],
            saturation: vec![1.0; n],
            order: vec![[0, 1, 2]; n],
        }
    }
}

fn factor(rng: &mut AugRng, strength: f64) -> f32 {
    if strength == 0.0 {
        1.0
    } else {
        uniform(rng, (1.0 - strength).max(0.0), 1.0 + strength) as f32
    }
}

/// Luma of a `[N, C, H, W]` batch as `[N, 1, H, W]`.
pub(crate) fn gray(x: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    let w = Tensor::from_slice(&[0.299f32, 0.587, 0.114]).to_device(x.device()).to_kind(x.kind());
    (x * w.view([1, 3, 1, 1])).sum_dim_intlist([1i64].as_slice(), true, x.kind())
    // [N, 1, H, W]
}

fn column(values: &[f32], x: &Tensor) -> Tensor {
    Tensor::from_slice(values).view([-1, 1, 1, 1]).to_device(x.device()).to_kind(x.kind())
}

impl BatchAug for ColorJitter {
    type Params = JitterParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> JitterParams {
        let n = size[0];
        let apply = sample_mask(n, self.cfg.p, rng);
        let mut p = JitterParams {
            apply,
            brightness: Vec::with_capacity(n as usize),
            contrast: Vec::with_capacity(n as usize),
            saturation: Vec::with_capacity(n as usize),
            order: Vec::with_capacity(n as usize),
        };
        for _ in 0..n {
            // torchvision draws the permutation first, then the factors.
            let mut order = [0u8, 1, 2];
            for i in (1..3).rev() {
                order.swap(i, uniform_int(rng, i as i64 + 1) as usize);
            }
            p.order.push(order);
            p.brightness.push(factor(rng, self.cfg.brightness));
            p.contrast.push(factor(rng, self.cfg.contrast));
            p.saturation.push(factor(rng, self.cfg.saturation));
        }
        p
    }

    fn apply(&self, x: &Tensor, p: &JitterParams) -> Tensor {
        check_batch("ColorJitter", x, p.apply.len());
        assert!(
            matches!(x.kind(), Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16),
            "ColorJitter: x must be a float batch in [0, 1], got {:?}",
            x.kind()
        );
        if !p.apply.iter().any(|&a| a) {
            return x.shallow_clone();
        }
        let b = column(&p.brightness, x); // [N, 1, 1, 1]
        let c = column(&p.contrast, x); // [N, 1, 1, 1]
        let s = column(&p.saturation, x); // [N, 1, 1, 1]
        let mut y = x.shallow_clone();
        for k in 0..3 {
            let pick = |op: u8| {
                let m: Vec<bool> = p.order.iter().map(|o| o[k] == op).collect();
                mask_tensor(&m, x.device()) // [N, 1, 1, 1]
            };
            let bright = (&y * &b).clamp(0.0, 1.0);
            let mean = gray(&y).mean_dim([1i64, 2, 3].as_slice(), true, y.kind()); // [N, 1, 1, 1]
            let contrast = (&y * &c + (c.neg() + 1.0) * mean).clamp(0.0, 1.0);
            let saturated = (&y * &s + (s.neg() + 1.0) * gray(&y)).clamp(0.0, 1.0);
            y = bright.where_self(&pick(0), &contrast.where_self(&pick(1), &saturated));
        }
        y.where_self(&mask_tensor(&p.apply, x.device()), x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::Device;

    fn values(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn factors_of_one_are_the_identity() {
        let x = Tensor::rand([4, 3, 5, 5], (Kind::Float, Device::Cpu));
        let op = ColorJitterConfig::default().build().unwrap();
        assert!(op.apply(&x, &JitterParams::identity(4)).allclose(&x, 1e-6, 1e-6, false));
    }

    #[test]
    fn hand_computed_pixels_in_both_orders() {
        // One grayscale image [0.2, 0.6].
        // Brightness 2 then contrast 0.5: [0.4, 1.2 → 1.0], mean 0.7, 0.5·x + 0.35 = [0.55, 0.85].
        // Contrast 0.5 then brightness 2: mean 0.4, 0.5·x + 0.2 = [0.3, 0.5], ×2 = [0.6, 1.0].
        let x = Tensor::from_slice(&[0.2f32, 0.6]).view([1, 1, 1, 2]);
        let op = ColorJitterConfig::default().build().unwrap();
        let mut p = JitterParams::identity(1);
        p.brightness = vec![2.0];
        p.contrast = vec![0.5];
        let b_then_c = values(&op.apply(&x, &p));
        p.order = vec![[1, 0, 2]];
        let c_then_b = values(&op.apply(&x, &p));
        for (got, want) in b_then_c.iter().zip([0.55, 0.85]).chain(c_then_b.iter().zip([0.6, 1.0]))
        {
            assert!((got - want).abs() < 1e-6, "{b_then_c:?} {c_then_b:?}");
        }
    }

    #[test]
    fn saturation_zero_gives_the_luma_on_every_channel() {
        let x = Tensor::from_slice(&[1.0f32, 0.0, 0.5]).view([1, 3, 1, 1]);
        let op = ColorJitterConfig::default().build().unwrap();
        let mut p = JitterParams::identity(1);
        p.saturation = vec![0.0];
        let luma = 0.299 + 0.114 * 0.5;
        for v in values(&op.apply(&x, &p)) {
            assert!((v - luma).abs() < 1e-6);
        }
    }

    #[test]
    fn factors_stay_in_range_and_the_rate_and_orders_are_uniform() {
        let op = ColorJitterConfig { brightness: 0.4, contrast: 0.0, saturation: 0.9, p: 0.8 }
            .build()
            .unwrap();
        let p = op.sample(&[12_000, 1, 1, 1], &mut aug_rng(4, &[]));
        assert!(p.brightness.iter().all(|&b| (0.6..1.4).contains(&b)));
        assert!(p.contrast.iter().all(|&c| c == 1.0));
        assert!(p.saturation.iter().all(|&s| (0.0..1.9).contains(&s)));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 12_000.0;
        assert!((rate - 0.8).abs() < 0.015, "{rate}");
        // Each of the 6 orders has probability 1/6: about 2000 ± 41 of 12,000.
        for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
            let k = p.order.iter().filter(|&&o| o == order).count();
            assert!((1800..2200).contains(&k), "{order:?}: {k}");
        }
    }

    #[test]
    fn negative_strength_is_rejected() {
        let err = ColorJitterConfig { contrast: -0.1, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("color_jitter.contrast"), "{err}");
    }
}
