//! Fine-tuning: the whole pretrained network and a linear classifier trained on labels, the
//! backbone at a tenth of the classifier's learning rate; optionally on a fraction of the labels
//! (SimCLR's semi-supervised protocol).
//!
//! The classifier starts from the frozen linear probe of the same labelled images ("LP-FT",
//! Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
//! Out-of-Distribution"): `logits = W · (f(x) − μ) / σ + b`, with μ, σ the frozen features'
//! statistics (fixed) and W, b the probe's. A randomly initialised head sends large, random
//! gradients into the backbone in the first steps and undoes what pre-training learnt; from the
//! probe's head, fine-tuning starts where the frozen probe ends.

use std::time::Instant;

use ssl_aug::{splitmix64, SPLITMIX64_GAMMA};

use tch::nn::VarStore;
use tch::{Device, Kind, Reduction, Tensor};

use crate::eval::{extract_features, fit_linear_classifier};
use crate::evaluate::held_out_len;
use crate::finetune_head::Head;
use crate::method::Method;
use crate::optim::{OptimKind, Optimizer};
use crate::schedule::warmup_cosine;
use crate::{Config, Result, TrainError};

/// How `ssl finetune` trains (the defaults are the documented protocol).
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneSettings {
    /// Passes over the labelled images.
    pub epochs: u64,
    /// Images per step.
    pub batch_size: i64,
    /// Candidates for the classifier's peak learning rate, chosen on held-out labelled images.
    pub lrs: Vec<f64>,
    /// The backbone's learning rate as a fraction of the classifier's (the usual 0.1).
    pub backbone_lr_scale: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// Weight decay on weight matrices and kernels (not biases or BatchNorm).
    pub weight_decay: f64,
    /// The fraction of the training labels used, drawn class by class (1.0: all).
    pub label_fraction: f64,
    /// The part of the labelled images held out to choose the learning rate.
    pub val_fraction: f64,
}

impl Default for FinetuneSettings {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 256,
            lrs: vec![0.1, 0.3],
            backbone_lr_scale: 0.1,
            momentum: 0.9,
            weight_decay: 5e-4,
            label_fraction: 1.0,
            val_fraction: 0.1,
        }
    }
}

/// What fine-tuning measured.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneReport {
    /// The fraction of the training labels used.
    pub label_fraction: f64,
    /// Labelled images used in the final fit.
    pub labelled: i64,
    /// Each candidate learning rate and its top-1 on the held-out labelled images (empty when
    /// there was one candidate, so nothing to choose).
    pub candidates: Vec<(f64, f64)>,
    /// The learning rate chosen there.
    pub lr: f64,
    /// Top-1 of the fine-tuned network on the test images (or the held-out training images
    /// under `--validation`).
    pub test_top1: f64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// The indices (int64 `[M]`) of a class-balanced `fraction` of `labels`: for every class, the
/// first `max(1, round(fraction · n_c))` of its images in an order drawn from `seed`.
///
/// # Errors
/// [`TrainError::Invalid`] when `fraction` is not in (0, 1].
pub fn label_subset(labels: &Tensor, classes: i64, fraction: f64, seed: u64) -> Result<Tensor> {
    if !(fraction > 0.0 && fraction <= 1.0) {
        return Err(TrainError::Invalid {
            field: "label_fraction".into(),
            value: fraction.to_string(),
            reason: "must be in (0, 1]".into(),
        });
    }
    let labels: Vec<i64> =
        Vec::try_from(labels.to_kind(Kind::Int64)).map_err(|e: tch::TchError| {
            TrainError::Invalid {
                field: "labels".into(),
                value: format!("{:?}", labels.size()),
                reason: e.to_string(),
            }
        })?;
    let mut picked = Vec::new();
    for c in 0..classes {
        let mut of_class: Vec<i64> =
            (0..labels.len() as i64).filter(|&i| labels[i as usize] == c).collect();
        shuffle(&mut of_class, seed ^ (c as u64).wrapping_mul(SPLITMIX64_GAMMA));
        let take = ((of_class.len() as f64 * fraction).round() as usize).max(1).min(of_class.len());
        picked.extend_from_slice(&of_class[..take]);
    }
    picked.sort_unstable();
    Ok(Tensor::from_slice(&picked))
}

