//! The pre-training loop of any [`Method`]: views, the method's step, the optimiser, metrics,
//! kNN monitor, and the run's length (epochs, steps, or a wall-clock budget turned into steps).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use ssl_aug::{aug_rng, Aug};
use ssl_data::{Dataset, Loader, LoaderConfig, Subset};
use ssl_models::CpuFeatures;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::budget::{steps_within_budget, BudgetInputs};
use crate::checkpoint::{Checkpoint, Position};
use crate::collapse::CollapseStats;
use crate::config::{Length, NonFinitePolicy};
use crate::data_source::Part;
use crate::evaluate::held_out_len;
use crate::init_from::init_backbones;
use crate::method::{Batch, Method, StepContext};
use crate::monitor::Monitor;
use crate::online_probe::OnlineProbe;
use crate::optim::Optimizer;
use crate::progress::{clock, Progress};
use crate::resume::{groups, restore};
use crate::run_dir::RunDir;
use crate::schedule::warmup_cosine;
use crate::{Config, Result, TrainError};

/// A budgeted run times its steps from this step on (the first ones create oneDNN's kernels and
/// the allocator's pools, and are slower).
const TIMED_FROM: u64 = 3;
/// The collapse monitors read the last this many embeddings of each epoch.
const COLLAPSE_SAMPLES: i64 = 2048;
/// A budgeted run needs at least this many warm-up steps to time.
const MIN_TIMED_STEPS: u64 = 8;
/// The fraction of a budget kept back for the machine's speed drifting. The length is fixed
/// once (so that `train.steps` replays it), and shared 2-core machines were seen to slow down
/// by up to 18 % for minutes after the warm-up had been timed (docs/results.md): the margin
/// absorbs part of that, the main job's budget leaves room for the rest.
const BUDGET_MARGIN: f64 = 0.05;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct StepMetrics {
    /// Optimiser step, from 0.
    pub step: u64,
    /// Epoch, from 0.
    pub epoch: u64,
    /// The method's loss on the step's batch.
    pub loss: f64,
    /// Learning rate of the step.
    pub lr: f64,
    /// Source images per second since the epoch started.
    pub images_per_second: f64,
    /// The method's extra scalars ([`crate::StepOutput::logs`]), by name.
    #[serde(flatten)]
    pub extra: BTreeMap<String, f64>,
}

/// What one epoch measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch, from 0.
    pub epoch: u64,
    /// Mean loss of its steps.
    pub loss: f64,
    /// kNN top-1 of the monitor's held-out queries after the epoch, when the monitor is on.
    pub knn_monitor: Option<f64>,
    /// The online linear probe's top-1 on the same queries, when both are on.
    #[serde(default)]
    pub online_linear: Option<f64>,
    /// The per-dimension std of the epoch's last unit embeddings (healthy ≈ 1/√d).
    #[serde(default)]
    pub embedding_std: Option<f64>,
    /// Their effective rank (RankMe, between 1 and d).
    #[serde(default)]
    pub rankme: Option<f64>,
}

/// How a budgeted run fixed its length.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    /// The budget of the training loop, minutes.
    pub budget_minutes: f64,
    /// The step before which the length was fixed (the end of the warm-up).
    pub decided_at_step: u64,
    /// Measured seconds per step.
    pub step_seconds: f64,
    /// Measured seconds of one kNN-monitor pass (0 when off).
    pub monitor_seconds: f64,
    /// The steps chosen: `train.steps` of the resolved config.
    pub steps: u64,
}

