//! NT-Xent's value and gradient computed over the upper-triangle tiles of its symmetric
//! similarity matrix: the engine behind [`crate::NtXent`] and [`crate::TiledNtXent`].
//!
//! ```text
//! z ∈ ℝ^{M×D} unit rows (M = 2N),  sᵢₖ = zᵢ·zₖ/τ,  Eᵢₖ = e^{sᵢₖ − 1/τ} (k ≠ i), Eᵢᵢ = 0
//! rᵢ = Σₖ Eᵢₖ,  lseᵢ = ln rᵢ + 1/τ,  L = 1/M Σᵢ (lseᵢ − sᵢ,p(i)),  p(i) = (i + N) mod M
//! ∂L/∂z = W z − 2 z_p/(Mτ),  W = (P + Pᵀ)/(Mτ) = E ∘ (uᵢ + uₖ),  uᵢ = 1/(rᵢ M τ)
//! ```
//!
//! E is symmetric, so only tiles (I, J) with I ≤ J are computed: half the logits products and
//! half the exponentials of the dense form, and the gradient is one product per tile and
//! direction (`W_IJ z_J` and `W_IJᵀ z_I`) where autograd through a softmax needs `P z` and
//! `Pᵀ z`. In all 1.5 `[M, M] × D` products against the dense autograd graph's three.
//! Since the rows are unit vectors, sᵢₖ ≤ 1/τ: the fixed shift 1/τ replaces a running row
//! maximum, and every term stays a normal float while e^{−2/τ} does (τ ≥ 2/80 in f32,
//! 2/700 in f64; below the f32 bound the computation runs in f64).

use tch::{Kind, Tensor};

use crate::error::check_temperature;
use crate::ops::two_view_units;
use crate::workspace::Workspace;
use crate::{LossError, Result};

/// The smallest τ any computation supports: e^{−2/τ} must be a normal f64.
pub(crate) const MIN_TEMPERATURE: f64 = 2.0 / 700.0;

/// Below this τ an f32 computation would underflow (e^{−80} is near f32's smallest normal).
const MIN_F32_TEMPERATURE: f64 = 2.0 / 80.0;

/// Whether the exponentiated tiles are kept between the value and the gradient pass
/// (O(M²/2) scratch) or recomputed there (O(tile²) scratch, 1/3 more products).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tiles {
    Kept,
    Recomputed,
}

/// Checks the temperature of a loss computed with the fixed shift 1/τ: finite and
/// ≥ [`MIN_TEMPERATURE`].
pub(crate) fn check_shift_temperature(temperature: f64) -> Result<()> {
    check_temperature(temperature)?;
    if temperature < MIN_TEMPERATURE {
        return Err(LossError::InvalidConfig {
            field: "temperature",
            value: temperature.to_string(),
            reason: "must be ≥ 2/700 ≈ 0.0029 (e^{−2/τ} must stay a normal f64)",
        });
    }
    Ok(())
}

/// NT-Xent of the views `z1`, `z2` (`[N, D]` each, checked by the caller) as a 0-dim tensor
/// whose gradient is ∂L/∂z, attached through the surrogate `L + Σ z·g − stopgrad(Σ z·g)` on the
/// normalised views, so autograd carries it through the normalisation into the encoder.
/// The gradient is computed here, eagerly, when the views require it or when `scale_grad`
/// asks for ∂L/∂(1/τ) (a learnt temperature, possibly over frozen views); the second value is
/// the detached Σ z·g (0 when neither asks), from which ∂L/∂(1/τ) follows.
pub(crate) fn nt_xent(
    z1: &Tensor,
    z2: &Tensor,
    tau: f64,
    tile: i64,
    tiles: Tiles,
    ws: &Workspace,
    scale_grad: bool,
) -> (Tensor, Tensor) {
    let z = two_view_units(z1, z2); // [2N, D]
    let with_grad = z.requires_grad() || scale_grad;
    let (loss, g) =
        tch::no_grad(|| value_and_gradient(&z.detach(), tau, tile, tiles, ws, with_grad));
    match g {
        Some(g) => {
            let (attached, dot) = surrogate(&z, &g);
            (loss + attached, dot)
        }
        None => (loss, Tensor::zeros([], (z.kind(), z.device()))),
    }
}

