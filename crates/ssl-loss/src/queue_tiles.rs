//! InfoNCE against many negatives (MoCo's queue) in column tiles of the query-negative
//! similarities: the engine behind [`crate::InfoNce::forward_with_negatives`].
//!
//! ```text
//! q̂, k̂ ∈ ℝ^{N×D}, n̂ ∈ ℝ^{K×D} unit rows,  c = 1/τ,  aᵢ = q̂ᵢ·k̂ᵢ/τ
//! Eᵢⱼ = e^{q̂ᵢ·n̂ⱼ/τ − c},  eᵢ = e^{aᵢ − c},  rᵢ = eᵢ + Σⱼ Eᵢⱼ,  L = 1/N Σᵢ (ln rᵢ + c − aᵢ)
//! ∂L/∂q̂ᵢ = ((E n̂)ᵢ/rᵢ + (eᵢ/rᵢ − 1) k̂ᵢ) / (Nτ)    ∂L/∂k̂ᵢ = (eᵢ/rᵢ − 1) q̂ᵢ / (Nτ)
//! ∂L/∂n̂ = Eᵀ (q̂ / r) / (Nτ)                         (only when the negatives need it)
//! ```
//!
//! The row scaling 1/rᵢ is applied to `E n̂` after the product, so each tile of E is used for
//! its row sums and its share of `E n̂` while it is in cache, and never stored: the products
//! are the two `[N, K] × D` of the forward logits and the query gradient (a detached queue
//! needs no third), and the scratch is one `N × tile` buffer, reused across calls.
//! Unit rows bound every logit by 1/τ, so the fixed shift c replaces a running maximum (see
//! `symmetric_tiles` for the range this allows; τ < 0.025 runs in f64).

use tch::Tensor;

use crate::ops::{unit_pair, unit_rows_as};
use crate::symmetric_tiles::{shift_kind, surrogate, tile_ranges};
use crate::workspace::Workspace;

/// Columns of one tile: about 2 Mi similarities (8 MiB in f32), between 256 and 8192.
fn tile_columns(n: i64) -> i64 {
    ((1 << 21) / n.max(1)).clamp(256, 8192)
}

/// [`surrogate`]'s first part when there is a gradient.
fn attach(x: &Tensor, g: Option<Tensor>) -> Option<Tensor> {
    g.map(|g| surrogate(x, &g).0)
}

/// Mean InfoNCE of `q` against its key `k` and the `negatives` (shapes checked by the caller),
/// with gradients for whichever of the three require them.
pub(crate) fn info_nce(
    q: &Tensor,
    k: &Tensor,
    negatives: &Tensor,
    tau: f64,
    ws: &Workspace,
) -> Tensor {
    info_nce_in_tiles(q, k, negatives, tau, tile_columns(q.size()[0]), ws)
}

