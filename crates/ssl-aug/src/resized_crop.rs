//! Random resized crop (Szegedy et al. 2015; torchvision `RandomResizedCrop`).

use tch::{Kind, Tensor};

use crate::aug::{check_batch, rows_of};
use crate::rng::{uniform, uniform_int};
use crate::to_float::on_float_levels;
use crate::{AugError, AugRng, BatchAug, BatchParams, Result};

/// Settings of [`RandomResizedCrop`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct RandomResizedCropConfig {
    /// Output `[height, width]` in pixels.
    pub size: [i64; 2],
    /// Range of the crop's area as a fraction of the image's (torchvision `(0.08, 1.0)`).
    pub scale: [f64; 2],
    /// Range of the crop's aspect ratio w / h, sampled log-uniformly (torchvision `(3/4, 4/3)`).
    pub ratio: [f64; 2],
    /// Resample each box as torchvision's `resized_crop(…, antialias=True)`: only the box's
    /// pixels, with the bilinear kernel widened by the factor wherever a box shrinks. `false`
    /// (the default, as kornia): one bilinear grid sample, faster, without the low-pass.
    pub antialias: bool,
}

impl Default for RandomResizedCropConfig {
    fn default() -> Self {
        Self {
            size: [224, 224],
            scale: [0.08, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
            antialias: false,
        }
    }
}

impl RandomResizedCropConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] naming `size`, `scale` or `ratio` when a size is below 1, a
    /// range is reversed, or a value is not positive (scale must also be at most 1).
    pub fn build(self) -> Result<RandomResizedCrop> {
        let bad = |field, value: String, reason| {
            Err(AugError::InvalidConfig { op: "random_resized_crop", field, value, reason })
        };
        if self.size.iter().any(|&s| s < 1) {
            return bad("size", format!("{:?}", self.size), "both sides must be ≥ 1");
        }
        let [lo, hi] = self.scale;
        if !(0.0 < lo && lo <= hi && hi <= 1.0) {
            return bad("scale", format!("{:?}", self.scale), "needs 0 < min ≤ max ≤ 1");
        }
        let [lo, hi] = self.ratio;
        if !(0.0 < lo && lo <= hi && hi.is_finite()) {
            return bad("ratio", format!("{:?}", self.ratio), "needs 0 < min ≤ max");
        }
        Ok(RandomResizedCrop { cfg: self })
    }
}

/// Crops a random box of random area and aspect ratio from each sample and resizes it to `size`.
///
/// Paper: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Sec. 6 (the crop); its
/// SimCLR use: Chen et al. 2020, Appendix A. Sampling follows torchvision's `get_params`:
///
/// ```text
/// s ~ U(scale), log r ~ U(log ratio)         up to 10 tries
/// w = round(√(s·H·W·r)), h = round(√(s·H·W/r))  accepted when 0 < w ≤ W and 0 < h ≤ H
/// top ~ U{0..H−h}, left ~ U{0..W−w}           else a centre crop clamped to the ratio range
/// ```
///
/// The crop is resampled bilinearly with `grid_sample` (align_corners = false), one affine grid
/// per sample, which equals torchvision's bilinear resize of the cropped pixels (without
/// antialiasing) except at the crop's border, where neighbours outside the box contribute.
/// With `antialias` it is torchvision's `resized_crop(…, antialias=True)` (PIL's filter):
///
/// ```text
/// y_i = Σ_j w_ij x_j / Σ_j w_ij,  w_ij = max(0, 1 − |j + ½ − s·(i + ½)| / max(s, 1)),  s = box / out
/// ```
///
/// over the box's pixels j, separably across then down.
///
/// # Shapes
/// `x`: `[N, C, H, W]`, float or uint8 (resampled in f32, rounded) → `[N, C, size[0], size[1]]`
/// of the same dtype.
#[derive(Debug, Clone, Copy)]
pub struct RandomResizedCrop {
    cfg: RandomResizedCropConfig,
}

