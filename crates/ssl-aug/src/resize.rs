//! Deterministic bilinear resize to a fixed size (torchvision `Resize` with a `[h, w]` size).

use tch::Tensor;

use crate::{AugError, Result};

/// Settings of [`Resize`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ResizeConfig {
    /// Output `[height, width]` in pixels.
    pub size: [i64; 2],
    /// Low-pass the input when downscaling (torchvision's `antialias=True`); `false` samples
    /// the same four neighbours per output pixel as [`crate::RandomResizedCrop`] does.
    pub antialias: bool,
}

impl ResizeConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] naming `size` when a side is below 1.
    pub fn build(self) -> Result<Resize> {
        if self.size.iter().any(|&s| s < 1) {
            return Err(AugError::InvalidConfig {
                op: "resize",
                field: "size",
                value: format!("{:?}", self.size),
                reason: "both sides must be ≥ 1",
            });
        }
        Ok(Resize { cfg: self })
    }
}

/// Resizes every image of a batch to `size` by bilinear interpolation (align_corners = false,
/// pixel centres at half-integers, as torchvision and PIL).
///
/// Output pixel (i, j) samples the input at
///
/// ```text
/// y = (i + ½)·H/h − ½,  x = (j + ½)·W/w − ½     (clamped to the image)
/// ```
///
/// which is exactly where [`crate::RandomResizedCrop`] samples a full-image box, so a network
/// trained on its views sees evaluation images resampled the same way. With `antialias` the
/// kernel is widened by the downscaling factor, as torchvision's `antialias=True`. Not random:
/// evaluation transforms use it directly.
///
/// # Shapes
/// `x`: float `[N, C, H, W]` → `[N, C, size[0], size[1]]`.
///
/// # Panics
/// When `x` is not 4-D or not floating point.
///
/// # Example
/// ```
/// use ssl_aug::ResizeConfig;
/// use tch::{Device, Kind, Tensor};
///
/// let resize = ResizeConfig { size: [2, 2], antialias: false }.build()?;
/// let x = Tensor::ones([3, 1, 4, 4], (Kind::Float, Device::Cpu));
/// assert_eq!(resize.forward(&x).size(), [3, 1, 2, 2]);
/// # Ok::<(), ssl_aug::AugError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Resize {
    cfg: ResizeConfig,
}

impl Resize {
    /// The output `[height, width]`.
    pub fn size(&self) -> [i64; 2] {
        self.cfg.size
    }

    /// Resizes the batch `x`; returns it unchanged (a shallow clone) when it already has `size`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        assert!(size.len() == 4, "Resize: x {size:?} must be [N, C, H, W]");
        assert!(x.is_floating_point(), "Resize: x has kind {:?}; it must be float", x.kind());
        if [size[2], size[3]] == self.cfg.size {
            return x.shallow_clone();
        }
        if self.cfg.antialias {
            x.internal_upsample_bilinear2d_aa(self.cfg.size, false, None, None) // [N, C, h, w]
        } else {
            x.upsample_bilinear2d(self.cfg.size, false, None, None) // [N, C, h, w]
        }
    }
}

impl crate::BatchAug for Resize {
    /// The batch size: resizing draws nothing.
    type Params = usize;

    fn sample(&self, size: &[i64], _rng: &mut crate::AugRng) -> usize {
        size[0] as usize
    }

    fn apply(&self, x: &Tensor, n: &usize) -> Tensor {
        crate::aug::check_batch("Resize", x, *n);
        Resize::forward(self, x)
    }

    fn output_size(&self, size: &[i64]) -> Vec<i64> {
        vec![size[0], size[1], self.cfg.size[0], self.cfg.size[1]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchAug, CropParams, RandomResizedCropConfig};
    use tch::{Device, Kind};

    fn resize(size: [i64; 2], antialias: bool) -> Resize {
        ResizeConfig { size, antialias }.build().unwrap()
    }

    #[test]
    fn halving_a_ramp_averages_pixel_pairs() {
        // Row 0, 1, 2, 3 at width 2: x = (j + ½)·2 − ½ = 0.5 and 2.5, so 0.5 and 2.5.
        let x = Tensor::arange(4, (Kind::Float, Device::Cpu)).view([1, 1, 1, 4]);
        let y = Vec::<f32>::try_from(resize([1, 2], false).forward(&x).flatten(0, -1)).unwrap();
        assert_eq!(y, [0.5, 2.5]);
    }

    #[test]
    fn antialias_averages_the_whole_footprint() {
        // Row 0, 0, 0, 4, 0, 0 down to width 2: the antialiased kernel is a triangle of
        // half-width 3 px. Output 0 is centred at 1.5 (pixel i at i + ½), so inputs 0..=4 weigh
        // 2/3, 1, 2/3, 1/3, 0, normalised by 8/3: the 4 contributes 4 · 1/8 = 1/2. Output 1,
        // centred at 4.5, weighs inputs 2..=5 by 1/3, 2/3, 1, 2/3: 4 · 1/4 = 1. Plain bilinear
        // samples x = 1 and x = 4 only, both 0.
        let x = Tensor::from_slice(&[0f32, 0.0, 0.0, 4.0, 0.0, 0.0]).view([1, 1, 1, 6]);
        let plain = Vec::<f32>::try_from(resize([1, 2], false).forward(&x).flatten(0, -1)).unwrap();
        let aa = Vec::<f32>::try_from(resize([1, 2], true).forward(&x).flatten(0, -1)).unwrap();
        assert_eq!(plain, [0.0, 0.0]);
        assert!((aa[0] - 0.5).abs() < 1e-6 && (aa[1] - 1.0).abs() < 1e-6, "{aa:?}");
    }

    #[test]
    fn it_matches_a_random_resized_crop_of_the_full_image() {
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let crop = RandomResizedCropConfig { size: [20, 20], ..Default::default() };
        let via_crop = crop.build().unwrap().apply(&x, &CropParams::full(2, 28, 28));
        let y = resize([20, 20], false).forward(&x);
        assert!(y.allclose(&via_crop, 1e-5, 1e-5, false));
    }

    #[test]
    fn the_input_size_is_the_identity_and_a_zero_side_is_rejected() {
        let x = Tensor::rand([2, 3, 5, 7], (Kind::Float, Device::Cpu));
        assert!(resize([5, 7], true).forward(&x).equal(&x));
        let err = ResizeConfig { size: [0, 4], antialias: false }.build().unwrap_err();
        assert!(err.to_string().contains("resize.size"), "{err}");
    }
}
