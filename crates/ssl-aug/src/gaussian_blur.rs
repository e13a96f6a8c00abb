//! Random Gaussian blur with a per-sample σ, as a separable convolution.

use tch::{Kind, Tensor};

use crate::aug::{apply_through_owned_if, check_batch, rows_of};
use crate::error::check_probability;
use crate::mask::{sample_mask, where_chosen};
use crate::rng::uniform;
use crate::to_float::on_float_levels;
use crate::{AugError, AugRng, BatchAug, BatchParams, Result};

/// Settings of [`GaussianBlur`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct GaussianBlurConfig {
    /// Kernel side, odd (SimCLR: 10 % of the image side, made odd).
    pub kernel_size: i64,
    /// Range of σ in pixels, drawn uniformly per sample (SimCLR: `[0.1, 2.0]`).
    pub sigma: [f64; 2],
    /// Probability of blurring each sample (SimCLR: 0.5).
    pub p: f64,
}

impl Default for GaussianBlurConfig {
    /// SimCLR's ImageNet blur for 224 px images (Chen et al. 2020, Appendix A).
    fn default() -> Self {
        Self { kernel_size: 23, sigma: [0.1, 2.0], p: 0.5 }
    }
}

impl GaussianBlurConfig {
    /// Validates the config and builds the op.
    ///
    /// # Errors
    /// [`AugError::InvalidConfig`] for an even or non-positive kernel, a reversed or
    /// non-positive σ range, or `p` outside `[0, 1]`.
    pub fn build(self) -> Result<GaussianBlur> {
        let bad = |field, value: String, reason| {
            Err(AugError::InvalidConfig { op: "gaussian_blur", field, value, reason })
        };
        if self.kernel_size < 1 || self.kernel_size % 2 == 0 {
            return bad("kernel_size", self.kernel_size.to_string(), "must be odd and ≥ 1");
        }
        let [lo, hi] = self.sigma;
        if !(0.0 < lo && lo <= hi && hi.is_finite()) {
            return bad("sigma", format!("{:?}", self.sigma), "needs 0 < min ≤ max");
        }
        check_probability("gaussian_blur", "p", self.p)?;
        Ok(GaussianBlur { cfg: self })
    }
}

/// Blurs each sample with probability p by a Gaussian of σ ~ U(sigma), as torchvision's
/// `GaussianBlur`: a normalised separable kernel and reflect padding.
///
/// ```text
/// g(t) = exp(−t² / (2σ²)) / Σ_t' exp(−t'² / (2σ²)),   t = −(k−1)/2 … (k−1)/2
/// y = g ⋆_H (g ⋆_W x)
/// ```
///
/// All samples and channels are convolved in one grouped convolution per direction.
///
/// # Shapes
/// `x`: `[N, C, H, W]`, float or uint8 (blurred in f32, rounded), H, W > kernel_size / 2 → same
/// shape and dtype.
#[derive(Debug, Clone, Copy)]
pub struct GaussianBlur {
    cfg: GaussianBlurConfig,
}

/// Per-sample σ and application mask of [`GaussianBlur`].
#[derive(Debug, Clone, PartialEq)]
pub struct BlurParams {
    /// Whether sample `i` is blurred.
    pub apply: Vec<bool>,
    /// σ of sample `i`, in pixels.
    pub sigma: Vec<f32>,
}

impl BatchParams for BlurParams {
    fn len(&self) -> usize {
        self.apply.len()
    }

    fn rows(&self, start: usize, len: usize) -> Self {
        Self { apply: rows_of(&self.apply, start, len), sigma: rows_of(&self.sigma, start, len) }
    }
}

impl BatchAug for GaussianBlur {
    type Params = BlurParams;

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> BlurParams {
        let apply = sample_mask(size[0], self.cfg.p, rng);
        let [lo, hi] = self.cfg.sigma;
        let sigma = (0..size[0]).map(|_| uniform(rng, lo, hi) as f32).collect();
        BlurParams { apply, sigma }
    }

    apply_through_owned_if!(BlurParams);
}

impl GaussianBlur {
    /// [`BatchAug::apply`], or [`BatchAug::apply_owned`] when `owned`.
    fn apply_owned_if(&self, x: Tensor, owned: bool, p: &BlurParams) -> Tensor {
        check_batch("GaussianBlur", &x, p.apply.len());
        let k = self.cfg.kernel_size;
        let size = x.size();
        assert!(
            size[2] > k / 2 && size[3] > k / 2,
            "GaussianBlur: x {size:?} is too small for kernel {k}"
        );
        let sigma: Vec<f32> =
            p.sigma.iter().zip(&p.apply).filter(|(_, &a)| a).map(|(&s, _)| s).collect();
        where_chosen(x, owned, &p.apply, |x, _| {
            if x.kind() == Kind::Uint8 {
                on_float_levels(&x, |x| blur(x, k, &sigma)) // as torchvision blurs uint8
            } else {
                blur(&x, k, &sigma)
            }
        })
    }
}

