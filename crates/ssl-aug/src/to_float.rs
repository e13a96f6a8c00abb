//! uint8 levels to float in `[0, 1]`, inside a pipeline.

use tch::{Kind, Tensor};

use crate::aug::check_batch;
use crate::{AugRng, BatchAug};

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
    use crate::aug_rng;
    use tch::Device;

    #[test]
    fn levels_become_fractions_of_255_and_floats_pass() {
        let x = Tensor::from_slice(&[0u8, 51, 255]).view([1, 1, 1, 3]);
        let y = ToFloat {}.forward_once(&x);
        assert_eq!(y.kind(), Kind::Float);
        let got = Vec::<f32>::try_from(y.flatten(0, -1)).unwrap();
        for (g, w) in got.iter().zip([0.0, 0.2, 1.0]) {
            assert!((g - w).abs() < 1e-7, "{got:?}"); // × f32(1/255), as torchvision
        }
        let f = Tensor::rand([2, 3, 4, 4], (Kind::Float, Device::Cpu));
        assert!(ToFloat {}.forward_once(&f).equal(&f));
    }

    impl ToFloat {
        fn forward_once(&self, x: &Tensor) -> Tensor {
            let n = self.sample(&x.size(), &mut aug_rng(0, &[]));
            self.apply(x, &n)
        }
    }
}
