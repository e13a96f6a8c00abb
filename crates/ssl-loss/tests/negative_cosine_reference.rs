//! Negative cosine (SimSiam, BYOL) against a plain f64 loop, its invariances and a
//! finite-difference gradient check.

use ssl_loss::{CosineForm, NegativeCosineConfig, PairLoss};
use ssl_testutil::{assert_close, cosine, descend, grad_check, rows};
use tch::{Device, Kind, Tensor};

/// D(p, z) = −pᵢ·zᵢ / (‖pᵢ‖ ‖zᵢ‖), averaged over the rows.
fn reference(p: &[Vec<f64>], z: &[Vec<f64>]) -> f64 {
    let mut total = 0.0;
    for (a, b) in p.iter().zip(z) {
        total -= cosine(a, b);
    }
    total / p.len() as f64
}

fn randn(shape: [i64; 2]) -> Tensor {
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}

fn loss(form: CosineForm) -> ssl_loss::NegativeCosine {
    NegativeCosineConfig { form, ..Default::default() }.build().unwrap()
}

#[test]
fn matches_the_f64_loop_reference_in_both_forms() {
    for (n, d) in [(1, 2), (5, 3), (64, 16)] {
        let (p, z) = (randn([n, d]), randn([n, d]));
        let want = reference(&rows(&p), &rows(&z));
        let got = loss(CosineForm::NegativeCosine).forward(&p, &z).double_value(&[]);
        assert!((got - want).abs() < 1e-12, "n = {n}");
        let got = loss(CosineForm::NormalizedMse).forward(&p, &z).double_value(&[]);
        assert!((got - (2.0 + 2.0 * want)).abs() < 1e-12, "n = {n}");
    }
}

#[test]
fn the_symmetric_form_swaps_views_and_rows_freely() {
    let l = loss(CosineForm::NegativeCosine);
    let (p1, z1, p2, z2) = (randn([6, 4]), randn([6, 4]), randn([6, 4]), randn([6, 4]));
    let base = l.forward_symmetric(&p1, &z1, &p2, &z2);
    assert_close(&l.forward_symmetric(&p2, &z2, &p1, &z1), &base, 1e-12, 0.0);
    let perm = Tensor::from_slice(&[5i64, 3, 1, 0, 2, 4]);
    let s = |t: &Tensor| t.index_select(0, &perm);
    assert_close(&l.forward_symmetric(&s(&p1), &s(&z1), &s(&p2), &s(&z2)), &base, 1e-12, 0.0);
    let scale = Tensor::from_slice(&[0.5f64, 2.0, 9.0, 1.0, 0.1, 3.0]).view([6, 1]);
    assert_close(&l.forward_symmetric(&(&p1 * &scale), &z1, &p2, &(&z2 * 4.0)), &base, 1e-12, 0.0);
}

#[test]
fn gradient_matches_finite_differences() {
    let (p, z) = (randn([4, 5]), randn([4, 5]));
    for form in [CosineForm::NegativeCosine, CosineForm::NormalizedMse] {
        grad_check(|p| loss(form).forward(p, &z), &p, 1e-6, 1e-4);
    }
}

#[test]
fn twenty_sgd_steps_align_predictions_with_targets() {
    let l = loss(CosineForm::NegativeCosine);
    let (p, z) = (randn([8, 4]), randn([8, 4]));
    let (start, end) = descend(|p| l.forward(p, &z), &p, 2.0, 20);
    assert!(end < start - 0.1, "{start} -> {end}");
}