/// A trained encoder and what training measured.
#[derive(Debug)]
pub struct Trained {
    /// The method's trainable variables (`backbone.*`, `head.*`, ...).
    pub vs: VarStore,
    /// The method built on them.
    pub model: Box<dyn Method>,
    /// The config as run: precision resolved, and a budget replaced by its `train.steps`.
    pub config: Config,
    /// Why the backbone computes in the precision it does.
    pub precision_reason: String,
    /// Loss of every step.
    pub losses: Vec<f64>,
    /// Per-epoch means and monitor scores.
    pub epochs: Vec<EpochMetrics>,
    /// kNN monitor of the untrained network, when a budgeted run timed the monitor up front.
    pub knn_monitor_before: Option<f64>,
    /// How a budget was turned into steps, for budgeted runs.
    pub budget: Option<BudgetReport>,
    /// Wall time of the training loop (monitor included), seconds.
    pub seconds: f64,
    /// Source images per second over the optimiser steps (data wait included).
    pub images_per_second: f64,
    /// Time the training thread waited for the loader, seconds.
    pub data_wait_seconds: f64,
    /// Steps skipped for a non-finite loss or gradient (`train.on_non_finite: skip`).
    pub skipped_steps: u64,
    /// Pre-training files left out because they did not decode (`data.on_corrupt: skip`).
    pub skipped_files: Vec<PathBuf>,
}

/// Builds a method's variables in a [`VarStore`] (for [`train_with`]).
pub type BuildMethod<'a> = dyn FnOnce(&VarStore, &Config) -> Result<Box<dyn Method>> + 'a;

/// The method of `cfg` on `device`, with libtorch's generator seeded from `cfg.seed` first
/// (weights are drawn from it).
///
/// # Errors
/// The method's config errors.
pub fn build_model(cfg: &Config, device: Device) -> Result<(VarStore, Box<dyn Method>)> {
    build_seeded(cfg, device, Box::new(default_method))
}

/// [`build_model`] with the weights of `checkpoint` (a `checkpoint.safetensors` written by
/// training) loaded into it.
///
/// # Errors
/// The method's config errors; [`TrainError::Invalid`] naming the checkpoint when it cannot
/// be read or does not hold the method's variables.
pub fn load_checkpoint(
    checkpoint: &Path,
    cfg: &Config,
    device: Device,
) -> Result<(VarStore, Box<dyn Method>)> {
    let (mut vs, model) = build_model(cfg, device)?;
    vs.load(checkpoint).map_err(|e| TrainError::Invalid {
        field: "checkpoint".into(),
        value: checkpoint.display().to_string(),
        reason: e.to_string(),
    })?;
    Ok((vs, model))
}

/// The method `cfg` names.
pub(crate) fn default_method(vs: &VarStore, cfg: &Config) -> Result<Box<dyn Method>> {
    cfg.method.build(vs, cfg)
}

fn build_seeded(
    cfg: &Config,
    device: Device,
    build: Box<BuildMethod<'_>>,
) -> Result<(VarStore, Box<dyn Method>)> {
    tch::manual_seed(cfg.seed as i64);
    let vs = VarStore::new(device);
    let model = build(&vs, cfg)?;
    Ok((vs, model))
}

/// Images of the training split held out of pre-training by `cfg.eval.validation` (0
/// otherwise): the tail that [`EvalData::validation`](crate::evaluate::EvalData::validation)
/// scores on.
pub fn held_out(cfg: &Config, train_images: usize) -> usize {
    if !cfg.eval.validation {
        return 0;
    }
    held_out_len(train_images as i64, cfg.eval.linear.val_fraction) as usize
}

/// Pre-trains the method `cfg.method` names on the pre-training images of `cfg.data` (CPU, or
/// the first GPU), writing the resolved config, metrics and checkpoints into `run` when given.
///
/// The backbone's precision is resolved for this machine first ([`ssl_models::Precision::resolve`]); a
/// `train.budget_minutes` becomes `train.steps` at the end of the warm-up. Both land in the
/// returned [`Trained::config`] and in `run`'s `config.yaml`.
///
/// # Errors
/// Data, model and loss errors, each naming its file or field; a budget too small for the
/// warm-up; run-directory I/O errors.
pub fn train(cfg: &Config, run: Option<&RunDir>) -> Result<Trained> {
    train_with(cfg, run, Box::new(default_method))
}

