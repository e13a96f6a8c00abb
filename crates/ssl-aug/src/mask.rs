//! Per-sample application masks: the probability `p` of an op as a Bernoulli draw per sample.

use tch::{Device, Tensor};

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
    let mut x = if owned { x } else { x.copy() };
    scatter_rows(&mut x, &chosen, &idx, &part);
    x
}

/// Bytes a run of consecutive rows must average for [`scatter_rows`] to copy run by run.
const RUN_BYTES: usize = 64 << 10;

/// `dst[rows[j]] = src[j]` for every j (`rows` ascending, `index` the same as a tensor on
/// dst's device). On the CPU, when the runs of consecutive rows are large (96 px views: a few
/// runs of ~100 KiB samples per chunk), one copy per run: libtorch's `index_copy_` is about 5×
/// slower there than plain copies of the same rows. Otherwise (small samples, many runs, where
/// the calls would cost more) and on CUDA one `index_copy_`.
pub(crate) fn scatter_rows(dst: &mut Tensor, rows: &[i64], index: &Tensor, src: &Tensor) {
    let runs = 1 + rows.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let bytes = src.numel() * src.kind().elt_size_in_bytes();
    if dst.device() != Device::Cpu || bytes < runs * RUN_BYTES {
        let _ = dst.index_copy_(0, index, src);
        return;
    }
    let mut j = 0;
    while j < rows.len() {
        let mut len = 1;
        while j + len < rows.len() && rows[j + len] == rows[j] + len as i64 {
            len += 1;
        }
        dst.narrow(0, rows[j], len as i64).copy_(&src.narrow(0, j as i64, len as i64));
        j += len;
    }
}
