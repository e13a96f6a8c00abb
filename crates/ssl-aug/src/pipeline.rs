//! Pipelines: ops applied in sequence, and the per-view settings of a method's augmentations.

use crate::crop_flip::CropThenFlip;
use crate::{
    Aug, ColorJitterConfig, Compose, GaussianBlurConfig, HorizontalFlipConfig, NormalizeConfig,
    RandomEqualizeConfig, RandomGrayscaleConfig, RandomResizedCropConfig, RandomSolarizeConfig,
    ResizeConfig, Result, ToFloat, VerticalFlipConfig,
};

/// One op of a pipeline as written in YAML: `{random_resized_crop: {size: [32, 32]}}`.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case", deny_unknown_fields))]
pub enum OpConfig {
    /// [`crate::RandomResizedCrop`].
    RandomResizedCrop(RandomResizedCropConfig),
    /// [`crate::HorizontalFlip`].
    HorizontalFlip(HorizontalFlipConfig),
    /// [`crate::VerticalFlip`].
    VerticalFlip(VerticalFlipConfig),
    /// [`crate::ColorJitter`].
    ColorJitter(ColorJitterConfig),
    /// [`crate::RandomGrayscale`].
    Grayscale(RandomGrayscaleConfig),
    /// [`crate::GaussianBlur`].
    GaussianBlur(GaussianBlurConfig),
    /// [`crate::RandomSolarize`].
    Solarize(RandomSolarizeConfig),
    /// [`crate::RandomEqualize`].
    Equalize(RandomEqualizeConfig),
    /// [`crate::Normalize`].
    Normalize(NormalizeConfig),
    /// [`crate::Resize`].
    Resize(ResizeConfig),
    /// [`crate::ToFloat`] (`{to_float: {}}`).
    ToFloat(ToFloat),
}

impl OpConfig {
    /// Validates the op's config and builds it.
    ///
    /// # Errors
    /// The op's [`crate::AugError::InvalidConfig`].
    pub fn build(&self) -> Result<Box<dyn Aug>> {
        Ok(match self {
            Self::RandomResizedCrop(c) => Box::new(c.build()?),
            Self::HorizontalFlip(c) => Box::new(c.build()?),
            Self::VerticalFlip(c) => Box::new(c.build()?),
            Self::ColorJitter(c) => Box::new(c.build()?),
            Self::Grayscale(c) => Box::new(c.build()?),
            Self::GaussianBlur(c) => Box::new(c.build()?),
            Self::Solarize(c) => Box::new(c.build()?),
            Self::Equalize(c) => Box::new(c.build()?),
            Self::Normalize(c) => Box::new(c.clone().build()?),
            Self::Resize(c) => Box::new(c.build()?),
            Self::ToFloat(c) => Box::new(*c),
        })
    }
}

/// Builds the ops in order into one pipeline.
///
/// # Errors
/// The first invalid op's [`crate::AugError::InvalidConfig`].
/// A crop directly followed by a horizontal flip becomes one fused op (the same draws and
/// pixels, one sampling call instead of two passes).
pub fn build_pipeline(ops: &[OpConfig]) -> Result<Compose> {
    let mut pipeline = Compose::default();
    let mut i = 0;
    while i < ops.len() {
        if let [OpConfig::RandomResizedCrop(c), OpConfig::HorizontalFlip(f), ..] = &ops[i..] {
            pipeline.push(CropThenFlip { crop: c.build()?, flip: f.build()? });
            i += 2;
            continue;
        }
        pipeline.push_boxed(ops[i].build()?);
        i += 1;
    }
    Ok(pipeline)
}

/// The augmentations of one view, in the order SimCLR, MoCo v2 and BYOL apply them: crop,
/// flip, colour jitter, grayscale, blur, solarize (flip commutes with the colour ops and the
/// symmetric blur, so MoCo v2's flip-last order is the same distribution).
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ViewConfig {
    /// Random resized crop; its `size` is the view's size.
    pub crop: RandomResizedCropConfig,
    /// Random horizontal flip.
    pub flip: HorizontalFlipConfig,
    /// Random colour jitter.
    pub color_jitter: ColorJitterConfig,
    /// Optional random grayscale (absent or `null` in YAML for none).
    #[cfg_attr(feature = "serde", serde(default))]
    pub grayscale: Option<RandomGrayscaleConfig>,
    /// Optional random Gaussian blur (`null` in YAML for none).
    pub blur: Option<GaussianBlurConfig>,
    /// Optional random solarize (absent or `null` in YAML for none).
    #[cfg_attr(feature = "serde", serde(default))]
    pub solarize: Option<RandomSolarizeConfig>,
}

impl ViewConfig {
    /// SimCLR's CIFAR-10 views at `size` px (Chen et al. 2020, Appendix B.9: "we use the same
    /// set of data augmentations as for ImageNet ... except ... we do not use Gaussian blur"):
    /// crop with scale (0.08, 1) and ratio (3/4, 4/3), flip with p = 0.5, colour jitter of
    /// strength 0.5 (brightness, contrast, saturation 0.4, hue 0.1) with p = 0.8, grayscale
    /// with p = 0.2.
    pub fn simclr_cifar(size: i64) -> Self {
        crate::presets::view(size, [0.08, 1.0], [0.4, 0.4, 0.4, 0.1])
    }

    /// The ops of this view, in order.
    pub fn ops(&self) -> Vec<OpConfig> {
        let mut ops = vec![
            OpConfig::RandomResizedCrop(self.crop),
            OpConfig::HorizontalFlip(self.flip),
            OpConfig::ColorJitter(self.color_jitter),
        ];
        ops.extend(self.grayscale.map(OpConfig::Grayscale));
        ops.extend(self.blur.map(OpConfig::GaussianBlur));
        ops.extend(self.solarize.map(OpConfig::Solarize));
        ops
    }

    /// Validates every op and builds the pipeline.
    ///
    /// # Errors
    /// The first op's [`crate::AugError::InvalidConfig`].
    pub fn build(&self) -> Result<Compose> {
        build_pipeline(&self.ops())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind, Tensor};

    #[test]
    fn an_empty_pipeline_is_the_identity_and_ops_run_in_order() {
        let x = Tensor::rand([2, 1, 6, 6], (Kind::Float, Device::Cpu));
        assert!(Compose::default().forward(&x, &mut aug_rng(0, &[])).equal(&x));
        // Crop to 3×3 then flip always: the same as cropping, then flipping by hand.
        let crop = RandomResizedCropConfig { size: [3, 3], ..Default::default() }.build().unwrap();
        let flip = HorizontalFlipConfig { p: 1.0 }.build().unwrap();
        let mut both = Compose::default();
        both.push(crop);
        both.push(flip);
        let y = both.forward(&x, &mut aug_rng(3, &[]));
        let cropped = crop.forward(&x, &mut aug_rng(3, &[]));
        assert!(y.equal(&cropped.flip([3])));
    }

    #[test]
    fn simclr_cifar_views_are_reproducible_and_differ_between_streams() {
        let views = ViewConfig::simclr_cifar(28).build().unwrap();
        assert_eq!(views.len(), 3); // crop and flip fused
        let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
        let a = views.forward(&x, &mut aug_rng(1, &[0, 0, 0]));
        assert!(a.equal(&views.forward(&x, &mut aug_rng(1, &[0, 0, 0]))));
        assert!(!a.equal(&views.forward(&x, &mut aug_rng(1, &[0, 0, 1]))));
        assert_eq!(a.size(), [8, 1, 28, 28]);
    }
}