/// As [`train`], for the method `build` makes (a user's own [`Method`], for example): the
/// generator is seeded from `cfg.seed` before `build` runs, and the loop, monitors, length
/// and run directory are the same as for the shipped methods.
///
/// # Errors
/// As [`train`], and `build`'s errors.
pub fn train_with(
    cfg: &Config,
    run: Option<&RunDir>,
    build: Box<BuildMethod<'_>>,
) -> Result<Trained> {
    train_from(cfg, run, build, None)
}

/// [`train_with`], continuing from `resume` when given: its tensors restored into the freshly
/// built run, its position (epoch, batch, steps, metrics so far) taken up.
pub(crate) fn train_from(
    cfg: &Config,
    run: Option<&RunDir>,
    build: Box<BuildMethod<'_>>,
    resume: Option<Checkpoint>,
) -> Result<Trained> {
    cfg.validate()?;
    let device = Device::cuda_if_available();
    let choice = cfg.model.backbone.precision().resolve(device, &CpuFeatures::detect());
    let mut cfg = cfg.clone();
    cfg.model.backbone.set_precision(choice.precision);
    println!("precision: {}", choice.reason);
    if let Some(w) = &choice.warning {
        eprintln!("warning: {w}");
    }
    if let Some(run) = run {
        run.write_config(&cfg)?;
    }

    let source = cfg.data.source();
    let images = source.open(Part::Pretrain, "data")?;
    let n = images.len();
    // A held-out tail of evaluation's training images stays out of pre-training too.
    let cut = if cfg.pretrains_on_eval_train() { held_out(&cfg, n) } else { 0 };
    let pretrain = Arc::new(Subset::new(images, 0..n - cut)?);
    let monitor = Monitor::new(&cfg)?;
    let (vs, mut model) = build_seeded(&cfg, device, build)?;
    if let Some(path) = &cfg.model.init_from {
        let report = init_backbones(&vs, path)?;
        model.reset_targets()?;
        println!(
            "init: {} backbone tensors from {} (momentum copies reset to them); ignored: {:?}",
            report.loaded,
            path.display(),
            report.ignored
        );
    }
    let mut probe = match (&monitor, cfg.eval.online_probe) {
        (Some(m), true) => {
            Some(OnlineProbe::new(model.backbone().feature_dim(), m.classes(), device)?)
        }
        _ => None,
    };
    let o = cfg.optim;
    let mut opt = Optimizer::new(&vs, o.kind, o.momentum, o.weight_decay, o.trust_coefficient)
        .with_lr_groups(|name| model.lr_group(name), o.lr);
    let mut at = Position::start();
    if let Some(c) = resume {
        restore(&c, &vs, model.as_mut(), &mut opt, probe.as_mut())?;
        println!(
            "resumed from {} at step {} (epoch {}, batch {})",
            c.tensors.path().display(),
            c.position.steps,
            c.position.epoch,
            c.position.batch
        );
        at = c.position;
    }
    let mut last_good: Option<PathBuf> = None;
    let loader = Loader::new(
        Arc::clone(&pretrain),
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
    let warmup = (o.warmup_epochs * per_epoch as f64).round() as u64;
    let length = cfg.train.length();
    let mut total = match length {
        Length::Epochs(e) => Some(per_epoch * e),
        Length::Steps(s) => Some(s),
        Length::Budget(_) => None,
    };
    if let Length::Budget(_) = length {
        if warmup < MIN_TIMED_STEPS {
            return Err(TrainError::Invalid {
                field: "optim.warmup_epochs".into(),
                value: format!("{} ({warmup} steps)", o.warmup_epochs),
                reason: format!(
                    "a train.budget_minutes run times its warm-up, which needs ≥ {MIN_TIMED_STEPS} steps"
                ),
            });
        }
    }
    let cut = cfg.train.max_steps.unwrap_or(u64::MAX);
    let mut progress = Progress::new(total.map(|t| t.min(cut)));
    let start = Instant::now();
    let mut monitor_spent = 0.0; // Seconds of monitor passes so far.
    let mut monitor_pass = 0.0; // Seconds of the last monitor pass.
    let mut knn_monitor_before = at.knn_monitor_before;
    if let (Length::Budget(_), Some(m), 0) = (length, &monitor, at.steps) {
        if warmup < per_epoch {
            // No epoch ends before the length is fixed: time one pass now.
            let (acc, secs, _) = m.score(model.backbone(), &cfg, device);
            progress.println(&format!(
                "kNN monitor before training: {:.2} % ({secs:.1} s)",
                acc * 100.0
            ));
            (knn_monitor_before, monitor_pass, monitor_spent) = (Some(acc), secs, secs);
        }
    }
    let mut timed_from: Option<(Instant, f64)> = None; // (clock, monitor_spent) at TIMED_FROM.
    let mut budget = at.budget.clone();
    let (mut step_seconds, mut waited) = (at.step_seconds, at.data_wait_seconds);
    let mut skipped = at.skipped_steps;
    let mut losses = std::mem::take(&mut at.losses);
    losses.reserve(total.unwrap_or(0).min(cut) as usize);
    let mut epochs = std::mem::take(&mut at.epochs);
    let finished = |losses: &Vec<f64>, total: Option<u64>| {
        let done = losses.len() as u64;
        done >= cut || Some(done) == total
    };
    let (first_epoch, mut first_batch) = (at.epoch, at.batch as usize);
    // A run resumed mid-epoch: that epoch's mean loss still starts at its first step.
    let mut resumed_epoch_first = (at.batch > 0).then_some(at.epoch_first_step as usize);
    for epoch in first_epoch.. {
        if finished(&losses, total) {
            break; // A run resumed from its last checkpoint.
        }
        let here = losses.len(); // this process's first step of the epoch
        let first = resumed_epoch_first.take().unwrap_or(here);
        let mut recent: Vec<Tensor> = Vec::new(); // the epoch's last embeddings
        let epoch_start = Instant::now();
        let mut batches = loader.epoch_from(epoch, std::mem::take(&mut first_batch));
        let mut i = batches.first().wrapping_sub(1); // the batch's index in the epoch
        while let Some(batch) = batches.next() {
            i = i.wrapping_add(1);
            let step = losses.len() as u64;
            if let (Length::Budget(seconds), None) = (length, total) {
                if step == TIMED_FROM {
                    timed_from = Some((Instant::now(), monitor_spent));
                }
                if step == warmup {
                    let (t0, spent0) = timed_from.expect("warm-up ≥ MIN_TIMED_STEPS > TIMED_FROM");
                    let timed = t0.elapsed().as_secs_f64() - (monitor_spent - spent0);
                    let inputs = BudgetInputs {
                        budget_seconds: seconds,
                        elapsed_seconds: start.elapsed().as_secs_f64(),
                        steps_done: step,
                        step_seconds: timed / (step - TIMED_FROM) as f64,
                        steps_per_epoch: per_epoch,
                        monitor_seconds: monitor_pass,
                        margin: BUDGET_MARGIN,
                    };
                    let steps = steps_within_budget(&inputs);
                    if steps <= warmup {
                        return Err(TrainError::Invalid {
                            field: "train.budget_minutes".into(),
                            value: (seconds / 60.0).to_string(),
                            reason: format!(
                                "the warm-up alone ({warmup} steps, {:.0} s) uses the budget on \
                                 this machine ({:.2} s a step): raise the budget or shorten \
                                 optim.warmup_epochs",
                                inputs.elapsed_seconds, inputs.step_seconds
                            ),
                        });
                    }
                    total = Some(steps);
                    progress.set_total(steps.min(cut));
                    cfg.train = crate::config::TrainConfig {
                        epochs: None,
                        steps: Some(steps),
                        budget_minutes: None,
                        ..cfg.train
                    };
                    if let Some(run) = run {
                        run.write_config(&cfg)?;
                    }
                    progress.println(&format!(
                        "budget {}: {:.3} s a step, {monitor_pass:.1} s a monitor pass → {steps} \
                         steps ({:.2} epochs), ending in about {}; replay with --set \
                         train.steps={steps}",
                        clock(seconds),
                        inputs.step_seconds,
                        steps as f64 / per_epoch as f64,
                        clock(inputs.elapsed_seconds + inputs.seconds_to(steps)),
                    ));
                    budget = Some(BudgetReport {
                        budget_minutes: seconds / 60.0,
                        decided_at_step: step,
                        step_seconds: inputs.step_seconds,
                        monitor_seconds: monitor_pass,
                        steps,
                    });
                }
            }
            if finished(&losses, total) {
                break;
            }
            // libtorch's generator (MoCo's shuffle, …) restarts from (seed, step) every step,
            // so a resumed run draws what the uninterrupted one drew.
            tch::manual_seed(step_seed(cfg.seed, step));
            let x = batch.images.to_device(device).to_kind(Kind::Float) / 255.0; // [B, C, H, W]
            let views = (model.views().iter().enumerate())
                .map(|(v, aug)| {
                    aug.f_forward(&x, &mut aug_rng(cfg.seed, &[epoch, i as u64, v as u64]))
                })
                .collect::<std::result::Result<Vec<Tensor>, _>>()?; // each [B, C, H', W']
            let ctx = StepContext { step, total: total.unwrap_or(u64::MAX), epoch };
            let labels = batch.labels.as_ref().filter(|_| model.uses_labels());
            if model.uses_labels() && labels.is_none() {
                return Err(TrainError::Invalid {
                    field: "method.name".into(),
                    value: cfg.method.name().into(),
                    reason: "the method trains on labels, and the data has none".into(),
                });
            }
            let out = model.step(&Batch { views: &views, labels }, &ctx)?;
            let lr = warmup_cosine(step, warmup, ctx.total, o.lr);
            let value = out.loss.double_value(&[]);
            let bad = if value.is_finite() {
                opt.zero_grad();
                out.loss.backward();
                opt.first_non_finite_grad()
            } else {
                Some("loss".to_owned())
            };
            if let Some(what) = bad {
                if cfg.train.on_non_finite == NonFinitePolicy::Stop {
                    return Err(TrainError::NonFinite {
                        step,
                        what,
                        last_good: describe(&last_good),
                    });
                }
                opt.zero_grad();
                skipped += 1;
                progress.println(&format!("step {step}: {what} is not finite; step skipped"));
                continue;
            }
            opt.step(lr);
            model.after_step(&ctx)?;
            if let (Some(p), Some(h), Some(y)) = (&mut probe, &out.features, &batch.labels) {
                p.train_step(h, y);
            }
            if let Some(z) = &out.embeddings {
                recent.push(z.shallow_clone());
                while recent.len() > 1
                    && recent[1..].iter().map(|t| t.size()[0]).sum::<i64>() >= COLLAPSE_SAMPLES
                {
                    let _ = recent.remove(0);
                }
            }
            losses.push(value);
            let ips =
                ((losses.len() - here) as i64 * b) as f64 / epoch_start.elapsed().as_secs_f64();
            progress.step(step, epoch, value, ips);
            if let Some(run) = run {
                run.log_step(&StepMetrics {
                    step,
                    epoch,
                    loss: value,
                    lr,
                    images_per_second: ips,
                    extra: out.logs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                })?;
                if cfg.checkpoint.every_steps.is_some_and(|k| (step + 1).is_multiple_of(k)) {
                    let at = Position {
                        steps: step + 1,
                        epoch,
                        batch: i as u64 + 1,
                        epoch_first_step: first as u64,
                        losses: losses.clone(),
                        epochs: epochs.clone(),
                        knn_monitor_before,
                        budget: budget.clone(),
                        skipped_steps: skipped,
                        step_seconds: step_seconds + epoch_start.elapsed().as_secs_f64(),
                        data_wait_seconds: waited + batches.waited().as_secs_f64(),
                    };
                    let groups = groups(&vs, model.as_ref(), &opt, probe.as_ref());
                    last_good = Some(run.save_resumable(&groups, &at, cfg.checkpoint.keep)?);
                    run.save_checkpoint(&vs)?;
                }
            }
        }
        if let Some(e) = batches.take_error() {
            return Err(e.into());
        }
        waited += batches.waited().as_secs_f64();
        drop(batches);
        step_seconds += epoch_start.elapsed().as_secs_f64();
        let done = &losses[first..];
        let loss = done.iter().sum::<f64>() / done.len().max(1) as f64;
        model.after_epoch(epoch)?;
        let collapse = (recent.iter().map(|t| t.size()[0]).sum::<i64>() >= 2)
            .then(|| CollapseStats::measure(&Tensor::cat(&recent, 0)));
        let mut online_linear = None;
        let knn_monitor = monitor.as_ref().map(|m| {
            let (acc, secs, queries) = m.score(model.backbone(), &cfg, device);
            (monitor_pass, monitor_spent) = (secs, monitor_spent + secs);
            online_linear = probe.as_ref().map(|p| p.accuracy(&queries, m.query_labels()));
            acc
        });
        let mut line = format!("epoch {epoch}: loss {loss:.4}");
        if let Some(acc) = knn_monitor {
            line += &format!(", kNN monitor {:.2} % ({monitor_pass:.1} s)", acc * 100.0);
        }
        if let Some(acc) = online_linear {
            line += &format!(", online linear {:.2} %", acc * 100.0);
        }
        if let Some(c) = &collapse {
            line += &format!(
                ", embedding std·√d {:.3}, RankMe {:.1}/{}",
                c.embedding_std * (c.dim as f64).sqrt(),
                c.rankme,
                c.dim
            );
        }
        progress.println(&line);
        if let Some(w) = collapse.as_ref().and_then(CollapseStats::warning) {
            progress.println(&format!("warning: epoch {epoch}: {w}"));
        }
        let metrics = EpochMetrics {
            epoch,
            loss,
            knn_monitor,
            online_linear,
            embedding_std: collapse.map(|c| c.embedding_std),
            rankme: collapse.map(|c| c.rankme),
        };
        epochs.push(metrics.clone());
        if let Some(run) = run {
            run.log_step(&metrics)?;
            let at = Position {
                steps: losses.len() as u64,
                epoch: epoch + 1,
                batch: 0,
                epoch_first_step: losses.len() as u64,
                losses: losses.clone(),
                epochs: epochs.clone(),
                knn_monitor_before,
                budget: budget.clone(),
                skipped_steps: skipped,
                step_seconds,
                data_wait_seconds: waited,
            };
            let groups = groups(&vs, model.as_ref(), &opt, probe.as_ref());
            last_good = Some(run.save_resumable(&groups, &at, cfg.checkpoint.keep)?);
        }
        if finished(&losses, total) {
            break;
        }
    }
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    if let Some(run) = run {
        run.save_checkpoint(&vs)?;
    }
    if skipped > 0 {
        println!("{skipped} steps skipped for a non-finite loss or gradient");
    }
    let files = pretrain.skipped();
    if !files.is_empty() {
        println!("{} files skipped (data.on_corrupt: skip): {files:?}", files.len());
    }
    let images_per_second = (losses.len() as f64 * b as f64) / step_seconds.max(1e-9);
    Ok(Trained {
        vs,
        model,
        config: cfg,
        precision_reason: choice.reason,
        losses,
        epochs,
        knn_monitor_before,
        budget,
        seconds,
        images_per_second,
        data_wait_seconds: waited,
        skipped_steps: skipped,
        skipped_files: files,
    })
}

/// The seed of libtorch's generator at step `step` of a run seeded `seed` (SplitMix64).
fn step_seed(seed: u64, step: u64) -> i64 {
    let mut z = seed.wrapping_add(step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

/// "the last good checkpoint is P", or that there is none yet.
fn describe(last_good: &Option<PathBuf>) -> String {
    match last_good {
        Some(p) => format!("the last good checkpoint is {} (ssl train --resume)", p.display()),
        None => "no checkpoint was written before it".into(),
    }
}
