//! `ssl finetune`: fine-tunes a checkpoint on labels and prints its top-1 beside the frozen
//! linear probe of the same checkpoint (part of the `ssl` binary).

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use ssl_train::eval::linear_probe;
use ssl_train::evaluate::{class_count, EvalData};
use ssl_train::finetune::{finetune, label_subset, FinetuneSettings};
use ssl_train::run_dir::checkpoint_config;
use ssl_train::{load_checkpoint, set_eval_precision};
use tch::Device;

/// Loads the run's config beside `checkpoint`, scores the frozen probe, fine-tunes, and writes
/// `finetune-<fraction>.json` (`finetune-<fraction>-validation.json` under `--validation`) into
/// the run directory.
pub(crate) fn run(
    checkpoint: &Path,
    overrides: &[String],
    validation: bool,
    settings: &FinetuneSettings,
) -> Result<()> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let mut overrides = overrides.to_vec();
    if validation {
        overrides.push("eval.validation=true".into());
    }
    let cfg = checkpoint_config(checkpoint, &overrides)
        .with_context(|| format!("loading the config of {}", checkpoint.display()))?;
    let device = Device::cuda_if_available();
    let load = || load_checkpoint(checkpoint, &cfg, device);
    let data = EvalData::load(&cfg)?;
    let on = if cfg.eval.validation { "held-out training images" } else { "test images" };

    let (_vs, mut frozen) = load()?;
    println!("evaluation precision: {}", set_eval_precision(frozen.as_mut(), &cfg));
    // One pass of feature extraction serves the probe on all labels and on the subset.
    let (train_f, test_f) = data.features(frozen.backbone(), &cfg, device);
    let ((_, train_y), (_, test_y)) = (data.train_split(), data.test_split());
    let probe = data.score_features(&train_f, &test_f, &cfg, Instant::now());
    let classes = class_count(&[train_y, test_y]);
    // Like for like: the frozen probe trained on the same labelled subset fine-tuning draws.
    let subset = label_subset(train_y, classes, settings.label_fraction, cfg.seed)?;
    let subset_probe = linear_probe(
        &train_f.index_select(0, &subset),
        &train_y.index_select(0, &subset),
        &test_f,
        test_y,
        classes,
        &cfg.eval.linear,
        cfg.seed,
    );
    drop(frozen);

    let report = finetune(&load, data.train_split(), data.test_split(), classes, settings, &cfg)?;
    let lr =
        if report.candidates.is_empty() { "given" } else { "chosen on held-out labelled images" };
    println!(
        "{}: fine-tuned on {} labelled images ({:.0} % of the labels, {} epochs; lr {} {lr}, \
         backbone at {}×): top-1 {:.2} % on {on}; frozen linear probe on the same labelled \
         images {:.2} %, on all {:.2} %, kNN-200 {:.2} % ({:.0} s)",
        checkpoint.display(),
        report.labelled,
        report.label_fraction * 100.0,
        settings.epochs,
        report.lr,
        settings.backbone_lr_scale,
        report.test_top1 * 100.0,
        subset_probe.test_top1 * 100.0,
        probe.linear_top1 * 100.0,
        probe.knn_top1 * 100.0,
        report.seconds,
    );
    // Held-out scores never overwrite the test set's.
    let suffix = if cfg.eval.validation { "-validation" } else { "" };
    let out = dir.join(format!("finetune-{}{suffix}.json", settings.label_fraction));
    let json = serde_json::json!({
        "finetune": report,
        "epochs": settings.epochs,
        "frozen_linear_top1": probe.linear_top1,
        "frozen_linear_top1_same_labels": subset_probe.test_top1,
        "frozen_knn_top1": probe.knn_top1,
        "validation": cfg.eval.validation,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("report: {}", out.display());
    Ok(())
}
