//! The linear probe: multinomial logistic regression on standardised frozen features, with the
//! weight decay chosen on a held-out part of the training set, never on the test set.

use serde::{Deserialize, Serialize};
use tch::{Kind, Reduction, Tensor};

/// Settings of [`linear_probe`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearProbeConfig {
    /// Passes over the training features per fit.
    pub epochs: i64,
    /// Features per SGD step.
    pub batch_size: i64,
    /// Candidate peak learning rates of SGD with Nesterov momentum 0.9 (cosine decay to 0).
    pub lrs: Vec<f64>,
    /// Candidate L2 weight decays. The (lr, weight decay) pair with the best held-out accuracy
    /// is refit on all training features.
    pub weight_decays: Vec<f64>,
    /// Fraction of the training set held out to choose the weight decay.
    pub val_fraction: f64,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 512,
            lrs: vec![0.01, 0.1],
            weight_decays: vec![0.0, 1e-4, 1e-3],
            val_fraction: 0.1,
        }
    }
}

/// What [`linear_probe`] measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearProbeReport {
    /// Top-1 accuracy on the test features of the classifier refit on all training features.
    pub test_top1: f64,
    /// The learning rate chosen on the held-out split.
    pub lr: f64,
    /// The weight decay chosen on the held-out split.
    pub weight_decay: f64,
    /// `(lr, weight decay, held-out top-1)` for every candidate pair.
    pub val_top1: Vec<(f64, f64, f64)>,
}

/// Fits a linear classifier on `train_x` and scores it on `test_x`.
///
/// Features are standardised with the mean and standard deviation of the fitting set. The
/// learning rate and weight decay are chosen by held-out accuracy on the last `val_fraction` of
/// a seeded permutation of the training set; the chosen pair is then refit on the whole
/// training set and scored once on the test set.
///
/// # Shapes
/// `train_x`: `[M, F]`, `train_y`: `[M]` int64, `test_x`: `[Q, F]`, `test_y`: `[Q]`.
///
/// # Panics
/// When the shapes disagree or no weight decay is given.
pub fn linear_probe(
    train_x: &Tensor,
    train_y: &Tensor,
    test_x: &Tensor,
    test_y: &Tensor,
    classes: i64,
    cfg: &LinearProbeConfig,
    seed: u64,
) -> LinearProbeReport {
    assert!(
        test_x.size()[1] == train_x.size()[1],
        "linear_probe: train {:?} and test {:?} features disagree",
        train_x.size(),
        test_x.size()
    );
    let (lr, weight_decay, val_top1) = choose(train_x, train_y, classes, cfg, seed);
    let train = Labelled { x: train_x, y: train_y };
    let test = Labelled { x: test_x, y: test_y };
    let test_top1 = fit_and_score(train, test, classes, &[(lr, weight_decay)], cfg)[0];
    LinearProbeReport { test_top1, lr, weight_decay, val_top1 }
}

/// A linear classifier on standardised features:
/// `logits = ((x − mean) / std) · weight + bias`.
#[derive(Debug)]
pub struct LinearClassifier {
    /// The fitting features' mean, `[1, F]`.
    pub mean: Tensor,
    /// Their standard deviation (at least 1e-6), `[1, F]`.
    pub std: Tensor,
    /// `[F, C]`.
    pub weight: Tensor,
    /// `[C]`.
    pub bias: Tensor,
}

impl LinearClassifier {
    /// Logits `[Q, C]` of features `[Q, F]`.
    pub fn logits(&self, x: &Tensor) -> Tensor {
        ((x.to_kind(Kind::Float) - &self.mean) / &self.std).matmul(&self.weight) + &self.bias
    }
}

/// The classifier [`linear_probe`] scores: the learning rate and weight decay chosen on the
/// held-out part of `train_x` exactly as there, then refit on all of it. With the same `seed`,
/// its top-1 on test features is [`linear_probe`]'s `test_top1`.
///
/// # Panics
/// When the shapes disagree or no candidate is given.
pub fn fit_linear_classifier(
    train_x: &Tensor,
    train_y: &Tensor,
    classes: i64,
    cfg: &LinearProbeConfig,
    seed: u64,
) -> LinearClassifier {
    let (lr, weight_decay, _) = choose(train_x, train_y, classes, cfg, seed);
    let train = Labelled { x: train_x, y: train_y };
    let (mean, std, x) = standardise(train.x);
    let (weight, bias) = fit(&x, train.y, classes, &[(lr, weight_decay)], cfg);
    LinearClassifier { mean, std, weight, bias }
}