/// The crop box of every sample, in input pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CropParams {
    /// `[top, left, height, width]` per sample; length N.
    pub boxes: Vec<[i64; 4]>,
    /// The input `[H, W]` the boxes were drawn for.
    pub input_size: [i64; 2],
}

impl CropParams {
    /// The whole image for each of `n` samples: with an output size equal to the input's, the
    /// identity.
    pub fn full(n: usize, height: i64, width: i64) -> Self {
        Self { boxes: vec![[0, 0, height, width]; n], input_size: [height, width] }
    }
}

/// One box, as torchvision's `RandomResizedCrop.get_params`.
fn sample_box(h: i64, w: i64, scale: [f64; 2], ratio: [f64; 2], rng: &mut AugRng) -> [i64; 4] {
    let area = (h * w) as f64;
    let (log_lo, log_hi) = (ratio[0].ln(), ratio[1].ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale[0], scale[1]);
        let aspect = uniform(rng, log_lo, log_hi).exp();
        let cw = (target * aspect).sqrt().round() as i64;
        let ch = (target / aspect).sqrt().round() as i64;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = uniform_int(rng, h - ch + 1);
            let left = uniform_int(rng, w - cw + 1);
            return [top, left, ch, cw];
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (ch, cw) = if in_ratio < ratio[0] {
        (((w as f64) / ratio[0]).round() as i64, w)
    } else if in_ratio > ratio[1] {
        (h, ((h as f64) * ratio[1]).round() as i64)
    } else {
        (h, w)
    };
    [(h - ch) / 2, (w - cw) / 2, ch, cw]
}

impl BatchParams for CropParams {
    fn len(&self) -> usize {
        self.boxes.len()
    }

    fn rows(&self, start: usize, len: usize) -> Self {
        Self { boxes: rows_of(&self.boxes, start, len), input_size: self.input_size }
    }
}

impl BatchAug for RandomResizedCrop {
    type Params = CropParams;

    fn output_size(&self, size: &[i64]) -> Vec<i64> {
        vec![size[0], size[1], self.cfg.size[0], self.cfg.size[1]]
    }

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> CropParams {
        let (h, w) = (size[2], size[3]);
        let boxes =
            (0..size[0]).map(|_| sample_box(h, w, self.cfg.scale, self.cfg.ratio, rng)).collect();
        CropParams { boxes, input_size: [h, w] }
    }

    fn apply(&self, x: &Tensor, params: &CropParams) -> Tensor {
        self.apply_mirrored(x, params, &[])
    }
}

impl RandomResizedCrop {
    /// [`BatchAug::apply`], mirroring left–right the outputs of the samples with `mirror[i]`
    /// (none when `mirror` is empty) by sampling their boxes right to left: the same pixels as
    /// a horizontal flip after the crop, in the same single call.
    pub(crate) fn apply_mirrored(
        &self,
        x: &Tensor,
        params: &CropParams,
        mirror: &[bool],
    ) -> Tensor {
        check_batch("RandomResizedCrop", x, params.boxes.len());
        let size = x.size();
        assert!(
            [size[2], size[3]] == params.input_size,
            "RandomResizedCrop: x {size:?} is not the {:?} the boxes were drawn for",
            params.input_size
        );
        if self.cfg.antialias {
            return crate::antialias::resized_crop(x, &params.boxes, self.cfg.size, mirror);
        }
        if x.kind() == Kind::Uint8 {
            // As torchvision resizes uint8 images.
            return on_float_levels(x, |x| self.apply_mirrored(x, params, mirror));
        }
        // Bilinear sampling (mode 0) with border padding (mode 1): a box never leaves the image.
        let grid = box_grid(&params.boxes, params.input_size, self.cfg.size, mirror, x);
        x.grid_sampler(&grid, 0, 1, false) // [N, C, oH, oW]
    }
}

