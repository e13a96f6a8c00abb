//! Per-sample application masks: the probability `p` of an op as a Bernoulli draw per sample.

use tch::Tensor;

use crate::rng::{bernoulli, AugRng};

/// `n` independent draws, each `true` with probability `p`.
pub(crate) fn sample_mask(n: i64, p: f64, rng: &mut AugRng) -> Vec<bool> {
    (0..n).map(|_| bernoulli(rng, p)).collect()
}

/// `f(x)` for the samples with `apply[i]`, `x` for the others, with `f` run on the chosen
/// samples only (gathered, transformed, scattered back); `x` itself (no work) when none is
/// chosen and `f(x)` when all are. `f` must act on each sample independently.
pub(crate) fn where_chosen(
    x: &Tensor,
    apply: &[bool],
    f: impl FnOnce(&Tensor) -> Tensor,
) -> Tensor {
    let chosen: Vec<i64> = (0..apply.len() as i64).filter(|&i| apply[i as usize]).collect();
    if chosen.is_empty() {
        return x.shallow_clone();
    }
    if chosen.len() == apply.len() {
        return f(x);
    }
    let idx = Tensor::from_slice(&chosen).to_device(x.device()); // [M]
    x.index_copy(0, &idx, &f(&x.index_select(0, &idx)))
}