/// The `(lr, weight decay)` candidate with the best top-1 on the last `val_fraction` of a
/// permutation of the training features drawn from `seed`, and every candidate's score.
fn choose(
    train_x: &Tensor,
    train_y: &Tensor,
    classes: i64,
    cfg: &LinearProbeConfig,
    seed: u64,
) -> (f64, f64, Vec<(f64, f64, f64)>) {
    let m = train_x.size()[0];
    assert!(
        train_y.size() == [m] && !cfg.weight_decays.is_empty() && !cfg.lrs.is_empty(),
        "linear_probe: train {:?} / {:?} disagree (or no candidates)",
        train_x.size(),
        train_y.size(),
    );
    tch::manual_seed(seed as i64);
    let perm = Tensor::randperm(m, (Kind::Int64, train_x.device())); // [M]
    let n_val = ((m as f64 * cfg.val_fraction).round() as i64).clamp(1, m - 1);
    let (fit_idx, val_idx) = (perm.narrow(0, 0, m - n_val), perm.narrow(0, m - n_val, n_val));
    let (fx, fy) = (train_x.index_select(0, &fit_idx), train_y.index_select(0, &fit_idx));
    let (vx, vy) = (train_x.index_select(0, &val_idx), train_y.index_select(0, &val_idx));
    let (fit_set, val_set) = (Labelled { x: &fx, y: &fy }, Labelled { x: &vx, y: &vy });
    let candidates: Vec<(f64, f64)> =
        cfg.lrs.iter().flat_map(|&lr| cfg.weight_decays.iter().map(move |&wd| (lr, wd))).collect();
    let val_top1: Vec<(f64, f64, f64)> = fit_and_score(fit_set, val_set, classes, &candidates, cfg)
        .into_iter()
        .zip(&candidates)
        .map(|(acc, &(lr, wd))| (lr, wd, acc))
        .collect();
    let (lr, weight_decay, _) =
        val_top1
            .iter()
            .copied()
            .fold((0.0, 0.0, -1.0), |best, c| if c.2 > best.2 { c } else { best });
    (lr, weight_decay, val_top1)
}

/// Mean `[1, F]`, standard deviation `[1, F]` (at least 1e-6) and the standardised features.
fn standardise(x: &Tensor) -> (Tensor, Tensor, Tensor) {
    let x = x.to_kind(Kind::Float);
    let mean = x.mean_dim([0i64].as_slice(), true, Kind::Float); // [1, F]
    let std = x.std_dim([0i64].as_slice(), false, true).clamp_min(1e-6); // [1, F]
    let standardised = (&x - &mean) / &std;
    (mean, std, standardised)
}

/// Features `[M, F]` with their int64 labels `[M]`.
#[derive(Debug, Clone, Copy)]
struct Labelled<'a> {
    x: &'a Tensor,
    y: &'a Tensor,
}

/// Standardises with the fitting set's statistics, fits one classifier per `(lr, weight decay)`
/// candidate, and returns each one's top-1 on the scoring set.
fn fit_and_score(
    fit_set: Labelled<'_>,
    score_set: Labelled<'_>,
    classes: i64,
    candidates: &[(f64, f64)],
    cfg: &LinearProbeConfig,
) -> Vec<f64> {
    let (y, eval_y) = (fit_set.y, score_set.y);
    let (mean, std, x) = standardise(fit_set.x);
    let eval_x = (score_set.x.to_kind(Kind::Float) - &mean) / &std;
    let (w, b) = fit(&x, y, classes, candidates, cfg);
    let k = candidates.len() as i64;
    tch::no_grad(|| {
        let q = eval_x.size()[0];
        let logits = (eval_x.matmul(&w) + &b).view([q, k, classes]); // [Q, K, C]
        let hits = logits.argmax(2, false).eq_tensor(&eval_y.unsqueeze(1)); // [Q, K]
        let acc = hits.to_kind(Kind::Double).mean_dim([0i64].as_slice(), false, Kind::Double);
        Vec::<f64>::try_from(acc).expect("[K] accuracies")
    })
}

