//! NT-Xent against a plain f64 loop written from SimCLR's Eq. (1), plus its invariances and a
//! finite-difference gradient check.

use ssl_loss::{NtXentConfig, PairLoss};
use ssl_testutil::{
    assert_close, cosine, descend, pair_grad_check, rows, seed_global_rng, two_views,
};
use tch::{Kind, Tensor};

/// ℓ(i, j) = −log(exp(sᵢⱼ/τ) / Σ_{k≠i} exp(sᵢₖ/τ)), averaged over all 2N anchors.
fn reference(z1: &[Vec<f64>], z2: &[Vec<f64>], tau: f64) -> f64 {
    let z: Vec<&Vec<f64>> = z1.iter().chain(z2).collect();
    let n2 = z.len();
    let mut total = 0.0;
    for i in 0..n2 {
        let j = (i + n2 / 2) % n2;
        let denom: f64 =
            (0..n2).filter(|&k| k != i).map(|k| (cosine(z[i], z[k]) / tau).exp()).sum();
        total += -((cosine(z[i], z[j]) / tau).exp() / denom).ln();
    }
    total / n2 as f64
}

/// Seeded views, drawn under the shared lock so another test's draws cannot interleave.
fn sample(n: i64, d: i64, seed: i64) -> (Tensor, Tensor) {
    let _rng = seed_global_rng(seed);
    two_views(n, d, 0.5)
}

#[test]
fn matches_the_f64_loop_reference() {
    for (n, d, tau) in [(1, 3, 0.5), (3, 4, 0.1), (16, 8, 0.2), (7, 32, 1.0)] {
        let (z1, z2) = sample(n, d, n);
        let got = NtXentConfig { temperature: tau, ..Default::default() }
            .build()
            .unwrap()
            .forward(&z1, &z2);
        let want = reference(&rows(&z1), &rows(&z2), tau);
        assert!((got.double_value(&[]) - want).abs() < 1e-10 * want.abs().max(1.0), "n = {n}");
    }
}

#[test]
fn float_matches_the_reference_to_float_precision() {
    let (z1, z2) = sample(64, 16, 3);
    let loss = NtXentConfig { temperature: 0.1, ..Default::default() }.build().unwrap();
    let got = loss.forward(&z1.to_kind(Kind::Float), &z2.to_kind(Kind::Float));
    let want = reference(&rows(&z1), &rows(&z2), 0.1);
    assert!((got.double_value(&[]) - want).abs() < 1e-5 * want);
}

#[test]
fn is_symmetric_permutation_and_scale_invariant() {
    let loss = NtXentConfig { temperature: 0.3, ..Default::default() }.build().unwrap();
    let (z1, z2) = sample(9, 5, 11);
    let base = loss.forward(&z1, &z2);
    assert_close(&loss.forward(&z2, &z1), &base, 1e-12, 0.0);
    let perm = Tensor::from_slice(&[4i64, 2, 8, 0, 1, 3, 7, 5, 6]);
    assert_close(
        &loss.forward(&z1.index_select(0, &perm), &z2.index_select(0, &perm)),
        &base,
        1e-12,
        0.0,
    );
    let scale = Tensor::from_slice(&[0.1f64, 3.0, 7.0, 1.0, 2.0, 0.5, 9.0, 4.0, 1.5]).view([9, 1]);
    assert_close(&loss.forward(&(&z1 * &scale), &(&z2 * 2.5)), &base, 1e-12, 0.0);
}

#[test]
fn gradient_matches_finite_differences() {
    let loss = NtXentConfig { temperature: 0.5, ..Default::default() }.build().unwrap();
    let (z1, z2) = sample(4, 5, 5);
    pair_grad_check(|a, b| loss.forward(a, b), &z1, &z2, 1e-6, 1e-4);
}

#[test]
fn twenty_sgd_steps_on_the_embeddings_lower_the_loss() {
    let loss = NtXentConfig { temperature: 0.5, ..Default::default() }.build().unwrap();
    let (z1, z2) = sample(8, 4, 2);
    let (start, end) = descend(|z1| loss.forward(z1, &z2), &z1, 0.5, 20);
    assert!(end < start - 0.1, "{start} -> {end}");
}

#[test]
fn tiled_gradient_matches_finite_differences() {
    // The tiled form's gradient comes from its own second pass and a surrogate, not autograd:
    // check it against finite differences, with tiles that split the 2N = 8 views unevenly.
    let loss = ssl_loss::TiledNtXentConfig { temperature: 0.5, tile: 3 }.build().unwrap();
    let (z1, z2) = sample(4, 5, 9);
    pair_grad_check(|a, b| loss.forward(a, b), &z1, &z2, 1e-6, 1e-4);
}

#[test]
fn tiled_matches_the_f64_loop_reference() {
    for (n, d, tau, tile) in [(1, 3, 0.5, 1), (3, 4, 0.1, 2), (16, 8, 0.2, 5), (7, 32, 1.0, 64)] {
        let (z1, z2) = sample(n, d, n + 100);
        let loss = ssl_loss::TiledNtXentConfig { temperature: tau, tile }.build().unwrap();
        let got = loss.forward(&z1, &z2).double_value(&[]);
        let want = reference(&rows(&z1), &rows(&z2), tau);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "n = {n}, tile {tile}");
    }
}