/// Blurs sample `i` of `x` (`[N, C, H, W]`) with σ = `sigma[i]`: a normalised kernel of side
/// `k`, reflect padding, then one depthwise convolution per axis.
fn blur(x: &Tensor, k: i64, sigma: &[f32]) -> Tensor {
    let [n, c, h, w] = x.size()[..] else { unreachable!("checked to be 4-D") };
    let r = k / 2;
    let device = x.device();
    let t = Tensor::arange(k, (Kind::Float, device)) - r as f64; // [k]
    let sigma = Tensor::from_slice(sigma).to_device(device).view([n, 1]); // [N, 1]
    let g = (t.view([1, k]).square().neg() / (sigma.square() * 2.0)).exp(); // [N, k]
    let g = (&g / g.sum_dim_intlist([1i64].as_slice(), true, Kind::Float)).to_kind(x.kind());
    let g = g.repeat_interleave_self_int(c, 0, None); // [N·C, k]
    let planes = x.reshape([1, n * c, h, w]); // [1, N·C, H, W]
    let padded = planes.reflection_pad2d([r, r, r, r]); // [1, N·C, H+2r, W+2r]

    // The planes as channels of one image in NHWC strides: libtorch's depthwise convolution
    // then vectorises across planes, over twice as fast on the CPU, conversions included.
    let padded = padded.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    let horizontal = padded.conv2d(&g.view([n * c, 1, 1, k]), None::<Tensor>, 1, 0, 1, n * c);
    let blurred = horizontal.conv2d(&g.view([n * c, 1, k, 1]), None::<Tensor>, 1, 0, 1, n * c);
    blurred.contiguous().view([n, c, h, w]) // [N, C, H, W]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::Device;

    fn blur(k: i64) -> GaussianBlur {
        GaussianBlurConfig { kernel_size: k, sigma: [0.1, 2.0], p: 1.0 }.build().unwrap()
    }

    #[test]
    fn a_constant_image_stays_constant() {
        let x = Tensor::full([2, 3, 6, 6], 0.3, (Kind::Float, Device::Cpu));
        let p = BlurParams { apply: vec![true, true], sigma: vec![0.5, 2.0] };
        assert!(blur(5).apply(&x, &p).allclose(&x, 1e-6, 1e-6, false));
    }

    #[test]
    fn an_impulse_spreads_into_the_hand_computed_kernel() {
        // σ = 1, k = 3: weights e^{-1/2}, 1, e^{-1/2} normalised; centre 1/(1 + 2e^{-1/2}).
        let x = Tensor::zeros([1, 1, 5, 5], (Kind::Double, Device::Cpu));
        let _ = x.get(0).get(0).get(2).get(2).fill_(1.0);
        let y = blur(3).apply(&x, &BlurParams { apply: vec![true], sigma: vec![1.0] });
        let e = (-0.5f64).exp();
        let (centre, side) = (1.0 / (1.0 + 2.0 * e), e / (1.0 + 2.0 * e));
        let at = |i, j| y.double_value(&[0, 0, i, j]);
        assert!((at(2, 2) - centre * centre).abs() < 1e-6);
        assert!((at(2, 3) - centre * side).abs() < 1e-6);
        assert!((at(1, 1) - side * side).abs() < 1e-6);
        assert!((y.sum(Kind::Double).double_value(&[]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn unselected_samples_are_untouched_and_sigma_is_in_range() {
        let x = Tensor::rand([3, 1, 8, 8], (Kind::Float, Device::Cpu));
        let p = BlurParams { apply: vec![false, true, false], sigma: vec![1.0; 3] };
        let y = blur(3).apply(&x, &p);
        assert!(y.get(0).equal(&x.get(0)) && y.get(2).equal(&x.get(2)));
        assert!(!y.get(1).equal(&x.get(1)));
        let s = blur(3).sample(&[1000, 1, 8, 8], &mut aug_rng(2, &[])).sigma;
        assert!(s.iter().all(|&v| (0.1..2.0).contains(&v)));
    }

    #[test]
    fn even_kernels_are_rejected() {
        let err = GaussianBlurConfig { kernel_size: 4, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("gaussian_blur.kernel_size"), "{err}");
    }
}