/// `(Σ x·g − stopgrad(Σ x·g), stopgrad(Σ x·g))`: the first is zero in value with gradient `g`
/// with respect to `x` (how these engines hand their gradients to autograd), the second the
/// detached dot product. `g` is cast to `x`'s kind.
pub(crate) fn surrogate(x: &Tensor, g: &Tensor) -> (Tensor, Tensor) {
    let dot = (x * g.to_kind(x.kind())).sum(x.kind()); // 0-dim, ∂/∂x = g
    let value = dot.detach();
    (dot - &value, value)
}

/// The kind the fixed-shift engines compute in: f64 for f32 inputs whose τ is below
/// [`MIN_F32_TEMPERATURE`], the input's kind otherwise.
pub(crate) fn shift_kind(kind: Kind, tau: f64) -> Kind {
    if kind == Kind::Float && tau < MIN_F32_TEMPERATURE {
        Kind::Double
    } else {
        kind
    }
}

/// The tiles `(start, len)` covering `0..n`.
pub(crate) fn tile_ranges(n: i64, tile: i64) -> Vec<(i64, i64)> {
    (0..n).step_by(tile as usize).map(|start| (start, tile.min(n - start))).collect()
}

/// `out = e^{z_r z_cᵀ/τ − 1/τ}` (`zs_r` = z_r/τ), with the self-similarities at 0 on a
/// diagonal tile.
fn exp_tile(out: &Tensor, zs_r: &Tensor, z_c: &Tensor, shift: f64, diagonal: bool) {
    let mut out = zs_r.mm_out(out, &z_c.tr()); // [rl, cl]
    out -= shift;
    let _ = out.exp_();
    if diagonal {
        let _ = out.diagonal(0, 0, 1).fill_(0.0);
    }
}