/// Minibatch SGD (Nesterov momentum 0.9, cosine learning rate from each candidate's peak) on
/// the mean cross-entropy plus `weight_decay / 2 · ‖W‖²`, for all K candidates at once: their
/// classifiers sit side by side as the column blocks of one `W: [F, K·C]`, see the same
/// minibatches, and are updated independently (the summed loss separates by block). Returns
/// `W: [F, K·C]` and `b: [K·C]`; block k holds candidate k.
fn fit(
    x: &Tensor,
    y: &Tensor,
    classes: i64,
    candidates: &[(f64, f64)],
    cfg: &LinearProbeConfig,
) -> (Tensor, Tensor) {
    let (m, f) = (x.size()[0], x.size()[1]);
    let k = candidates.len() as i64;
    let opts = (Kind::Float, x.device());
    // Each candidate's learning rate and weight decay, repeated over its C columns: [K·C].
    let per_column = |field: fn(&(f64, f64)) -> f64| {
        let v: Vec<f32> = candidates.iter().map(|c| field(c) as f32).collect();
        Tensor::from_slice(&v).repeat_interleave_self_int(classes, 0, None).to_device(x.device())
    };
    let (peak_lr, decay) = (per_column(|c| c.0), per_column(|c| c.1));
    let w = Tensor::zeros([f, k * classes], opts).set_requires_grad(true);
    let b = Tensor::zeros([k * classes], opts).set_requires_grad(true);
    let (vw, vb) = (Tensor::zeros([f, k * classes], opts), Tensor::zeros([k * classes], opts));
    let steps_per_epoch = (m + cfg.batch_size - 1) / cfg.batch_size;
    let total = (cfg.epochs * steps_per_epoch) as f64;
    let mut step = 0.0;
    for _ in 0..cfg.epochs {
        let order = Tensor::randperm(m, (Kind::Int64, x.device())); // [M]
        for s in 0..steps_per_epoch {
            let len = cfg.batch_size.min(m - s * cfg.batch_size);
            let idx = order.narrow(0, s * cfg.batch_size, len);
            let scores = x.index_select(0, &idx).matmul(&w) + &b; // [B, K·C]
            let logits = scores.view([len * k, classes]); // [B·K, C]
            let targets = y.index_select(0, &idx).unsqueeze(1).expand([len, k], false); // [B, K]
                                                                                        // The mean over B·K rows is 1/K of the sum of the K candidates' mean losses.
            let loss = logits.cross_entropy_loss::<Tensor>(
                &targets.reshape([len * k]),
                None,
                Reduction::Mean,
                -100,
                0.0,
            ) * k as f64;
            let grads = Tensor::run_backward(&[&loss], &[&w, &b], false, false);
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * step / total).cos());
            let lr = &peak_lr * cosine; // [K·C]
            tch::no_grad(|| {
                for (param, (grad, vel)) in [(&w, (&grads[0], &vw)), (&b, (&grads[1], &vb))] {
                    let g =
                        if param.dim() == 2 { grad + param * &decay } else { grad.shallow_clone() };
                    let (mut v, mut p) = (vel.shallow_clone(), param.shallow_clone());
                    v *= 0.9;
                    v += &g;
                    p -= (&g + vel * 0.9) * &lr; // Nesterov
                }
            });
            step += 1.0;
        }
    }
    (w.detach(), b.detach())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssl_testutil::seed_global_rng;
    use tch::Device;

    #[test]
    fn separable_clusters_are_classified_perfectly_and_the_choice_is_reported() {
        // Three well-separated Gaussian clusters in 5-D: any sane probe scores 100 %.
        let _rng = seed_global_rng(0);
        let centres = Tensor::eye(5, (Kind::Float, Device::Cpu)).narrow(0, 0, 3) * 6.0; // [3, 5]
        let make = |n: i64| {
            let y = Tensor::arange(n, (Kind::Int64, Device::Cpu)).remainder(3); // [n]
            let x = centres.index_select(0, &y) + Tensor::randn([n, 5], (Kind::Float, Device::Cpu));
            (x, y)
        };
        let ((tx, ty), (qx, qy)) = (make(600), make(300));
        let cfg = LinearProbeConfig { epochs: 5, batch_size: 64, ..Default::default() };
        let report = linear_probe(&tx, &ty, &qx, &qy, 3, &cfg, 1);
        assert_eq!(report.test_top1, 1.0);
        assert_eq!(report.val_top1.len(), 6);
        assert!(cfg.weight_decays.contains(&report.weight_decay));
    }

    #[test]
    fn the_fitted_classifier_is_the_one_the_probe_scores() {
        // Overlapping clusters, so the score is neither 0 nor 1 and would expose a different fit.
        let _rng = seed_global_rng(5);
        let centres = Tensor::randn([4, 6], (Kind::Float, Device::Cpu)); // [4, 6]
        let make = |n: i64| {
            let y = Tensor::randint(4, [n], (Kind::Int64, Device::Cpu)); // [n]
            let x = centres.index_select(0, &y) * 3.0
                + 5.0
                + Tensor::randn([n, 6], (Kind::Float, Device::Cpu)) * 1.5;
            (x, y)
        };
        let ((tx, ty), (qx, qy)) = (make(500), make(400));
        let cfg = LinearProbeConfig { epochs: 4, batch_size: 64, ..Default::default() };
        let report = linear_probe(&tx, &ty, &qx, &qy, 4, &cfg, 9);
        let clf = fit_linear_classifier(&tx, &ty, 4, &cfg, 9);
        assert!(report.test_top1 > 0.3 && report.test_top1 < 1.0, "{report:?}");
        let hits = clf.logits(&qx).argmax(1, false).eq_tensor(&qy);
        let top1 = hits.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        assert_eq!(top1, report.test_top1);
        assert_eq!(clf.weight.size(), [6, 4]);
        let mean = tx.mean_dim([0i64].as_slice(), true, Kind::Float);
        assert!(clf.mean.allclose(&mean, 1e-6, 1e-6, false), "standardised by the fit's mean");
    }

    #[test]
    fn candidates_fitted_together_equal_candidates_fitted_alone() {
        let _rng = seed_global_rng(7);
        let x = Tensor::randn([300, 6], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(4, [300], (Kind::Int64, Device::Cpu));
        let cfg = LinearProbeConfig { epochs: 3, batch_size: 64, ..Default::default() };
        let candidates = [(0.1, 0.0), (0.03, 1e-2), (0.3, 1e-3)];
        tch::manual_seed(1);
        let (w, b) = fit(&x, &y, 4, &candidates, &cfg); // [6, 12], [12]
        for (i, &c) in candidates.iter().enumerate() {
            tch::manual_seed(1); // The same minibatch order as the joint fit.
            let (wi, bi) = fit(&x, &y, 4, &[c], &cfg); // [6, 4], [4]
            let (wj, bj) = (w.narrow(1, 4 * i as i64, 4), b.narrow(0, 4 * i as i64, 4));
            let d = f64::try_from((&wi - &wj).abs().max()).unwrap();
            assert!(wi.allclose(&wj, 1e-5, 1e-6, false), "candidate {c:?}: W differs by {d}");
            assert!(bi.allclose(&bj, 1e-5, 1e-6, false), "candidate {c:?}: b differs");
        }
    }

    /// torch.optim.SGD(momentum=0.9, nesterov=True, weight_decay=wd) as its documentation
    /// writes the step, on the weights only (bias undecayed), with the learning rate
    /// lr · ½(1 + cos(π t / T)), full-batch mean cross-entropy, in plain f64:
    /// g ← ∇ + wd·w;  buf ← 0.9·buf + g;  w ← w − lr_t (g + 0.9·buf).
    fn sgd_reference(x: &[[f64; 2]], y: &[usize], lr: f64, wd: f64, steps: usize) -> Vec<f64> {
        let (mut w, mut b) = ([[0.0f64; 3]; 2], [0.0f64; 3]); // W[f][c], b[c]
        let (mut bw, mut bb) = ([[0.0f64; 3]; 2], [0.0f64; 3]);
        for t in 0..steps {
            let (mut gw, mut gb) = ([[0.0f64; 3]; 2], [0.0f64; 3]);
            for (xi, &yi) in x.iter().zip(y) {
                let z: Vec<f64> =
                    (0..3).map(|c| xi[0] * w[0][c] + xi[1] * w[1][c] + b[c]).collect();
                let norm: f64 = z.iter().map(|v| v.exp()).sum();
                for c in 0..3 {
                    let d = (z[c].exp() / norm - f64::from(u8::from(c == yi))) / x.len() as f64;
                    gw[0][c] += xi[0] * d;
                    gw[1][c] += xi[1] * d;
                    gb[c] += d;
                }
            }
            let lr_t = lr * 0.5 * (1.0 + (std::f64::consts::PI * t as f64 / steps as f64).cos());
            for c in 0..3 {
                for f in 0..2 {
                    let g = gw[f][c] + wd * w[f][c];
                    bw[f][c] = 0.9 * bw[f][c] + g;
                    w[f][c] -= lr_t * (g + 0.9 * bw[f][c]);
                }
                bb[c] = 0.9 * bb[c] + gb[c];
                b[c] -= lr_t * (gb[c] + 0.9 * bb[c]);
            }
        }
        w.iter().flatten().chain(&b).copied().collect()
    }

    #[test]
    fn three_updates_match_torch_sgd_nesterov_with_weight_decay_and_cosine() {
        // Full batches (batch size = M), so the shuffled order cannot change a step; the lock
        // keeps its draws out of the tests that replay a seeded order.
        let _rng = seed_global_rng(0);
        let x = [[1.0, -0.5], [0.3, 2.0], [-1.2, 0.4], [0.8, 0.9]];
        let y = [0usize, 2, 1, 2];
        let xt = Tensor::from_slice(x.as_flattened()).view([4, 2]).to_kind(Kind::Float);
        let yt = Tensor::from_slice(&y.map(|v| v as i64));
        let cfg = LinearProbeConfig { epochs: 3, batch_size: 4, ..Default::default() };
        let (lr, wd) = (0.7, 0.05);
        let (w, b) = fit(&xt, &yt, 3, &[(lr, wd)], &cfg); // [2, 3], [3]
        let got =
            Vec::<f64>::try_from(Tensor::cat(&[w.flatten(0, -1), b], 0).to_kind(Kind::Double))
                .unwrap();
        let want = sgd_reference(&x, &y, lr, wd, 3);
        // The first step by hand: p = ⅓ everywhere, so b moves by −1.9 · 0.7 · mean(p − onehot).
        let first = sgd_reference(&x, &y, lr, wd, 1);
        let b0 = -1.9 * 0.7 * (1.0 / 3.0 - 1.0 / 4.0); // class 0: one of four labels
        assert!((first[6] - b0).abs() < 1e-12, "{} vs {b0}", first[6]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-5, "parameter {i}: {g} vs torch's rule {w}");
        }
    }

    #[test]
    fn labels_that_ignore_the_features_score_near_chance() {
        // Labels independent of x: held-out accuracy cannot beat chance (1/2) by much.
        let _rng = seed_global_rng(3);
        let x = Tensor::randn([2000, 4], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(2, [2000], (Kind::Int64, Device::Cpu));
        let (qx, qy) = (
            Tensor::randn([2000, 4], (Kind::Float, Device::Cpu)),
            Tensor::randint(2, [2000], (Kind::Int64, Device::Cpu)),
        );
        let cfg = LinearProbeConfig { epochs: 3, ..Default::default() };
        let acc = linear_probe(&x, &y, &qx, &qy, 2, &cfg, 0).test_top1;
        // Binomial standard error sqrt(0.25 / 2000) ≈ 0.011.
        assert!((acc - 0.5).abs() < 0.045, "{acc}");
    }
}
