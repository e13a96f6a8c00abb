//! HCL (Robinson et al. 2021) and the debiased loss (Chuang et al. 2020) against a plain f64
//! loop transcribed from the papers' reference code (exponentials without any shift), plus
//! invariances and finite-difference gradients.

use ssl_loss::{DebiasedConfig, HardNegativeConfig, PairLoss};
use ssl_testutil::{assert_close, descend, dot, pair_grad_check, rows, two_views, unit};
use tch::{Kind, Tensor};

/// `neg = exp(s/τ)` over the M = 2N − 2 negatives of each anchor, `imp = neg^β`,
/// `reweight = Σ imp·neg / mean(imp)`, `N_g = max((−τ⁺ M pos + reweight) / (1 − τ⁺), M e^{−1/τ})`,
/// loss = mean of −log(pos / (pos + N_g)).
fn reference(z1: &[Vec<f64>], z2: &[Vec<f64>], tau: f64, beta: f64, tau_plus: f64) -> f64 {
    let z: Vec<Vec<f64>> = z1.iter().chain(z2).map(|v| unit(v)).collect();
    let n2 = z.len();
    let m = (n2 - 2) as f64;
    let mut total = 0.0;
    for i in 0..n2 {
        let j = (i + n2 / 2) % n2;
        let pos = (dot(&z[i], &z[j]) / tau).exp();
        let negs: Vec<f64> = (0..n2)
            .filter(|&k| k != i && k != j)
            .map(|k| (dot(&z[i], &z[k]) / tau).exp())
            .collect();
        let imp: Vec<f64> = negs.iter().map(|x| x.powf(beta)).collect();
        let reweight =
            imp.iter().zip(&negs).map(|(w, x)| w * x).sum::<f64>() / (imp.iter().sum::<f64>() / m);
        let n_g = ((-tau_plus * m * pos + reweight) / (1.0 - tau_plus)).max(m * (-1.0 / tau).exp());
        total += -(pos / (pos + n_g)).ln();
    }
    total / n2 as f64
}

#[test]
fn matches_the_f64_loop_reference() {
    for (n, d, tau, beta, tau_plus) in [
        (2, 3, 0.5, 1.0, 0.1),
        (8, 4, 0.5, 0.5, 0.05),
        (16, 8, 0.2, 2.0, 0.1),
        (5, 16, 1.0, 1.0, 0.3),
    ] {
        let (z1, z2) = two_views(n, d, 0.7);
        let want = reference(&rows(&z1), &rows(&z2), tau, beta, tau_plus);
        let hcl = HardNegativeConfig { temperature: tau, beta, tau_plus }.build().unwrap();
        let got = hcl.forward(&z1, &z2).double_value(&[]);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "hcl n = {n}: {got} vs {want}");
        let want = reference(&rows(&z1), &rows(&z2), tau, 0.0, tau_plus);
        let debiased = DebiasedConfig { temperature: tau, tau_plus }.build().unwrap();
        let got = debiased.forward(&z1, &z2).double_value(&[]);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "debiased n = {n}");
    }
}

#[test]
fn float_matches_the_reference_to_float_precision() {
    let (z1, z2) = two_views(64, 16, 0.7);
    let want = reference(&rows(&z1), &rows(&z2), 0.5, 1.0, 0.1);
    let hcl = HardNegativeConfig::default().build().unwrap();
    let got = hcl.forward(&z1.to_kind(Kind::Float), &z2.to_kind(Kind::Float));
    assert!((got.double_value(&[]) - want).abs() < 1e-5 * want);
}

#[test]
fn is_symmetric_permutation_and_scale_invariant() {
    let hcl = HardNegativeConfig::default().build().unwrap();
    let (z1, z2) = two_views(7, 5, 0.7);
    let base = hcl.forward(&z1, &z2);
    assert_close(&hcl.forward(&z2, &z1), &base, 1e-12, 0.0);
    let perm = Tensor::from_slice(&[3i64, 6, 0, 2, 5, 1, 4]);
    let p = |t: &Tensor| t.index_select(0, &perm);
    assert_close(&hcl.forward(&p(&z1), &p(&z2)), &base, 1e-12, 0.0);
    let scale = Tensor::from_slice(&[0.2f64, 3.0, 1.0, 8.0, 0.5, 2.0, 1.5]).view([7, 1]);
    assert_close(&hcl.forward(&(&z1 * &scale), &(&z2 * 3.0)), &base, 1e-12, 0.0);
}

#[test]
fn gradients_match_finite_differences() {
    let (z1, z2) = two_views(4, 5, 0.7);
    let hcl = HardNegativeConfig::default().build().unwrap();
    let debiased = DebiasedConfig::default().build().unwrap();
    for loss in [&hcl as &dyn PairLoss, &debiased] {
        pair_grad_check(|a, b| loss.forward(a, b), &z1, &z2, 1e-6, 1e-4);
    }
}

#[test]
fn twenty_sgd_steps_on_the_embeddings_lower_the_loss() {
    let hcl = HardNegativeConfig::default().build().unwrap();
    let (z1, z2) = two_views(8, 4, 0.7);
    let (start, end) = descend(|z1| hcl.forward(z1, &z2), &z1, 0.5, 20);
    assert!(end < start - 0.05, "{start} -> {end}");
}
