//! SupCon (Khosla et al. 2020) against a plain f64 loop written from Eq. (2), plus its
//! invariances and a finite-difference gradient check.

use ssl_loss::SupConConfig;
use ssl_testutil::{assert_close, cosine, pair_grad_check, rows, two_views};
use tch::Tensor;

/// ℓᵢ = −1/|P(i)| Σ_{p∈P(i)} log(exp(cᵢₚ/τ) / Σ_{a≠i} exp(cᵢₐ/τ)), c = cosine, averaged.
fn reference(z1: &[Vec<f64>], z2: &[Vec<f64>], labels: &[i64], tau: f64) -> f64 {
    let z: Vec<&Vec<f64>> = z1.iter().chain(z2).collect();
    let y: Vec<i64> = labels.iter().chain(labels).copied().collect();
    let n2 = z.len();
    let mut total = 0.0;
    for i in 0..n2 {
        let denom: f64 =
            (0..n2).filter(|&a| a != i).map(|a| (cosine(z[i], z[a]) / tau).exp()).sum();
        let positives: Vec<usize> = (0..n2).filter(|&p| p != i && y[p] == y[i]).collect();
        let sum: f64 =
            positives.iter().map(|&p| ((cosine(z[i], z[p]) / tau).exp() / denom).ln()).sum();
        total += -sum / positives.len() as f64;
    }
    total / n2 as f64
}

#[test]
fn matches_the_f64_loop_reference() {
    for (labels, d, tau) in [
        (vec![0i64], 3, 0.5),
        (vec![0, 1, 0, 1, 2], 4, 0.1),
        (vec![3, 3, 3, 3, 3, 3], 8, 0.2),
        (vec![0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4], 16, 0.07),
    ] {
        let n = labels.len() as i64;
        let (z1, z2) = two_views(n, d, 0.5);
        let loss = SupConConfig { temperature: tau }.build().unwrap();
        let got = loss.forward_with_labels(&z1, &z2, &Tensor::from_slice(&labels));
        let want = reference(&rows(&z1), &rows(&z2), &labels, tau);
        assert!((got.double_value(&[]) - want).abs() < 1e-10 * want.abs().max(1.0), "{labels:?}");
    }
}

#[test]
fn is_symmetric_permutation_relabelling_and_scale_invariant() {
    let loss = SupConConfig { temperature: 0.2 }.build().unwrap();
    let (z1, z2) = two_views(6, 4, 0.5);
    let y = Tensor::from_slice(&[0i64, 1, 1, 2, 0, 1]);
    let base = loss.forward_with_labels(&z1, &z2, &y);
    assert_close(&loss.forward_with_labels(&z2, &z1, &y), &base, 1e-12, 0.0);
    let perm = Tensor::from_slice(&[5i64, 0, 3, 1, 4, 2]);
    let p = |t: &Tensor| t.index_select(0, &perm);
    assert_close(&loss.forward_with_labels(&p(&z1), &p(&z2), &p(&y)), &base, 1e-12, 0.0);
    // Class ids are names only: 0, 1, 2 → 9, 4, 7 changes nothing.
    let renamed = Tensor::from_slice(&[9i64, 4, 4, 7, 9, 4]);
    assert_close(&loss.forward_with_labels(&z1, &z2, &renamed), &base, 1e-12, 0.0);
    assert_close(&loss.forward_with_labels(&(&z1 * 3.0), &z2, &y), &base, 1e-12, 0.0);
}

#[test]
fn gradient_matches_finite_differences() {
    let loss = SupConConfig { temperature: 0.5 }.build().unwrap();
    let (z1, z2) = two_views(4, 5, 0.5);
    let y = Tensor::from_slice(&[0i64, 1, 0, 1]);
    pair_grad_check(|a, b| loss.forward_with_labels(a, b, &y), &z1, &z2, 1e-6, 1e-4);
}
