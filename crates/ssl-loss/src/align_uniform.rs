//! Alignment and uniformity of normalised embeddings (Wang & Isola 2020), as diagnostics.

use tch::{Kind, Tensor};

use crate::ops::{check_views, l2_normalize, unit_pair, upcast};

/// Alignment: how close the two views of each sample land on the hypersphere.
///
/// Paper: Wang, Isola, "Understanding Contrastive Representation Learning through Alignment and
/// Uniformity on the Hypersphere", ICML 2020, <https://arxiv.org/abs/2005.10242>, Eq. (2).
///
/// ```text
/// L_align(f; α) = E_{(x, y) positive} ‖f̂(x) − f̂(y)‖₂^α      f̂ = f/‖f‖₂, α > 0 (paper: 2)
/// ```
///
/// Lower is better; 0 when the views coincide, at most 2^α.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]` → 0-dim mean (f32 for f16 / bf16 inputs).
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with N ≥ 1.
///
/// # Example
/// ```
/// let e = tch::Tensor::eye(2, (tch::Kind::Double, tch::Device::Cpu)); // [2, 2]
/// let (x, y) = (e.narrow(0, 0, 1), e.narrow(0, 1, 1)); // orthogonal unit vectors
/// let a = ssl_loss::alignment(&x, &y, 2.0).double_value(&[]);
/// assert!((a - 2.0).abs() < 1e-12); // ‖e₁ − e₂‖² = 2
/// ```
pub fn alignment(z1: &Tensor, z2: &Tensor, alpha: f64) -> Tensor {
    check_views("alignment", z1, z2, 1).unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = unit_pair(z1, z2); // [N, D] each
    let dist = (a - b).norm_scalaropt_dim(2, [1i64].as_slice(), false); // [N]
    dist.pow_tensor_scalar(alpha).mean(dist.kind())
}

/// Uniformity: the log of the mean Gaussian potential between distinct normalised embeddings.
///
/// Paper: Wang, Isola, ICML 2020, <https://arxiv.org/abs/2005.10242>, Eq. (3).
///
/// ```text
/// L_uniform(f; t) = log E_{i ≠ j} exp(−t ‖f̂(xᵢ) − f̂(xⱼ)‖₂²)      t > 0 (paper: 2)
/// ```
///
/// Lower is more uniform; computed as a log-sum-exp over the N(N − 1) ordered pairs minus
/// ln(N(N − 1)), so it never under- or overflows.
///
/// # Shapes
/// `z`: `[N, D]` with N ≥ 2 → 0-dim.
///
/// # Panics
/// When `z` is not `[N, D]` with N ≥ 2.
///
/// # Example
/// ```
/// let z = tch::Tensor::from_slice(&[1.0f64, 0.0, -1.0, 0.0]).view([2, 2]); // antipodal
/// let u = ssl_loss::uniformity(&z, 2.0).double_value(&[]);
/// assert!((u + 8.0).abs() < 1e-12); // log exp(−2 · 4)
/// ```
pub fn uniformity(z: &Tensor, t: f64) -> Tensor {
    let s = z.size();
    assert!(s.len() == 2 && s[0] >= 2, "uniformity: z {s:?} must be [N, D] with N >= 2");
    let n = s[0];
    let z = l2_normalize(&upcast(z), 1e-12); // [N, D]
                                             // ‖a − b‖² = 2 − 2 a·b for unit vectors; clamp the rounding below 0.
    let sq = (z.matmul(&z.tr()) * -2.0 + 2.0).clamp_min(0.0); // [N, N]
    let off_diagonal = Tensor::eye(n, (Kind::Float, z.device())).eq(0.0); // [N, N]
    let potentials = (sq * -t).masked_select(&off_diagonal); // [N (N − 1)]
    potentials.logsumexp([0i64].as_slice(), false) - ((n * (n - 1)) as f64).ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn identical_views_are_perfectly_aligned_whatever_their_scale() {
        let z = Tensor::randn([5, 3], (Kind::Double, Device::Cpu));
        assert!(alignment(&z, &(&z * 4.0), 2.0).double_value(&[]).abs() < 1e-12);
    }

    #[test]
    fn alignment_of_opposite_views_is_two_to_the_alpha() {
        let z = Tensor::randn([4, 6], (Kind::Double, Device::Cpu));
        for alpha in [1.0, 2.0, 3.0] {
            let a = alignment(&z, &(-&z), alpha).double_value(&[]);
            assert!((a - 2f64.powf(alpha)).abs() < 1e-12, "alpha {alpha}: {a}");
        }
    }

    #[test]
    fn uniformity_of_a_regular_simplex_has_the_closed_form() {
        // The 3 vertices of an equilateral triangle on the unit circle are √3 apart:
        // every pair's potential is exp(−t · 3), so L = −3t.
        let v: Vec<f64> = (0..3)
            .flat_map(|k| {
                let a = 2.0 * std::f64::consts::PI * k as f64 / 3.0;
                [a.cos(), a.sin()]
            })
            .collect();
        let z = Tensor::from_slice(&v).view([3, 2]);
        for t in [0.5, 2.0] {
            let u = uniformity(&z, t).double_value(&[]);
            assert!((u + 3.0 * t).abs() < 1e-12, "t {t}: {u}");
        }
    }

    #[test]
    fn uniformity_matches_a_pairwise_loop() {
        let z = Tensor::randn([6, 4], (Kind::Double, Device::Cpu));
        let rows = Vec::<Vec<f64>>::try_from(l2_normalize(&z, 1e-12)).unwrap();
        let mut sum = 0.0;
        for (i, a) in rows.iter().enumerate() {
            for (j, b) in rows.iter().enumerate() {
                if i != j {
                    let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
                    sum += (-2.0 * d2).exp();
                }
            }
        }
        let want = (sum / 30.0).ln();
        assert!((uniformity(&z, 2.0).double_value(&[]) - want).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "z [1, 3] must be [N, D] with N >= 2")]
    fn one_embedding_has_no_pairs() {
        let _ = uniformity(&Tensor::ones([1, 3], (Kind::Float, Device::Cpu)), 2.0);
    }
}
