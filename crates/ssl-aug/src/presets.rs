//! The papers' augmentation recipes: two-view pairs (SimCLR, MoCo v2, BYOL, DenseCL) and
//! SwAV's multi-crop.

use tch::Tensor;

use crate::{
    Aug, AugRng, ColorJitterConfig, Compose, GaussianBlurConfig, HorizontalFlipConfig,
    RandomGrayscaleConfig, RandomResizedCropConfig, RandomSolarizeConfig, Result, ViewConfig,
};

/// The Gaussian-blur kernel side for `size` px views: 10 % of the side, made odd (SimCLR,
/// Appendix A; `int(0.1 · size) // 2 · 2 + 1`, 23 at 224 px, as its PyTorch ports write it).
pub fn blur_kernel(size: i64) -> i64 {
    (size as f64 * 0.1) as i64 / 2 * 2 + 1
}

/// The settings of the two views of a two-view method (equal for SimCLR and MoCo v2, different
/// for BYOL).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ViewPair {
    /// The first view's augmentations.
    pub view1: ViewConfig,
    /// The second view's augmentations.
    pub view2: ViewConfig,
}

/// A view with crop scale `scale`, flip 0.5, jitter `jitter` at p = 0.8 and grayscale 0.2.
pub(crate) fn view(size: i64, scale: [f64; 2], jitter: [f64; 4]) -> ViewConfig {
    let [brightness, contrast, saturation, hue] = jitter;
    ViewConfig {
        crop: RandomResizedCropConfig { size: [size, size], scale, ..Default::default() },
        flip: HorizontalFlipConfig { p: 0.5 },
        color_jitter: ColorJitterConfig { brightness, contrast, saturation, hue, p: 0.8 },
        grayscale: Some(RandomGrayscaleConfig { p: 0.2 }),
        blur: None,
        solarize: None,
    }
}

/// A blur of σ ~ U(0.1, 2) with the kernel of `size` px views, applied with probability `p`.
fn blur(size: i64, p: f64) -> Option<GaussianBlurConfig> {
    Some(GaussianBlurConfig { kernel_size: blur_kernel(size), sigma: [0.1, 2.0], p })
}

impl ViewPair {
    /// SimCLR's ImageNet views (Chen et al. 2020, Appendix A): crop scale (0.08, 1), flip,
    /// colour distortion of strength 1 — jitter (0.8, 0.8, 0.8, 0.2) with p = 0.8, grayscale
    /// p = 0.2 — and blur with p = 0.5; both views alike.
    pub fn simclr(size: i64) -> Self {
        let v =
            ViewConfig { blur: blur(size, 0.5), ..view(size, [0.08, 1.0], [0.8, 0.8, 0.8, 0.2]) };
        Self { view1: v, view2: v }
    }

    /// MoCo v2's views (Chen, Fan, Girshick, He 2020, "Improved Baselines with Momentum
    /// Contrastive Learning"; `aug_plus` in facebookresearch/moco): crop scale (0.2, 1),
    /// jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale p = 0.2, blur p = 0.5, flip.
    pub fn moco_v2(size: i64) -> Self {
        let v =
            ViewConfig { blur: blur(size, 0.5), ..view(size, [0.2, 1.0], [0.4, 0.4, 0.4, 0.1]) };
        Self { view1: v, view2: v }
    }

    /// BYOL's asymmetric views (Grill et al. 2020, Table 6): crop scale (0.08, 1), flip,
    /// jitter (0.4, 0.4, 0.2, 0.1) with p = 0.8, grayscale p = 0.2; blur with p = 1.0 / 0.1
    /// and solarize (threshold 0.5) with p = 0 / 0.2 for the first / second view.
    pub fn byol(size: i64) -> Self {
        let base = view(size, [0.08, 1.0], [0.4, 0.4, 0.2, 0.1]);
        Self {
            view1: ViewConfig { blur: blur(size, 1.0), ..base },
            view2: ViewConfig {
                blur: blur(size, 0.1),
                solarize: Some(RandomSolarizeConfig { threshold: 0.5, p: 0.2 }),
                ..base
            },
        }
    }

    /// DenseCL's views: MoCo v2's (Wang et al. 2021, Sec. 4: "we follow MoCo v2").
    pub fn dense_cl(size: i64) -> Self {
        Self::moco_v2(size)
    }

    /// Builds the two pipelines.
    ///
    /// # Errors
    /// The first invalid op's [`crate::AugError::InvalidConfig`].
    pub fn build(&self) -> Result<[Compose; 2]> {
        Ok([self.view1.build()?, self.view2.build()?])
    }
}

