//! DenseCL's dense loss against a plain f64 loop written from Eq. (2)–(3) of the paper (argmax
//! correspondence, then per-location InfoNCE), plus a finite-difference gradient in the query.

// The reference indexes samples, locations and channels as the paper does.
#![allow(clippy::needless_range_loop)]

use ssl_loss::DenseClLossConfig;
use ssl_testutil::{dot, grad_check, rows, unit};
use tch::{Device, Kind, Tensor};

type Dense = Vec<Vec<Vec<f64>>>; // [N][channel][location]

fn dense(t: &Tensor) -> Dense {
    Vec::<Vec<Vec<f64>>>::try_from(t.to_kind(Kind::Double)).unwrap()
}

/// Column `i` of one sample's `[channels][locations]` map, normalised.
fn location(m: &[Vec<f64>], i: usize) -> Vec<f64> {
    unit(&m.iter().map(|row| row[i]).collect::<Vec<f64>>())
}

fn reference(q: &Dense, k: &Dense, fq: &Dense, fk: &Dense, queue: &[Vec<f64>], tau: f64) -> f64 {
    let (n, s, s_key) = (q.len(), q[0][0].len(), k[0][0].len());
    let mut total = 0.0;
    for b in 0..n {
        for i in 0..s {
            let fi = location(&fq[b], i);
            let j = (0..s_key)
                .max_by(|&x, &y| {
                    dot(&fi, &location(&fk[b], x)).total_cmp(&dot(&fi, &location(&fk[b], y)))
                })
                .unwrap();
            let (r, t) = (location(&q[b], i), location(&k[b], j));
            let pos = (dot(&r, &t) / tau).exp();
            let neg: f64 = queue.iter().map(|nk| (dot(&r, &unit(nk)) / tau).exp()).sum();
            total += -(pos / (pos + neg)).ln();
        }
    }
    total / (n * s) as f64
}

fn randn(shape: [i64; 3]) -> Tensor {
    Tensor::randn(shape, (Kind::Double, Device::Cpu))
}

#[test]
fn matches_the_f64_loop_reference() {
    for (n, d, c, s, s_key, kq) in [(1, 3, 4, 4, 4, 5), (2, 5, 6, 9, 7, 16), (3, 8, 4, 16, 16, 32)]
    {
        let (query, key) = (randn([n, d, s]), randn([n, d, s_key]));
        let (fq, fk) = (randn([n, c, s]), randn([n, c, s_key]));
        let queue = Tensor::randn([kq, d], (Kind::Double, Device::Cpu));
        let loss = DenseClLossConfig { temperature: 0.2 }.build().unwrap();
        let got = loss.forward(&query, &key, &fq, &fk, &queue).double_value(&[]);
        let want =
            reference(&dense(&query), &dense(&key), &dense(&fq), &dense(&fk), &rows(&queue), 0.2);
        assert!((got - want).abs() < 1e-10 * want.abs().max(1.0), "n {n}, s {s}: {got} vs {want}");
    }
}

#[test]
fn gradient_in_the_query_matches_finite_differences() {
    // The matching depends on the backbone features only, so it is fixed while q moves.
    let loss = DenseClLossConfig { temperature: 0.5 }.build().unwrap();
    let (query, key, fq, fk) =
        (randn([2, 3, 4]), randn([2, 3, 4]), randn([2, 5, 4]), randn([2, 5, 4]));
    let queue = Tensor::randn([6, 3], (Kind::Double, Device::Cpu));
    grad_check(|q| loss.forward(q, &key, &fq, &fk, &queue), &query, 1e-6, 1e-4);
}

#[test]
fn no_gradient_flows_through_the_matching_features() {
    // The argmax matching reads the backbone features; it is an index, so the features get no
    // gradient from this loss, while the query gets its own.
    let loss = DenseClLossConfig { temperature: 0.5 }.build().unwrap();
    let (query, key) = (randn([2, 3, 4]).set_requires_grad(true), randn([2, 3, 4]));
    let (fq, fk) =
        (randn([2, 5, 4]).set_requires_grad(true), randn([2, 5, 4]).set_requires_grad(true));
    let queue = Tensor::randn([6, 3], (Kind::Double, Device::Cpu));
    let l = loss.forward(&query, &key, &fq, &fk, &queue);
    l.backward();
    assert!(query.grad().defined() && query.grad().abs().sum(Kind::Double).double_value(&[]) > 0.0);
    for (name, f) in [("query features", &fq), ("key features", &fk)] {
        let g = f.grad();
        assert!(!g.defined() || g.abs().sum(Kind::Double).double_value(&[]) == 0.0, "{name}: {g}");
    }
}
