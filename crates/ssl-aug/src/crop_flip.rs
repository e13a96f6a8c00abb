//! A random resized crop followed by a random horizontal flip, fused into one sampling call.

use tch::Tensor;

use crate::{AugRng, BatchAug, CropParams, FlipParams, HorizontalFlip, RandomResizedCrop};

/// [`RandomResizedCrop`] then [`HorizontalFlip`], as pipelines write them (SimCLR, MoCo,
/// BYOL), applied as one grid sample that reads the flipped samples' boxes right to left.
///
/// It draws exactly what the two ops draw in sequence (the boxes, then the flips) and gives
/// the same output bit for bit; [`crate::build_pipeline`] fuses the pair wherever it appears.
///
/// # Shapes
/// `x`: float `[N, C, H, W]` → `[N, C, h, w]`, the crop's size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CropThenFlip {
    pub(crate) crop: RandomResizedCrop,
    pub(crate) flip: HorizontalFlip,
}

impl BatchAug for CropThenFlip {
    type Params = (CropParams, FlipParams);

    fn sample(&self, size: &[i64], rng: &mut AugRng) -> (CropParams, FlipParams) {
        let crop = self.crop.sample(size, rng);
        (crop, self.flip.sample(size, rng))
    }

    fn output_size(&self, size: &[i64]) -> Vec<i64> {
        self.crop.output_size(size)
    }

    fn apply(&self, x: &Tensor, (crop, flip): &(CropParams, FlipParams)) -> Tensor {
        assert_eq!(
            crop.boxes.len(),
            flip.apply.len(),
            "CropThenFlip: {} boxes but {} flips",
            crop.boxes.len(),
            flip.apply.len()
        );
        self.crop.apply_mirrored(x, crop, &flip.apply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{aug_rng, Aug, HorizontalFlipConfig, RandomResizedCropConfig};
    use tch::{Device, Kind};

    #[test]
    fn fused_equals_the_crop_then_the_flip_bit_for_bit() {
        for antialias in [false, true] {
            let crop = RandomResizedCropConfig { size: [7, 9], antialias, ..Default::default() };
            let crop = crop.build().unwrap();
            let flip = HorizontalFlipConfig { p: 0.5 }.build().unwrap();
            let fused = CropThenFlip { crop, flip };
            let x = Tensor::rand([16, 3, 20, 24], (Kind::Float, Device::Cpu));
            for seed in 0..4 {
                let got = fused.forward(&x, &mut aug_rng(seed, &[]));
                let mut rng = aug_rng(seed, &[]);
                let want = flip.forward(&crop.forward(&x, &mut rng), &mut rng);
                assert!(got.equal(&want), "seed {seed}, antialias {antialias}");
            }
        }
    }
}
