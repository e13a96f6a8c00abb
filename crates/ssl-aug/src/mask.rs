//! Per-sample application masks: the probability `p` of an op as a Bernoulli draw per sample.

use tch::{Device, Tensor};

use crate::rng::{bernoulli, AugRng};

/// `n` independent draws, each `true` with probability `p`.
pub(crate) fn sample_mask(n: i64, p: f64, rng: &mut AugRng) -> Vec<bool> {
    (0..n).map(|_| bernoulli(rng, p)).collect()
}

/// The mask as a `[N, 1, 1, 1]` bool tensor on `device`, ready to broadcast over `[N, C, H, W]`.
pub(crate) fn mask_tensor(mask: &[bool], device: Device) -> Tensor {
    Tensor::from_slice(mask).view([-1, 1, 1, 1]).to_device(device) // [N, 1, 1, 1]
}

/// `f(x)` for the samples with `apply[i]`, `x` for the others; `x` itself (no work) when no
/// sample is chosen.
pub(crate) fn where_chosen(
    x: &Tensor,
    apply: &[bool],
    f: impl FnOnce(&Tensor) -> Tensor,
) -> Tensor {
    if !apply.iter().any(|&a| a) {
        return x.shallow_clone();
    }
    f(x).where_self(&mask_tensor(apply, x.device()), x)
}