/// The sampling grid of axis-aligned boxes, `[N, oH, oW, 2]` in grid_sample's normalised
/// coordinates (align_corners = false): output pixel centres `u` (affine_grid's base grid,
/// `linspace(−1, 1, n)·(n − 1)/n`) map to `(bw/W)·u + cx` across and `(bh/H)·u + cy` down.
/// Built from one row and one column per sample: the same grid as `affine_grid` of the
/// diagonal θ, without its `[N, oH·oW, 3] × [3, 2]` product (which cost more than the sampling).
/// A sample with `mirror[i]` gets the negated scale across: its box read right to left (the
/// base grid is symmetric, so this is exactly the flipped grid).
fn box_grid(
    boxes: &[[i64; 4]],
    [h, w]: [i64; 2],
    [oh, ow]: [i64; 2],
    mirror: &[bool],
    x: &Tensor,
) -> Tensor {
    let (kind, device) = (x.kind(), x.device());
    let (h, w) = (h as f64, w as f64);
    let mut coef = Vec::with_capacity(boxes.len() * 4);
    for (i, &[top, left, bh, bw]) in boxes.iter().enumerate() {
        let cx = (2.0 * left as f64 + bw as f64) / w - 1.0;
        let cy = (2.0 * top as f64 + bh as f64) / h - 1.0;
        let sx = if mirror.get(i).copied().unwrap_or(false) { -1.0 } else { 1.0 };
        coef.extend([sx * bw as f64 / w, cx, bh as f64 / h, cy].map(|v| v as f32));
    }
    let coef = Tensor::from_slice(&coef).view([-1, 4]).to_device(device).to_kind(kind); // [N, 4]
    let base =
        |n: i64| Tensor::linspace(-1.0, 1.0, n, (kind, device)) * ((n - 1) as f64 / n as f64);
    let n = boxes.len() as i64;
    let gx = coef.narrow(1, 0, 1) * base(ow).view([1, ow]) + coef.narrow(1, 1, 1); // [N, oW]
    let gy = coef.narrow(1, 2, 1) * base(oh).view([1, oh]) + coef.narrow(1, 3, 1); // [N, oH]
    let gx = gx.view([n, 1, ow]).expand([n, oh, ow], false);
    let gy = gy.view([n, oh, 1]).expand([n, oh, ow], false);
    Tensor::stack(&[gx, gy], 3) // [N, oH, oW, 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    fn crop(size: [i64; 2], scale: [f64; 2], ratio: [f64; 2]) -> RandomResizedCrop {
        RandomResizedCropConfig { size, scale, ratio, antialias: false }.build().unwrap()
    }

    #[test]
    fn the_box_grid_is_affine_grids_grid_of_the_diagonal_theta() {
        let boxes = [[0, 0, 10, 12], [3, 2, 5, 7], [9, 11, 1, 1]];
        let x = Tensor::zeros([3, 1, 10, 12], (Kind::Double, Device::Cpu));
        let got = box_grid(&boxes, [10, 12], [4, 6], &[], &x);
        let theta: Vec<f64> = boxes
            .iter()
            .flat_map(|&[t, l, bh, bw]| {
                let cx = (2.0 * l as f64 + bw as f64) / 12.0 - 1.0;
                let cy = (2.0 * t as f64 + bh as f64) / 10.0 - 1.0;
                [bw as f64 / 12.0, 0.0, cx, 0.0, bh as f64 / 10.0, cy]
            })
            .collect();
        let theta = Tensor::from_slice(&theta).view([3, 2, 3]);
        let want = Tensor::affine_grid_generator(&theta, [3, 1, 4, 6], false);
        // f32 box coefficients against the f64 θ.
        assert!(got.allclose(&want, 1e-6, 1e-6, false), "{got} vs {want}");
    }

    #[test]
    fn the_full_box_at_the_input_size_is_the_identity() {
        let x = Tensor::rand([3, 2, 7, 5], (Kind::Float, Device::Cpu));
        let op = crop([7, 5], [0.08, 1.0], [0.75, 4.0 / 3.0]);
        let y = op.apply(&x, &CropParams::full(3, 7, 5));
        assert!(y.allclose(&x, 1e-5, 1e-6, false));
    }

    #[test]
    fn a_box_at_half_size_picks_exactly_its_pixels() {
        // 4×4 image 0..16; the 2×2 box at top 1, left 2 holds 6, 7, 10, 11.
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).view([1, 1, 4, 4]);
        let op = crop([2, 2], [0.08, 1.0], [0.75, 4.0 / 3.0]);
        let params = CropParams { boxes: vec![[1, 2, 2, 2]], input_size: [4, 4] };
        let y = Vec::<f32>::try_from(op.apply(&x, &params).flatten(0, -1)).unwrap();
        for (got, want) in y.iter().zip([6.0, 7.0, 10.0, 11.0]) {
            assert!((got - want).abs() < 1e-5, "{y:?}");
        }
    }

    #[test]
    fn sampled_boxes_follow_the_scale_and_ratio_distributions() {
        let op = crop([8, 8], [0.2, 1.0], [0.75, 4.0 / 3.0]);
        let p = op.sample(&[4000, 1, 1000, 1000], &mut aug_rng(1, &[]));
        let (mut area_sum, mut log_ratio_sum) = (0.0, 0.0);
        for &[top, left, h, w] in &p.boxes {
            assert!(top >= 0 && left >= 0 && top + h <= 1000 && left + w <= 1000);
            let area = (h * w) as f64 / 1e6;
            let ratio = w as f64 / h as f64;
            assert!((0.199..=1.0).contains(&area), "{area}");
            // Rounding w and h (each side ≥ 387 px here) moves the ratio by at most ~0.3 %.
            assert!((0.747..=1.338).contains(&ratio), "{ratio}");
            area_sum += area;
            log_ratio_sum += ratio.ln();
        }
        // A draw (s, t = log r), uniform on [0.2, 1] × [−a, a] with a = ln(4/3), fits iff
        // s ≤ e^{−|t|}. The accepted mean area is therefore
        // ∫₀ᵃ (e^{−2t} − 0.04)/2 dt / ∫₀ᵃ (e^{−t} − 0.2) dt = 0.103621 / 0.192464 = 0.53839.
        // Its standard error over 4000 draws is about 0.0035.
        let mean_area = area_sum / 4000.0;
        assert!((mean_area - 0.53839).abs() < 0.012, "{mean_area}");
        // log r is symmetric about 0.
        assert!((log_ratio_sum / 4000.0).abs() < 0.01);
    }

    #[test]
    fn boxes_that_never_fit_fall_back_to_a_ratio_clamped_centre_crop() {
        // Area 100 % at ratio 2 never fits a square: w = W, h = round(W / 2), centred.
        let op = crop([4, 4], [1.0, 1.0], [2.0, 2.0]);
        let p = op.sample(&[1, 1, 10, 10], &mut aug_rng(0, &[]));
        assert_eq!(p.boxes, vec![[2, 0, 5, 10]]); // top = (10 − 5) div 2
    }

    #[test]
    fn the_same_seed_gives_the_same_boxes() {
        let op = crop([4, 4], [0.08, 1.0], [0.75, 4.0 / 3.0]);
        let a = op.sample(&[16, 3, 32, 32], &mut aug_rng(5, &[1, 2]));
        assert_eq!(a, op.sample(&[16, 3, 32, 32], &mut aug_rng(5, &[1, 2])));
        assert_ne!(a, op.sample(&[16, 3, 32, 32], &mut aug_rng(6, &[1, 2])));
    }

    #[test]
    fn invalid_ranges_are_rejected_naming_the_field() {
        let cfg = RandomResizedCropConfig { scale: [0.9, 0.2], ..Default::default() };
        let err = cfg.build().unwrap_err().to_string();
        assert!(err.contains("random_resized_crop.scale"), "{err}");
        let cfg = RandomResizedCropConfig { size: [0, 4], ..Default::default() };
        assert!(cfg.build().unwrap_err().to_string().contains("size"));
    }
}
