//! DCL and DCL-W (Yeh et al. 2022) against a plain f64 loop transcribed from the reference
//! code (`dcl(z1, z2) + dcl(z2, z1)`, halved), plus invariances and finite-difference gradients.

use ssl_loss::{DclConfig, PairLoss};
use ssl_testutil::{assert_close, dot, pair_grad_check, rows, two_views, unit};
use tch::Tensor;

/// One direction of the reference `DCL.__call__(z1, z2)`: positive −wᵢ z1ᵢ·z2ᵢ/τ, negatives
/// log Σ over z1ᵢ·z1ₖ (k ≠ i) and z1ᵢ·z2ₖ (k ≠ i), mean over i.
fn one_direction(a: &[Vec<f64>], b: &[Vec<f64>], tau: f64, sigma: Option<f64>) -> f64 {
    let n = a.len();
    let w: Vec<f64> = match sigma {
        None => vec![1.0; n],
        Some(s) => {
            let e: Vec<f64> = (0..n).map(|k| (dot(&a[k], &b[k]) / s).exp()).collect();
            let sum: f64 = e.iter().sum();
            e.iter().map(|x| 2.0 - n as f64 * x / sum).collect()
        }
    };
    let mut total = 0.0;
    for i in 0..n {
        let negatives: f64 = (0..n)
            .filter(|&k| k != i)
            .map(|k| (dot(&a[i], &a[k]) / tau).exp() + (dot(&a[i], &b[k]) / tau).exp())
            .sum();
        total += -w[i] * dot(&a[i], &b[i]) / tau + negatives.ln();
    }
    total / n as f64
}

fn reference(z1: &Tensor, z2: &Tensor, tau: f64, sigma: Option<f64>) -> f64 {
    let unit_rows = |t: &Tensor| rows(t).iter().map(|r| unit(r)).collect::<Vec<_>>();
    let (a, b) = (unit_rows(z1), unit_rows(z2));
    0.5 * (one_direction(&a, &b, tau, sigma) + one_direction(&b, &a, tau, sigma))
}

#[test]
fn matches_the_f64_loop_reference() {
    for (n, d, tau) in [(2, 3, 0.1), (6, 4, 0.5), (16, 8, 0.2)] {
        let (z1, z2) = two_views(n, d, 0.6);
        for sigma in [None, Some(0.5)] {
            let got = DclConfig { temperature: tau, weight_sigma: sigma }
                .build()
                .unwrap()
                .forward(&z1, &z2)
                .double_value(&[]);
            let want = reference(&z1, &z2, tau, sigma);
            assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "n {n}, {sigma:?}");
        }
    }
}

#[test]
fn is_symmetric_permutation_and_scale_invariant() {
    let loss = DclConfig::weighted(0.2).build().unwrap();
    let (z1, z2) = two_views(6, 5, 0.6);
    let base = loss.forward(&z1, &z2);
    assert_close(&loss.forward(&z2, &z1), &base, 1e-12, 0.0);
    let perm = Tensor::from_slice(&[2i64, 5, 0, 4, 1, 3]);
    let p = |t: &Tensor| t.index_select(0, &perm);
    assert_close(&loss.forward(&p(&z1), &p(&z2)), &base, 1e-12, 0.0);
    let scale = Tensor::from_slice(&[0.5f64, 2.0, 7.0, 1.0, 0.1, 3.0]).view([6, 1]);
    assert_close(&loss.forward(&(&z1 * &scale), &z2), &base, 1e-12, 0.0);
}

#[test]
fn gradients_match_finite_differences() {
    let (z1, z2) = two_views(4, 5, 0.6);
    for sigma in [None, Some(0.5)] {
        let loss = DclConfig { temperature: 0.5, weight_sigma: sigma }.build().unwrap();
        pair_grad_check(|a, b| loss.forward(a, b), &z1, &z2, 1e-6, 1e-4);
    }
}