/// Fisher–Yates with a SplitMix64 stream: the same order on every machine.
fn shuffle(v: &mut [i64], seed: u64) {
    let mut k = 0u64;
    let mut next = || {
        let draw = splitmix64(seed.wrapping_add(k.wrapping_mul(SPLITMIX64_GAMMA)));
        k += 1;
        draw
    };
    for i in (1..v.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

/// Builds the pretrained method with its weights loaded (a fresh copy for every fit).
pub type LoadPretrained<'a> = dyn Fn() -> Result<(VarStore, Box<dyn Method>)> + 'a;

/// A fine-tuned network: the pretrained method's backbone and the new classifier.
struct Tuned {
    vs: VarStore,
    method: Box<dyn Method>,
    head: Head,
}

impl Tuned {
    fn logits(&self, x: &Tensor, train: bool) -> Tensor {
        self.head.forward(&self.method.backbone().forward_t(x, train))
    }
}

/// Scales a uint8 chunk to [0, 1] on `device` and resizes it as evaluation does.
fn prepare(images: &Tensor, cfg: &Config, device: Device) -> Tensor {
    let x = images.to_device(device).to_kind(Kind::Float) / 255.0;
    cfg.eval.resize_op().map_or(x.shallow_clone(), |r| r.forward(&x))
}

/// Fits a fresh copy of the pretrained network and a classifier on `images`, `labels`.
fn fit(
    load: &LoadPretrained<'_>,
    images: &Tensor,
    labels: &Tensor,
    lr: f64,
    s: &FinetuneSettings,
    cfg: &Config,
    classes: i64,
) -> Result<Tuned> {
    let (vs, method) = load()?;
    let device = vs.device();
    tch::manual_seed(cfg.seed as i64);
    let head = probe_head(&vs, method.as_ref(), images, labels, cfg, classes);
    let mut opt = Optimizer::new(&vs, OptimKind::Sgd, s.momentum, s.weight_decay, 0.0)
        .with_lr_scale(
            |name| if name.starts_with("backbone.") { s.backbone_lr_scale } else { 1.0 },
        );
    let n = images.size()[0];
    let per_epoch = (n + s.batch_size - 1) / s.batch_size;
    let total = (per_epoch as u64) * s.epochs;
    let mut step = 0;
    for _ in 0..s.epochs {
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        for b in 0..per_epoch {
            let idx = order.narrow(0, b * s.batch_size, s.batch_size.min(n - b * s.batch_size));
            let x = prepare(&images.index_select(0, &idx), cfg, device);
            let flip = Tensor::rand([idx.size()[0], 1, 1, 1], (Kind::Float, device)).lt(0.5);
            let x = x.flip([3i64].as_slice()).where_self(&flip, &x); // horizontal flips
            let y = labels.index_select(0, &idx).to_device(device);
            let tuned_logits = head.forward(&method.backbone().forward_t(&x, true)); // [B, classes]
            let loss =
                tuned_logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0);
            opt.backward_step(&loss, warmup_cosine(step, 0, total, lr));
            step += 1;
        }
    }
    Ok(Tuned { vs, method, head })
}

/// The frozen linear probe of `images` (eval mode, the evaluation's probe settings and seed)
/// as a trainable head in `vs`: its standardisation fixed, its W and b the starting point
/// (dead features revived, [`crate::finetune_head::revive_dead_units`]).
fn probe_head(
    vs: &VarStore,
    method: &dyn Method,
    images: &Tensor,
    labels: &Tensor,
    cfg: &Config,
    classes: i64,
) -> Head {
    let resize = cfg.eval.resize_op();
    let features = extract_features(method.backbone(), images, 1024, resize.as_ref(), vs.device());
    let probe = fit_linear_classifier(&features, labels, classes, &cfg.eval.linear, cfg.seed);
    Head::from_probe(vs, &probe)
}

/// Top-1 of `tuned` on `images`, `labels` (eval mode, no gradients).
fn top1(tuned: &Tuned, images: &Tensor, labels: &Tensor, cfg: &Config) -> f64 {
    let device = tuned.vs.device();
    let n = images.size()[0];
    tch::no_grad(|| {
        let mut correct = 0i64;
        for start in (0..n).step_by(1024) {
            let len = 1024.min(n - start);
            let x = prepare(&images.narrow(0, start, len), cfg, device);
            let pred = tuned.logits(&x, false).argmax(1, false).to_device(Device::Cpu);
            correct +=
                pred.eq_tensor(&labels.narrow(0, start, len)).sum(Kind::Int64).int64_value(&[]);
        }
        correct as f64 / n.max(1) as f64
    })
}

/// Fine-tunes the pretrained network `load` builds: draws the labelled subset from the
/// training images, picks the learning rate on its held-out tail (skipped when `s.lrs` holds
/// one rate), refits on all of it with that rate and scores the test images. Nothing of the
/// test images chooses anything.
///
/// # Errors
/// [`TrainError::Invalid`] for a bad label fraction; the loader's errors.
pub fn finetune(
    load: &LoadPretrained<'_>,
    train: (&Tensor, &Tensor),
    test: (&Tensor, &Tensor),
    classes: i64,
    s: &FinetuneSettings,
    cfg: &Config,
) -> Result<FinetuneReport> {
    let start = Instant::now();
    if s.lrs.is_empty() || s.epochs == 0 || s.batch_size < 1 {
        return Err(TrainError::Invalid {
            field: "finetune".into(),
            value: format!("{s:?}"),
            reason: "needs ≥ 1 learning rate, ≥ 1 epoch and a batch ≥ 1".into(),
        });
    }
    let subset = label_subset(train.1, classes, s.label_fraction, cfg.seed)?;
    let shuffled = {
        let mut v: Vec<i64> = Vec::try_from(&subset).unwrap_or_default();
        shuffle(&mut v, cfg.seed.wrapping_add(1));
        Tensor::from_slice(&v)
    };
    let (images, labels) = (train.0.index_select(0, &shuffled), train.1.index_select(0, &shuffled));
    let m = images.size()[0];
    let held = held_out_len(m, s.val_fraction);
    let (fit_x, fit_y) = (images.narrow(0, 0, m - held), labels.narrow(0, 0, m - held));
    let (val_x, val_y) = (images.narrow(0, m - held, held), labels.narrow(0, m - held, held));
    // One candidate leaves nothing to choose: no held-out fit, the rate is the caller's.
    let mut candidates = Vec::with_capacity(s.lrs.len());
    if s.lrs.len() > 1 {
        for &lr in &s.lrs {
            let tuned = fit(load, &fit_x, &fit_y, lr, s, cfg, classes)?;
            let acc = top1(&tuned, &val_x, &val_y, cfg);
            println!("fine-tune lr {lr}: held-out top-1 {:.2} % ({held} images)", acc * 100.0);
            candidates.push((lr, acc));
        }
    }
    let lr = candidates
        .iter()
        .copied()
        .fold((s.lrs[0], f64::NEG_INFINITY), |best, c| if c.1 > best.1 { c } else { best })
        .0;
    let tuned = fit(load, &images, &labels, lr, s, cfg, classes)?;
    let test_top1 = top1(&tuned, test.0, test.1, cfg);
    Ok(FinetuneReport {
        label_fraction: s.label_fraction,
        labelled: m,
        candidates,
        lr,
        test_top1,
        seconds: start.elapsed().as_secs_f64(),
    })
}
