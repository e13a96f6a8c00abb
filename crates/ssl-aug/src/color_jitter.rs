//! Random colour jitter: brightness, contrast, saturation and hue in a random order per sample.

use tch::{Device, Kind, Tensor};

use crate::aug::{apply_through_owned_if, check_batch, rows_of};
use crate::error::check_probability;
use crate::hsv::rotate_hue;
use crate::mask::{sample_mask, scatter_rows, where_chosen};
use crate::rng::{uniform, uniform_int};
use crate::to_float::LEVELS_PER_UNIT;
use crate::{AugError, AugRng, BatchAug, BatchParams, Result};

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
    /// Hue shift in turns drawn from `U(−h, h)`, `h ≤ 0.5`; no effect on one channel.
    pub hue: f64,
    /// Probability of jittering each sample (SimCLR: 0.8).
    pub p: f64,
}

impl Default for ColorJitterConfig {
    /// SimCLR's colour distortion of strength 0.5: `ColorJitter(0.4, 0.4, 0.4, 0.1)` applied
    /// with p = 0.8 (Chen et al. 2020, Appendix A, strength s: 0.8s, 0.8s, 0.8s, 0.2s).
    fn default() -> Self {
        Self { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 }
    }
}

impl ColorJitterConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] when a strength is negative or not finite, `hue` exceeds
    /// 0.5, or `p` is outside `[0, 1]`.
    pub fn build(self) -> Result<ColorJitter> {
        for (field, v) in [
            ("brightness", self.brightness),
            ("contrast", self.contrast),
            ("saturation", self.saturation),
            ("hue", self.hue),
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
        if self.hue > 0.5 {
            return Err(AugError::InvalidConfig {
                op: "color_jitter",
                field: "hue",
                value: self.hue.to_string(),
                reason: "must be ≤ 0.5 (half a turn of the hue circle)",
            });
        }
        check_probability("color_jitter", "p", self.p)?;
        Ok(ColorJitter { cfg: self })
    }
}

/// Randomly changes brightness, contrast, saturation and hue, as torchvision's `ColorJitter`:
/// the four adjustments run in a random order per sample, each clamped to `[0, 1]`.
///
/// ```text
/// brightness(x, b) = clamp(b·x)
/// contrast(x, c)   = clamp(c·x + (1 − c)·mean(gray(x)))     mean over the whole image
/// saturation(x, s) = clamp(s·x + (1 − s)·gray(x))
/// hue(x, h)        = hsv→rgb(h_x + h mod 1, s_x, v_x)        (torchvision adjust_hue)
/// gray(x) = 0.2989 R + 0.587 G + 0.114 B  (torchvision's weights), or x itself for one channel
/// ```
///
/// Each of the four stages is one batched call: the three linear adjustments are the blend
/// `clamp(α·x + β·mean(gray(x)) + γ·gray(x))` with per-sample (α, β, γ), and the hue rotation
/// runs only on the samples whose stage it is. With `hue = 0` the order is a permutation of
/// the other three (the same distribution as torchvision's four with hue as the identity).
///
/// # Shapes
/// `x`: float `[N, C, H, W]` in `[0, 1]`, C = 1 or 3 → same shape.
#[derive(Debug, Clone, Copy)]
pub struct ColorJitter {
    cfg: ColorJitterConfig,
}

/// Per-sample factors and order of [`ColorJitter`]; factor 1 (hue 0) leaves the image as it is.
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
    /// Hue shift per sample, in turns.
    pub hue: Vec<f32>,
    /// The order of the adjustments per sample: 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: Vec<[u8; 4]>,
}

