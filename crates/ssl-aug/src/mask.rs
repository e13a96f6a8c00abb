//! Per-sample application masks: the probability `p` of an op as a Bernoulli draw per sample.

use tch::Tensor;

use crate::rng::{bernoulli, AugRng};

/// `n` independent draws, each `true` with probability `p`.
pub(crate) fn sample_mask(n: i64, p: f64, rng: &mut AugRng) -> Vec<bool> {
    (0..n).map(|_| bernoulli(rng, p)).collect()
}

/// `f` of the samples with `apply[i]`, `x` for the others, with `f` run on the chosen samples
/// only (gathered, transformed, scattered back); `x` itself (no work) when none is chosen and
/// `f(x)` when all are. `f` must act on each sample independently.
///
/// `owned`: whether `x` may be written (the caller gave it up, [`crate::BatchAug::apply_owned`]);
/// then the chosen samples are scattered into `x` itself instead of a copy of it. `f` is told
/// whether it may write into the samples it gets (a gathered sub-batch always may).
pub(crate) fn where_chosen(
    x: Tensor,
    owned: bool,
    apply: &[bool],
    f: impl FnOnce(Tensor, bool) -> Tensor,
) -> Tensor {
    let chosen: Vec<i64> = (0..apply.len() as i64).filter(|&i| apply[i as usize]).collect();
    if chosen.is_empty() {
        return x;
    }
    if chosen.len() == apply.len() {
        return f(x, owned);
    }
    let idx = Tensor::from_slice(&chosen).to_device(x.device()); // [M]
    let part = f(x.index_select(0, &idx), true);
    if owned {
        let mut x = x;
        let _ = x.index_copy_(0, &idx, &part);
        x
    } else {
        x.index_copy(0, &idx, &part)
    }
}
