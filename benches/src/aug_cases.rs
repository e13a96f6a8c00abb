//! The cases of `cargo xtask bench-aug`: the SimCLR two-view pipeline from a uint8 batch of
//! source images, as `benches/reference/aug_bench.py` writes it in torchvision and kornia.

use ssl_aug::{aug_rng, build_pipeline, Aug, Compose, OpConfig, ToFloat, ViewConfig, ViewPair};
use tch::{Device, Kind, Tensor};

/// A pipeline of the benchmark: name, view size, batch, and whether it blurs.
#[derive(Debug, Clone, Copy)]
pub struct AugCase {
    /// `simclr` (CIFAR views) or `simclr_blur` (ImageNet views, with blur).
    pub name: &'static str,
    /// Side of the source images and of the views.
    pub size: i64,
    /// Source images per batch.
    pub batch: i64,
}

/// The two cases: 32 px, batch 512, no blur; 96 px, batch 256, with blur.
pub const CASES: [AugCase; 2] = [
    AugCase { name: "simclr", size: 32, batch: 512 },
    AugCase { name: "simclr_blur", size: 96, batch: 256 },
];

impl AugCase {
    /// The view settings: SimCLR's CIFAR views, or its ImageNet views (blur) for `simclr_blur`.
    pub fn views(self) -> ViewConfig {
        if self.name == "simclr_blur" {
            ViewPair::simclr(self.size).view1
        } else {
            ViewConfig::simclr_cifar(self.size)
        }
    }
}

/// One step of `case` on `device`: two views with fresh draws of a uint8 batch, each a
/// pipeline that starts with [`ToFloat`] (uint8 levels to float in `[0, 1]`, chunk by chunk).
/// The source batch is made once; the closure runs the step.
pub fn step(case: AugCase, device: Device) -> Box<dyn FnMut()> {
    let ops: Vec<OpConfig> =
        std::iter::once(OpConfig::ToFloat(ToFloat {})).chain(case.views().ops()).collect();
    let pipeline: Compose = build_pipeline(&ops).expect("preset views are valid");
    let images = Tensor::randint(256, [case.batch, 3, case.size, case.size], (Kind::Uint8, device));
    let mut step_index = 0u64;
    Box::new(move || {
        let mut rng = aug_rng(0, &[step_index]);
        step_index += 1;
        let _views = (pipeline.forward(&images, &mut rng), pipeline.forward(&images, &mut rng));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_cases_run_a_step() {
        for case in CASES {
            step(AugCase { batch: 2, ..case }, Device::Cpu)();
        }
    }
}