impl JitterParams {
    /// Factors of 1 and hue 0 in the default order for `n` samples: the identity.
    pub fn identity(n: usize) -> Self {
        Self {
            apply: vec![true; n],
            brightness: vec![1.0; n],
            contrast: vec![1.0; n],
            saturation: vec![1.0; n],
            hue: vec![0.0; n],
            order: vec![[0, 1, 2, 3]; n],
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

/// Luma of a `[N, C, H, W]` batch as `[N, 1, H, W]` (torchvision's `rgb_to_grayscale` weights).
pub(crate) fn gray(x: &Tensor) -> Tensor {
    if x.size()[1] == 1 {
        return x.shallow_clone();
    }
    let w = |v: f64| Tensor::from(v).to_device(x.device()).to_kind(x.kind()); // 0-dim
    let mut l = x.narrow(1, 0, 1) * 0.2989; // [N, 1, H, W]
    let _ = l.addcmul_(&x.narrow(1, 1, 1), &w(0.587));
    let _ = l.addcmul_(&x.narrow(1, 2, 1), &w(0.114));
    l
}

/// Per-sample values as `[N, 1, 1, 1]` of the given device and dtype.
fn column(values: &[f32], device: Device, kind: Kind) -> Tensor {
    Tensor::from_slice(values).view([-1, 1, 1, 1]).to_device(device).to_kind(kind)
}

/// A uniformly random permutation of `0..K` (Fisher–Yates from the top, as torch's randperm
/// is uniform; the stream differs).
fn permutation<const K: usize>(rng: &mut AugRng) -> [u8; K] {
    let mut order = [0u8; K];
    for (i, o) in order.iter_mut().enumerate() {
        *o = i as u8;
    }
    for i in (1..K).rev() {
        order.swap(i, uniform_int(rng, i as i64 + 1) as usize);
    }
    order
}

impl BatchParams for JitterParams {
    fn len(&self) -> usize {
        self.apply.len()
    }

    fn rows(&self, start: usize, len: usize) -> Self {
        Self {
            apply: rows_of(&self.apply, start, len),
            brightness: rows_of(&self.brightness, start, len),
            contrast: rows_of(&self.contrast, start, len),
            saturation: rows_of(&self.saturation, start, len),
            hue: rows_of(&self.hue, start, len),
            order: rows_of(&self.order, start, len),
        }
    }
}

impl BatchAug for ColorJitter {
    type Params = JitterParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> JitterParams {
        let n = size[0] as usize;
        let apply = sample_mask(size[0], self.cfg.p, rng);
        let mut p = JitterParams { apply, ..JitterParams::identity(0) };
        for _ in 0..n {
            // torchvision draws the permutation first, then the factors.
            let order = if self.cfg.hue > 0.0 {
                permutation::<4>(rng)
            } else {
                let [a, b, c] = permutation::<3>(rng);
                [a, b, c, 3]
            };
            p.order.push(order);
            p.brightness.push(factor(rng, self.cfg.brightness));
            p.contrast.push(factor(rng, self.cfg.contrast));
            p.saturation.push(factor(rng, self.cfg.saturation));
            let h = self.cfg.hue;
            p.hue.push(if h > 0.0 { uniform(rng, -h, h) as f32 } else { 0.0 });
        }
        p
    }

    apply_through_owned_if!(JitterParams);
}

impl ColorJitter {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, p: &JitterParams) -> Tensor {
        check_batch("ColorJitter", &x, p.apply.len());
        let levels = x.kind() == Kind::Uint8;
        assert!(
            levels || x.is_floating_point(),
            "ColorJitter: x must be a float batch in [0, 1] or uint8, got {:?}",
            x.kind()
        );
        // Only the jittered samples are computed; `rows` are their indices in the batch, in
        // the order `where_chosen` gathers them.
        let rows: Vec<usize> = (0..p.apply.len()).filter(|&i| p.apply[i]).collect();
        where_chosen(x, owned, &p.apply, |y, owned| {
            if levels {
                // uint8 as torchvision: each stage on the levels in f32, truncated back.
                let y = jitter_rows(y.to_kind(Kind::Float), true, true, p, &rows);
                y.to_kind(Kind::Uint8)
            } else {
                jitter_rows(y, owned, false, p, &rows)
            }
        })
    }
}

/// The four stages of [`ColorJitter`] on `x`, whose sample `j` is the batch's sample `rows[j]`;
/// written in place when `owned` (x given up by the caller).
///
/// `levels`: x holds uint8 levels 0…255 in a float dtype, and each stage ends as torchvision's
/// does on uint8: clamped to 255 and truncated (the luma truncated first); the hue rotates `x / 255` and returns `⌊255.999·y⌋`.
fn jitter_rows(x: Tensor, owned: bool, levels: bool, p: &JitterParams, rows: &[usize]) -> Tensor {
    let rgb = x.size()[1] == 3;
    let (device, kind) = (x.device(), x.kind());
    let column = |values: &[f32]| column(values, device, kind);
    // `owned`: y may be written in place (allocations cost more than passes on the CPU).
    let (mut y, mut owned) = (x, owned);
    for k in 0..4 {
        // The blend weights (α, β, γ) of stage k; (1, 0, 0) where the stage is hue.
        let m = rows.len();
        let (mut alpha, mut beta, mut gamma) = (vec![1f32; m], vec![0f32; m], vec![0f32; m]);
        let mut hue_rows = Vec::new();
        for (j, &i) in rows.iter().enumerate() {
            match p.order[i][k] {
                0 => alpha[j] = p.brightness[i],
                1 => (alpha[j], beta[j]) = (p.contrast[i], 1.0 - p.contrast[i]),
                2 => (alpha[j], gamma[j]) = (p.saturation[i], 1.0 - p.saturation[i]),
                _ if p.hue[i] != 0.0 && rgb => hue_rows.push(j as i64),
                _ => {}
            }
        }
        let mixes = beta.iter().chain(&gamma).any(|&w| w != 0.0);
        if mixes || alpha.iter().any(|&a| a != 1.0) {
            let alpha = column(&alpha);
            // q = γ·gray + β·mean: each sample has at most one of the two terms, the other an
            // exact 0, so α·y + q is the op's own formula.
            let q = mixes.then(|| {
                let g = gray(&y); // [N, 1, H, W]; y itself for one channel
                let g = if levels && rgb { g.floor() } else { g };
                let mean = g.mean_dim([1i64, 2, 3].as_slice(), true, kind); // [N, 1, 1, 1]
                (mean * column(&beta)).addcmul(&g, &column(&gamma)) // [N, 1, H, W]
            });
            // y ← q + α·y, one pass (out aliasing y is element-wise, as in-place ops are).
            y = match (&q, owned) {
                (Some(q), true) => q.addcmul_out(&y, &y, &alpha),
                (Some(q), false) => q.addcmul(&y, &alpha),
                (None, true) => {
                    y *= &alpha;
                    y
                }
                (None, false) => &y * &alpha,
            };
            owned = true;
            if levels {
                let _ = y.clamp_(0.0, 255.0);
                let _ = y.floor_();
            } else {
                let _ = y.clamp_(0.0, 1.0);
            }
        }
        if !hue_rows.is_empty() {
            let at = Tensor::from_slice(&hue_rows).to_device(device); // [M]
            let shift: Vec<f32> = hue_rows.iter().map(|&j| p.hue[rows[j as usize]]).collect();
            let picked = y.index_select(0, &at);
            let rotated = if levels {
                let mut r = rotate_hue(&(picked * (1.0 / 255.0)), &column(&shift));
                r *= LEVELS_PER_UNIT;
                let _ = r.floor_();
                r
            } else {
                rotate_hue(&picked, &column(&shift))
            };
            if hue_rows.len() == rows.len() {
                y = rotated;
            } else {
                if !owned {
                    y = y.copy();
                }
                scatter_rows(&mut y, &hue_rows, &at, &rotated);
            }
            owned = true;
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;

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
        p.order = vec![[1, 0, 2, 3]];
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
        let luma = 0.2989 + 0.114 * 0.5;
        for v in values(&op.apply(&x, &p)) {
            assert!((v - luma).abs() < 1e-6);
        }
    }

    #[test]
    fn factors_stay_in_range_and_the_rate_and_orders_are_uniform() {
        let op =
            ColorJitterConfig { brightness: 0.4, contrast: 0.0, saturation: 0.9, hue: 0.0, p: 0.8 }
                .build()
                .unwrap();
        let p = op.sample(&[12_000, 1, 1, 1], &mut aug_rng(4, &[]));
        assert!(p.brightness.iter().all(|&b| (0.6..1.4).contains(&b)));
        assert!(p.contrast.iter().all(|&c| c == 1.0));
        assert!(p.saturation.iter().all(|&s| (0.0..1.9).contains(&s)));
        let rate = p.apply.iter().filter(|&&a| a).count() as f64 / 12_000.0;
        assert!((rate - 0.8).abs() < 0.015, "{rate}");
        // Each of the 6 orders has probability 1/6: about 2000 ± 41 of 12,000.
        for order in
            [[0, 1, 2, 3], [0, 2, 1, 3], [1, 0, 2, 3], [1, 2, 0, 3], [2, 0, 1, 3], [2, 1, 0, 3]]
        {
            let k = p.order.iter().filter(|&&o| o == order).count();
            assert!((1800..2200).contains(&k), "{order:?}: {k}");
        }
    }

    #[test]
    fn each_stage_equals_its_formula() {
        // One op per stage in the order contrast, saturation, brightness, against the
        // formulas written out in f64: the blend adds exact zeros for the weights it does not
        // use, and rounds at most as often as the formulas (fused multiply-adds).
        let x32 = Tensor::rand([3, 3, 4, 5], (Kind::Float, Device::Cpu));
        let x = x32.to_kind(Kind::Double);
        let op = ColorJitterConfig::default().build().unwrap();
        let mut p = JitterParams::identity(3);
        p.brightness = vec![1.3, 0.7, 1.0];
        p.contrast = vec![0.6, 1.2, 1.0];
        p.saturation = vec![1.5, 0.2, 1.0];
        p.order = vec![[1, 2, 0, 3]; 3];
        let col = |v: &[f32]| Tensor::from_slice(v).view([3, 1, 1, 1]).to_kind(Kind::Double);
        let (b, c, sat) = (col(&p.brightness), col(&p.contrast), col(&p.saturation));
        let mean = gray(&x).mean_dim([1i64, 2, 3].as_slice(), true, Kind::Double);
        let y = (&x * &c + (c.neg() + 1.0) * mean).clamp(0.0, 1.0);
        let y = (&y * &sat + (sat.neg() + 1.0) * gray(&y)).clamp(0.0, 1.0);
        let want = (&y * &b).clamp(0.0, 1.0);
        let got = op.apply(&x32, &p).to_kind(Kind::Double);
        let err = f64::try_from((&got - &want).abs().max()).unwrap();
        assert!(err < 1e-6, "off by {err}");
    }

    #[test]
    fn the_input_batch_is_never_written() {
        let op = ColorJitterConfig::default().build().unwrap();
        for c in [1, 3] {
            let x = Tensor::rand([6, c, 5, 5], (Kind::Float, Device::Cpu));
            let before = x.copy();
            let p = op.sample(&x.size(), &mut aug_rng(3, &[]));
            let all = JitterParams { apply: vec![true; 6], ..p };
            let _ = op.apply(&x, &all);
            assert!(x.equal(&before), "{c} channels");
        }
    }

    #[test]
    fn hue_rotates_rgb_samples_and_leaves_gray_ones() {
        // (0.9, 0.2, 0.4) by a quarter turn: torchvision's adjust_hue gives (0.75, 0.9, 0.2).
        let x = Tensor::from_slice(&[0.9f32, 0.2, 0.4]).view([1, 3, 1, 1]);
        let op = ColorJitterConfig::default().build().unwrap();
        let mut p = JitterParams::identity(1);
        p.hue = vec![0.25];
        p.order = vec![[3, 0, 1, 2]];
        for (g, w) in values(&op.apply(&x, &p)).iter().zip([0.75, 0.9, 0.2]) {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        let one = Tensor::from_slice(&[0.3f32]).view([1, 1, 1, 1]);
        assert!(op.apply(&one, &p).equal(&one));
    }

    #[test]
    fn with_hue_the_24_orders_are_uniform_and_shifts_in_range() {
        let op = ColorJitterConfig { hue: 0.1, ..Default::default() }.build().unwrap();
        let p = op.sample(&[24_000, 3, 1, 1], &mut aug_rng(5, &[]));
        assert!(p.hue.iter().all(|&h| (-0.1..0.1).contains(&h)));
        let mut counts = std::collections::HashMap::new();
        for o in &p.order {
            *counts.entry(*o).or_insert(0) += 1;
        }
        // 24 orders of probability 1/24: 1000 ± 31 each of 24,000.
        assert_eq!(counts.len(), 24);
        assert!(counts.values().all(|&k| (880..1120).contains(&k)), "{counts:?}");
    }

    #[test]
    fn negative_strength_is_rejected() {
        let err = ColorJitterConfig { contrast: -0.1, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("color_jitter.contrast"), "{err}");
        let err = ColorJitterConfig { hue: 0.6, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("color_jitter.hue"), "{err}");
    }
}