/// SwAV's multi-crop: `n_global` views with the `global` settings and `n_local` smaller ones.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct MultiCropConfig {
    /// Settings of the global views (their crop's size and scale).
    pub global: ViewConfig,
    /// How many global views.
    pub n_global: usize,
    /// Settings of the local views.
    pub local: ViewConfig,
    /// How many local views.
    pub n_local: usize,
}

impl MultiCropConfig {
    /// SwAV's 2 × 224 + 6 × 96 (Caron et al. 2020, Sec. 4.1 and `main_swav.py`): global crops
    /// of scale (0.14, 1), local of (0.05, 0.14), colour distortion of strength 1 (jitter
    /// (0.8, 0.8, 0.8, 0.2) with p = 0.8, grayscale 0.2), blur p = 0.5 and flip on all views.
    pub fn swav(global: i64, local: i64, n_local: usize) -> Self {
        let jitter = [0.8, 0.8, 0.8, 0.2];
        Self {
            global: ViewConfig { blur: blur(global, 0.5), ..view(global, [0.14, 1.0], jitter) },
            n_global: 2,
            local: ViewConfig { blur: blur(local, 0.5), ..view(local, [0.05, 0.14], jitter) },
            n_local,
        }
    }

    /// Validates the views and builds the multi-crop.
    ///
    /// # Errors
    /// The first invalid op's [`crate::AugError::InvalidConfig`].
    pub fn build(&self) -> Result<MultiCrop> {
        Ok(MultiCrop {
            global: self.global.build()?,
            n_global: self.n_global,
            local: self.local.build()?,
            n_local: self.n_local,
        })
    }
}

/// Built [`MultiCropConfig`]: each view draws fresh parameters from the same generator.
#[derive(Debug)]
pub struct MultiCrop {
    global: Compose,
    n_global: usize,
    local: Compose,
    n_local: usize,
}

impl MultiCrop {
    /// The global views first, then the local ones (SwAV assigns codes from the global ones).
    ///
    /// # Shapes
    /// `x`: `[N, C, H, W]` → `n_global` tensors `[N, C, g, g]`, then `n_local` `[N, C, l, l]`.
    pub fn views(&self, x: &Tensor, rng: &mut AugRng) -> Vec<Tensor> {
        let global = (0..self.n_global).map(|_| self.global.forward(x, rng));
        let global: Vec<Tensor> = global.collect();
        global.into_iter().chain((0..self.n_local).map(|_| self.local.forward(x, rng))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

    #[test]
    fn blur_kernels_are_a_tenth_of_the_side_and_odd() {
        assert_eq!(
            [blur_kernel(224), blur_kernel(96), blur_kernel(32), blur_kernel(5)],
            [23, 9, 3, 1]
        );
    }

    #[test]
    fn byol_views_differ_only_in_blur_and_solarize() {
        let ViewPair { view1, view2 } = ViewPair::byol(224);
        assert_eq!(view1.blur.map(|b| b.p), Some(1.0));
        assert_eq!(view2.blur.map(|b| b.p), Some(0.1));
        assert_eq!(view1.solarize, None);
        assert_eq!(view2.solarize.map(|s| s.p), Some(0.2));
        assert_eq!(ViewConfig { blur: view1.blur, solarize: None, ..view2 }, view1);
    }

    #[test]
    fn every_preset_builds_and_keeps_the_view_size() {
        let x = Tensor::rand([3, 3, 40, 40], (Kind::Float, Device::Cpu));
        for pair in [
            ViewPair::simclr(32),
            ViewPair::moco_v2(32),
            ViewPair::byol(32),
            ViewPair::dense_cl(32),
        ] {
            let [a, b] = pair.build().unwrap();
            let mut rng = aug_rng(0, &[]);
            assert_eq!(a.forward(&x, &mut rng).size(), [3, 3, 32, 32]);
            assert_eq!(b.forward(&x, &mut rng).size(), [3, 3, 32, 32]);
        }
    }

    #[test]
    fn multi_crop_gives_global_then_local_views() {
        let crops = MultiCropConfig::swav(24, 8, 3).build().unwrap();
        let x = Tensor::rand([2, 3, 30, 30], (Kind::Float, Device::Cpu));
        let views = crops.views(&x, &mut aug_rng(1, &[]));
        let sizes: Vec<Vec<i64>> = views.iter().map(Tensor::size).collect();
        assert_eq!(
            sizes,
            [[2, 3, 24, 24], [2, 3, 24, 24], [2, 3, 8, 8], [2, 3, 8, 8], [2, 3, 8, 8]]
        );
        assert!(!views[0].equal(&views[1])); // fresh draws per view
    }
}
