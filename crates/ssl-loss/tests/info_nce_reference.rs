//! InfoNCE against plain f64 loops written from CPC's Eq. (4) / MoCo's Eq. (1), plus its
//! invariances and finite-difference gradient checks.

use ssl_loss::{InfoNceConfig, PairLoss};
use ssl_testutil::{assert_close, cosine, descend, grad_check, pair_grad_check, rows};
use tch::{Device, Kind, Tensor};

/// ℓᵢ = −log(exp(cosine(qᵢ, kᵢ)/τ) / (exp(cosine(qᵢ, kᵢ)/τ) + Σⱼ exp(cosine(qᵢ, nⱼ)/τ))), averaged.
fn reference_queue(q: &[Vec<f64>], k: &[Vec<f64>], negatives: &[Vec<f64>], tau: f64) -> f64 {
    let mut total = 0.0;
    for (qi, ki) in q.iter().zip(k) {
        let pos = (cosine(qi, ki) / tau).exp();
        let neg: f64 = negatives.iter().map(|n| (cosine(qi, n) / tau).exp()).sum();
        total += -(pos / (pos + neg)).ln();
    }
    total / q.len() as f64
}

/// The in-batch form: the negatives of query i are the keys of the other samples.
fn reference_in_batch(q: &[Vec<f64>], k: &[Vec<f64>], tau: f64) -> f64 {
    let mut total = 0.0;
    for (i, qi) in q.iter().enumerate() {
        let denom: f64 = k.iter().map(|kj| (cosine(qi, kj) / tau).exp()).sum();
        total += -((cosine(qi, &k[i]) / tau).exp() / denom).ln();
    }
    total / q.len() as f64
}

fn randn(shape: [i64; 2]) -> Tensor {
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}

#[test]
fn matches_the_f64_loop_references() {
    for (n, d, k, tau) in [(1, 3, 1, 0.5), (4, 5, 9, 0.1), (16, 8, 64, 0.2), (7, 32, 3, 1.0)] {
        let q = randn([n, d]);
        let key = &q + 0.5 * randn([n, d]);
        let queue = randn([k, d]);
        let loss = InfoNceConfig { temperature: tau }.build().unwrap();
        let got = loss.forward_with_negatives(&q, &key, &queue).double_value(&[]);
        let want = reference_queue(&rows(&q), &rows(&key), &rows(&queue), tau);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "queue, n = {n}");
        let got = loss.forward(&q, &key).double_value(&[]);
        let want = reference_in_batch(&rows(&q), &rows(&key), tau);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "in-batch, n = {n}");
    }
}

#[test]
fn float_and_half_inputs_match_the_reference_to_their_precision() {
    let (q, queue) = (randn([32, 16]), randn([256, 16]));
    let key = &q + 0.3 * randn([32, 16]);
    let loss = InfoNceConfig { temperature: 0.2 }.build().unwrap();
    let want = reference_queue(&rows(&q), &rows(&key), &rows(&queue), 0.2);
    let f = |t: &Tensor| t.to_kind(Kind::Float);
    let got = loss.forward_with_negatives(&f(&q), &f(&key), &f(&queue));
    assert_eq!(got.kind(), Kind::Float);
    assert!((got.double_value(&[]) - want).abs() < 1e-5 * want);
    let h = |t: &Tensor| t.to_kind(Kind::Half);
    let got = loss.forward_with_negatives(&h(&q), &h(&key), &h(&queue));
    assert_eq!(got.kind(), Kind::Float); // Upcast: 1/τ-scaled logits would lose f16's range.
    assert!((got.double_value(&[]) - want).abs() < 1e-2 * want);
}

#[test]
fn is_invariant_to_queue_order_joint_batch_permutation_and_positive_scaling() {
    let loss = InfoNceConfig { temperature: 0.3 }.build().unwrap();
    let (q, queue) = (randn([6, 4]), randn([10, 4]));
    let key = &q + 0.5 * randn([6, 4]);
    let base = loss.forward_with_negatives(&q, &key, &queue);
    let in_batch = loss.forward(&q, &key);
    let shuffled = Tensor::from_slice(&[3i64, 9, 0, 5, 1, 8, 2, 7, 4, 6]);
    assert_close(
        &loss.forward_with_negatives(&q, &key, &queue.index_select(0, &shuffled)),
        &base,
        1e-12,
        0.0,
    );
    let perm = Tensor::from_slice(&[4i64, 2, 0, 1, 5, 3]);
    let (qp, kp) = (q.index_select(0, &perm), key.index_select(0, &perm));
    assert_close(&loss.forward_with_negatives(&qp, &kp, &queue), &base, 1e-12, 0.0);
    assert_close(&loss.forward(&qp, &kp), &in_batch, 1e-12, 0.0);
    let scale = Tensor::from_slice(&[0.1f64, 3.0, 7.0, 1.0, 2.0, 0.5]).view([6, 1]);
    let scaled = loss.forward_with_negatives(&(&q * &scale), &(&key * 2.5), &(&queue * 0.2));
    assert_close(&scaled, &base, 1e-12, 0.0);
}

#[test]
fn gradients_match_finite_differences() {
    let loss = InfoNceConfig { temperature: 0.5 }.build().unwrap();
    let (q, key, queue) = (randn([3, 5]), randn([3, 5]), randn([4, 5]));
    // With respect to the queries, the keys and the negatives (a memory bank may be learnt).
    grad_check(|q| loss.forward_with_negatives(q, &key, &queue), &q, 1e-6, 1e-4);
    grad_check(|k| loss.forward_with_negatives(&q, k, &queue), &key, 1e-6, 1e-4);
    grad_check(|n| loss.forward_with_negatives(&q, &key, n), &queue, 1e-6, 1e-4);
    pair_grad_check(|a, b| loss.forward(a, b), &q, &key, 1e-6, 1e-4);
}

#[test]
fn twenty_sgd_steps_on_the_queries_lower_the_loss() {
    let loss = InfoNceConfig { temperature: 0.2 }.build().unwrap();
    let (q, key, queue) = (randn([8, 4]), randn([8, 4]), randn([32, 4]));
    let (start, end) = descend(|q| loss.forward_with_negatives(q, &key, &queue), &q, 0.5, 20);
    assert!(end < start - 0.1, "{start} -> {end}");
}