/// [`info_nce`] with `tile` columns per tile.
fn info_nce_in_tiles(
    q: &Tensor,
    k: &Tensor,
    negatives: &Tensor,
    tau: f64,
    tile: i64,
    ws: &Workspace,
) -> Tensor {
    let (qh, kh) = unit_pair(q, k); // [N, D] each
    let nh = unit_rows_as(negatives, qh.kind()); // [K, D]
    let out_kind = qh.kind();
    let kind = shift_kind(out_kind, tau);
    let need = (qh.requires_grad(), kh.requires_grad(), nh.requires_grad());
    let (loss, gq, gk, gn) = tch::no_grad(|| {
        let (q, k, neg) = (qh.to_kind(kind), kh.to_kind(kind), nh.to_kind(kind));
        let (n, kn) = (q.size()[0], neg.size()[0]);
        let (c, scale) = (1.0 / tau, n as f64 * tau);
        let qs = &q * c; // [N, D]
        let pos = (&qs * &k).sum_dim_intlist(1, false, kind); // [N]: aᵢ
        let e_pos = (&pos - c).exp(); // [N]
        ws.with(n * tile.min(kn.max(1)), kind, q.device(), |buf| {
            let exp_tile = |(start, len): (i64, i64)| {
                let mut e = qs.mm_out(
                    &buf.narrow(0, 0, n * len).view([n, len]),
                    &neg.narrow(0, start, len).tr(),
                );
                e -= c;
                let _ = e.exp_();
                e // [N, len]
            };
            let r = e_pos.copy(); // [N]
            let en = Tensor::zeros([n, q.size()[1]], (kind, q.device())); // [N, D]: E n̂
            for &cols in &tile_ranges(kn, tile) {
                let e = exp_tile(cols);
                let mut r_ = r.shallow_clone();
                r_ += e.sum_dim_intlist(1, false, kind);
                if need.0 {
                    let _ = en.shallow_clone().addmm_(&e, &neg.narrow(0, cols.0, cols.1));
                }
            }
            let loss = (r.log() + c - &pos).mean(kind).to_kind(out_kind);
            let u = r.reciprocal(); // [N]
            let pos_weight = (&e_pos * &u - 1.0).unsqueeze(1) / scale; // [N, 1]
            let gq = need.0.then(|| en * u.unsqueeze(1) / scale + &pos_weight * &k);
            let gk = need.1.then(|| &pos_weight * &q);
            let gn = need.2.then(|| {
                let qu = &q * u.unsqueeze(1) / scale; // [N, D]
                let gn = Tensor::empty([kn, q.size()[1]], (kind, q.device())); // [K, D]
                for &cols in &tile_ranges(kn, tile) {
                    let _ = exp_tile(cols).tr().mm_out(&gn.narrow(0, cols.0, cols.1), &qu);
                }
                gn
            });
            (loss, gq, gk, gn)
        })
    });
    [attach(&qh, gq), attach(&kh, gk), attach(&nh, gn)]
        .into_iter()
        .flatten()
        .fold(loss, |l, s| l + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Reduction};

    /// Autograd through the dense `[N, 1 + K]` logits: the textbook form.
    fn dense(q: &Tensor, k: &Tensor, neg: &Tensor, tau: f64) -> Tensor {
        let (q, k) = unit_pair(q, k);
        let neg = unit_rows_as(neg, q.kind());
        let pos = (&q * &k).sum_dim_intlist(1, true, q.kind()); // [N, 1]
        let logits = Tensor::cat(&[pos, q.matmul(&neg.tr())], 1) / tau; // [N, 1 + K]
        let targets = Tensor::zeros([q.size()[0]], (Kind::Int64, Device::Cpu));
        logits.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, -100, 0.0)
    }

    #[test]
    fn every_tiling_gives_the_dense_value_and_gradients() {
        let opts = (Kind::Double, Device::Cpu);
        let q = Tensor::randn([5, 4], opts).set_requires_grad(true);
        let k = Tensor::randn([5, 4], opts).set_requires_grad(true);
        let neg = Tensor::randn([11, 4], opts).set_requires_grad(true);
        let want = dense(&q, &k, &neg, 0.2);
        let want_g = Tensor::run_backward(&[&want], &[&q, &k, &neg], false, false);
        let ws = Workspace::default();
        for tile in [1, 3, 4, 11, 50] {
            let got = info_nce_in_tiles(&q, &k, &neg, 0.2, tile, &ws);
            let err = (&got - &want).abs().double_value(&[]);
            assert!(err < 1e-12, "tile {tile}: loss off by {err}");
            let got_g = Tensor::run_backward(&[&got], &[&q, &k, &neg], false, false);
            for (g, w) in got_g.iter().zip(&want_g) {
                let err = f64::try_from((g - w).abs().max()).unwrap();
                assert!(err < 1e-12, "tile {tile}: gradient off by {err}");
            }
        }
    }

    #[test]
    fn a_detached_queue_gets_no_gradient_pass_and_the_same_query_gradient() {
        let opts = (Kind::Float, Device::Cpu);
        let q = Tensor::randn([6, 8], opts).set_requires_grad(true);
        let (k, neg) = (Tensor::randn([6, 8], opts), Tensor::randn([40, 8], opts));
        let got = info_nce_in_tiles(&q, &k, &neg, 0.1, 7, &Workspace::default());
        let want = dense(&q, &k, &neg, 0.1);
        let g = Tensor::run_backward(&[&got], &[&q], false, false).remove(0);
        let w = Tensor::run_backward(&[&want], &[&q], false, false).remove(0);
        let rel = f64::try_from((&g - &w).norm() / w.norm()).unwrap();
        assert!(rel < 1e-5, "query gradient off by {rel}");
        assert!((got - want).abs().double_value(&[]) < 1e-5);
    }
}
