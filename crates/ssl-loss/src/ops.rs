//! Shared tensor operations: row-wise L2 normalisation and the cosine-similarity matrix.

use tch::{Kind, Tensor};

use crate::error::ensure;
use crate::Result;

/// Divides each row of `x` by its L2 norm, `x / max(‖x‖₂, eps)` (PyTorch `F.normalize`).
///
/// # Shapes
/// `x`: `[N, D]` → `[N, D]`. Works on the last dimension of any rank.
///
/// # Example
/// ```
/// let x = tch::Tensor::from_slice(&[3.0f32, 4.0]).view([1, 2]);
/// let y = ssl_loss::l2_normalize(&x, 1e-12);
/// assert_eq!(Vec::<f32>::try_from(y.flatten(0, -1)).unwrap(), vec![0.6, 0.8]);
/// ```
pub fn l2_normalize(x: &Tensor, eps: f64) -> Tensor {
    let norm = x.norm_scalaropt_dim(2, [-1i64].as_slice(), true); // [N, 1]
    x / norm.clamp_min(eps)
}

/// The matrix of cosine similarities `S[i, j] = aᵢ·bⱼ / (‖aᵢ‖ ‖bⱼ‖)`.
///
/// # Shapes
/// `a`: `[N, D]`, `b`: `[M, D]` → `[N, M]`.
///
/// # Panics
/// When `a` or `b` is not 2-D or their feature dimensions differ.
pub fn cosine_similarity_matrix(a: &Tensor, b: &Tensor) -> Tensor {
    let (sa, sb) = (a.size(), b.size());
    assert!(
        sa.len() == 2 && sb.len() == 2 && sa[1] == sb[1],
        "cosine_similarity_matrix: a {sa:?} and b {sb:?} must be [N, D] and [M, D]"
    );
    let (a, b) = unit_pair(a, b);
    a.matmul(&b.tr()) // [N, M]
}

/// `a` and `b` with unit rows, both in `a`'s compute kind (f16 / bf16 upcast to f32).
pub(crate) fn unit_pair(a: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    let a = l2_normalize(&upcast(a), 1e-12);
    let b = unit_rows_as(b, a.kind());
    (a, b)
}

/// `x` with unit rows, upcast from f16 / bf16 and then cast to `kind`.
pub(crate) fn unit_rows_as(x: &Tensor, kind: Kind) -> Tensor {
    l2_normalize(&upcast(x), 1e-12).to_kind(kind)
}

/// Checks the two-view contract: `z1` and `z2` both `[N, D]` with the same N ≥ `min_n` and D.
pub(crate) fn check_views(loss: &'static str, z1: &Tensor, z2: &Tensor, min_n: i64) -> Result<()> {
    let (s1, s2) = (z1.size(), z2.size());
    ensure(s1.len() == 2 && s1 == s2 && s1[0] >= min_n, loss, || {
        format!("z1 {s1:?} and z2 {s2:?} must both be [N, D] with N >= {min_n}")
    })
}

/// The 2N views `[z1; z2]` with unit rows, f16 / bf16 upcast to f32: `[2N, D]`.
pub(crate) fn two_view_units(z1: &Tensor, z2: &Tensor) -> Tensor {
    l2_normalize(&Tensor::cat(&[upcast(z1), upcast(z2)], 0), 1e-12) // [2N, D]
}

/// The `[2N, 2N]` logits `sim(zᵢ, zₖ)/τ` of the 2N views `[z1; z2]`, with the diagonal
/// (self-similarity) at −∞; the positive of row `i` is column `(i + N) mod 2N`.
pub(crate) fn two_view_logits(z1: &Tensor, z2: &Tensor, temperature: f64) -> Tensor {
    let z = two_view_units(z1, z2); // [2N, D]
    let mut logits = z.matmul(&z.tr()) / temperature; // [2N, 2N]
    let _ = logits.fill_diagonal_(f64::NEG_INFINITY, false);
    logits
}

/// The positive of view `i` among `2N` views: `(i + N) mod 2N`.
pub(crate) fn positive_index(n: i64, device: tch::Device) -> Tensor {
    (Tensor::arange(2 * n, (Kind::Int64, device)) + n).remainder(2 * n) // [2N]
}

/// Half-precision inputs are computed in f32: logits of 1/τ-scaled cosines overflow f16.
pub(crate) fn upcast(x: &Tensor) -> Tensor {
    match x.kind() {
        Kind::Half | Kind::BFloat16 => x.to_kind(Kind::Float),
        _ => x.shallow_clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vec2(t: &Tensor) -> Vec<Vec<f64>> {
        Vec::<Vec<f64>>::try_from(t.to_kind(Kind::Double)).unwrap()
    }

    #[test]
    fn normalize_divides_by_the_row_norm_and_leaves_zero_rows_at_zero() {
        let x = Tensor::from_slice(&[3.0f64, 4.0, 0.0, 0.0, 1.0, 0.0]).view([3, 2]);
        let y = vec2(&l2_normalize(&x, 1e-12));
        assert_eq!(y, vec![vec![0.6, 0.8], vec![0.0, 0.0], vec![1.0, 0.0]]);
    }

    #[test]
    fn cosine_matrix_matches_hand_computed_values() {
        // a0 = (1, 0), a1 = (1, 1); b0 = (0, 2), b1 = (-3, 0), b2 = (1, 1).
        let a = Tensor::from_slice(&[1.0f64, 0.0, 1.0, 1.0]).view([2, 2]);
        let b = Tensor::from_slice(&[0.0f64, 2.0, -3.0, 0.0, 1.0, 1.0]).view([3, 2]);
        let s = vec2(&cosine_similarity_matrix(&a, &b));
        let r = 0.5f64.sqrt();
        let want = [[0.0, -1.0, r], [r, -r, 1.0]];
        for (row, wrow) in s.iter().zip(want) {
            for (x, w) in row.iter().zip(wrow) {
                assert!((x - w).abs() < 1e-12, "{s:?}");
            }
        }
    }

    #[test]
    fn half_inputs_give_float_similarities() {
        let a = Tensor::ones([2, 3], (Kind::Half, tch::Device::Cpu));
        assert_eq!(cosine_similarity_matrix(&a, &a).kind(), Kind::Float);
    }

    #[test]
    #[should_panic(expected = "[2, 3]")]
    fn mismatched_feature_dims_panic_naming_the_shapes() {
        let a = Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu));
        let b = Tensor::zeros([2, 4], (Kind::Float, tch::Device::Cpu));
        let _ = cosine_similarity_matrix(&a, &b);
    }
}
