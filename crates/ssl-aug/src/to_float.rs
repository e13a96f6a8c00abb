//! uint8 levels to float in `[0, 1]`, inside a pipeline, and the conversions back that the ops
//! taking uint8 batches share.

use tch::{Kind, Tensor};

use crate::aug::check_batch;
use crate::{AugRng, BatchAug};

/// torchvision's float-to-uint8 scale (`to_dtype(…, uint8, scale=True)`): `⌊255.999·x⌋`, so that
/// only x = 1 becomes 255 yet every level keeps an equal share of `[0, 1]`.
pub(crate) const LEVELS_PER_UNIT: f64 = 255.0 + 1.0 - 1e-3;

/// `y` (float levels) rounded to the nearest level in `[0, 255]`, still float: how torchvision
/// brings uint8 images back from a float resampling or blur.
pub(crate) fn round_to_levels(mut y: Tensor) -> Tensor {
    let _ = y.round_().clamp_(0.0, 255.0);
    y
}

/// `f` of the uint8 batch `x` taken as f32 levels, rounded back to uint8 levels: how
/// torchvision resamples or blurs uint8 images.
pub(crate) fn on_float_levels(x: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    round_to_levels(f(&x.to_kind(Kind::Float))).to_kind(Kind::Uint8)
}

/// `y = x / 255` in f32 for a uint8 batch (float batches pass unchanged), as torchvision's
/// `ToDtype(torch.float32, scale=True)`; deterministic.
///
/// At the front of a [`crate::Compose`] it converts one cache-sized chunk at a time, right
/// before the next op reads it, instead of a whole float copy of the batch up front.
///
/// # Shapes
/// `x`: `[N, C, H, W]`, uint8 or float → same shape, f32 (or x's float dtype).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ToFloat {}

impl BatchAug for ToFloat {
    /// The batch size: the conversion draws nothing.
    type Params = usize;

    fn sample(&self, size: &[i64], _rng: &mut AugRng) -> usize {
        size[0] as usize
    }

    fn apply(&self, x: &Tensor, n: &usize) -> Tensor {
        check_batch("ToFloat", x, *n);
        match x.kind() {
            Kind::Uint8 => {
                let mut y = x.to_kind(Kind::Float);
                y *= 1.0 / 255.0;
                y
            }
            _ if x.is_floating_point() => x.shallow_clone(),
            k => panic!("ToFloat: x has kind {k:?}; it must be uint8 or float"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{aug_rng, Aug};
    use tch::Device;

    #[test]
    fn levels_become_fractions_of_255_and_floats_pass() {
        let x = Tensor::from_slice(&[0u8, 51, 255]).view([1, 1, 1, 3]);
        let y = ToFloat {}.forward(&x, &mut aug_rng(0, &[]));
        assert_eq!(y.kind(), Kind::Float);
        let got = Vec::<f32>::try_from(y.flatten(0, -1)).unwrap();
        for (g, w) in got.iter().zip([0.0, 0.2, 1.0]) {
            assert!((g - w).abs() < 1e-7, "{got:?}"); // × f32(1/255), as torchvision
        }
        let f = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert!(ToFloat {}.forward(&f, &mut aug_rng(0, &[])).equal(&f));
    }
}
