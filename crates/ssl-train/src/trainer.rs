//! The pre-training loop: views, forward, NT-Xent, LARS step, metrics, kNN monitor.

use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use ssl_aug::{aug_rng, Aug};
use ssl_data::{IdxImages, Loader, LoaderConfig, Split};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::eval::{extract_features, knn_top1};
use crate::optim::Optimizer;
use crate::run_dir::RunDir;
use crate::schedule::warmup_cosine;
use crate::{Config, Result, SimClr};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Optimiser step, from 0.
    pub step: u64,
    /// Epoch, from 0.
    pub epoch: u64,
    /// NT-Xent of the step's batch.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Source images per second since training started.
    pub images_per_second: f64,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Mean loss of its steps.
    pub loss: f64,
    /// kNN top-1 of the monitor subset after the epoch, when the monitor is on.
    pub knn_monitor: Option<f64>,
}

/// A trained encoder and what training measured.
#[derive(Debug)]
pub struct Trained {
    /// The variables (`backbone.*`, `head.*`).
    pub vs: VarStore,
    /// The model built on them.
    pub model: SimClr,
    /// Loss of every step.
    pub losses: Vec<f64>,
    /// Per-epoch means and monitor scores.
    pub epochs: Vec<EpochMetrics>,
    /// Wall time of the training loop (monitor included), seconds.
    pub seconds: f64,
    /// Source images per second over the optimiser steps (data wait included).
    pub images_per_second: f64,
    /// Time the training thread waited for the loader, seconds.
    pub data_wait_seconds: f64,
}

/// The model of `cfg`, with libtorch's generator seeded from `cfg.seed` first (weights are
/// drawn from it), on `device`.
pub fn build_model(cfg: &Config, device: Device) -> Result<(VarStore, SimClr)> {
    tch::manual_seed(cfg.seed as i64);
    let vs = VarStore::new(device);
    let model = SimClr::new(&vs.root(), cfg)?;
    Ok((vs, model))
}

/// Pre-trains SimCLR on the training split of `cfg.data.dir` (CPU, or the first GPU), writing
/// metrics and checkpoints into `run` when given.
///
/// # Errors
/// Data, model and loss errors, each naming its file or field, and run-directory I/O errors.
pub fn train(cfg: &Config, run: Option<&RunDir>) -> Result<Trained> {
    cfg.validate()?;
    let device = Device::cuda_if_available();
    let train_set = Arc::new(IdxImages::fashion_mnist(&cfg.data.dir, Split::Train)?);
    let monitor = Monitor::new(cfg, &train_set)?;
    let (vs, model) = build_model(cfg, device)?;
    let views = cfg.augment.build()?;
    let o = cfg.optim;
    let mut opt = Optimizer::new(&vs, o.kind, o.momentum, o.weight_decay, o.trust_coefficient);
    let loader = Loader::new(
        Arc::clone(&train_set),
        LoaderConfig {
            batch_size: cfg.data.batch_size as usize,
            workers: cfg.data.workers,
            prefetch: cfg.data.prefetch,
            shuffle: true,
            drop_last: true,
            seed: cfg.seed,
        },
    )?;

    let b = cfg.data.batch_size;
    let per_epoch = loader.batches_per_epoch() as u64;
    let total = (per_epoch * cfg.train.epochs).min(cfg.train.max_steps.unwrap_or(u64::MAX));
    let warmup = (o.warmup_epochs * per_epoch as f64).round() as u64;
    let schedule_len = per_epoch * cfg.train.epochs;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps {elapsed_precise}  {msg}  ETA {eta}",
        )
        .expect("static template"),
    );
    let start = Instant::now();
    let (mut step_seconds, mut waited) = (0.0, 0.0);
    let mut losses = Vec::with_capacity(total as usize);
    let mut epochs = Vec::new();
    for epoch in 0..cfg.train.epochs {
        let first = losses.len();
        let epoch_start = Instant::now();
        let mut batches = loader.epoch(epoch);
        for (i, batch) in (&mut batches).enumerate() {
            if losses.len() as u64 == total {
                break;
            }
            let step = losses.len() as u64;
            let x = batch.images.to_device(device).to_kind(Kind::Float) / 255.0; // [B, 1, H, W]
            let v1 = views.forward(&x, &mut aug_rng(cfg.seed, &[epoch, i as u64, 0]));
            let v2 = views.forward(&x, &mut aug_rng(cfg.seed, &[epoch, i as u64, 1]));
            let loss = model.loss(&v1, &v2);
            let lr = warmup_cosine(step, warmup, schedule_len, o.lr);
            opt.backward_step(&loss, lr);
            let value = loss.double_value(&[]);
            losses.push(value);
            let ips =
                ((losses.len() - first) as i64 * b) as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("epoch {epoch} loss {value:.4} {ips:.0} img/s"));
            bar.inc(1);
            if let Some(run) = run {
                run.log_step(&StepMetrics {
                    step,
                    epoch,
                    loss: value,
                    lr,
                    images_per_second: ips,
                })?;
                if cfg.checkpoint.every_steps.is_some_and(|k| (step + 1).is_multiple_of(k)) {
                    run.save_checkpoint(&vs)?;
                }
            }
        }
        waited += batches.waited().as_secs_f64();
        drop(batches);
        step_seconds += epoch_start.elapsed().as_secs_f64();
        let done = &losses[first..];
        let loss = done.iter().sum::<f64>() / done.len().max(1) as f64;
        let knn_monitor = monitor.as_ref().map(|m| m.score(&model, cfg, device));
        if let Some(acc) = knn_monitor {
            bar.suspend(|| {
                println!("epoch {epoch}: loss {loss:.4}, kNN monitor {:.2} %", acc * 100.0)
            });
        }
        epochs.push(EpochMetrics { epoch, loss, knn_monitor });
        if losses.len() as u64 == total {
            break;
        }
    }
    bar.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();
    if let Some(run) = run {
        run.save_checkpoint(&vs)?;
    }
    let images_per_second = (losses.len() as f64 * b as f64) / step_seconds.max(1e-9);
    Ok(Trained { vs, model, losses, epochs, seconds, images_per_second, data_wait_seconds: waited })
}

/// The kNN monitor: a fixed subset of training images as memory, a fixed subset of test
/// images as queries.
struct Monitor {
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
}

impl Monitor {
    fn new(cfg: &Config, train_set: &IdxImages) -> Result<Option<Self>> {
        let e = &cfg.eval;
        if e.monitor_bank == 0 || e.monitor_queries == 0 {
            return Ok(None);
        }
        let test_set = IdxImages::fashion_mnist(&cfg.data.dir, Split::Test)?;
        let take = |set: &IdxImages, n: i64| {
            let n = n.min(set.len() as i64);
            let labels = set.labels_tensor().expect("fashion_mnist always reads the label file");
            (set.to_tensor().narrow(0, 0, n), labels.narrow(0, 0, n))
        };
        let (bank, bank_labels) = take(train_set, e.monitor_bank);
        let (queries, query_labels) = take(&test_set, e.monitor_queries);
        Ok(Some(Self { bank, bank_labels, queries, query_labels }))
    }

    fn score(&self, model: &SimClr, cfg: &Config, device: Device) -> f64 {
        let backbone = model.backbone();
        let resize = cfg.eval.resize_op();
        let bank = extract_features(backbone, &self.bank, 1024, resize.as_ref(), device);
        let queries = extract_features(backbone, &self.queries, 1024, resize.as_ref(), device);
        knn_top1(&bank, &self.bank_labels, &queries, &self.query_labels, 10, cfg.eval.knn)
    }
}