/// The NT-Xent loss of the unit rows `z` (`[M, D]`, detached), and ∂L/∂z when `with_grad`.
/// Both come back in `z`'s kind; the scratch tiles live in `ws`.
pub(crate) fn value_and_gradient(
    z: &Tensor,
    tau: f64,
    tile: i64,
    tiles: Tiles,
    ws: &Workspace,
    with_grad: bool,
) -> (Tensor, Option<Tensor>) {
    let out_kind = z.kind();
    let z = z.to_kind(shift_kind(out_kind, tau));
    let (m, kind, device) = (z.size()[0], z.kind(), z.device());
    let b = tile.min(m);
    let blocks = tile_ranges(m, b);
    let nb = blocks.len();
    let pairs: Vec<(usize, usize)> = (0..nb).flat_map(|i| (i..nb).map(move |j| (i, j))).collect();
    let slots = if tiles == Tiles::Kept { pairs.len() as i64 } else { 1 };
    let (shift, scale) = (1.0 / tau, m as f64 * tau);
    let zs = &z * shift; // [M, D]
    let rows = |t: &Tensor, (start, len): (i64, i64)| t.narrow(0, start, len);
    ws.with((slots + 1) * b * b, kind, device, |buf| {
        let slot = |k: i64, rl: i64, cl: i64| buf.narrow(0, k * b * b, rl * cl).view([rl, cl]);
        let slot_of = |k: usize| if tiles == Tiles::Kept { k as i64 } else { 0 };
        let fill = |k: usize, (i, j): (usize, usize)| {
            let e = slot(slot_of(k), blocks[i].1, blocks[j].1); // [rl, cl]
            exp_tile(&e, &rows(&zs, blocks[i]), &rows(&z, blocks[j]), shift, i == j);
            e
        };
        let r = Tensor::zeros([m], (kind, device)); // [M]: Σₖ Eᵢₖ
        for (k, &(i, j)) in pairs.iter().enumerate() {
            let e = fill(k, (i, j));
            let mut r_i = rows(&r, blocks[i]);
            r_i += e.sum_dim_intlist(1, false, kind);
            if i != j {
                let mut r_j = rows(&r, blocks[j]);
                r_j += e.sum_dim_intlist(0, false, kind);
            }
        }
        let z_p = z.roll([m / 2], [0]); // [M, D]: each view's positive
        let pos = (&zs * &z_p).sum_dim_intlist(1, false, kind); // [M]: s_{i, p(i)}
        let loss = (r.log() + shift - pos).mean(kind).to_kind(out_kind);
        if !with_grad {
            return (loss, None);
        }
        let u = r.reciprocal() / scale; // [M]
        let g = z_p * (-2.0 / scale); // [M, D]
        let t_buf = |rl: i64, cl: i64| slot(slots, rl, cl);
        for (k, &(i, j)) in pairs.iter().enumerate() {
            let mut e = if tiles == Tiles::Kept {
                slot(k as i64, blocks[i].1, blocks[j].1)
            } else {
                fill(k, (i, j))
            };
            let t = t_buf(blocks[i].1, blocks[j].1); // [rl, cl]: uᵢ + uₖ
            let _ = rows(&u, blocks[i]).unsqueeze(1).add_out(&t, &rows(&u, blocks[j]).unsqueeze(0));
            e *= &t; // W_IJ
            let _ = rows(&g, blocks[i]).addmm_(&e, &rows(&z, blocks[j]));
            if i != j {
                let _ = rows(&g, blocks[j]).addmm_(&e.tr(), &rows(&z, blocks[i]));
            }
        }
        (loss, Some(g.to_kind(out_kind)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// NT-Xent's value and gradient by autograd through the dense softmax (the textbook form).
    fn dense(z: &Tensor, tau: f64) -> (f64, Tensor) {
        let z = z.detach().set_requires_grad(true);
        let m = z.size()[0];
        let mut logits = z.matmul(&z.tr()) / tau;
        let _ = logits.fill_diagonal_(f64::NEG_INFINITY, false);
        let targets = (Tensor::arange(m, (Kind::Int64, Device::Cpu)) + m / 2).remainder(m);
        let l = logits.log_softmax(-1, Kind::Double).nll_loss(&targets);
        let g = Tensor::run_backward(&[&l], &[&z], false, false).remove(0);
        (l.double_value(&[]), g)
    }

    fn unit_rows(m: i64, d: i64, kind: Kind) -> Tensor {
        let z = Tensor::randn([m, d], (kind, Device::Cpu));
        &z / z.norm_scalaropt_dim(2, [1i64].as_slice(), true)
    }

    #[test]
    fn every_tiling_gives_the_dense_value_and_gradient() {
        let z = unit_rows(14, 5, Kind::Double);
        let (want_l, want_g) = dense(&z, 0.3);
        let ws = Workspace::default();
        for tiles in [Tiles::Kept, Tiles::Recomputed] {
            for tile in [1, 3, 5, 7, 14, 100] {
                let (l, g) = value_and_gradient(&z, 0.3, tile, tiles, &ws, true);
                let l = l.double_value(&[]);
                assert!((l - want_l).abs() < 1e-12, "{tiles:?} {tile}: {l} vs {want_l}");
                let err = f64::try_from((g.unwrap() - &want_g).abs().max()).unwrap();
                assert!(err < 1e-12, "{tiles:?} {tile}: gradient off by {err}");
            }
        }
    }

    #[test]
    fn a_reused_workspace_gives_the_same_result_as_a_fresh_one() {
        let ws = Workspace::default();
        let big = unit_rows(20, 4, Kind::Float);
        let _ = value_and_gradient(&big, 0.5, 6, Tiles::Kept, &ws, true);
        let z = unit_rows(8, 4, Kind::Float);
        let (l, g) = value_and_gradient(&z, 0.5, 3, Tiles::Kept, &ws, true);
        let (l0, g0) = value_and_gradient(&z, 0.5, 3, Tiles::Kept, &Workspace::default(), true);
        assert_eq!(l.double_value(&[]), l0.double_value(&[]));
        assert!(g.unwrap().equal(&g0.unwrap()));
    }

    #[test]
    fn a_small_temperature_in_f32_runs_in_f64_without_underflow() {
        // Antipodal views, τ = 0.01: e^{−2/τ} = e^{−200} is 0 in f32, not in f64.
        let v = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let z = Tensor::cat(&[&v, &(-&v)], 0); // [2, 2]
        let (l, g) = value_and_gradient(&z, 0.01, 8, Tiles::Kept, &Workspace::default(), true);
        assert_eq!(l.kind(), Kind::Float);
        // Each row's only other view is its positive: L = 0, and so is the gradient.
        assert!(l.double_value(&[]).abs() < 1e-6, "{l}");
        assert!(f64::try_from(g.unwrap().abs().max()).unwrap() < 1e-6);
    }
}
