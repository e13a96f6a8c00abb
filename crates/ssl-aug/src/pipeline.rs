//! Pipelines: ops applied in sequence, and the per-view settings of a method's augmentations.

use tch::Tensor;

use crate::{
    Aug, AugRng, ColorJitterConfig, GaussianBlurConfig, HorizontalFlipConfig,
    RandomResizedCropConfig, Result,
};

/// Ops applied one after another, each drawing its parameters from the same generator.
#[derive(Debug, Default)]
pub struct Compose {
    ops: Vec<Box<dyn Aug>>,
}

impl Compose {
    /// Appends `op` at the end of the pipeline.
    pub fn push(&mut self, op: impl Aug + 'static) {
        self.ops.push(Box::new(op));
    }

    /// How many ops the pipeline holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the pipeline holds no op (and is the identity).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

impl Aug for Compose {
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        self.ops.iter().fold(x.shallow_clone(), |y, op| op.forward(&y, rng))
    }
}

/// The augmentations of one view, in SimCLR's order: crop, flip, colour jitter, blur.
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
    /// Optional random Gaussian blur (`null` in YAML for none).
    pub blur: Option<GaussianBlurConfig>,
}

impl ViewConfig {
    /// SimCLR's CIFAR-10 views at `size` px (Chen et al. 2020, Appendix B.9: "we use the same
    /// set of data augmentations as for ImageNet ... except ... we do not use Gaussian blur"):
    /// crop with scale (0.08, 1) and ratio (3/4, 4/3), flip with p = 0.5, colour jitter of
    /// strength 0.5 (brightness, contrast, saturation 0.4, hue 0.1) with p = 0.8.
    pub fn simclr(size: i64) -> Self {
        Self {
            crop: RandomResizedCropConfig { size: [size, size], ..Default::default() },
            flip: HorizontalFlipConfig { p: 0.5 },
            color_jitter: ColorJitterConfig::default(),
            blur: None,
        }
    }

    /// Validates every op and builds the pipeline.
    ///
    /// # Errors
    /// The first op's [`crate::AugError::InvalidConfig`].
    pub fn build(&self) -> Result<Compose> {
        let mut pipeline = Compose::default();
        pipeline.push(self.crop.build()?);
        pipeline.push(self.flip.build()?);
        pipeline.push(self.color_jitter.build()?);
        if let Some(blur) = self.blur {
            pipeline.push(blur.build()?);
        }
        Ok(pipeline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aug_rng;
    use tch::{Device, Kind};

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
    fn simclr_views_are_reproducible_and_differ_between_streams() {
        let views = ViewConfig::simclr(28).build().unwrap();
        assert_eq!(views.len(), 3);
        let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
        let a = views.forward(&x, &mut aug_rng(1, &[0, 0, 0]));
        assert!(a.equal(&views.forward(&x, &mut aug_rng(1, &[0, 0, 0]))));
        assert!(!a.equal(&views.forward(&x, &mut aug_rng(1, &[0, 0, 1]))));
        assert_eq!(a.size(), [8, 1, 28, 28]);
    }
}
