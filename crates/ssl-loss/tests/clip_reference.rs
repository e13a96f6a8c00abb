//! CLIP's and SigLIP's losses against plain f64 loops written from the papers (CLIP Figure 3,
//! SigLIP Algorithm 1), plus invariances and finite-difference gradients in the embeddings.

// The references index i and j as the papers do.
#![allow(clippy::needless_range_loop)]

use ssl_loss::{ClipLoss, ClipLossConfig, PairLoss, SigLipLoss, SigLipLossConfig};
use ssl_testutil::{assert_close, dot, pair_grad_check, rows, two_views, unit};
use tch::{nn, Device, Tensor};

fn unit_rows(t: &Tensor) -> Vec<Vec<f64>> {
    rows(t).iter().map(|r| unit(r)).collect()
}

/// ½ (mean_i −log softmax_j(s xᵢ·yⱼ)ᵢ + mean_j −log softmax_i(s xᵢ·yⱼ)ⱼ).
fn clip_reference(x: &Tensor, y: &Tensor, s: f64) -> f64 {
    let (x, y) = (unit_rows(x), unit_rows(y));
    let n = x.len();
    let l: Vec<Vec<f64>> =
        x.iter().map(|xi| y.iter().map(|yj| s * dot(xi, yj)).collect()).collect();
    let mut i2t = 0.0;
    let mut t2i = 0.0;
    for i in 0..n {
        let row: f64 = (0..n).map(|j| l[i][j].exp()).sum();
        let col: f64 = (0..n).map(|j| l[j][i].exp()).sum();
        i2t += row.ln() - l[i][i];
        t2i += col.ln() - l[i][i];
    }
    0.5 * (i2t + t2i) / n as f64
}

/// −1/N Σᵢⱼ log σ(zᵢⱼ (t′ xᵢ·yⱼ + b)).
fn siglip_reference(x: &Tensor, y: &Tensor, scale: f64, bias: f64) -> f64 {
    let (x, y) = (unit_rows(x), unit_rows(y));
    let n = x.len();
    let mut total = 0.0;
    for i in 0..n {
        for j in 0..n {
            let z = if i == j { 1.0 } else { -1.0 };
            let logit = scale * dot(&x[i], &y[j]) + bias;
            total += (1.0 + (-z * logit).exp()).ln();
        }
    }
    total / n as f64
}

#[test]
fn both_match_their_f64_loop_references() {
    for (n, d) in [(1, 3), (5, 4), (32, 16)] {
        let (x, y) = two_views(n, d, 0.8);
        let vs = nn::VarStore::new(Device::Cpu);
        let clip = ClipLoss::new(&vs.root(), &ClipLossConfig::default()).unwrap();
        let s = clip.logit_scale();
        let got = clip.forward(&x, &y).double_value(&[]);
        let want = clip_reference(&x, &y, s);
        assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "clip n {n}: {got} vs {want}");
        let cfg = SigLipLossConfig { init_scale: 10.0, init_bias: -10.0 };
        let siglip = SigLipLoss::new(&vs.root(), &cfg).unwrap();
        let got = siglip.forward(&x, &y).double_value(&[]);
        let want = siglip_reference(&x, &y, 10.0, -10.0);
        assert!((got - want).abs() < 1e-6 * want.abs().max(1.0), "siglip n {n}");
    }
}

#[test]
fn clip_is_symmetric_and_both_are_permutation_and_scale_invariant() {
    let vs = nn::VarStore::new(Device::Cpu);
    let clip = ClipLoss::new(&vs.root(), &ClipLossConfig::default()).unwrap();
    let siglip = SigLipLoss::new(&vs.root(), &SigLipLossConfig::default()).unwrap();
    let (x, y) = two_views(6, 5, 0.5);
    let perm = Tensor::from_slice(&[1i64, 4, 0, 5, 3, 2]);
    let p = |t: &Tensor| t.index_select(0, &perm);
    let base = clip.forward(&x, &y);
    assert_close(&clip.forward(&y, &x), &base, 1e-12, 0.0);
    assert_close(&clip.forward(&p(&x), &p(&y)), &base, 1e-12, 0.0);
    assert_close(&clip.forward(&(&x * 7.0), &y), &base, 1e-12, 0.0);
    let base = siglip.forward(&x, &y);
    assert_close(&siglip.forward(&y, &x), &base, 1e-12, 0.0);
    assert_close(&siglip.forward(&p(&x), &p(&y)), &base, 1e-12, 0.0);
}

#[test]
fn gradients_in_the_embeddings_match_finite_differences() {
    let vs = nn::VarStore::new(Device::Cpu);
    let clip =
        ClipLoss::new(&vs.root(), &ClipLossConfig { init_temperature: 0.5, ..Default::default() })
            .unwrap();
    let siglip = SigLipLoss::new(&vs.root(), &SigLipLossConfig::default()).unwrap();
    let (x, y) = two_views(4, 5, 0.5);
    pair_grad_check(|a, b| clip.forward(a, b), &x, &y, 1e-6, 1e-4);
    pair_grad_check(|a, b| siglip.forward(a, b), &x, &y, 1e-6, 1e-4);
}
