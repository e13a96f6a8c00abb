//! The run configuration: one YAML document, `--set` overrides, validation before any tensor.
//!
//! Every struct rejects unknown keys, and errors name the dotted key (`optim.lr`). The YAML
//! files in `configs/` document each key.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ssl_aug::{Compose, Resize, ResizeConfig, ViewConfig};
use ssl_models::{BackboneConfig, Precision, ProjectionHead, ProjectionHeadConfig};
use tch::nn;

use crate::data_source::{DataFormat, SourceConfig};
use crate::error::{at_key, at_view_key, invalid};
use crate::eval::{KnnConfig, LinearProbeConfig};
pub use crate::methods::{
    MethodConfig, SimClrConfig, SimClrDclConfig, SimClrHclConfig, METHOD_NAMES,
};
use crate::optim::OptimKind;
use crate::{Result, TrainError};

/// A whole pre-training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seeds weight initialisation, the data order and the augmentations.
    pub seed: u64,
    /// Where the images come from and how they are batched.
    pub data: DataConfig,
    /// The augmentations of each view (every view uses these settings with its own draws,
    /// unless `augment_view2` sets the second view's).
    pub augment: ViewConfig,
    /// The second view's augmentations when they differ from the first's (BYOL's asymmetric
    /// blur and solarize); absent or `null`: `augment`.
    #[serde(default)]
    pub augment_view2: Option<ViewConfig>,
    /// The backbone every method trains.
    pub model: ModelConfig,
    /// The method and its own keys (heads, loss, momentum, queue).
    pub method: MethodConfig,
    /// The optimiser.
    pub optim: OptimConfig,
    /// How long to train.
    pub train: TrainConfig,
    /// How the frozen backbone is evaluated.
    pub eval: EvalConfig,
    /// When checkpoints are written.
    pub checkpoint: CheckpointConfig,
}

/// Data settings: the source of the pre-training images (the keys of [`SourceConfig`]) and
/// how they are batched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// `idx` (the default), `cifar10`, `cifar100`, `stl10` or `image_folder`.
    #[serde(default)]
    pub format: DataFormat,
    /// The directory of the files (Fashion-MNIST's IDX files, gzip, for the shipped configs).
    pub dir: PathBuf,
    /// `image_folder` only: the labelled test images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_dir: Option<PathBuf>,
    /// The images' side (required for `image_folder`; see [`SourceConfig::image_size`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<i64>,
    /// `image_folder` only: 3 (RGB, the default) or 1 (grayscale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<i64>,
    /// `image_folder` only: `fail` (the default) or `skip` files that do not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_corrupt: Option<ssl_data::OnCorrupt>,
    /// Images per batch, N; each gives two views, so the loss sees 2N.
    pub batch_size: i64,
    /// Loader threads assembling batches.
    pub workers: usize,
    /// Batches each loader thread may prepare ahead.
    pub prefetch: usize,
}

impl DataConfig {
    /// The source keys alone.
    pub fn source(&self) -> SourceConfig {
        SourceConfig {
            format: self.format,
            dir: self.dir.clone(),
            test_dir: self.test_dir.clone(),
            image_size: self.image_size,
            channels: self.channels,
            on_corrupt: self.on_corrupt,
        }
    }
}

/// The backbone f, whose pooled features evaluation scores; the heads are the method's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The backbone: a ResNet's keys, or `name: vit_tiny` (…) and a ViT's (see
    /// `backbone_yaml.rs` for the form).
    #[serde(with = "crate::backbone_yaml")]
    pub backbone: BackboneConfig,
    /// Optional: a torchvision / timm backbone `state_dict` (safetensors) every backbone of the
    /// method starts from, momentum copies included (`ssl train --init-from`); null or absent:
    /// the seeded initialisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
}

/// An MLP head of a method (its input width is what feeds it: the backbone's features for a
/// projector, the projection for a predictor): `num_layers` linear layers, each hidden one
/// followed by (optional) BatchNorm and ReLU, the last optionally by BatchNorm without affine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    /// Width of every hidden layer.
    pub hidden_dim: i64,
    /// Output width.
    pub output_dim: i64,
    /// Linear layers in total (1: a linear map).
    pub num_layers: i64,
    /// BatchNorm after each hidden linear layer.
    pub batch_norm: bool,
    /// BatchNorm without affine parameters after the output layer (SimSiam's projector).
    #[serde(default)]
    pub output_batch_norm: bool,
}

impl HeadConfig {
    /// The head as ssl-models builds it; `input_dim` is set by whoever knows the input.
    pub fn projection(&self) -> ProjectionHeadConfig {
        let mlp = ProjectionHeadConfig::mlp(
            1,
            self.hidden_dim,
            self.output_dim,
            self.num_layers,
            self.batch_norm,
        );
        ProjectionHeadConfig { output_batch_norm: self.output_batch_norm, ..mlp }
    }

    /// Builds this head under `p` with input width `input_dim` (a predictor reads the
    /// projector's output).
    ///
    /// # Errors
    /// The head's config errors.
    pub fn build(&self, p: &nn::Path, input_dim: i64) -> Result<ProjectionHead> {
        Ok(ProjectionHead::new(p, &ProjectionHeadConfig { input_dim, ..self.projection() })?)
    }

    /// Checks the sizes; errors name `key` (for example `method.predictor`).
    ///
    /// # Errors
    /// [`TrainError::Invalid`] when a size is below 1.
    pub fn validate(&self, key: &str) -> Result<()> {
        if self.hidden_dim < 1 || self.output_dim < 1 || self.num_layers < 1 {
            return Err(TrainError::Invalid {
                field: key.into(),
                value: format!("{self:?}"),
                reason: "hidden_dim, output_dim and num_layers must be ≥ 1".into(),
            });
        }
        Ok(())
    }
}

/// Checks a projector and the predictor that maps its output back to its own width (BYOL,
/// SimSiam): errors name `method.projector` / `method.predictor`.
///
/// # Errors
/// [`TrainError::Invalid`] naming the head, or `method.predictor.output_dim` when it differs
/// from the projector's.
pub fn validate_projector_and_predictor(
    projector: &HeadConfig,
    predictor: &HeadConfig,
) -> Result<()> {
    projector.validate("method.projector")?;
    predictor.validate("method.predictor")?;
    if predictor.output_dim != projector.output_dim {
        return Err(TrainError::Invalid {
            field: "method.predictor.output_dim".into(),
            value: predictor.output_dim.to_string(),
            reason: format!(
                "must equal method.projector.output_dim ({}): the prediction is compared with a \
                 projection",
                projector.output_dim
            ),
        });
    }
    Ok(())
}

/// Projection head sizes; its input is the backbone's feature dimension.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectionConfig {
    /// Hidden layer width.
    pub hidden_dim: i64,
    /// Output width, the dimension of z.
    pub output_dim: i64,
}

/// The optimiser and its learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// `lars`, `sgd` or `adamw`.
    pub kind: OptimKind,
    /// Peak learning rate, reached after the warm-up and decayed to 0 by a cosine.
    pub lr: f64,
    /// Epochs of linear warm-up.
    pub warmup_epochs: f64,
    /// LARS trust coefficient η (SimCLR: 0.001); unused by SGD and AdamW.
    pub trust_coefficient: f64,
    /// Momentum coefficient (AdamW's β₁), in [0, 1).
    pub momentum: f64,
    /// L2 weight decay, ≥ 0.
    pub weight_decay: f64,
}

/// Evaluation of the frozen backbone: the kNN monitor during training, kNN and the linear
/// probe at the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// kNN settings (k = 200, T = 0.1 as in Wu et al. 2018).
    pub knn: KnnConfig,
    /// Linear-probe settings.
    pub linear: LinearProbeConfig,
    /// The first this many training images are the kNN monitor's memory bank each epoch (0
    /// turns the monitor off).
    pub monitor_bank: i64,
    /// The last this many training images (held out of the bank) are the monitor's queries;
    /// the test set is never read during training.
    pub monitor_queries: i64,
    /// Train a linear classifier on the detached backbone features of each step's first view,
    /// beside pre-training, and score it on the monitor's queries each epoch (solo-learn's
    /// online linear probe; default true). It never changes the encoder.
    #[serde(default = "yes")]
    pub online_probe: bool,
    /// Also evaluate the randomly initialised network and raw pixels, the baselines.
    pub baselines: bool,
    /// The number format of evaluation's forward passes: `auto` (the default) applies the
    /// training rule on the evaluating machine, whatever the run trained in.
    #[serde(default)]
    pub precision: Precision,
    /// Pre-train on all but the last `eval.linear.val_fraction` of the training images and
    /// score on those instead of the test set, which is then never read: for choosing a recipe
    /// or an evaluation setting (`ssl train --validation` sets it).
    #[serde(default)]
    pub validation: bool,
    /// Optional resize of the images before a network sees them in evaluation (kNN monitor,
    /// kNN and linear probe, random init included); `null` keeps the images' own size. Raw
    /// pixels are never resized.
    #[serde(default)]
    pub resize: Option<ResizeConfig>,
    /// The labelled images evaluation (and the kNN monitor and online probe) uses, with the
    /// keys of `data`'s source (`format`, `dir`, …); `null`: `data`'s own. Needed when `data`
    /// is unlabelled (an image folder without class sub-folders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<SourceConfig>,
}

fn yes() -> bool {
    true
}

impl EvalConfig {
    /// The evaluation resize op, when `resize` is set.
    ///
    /// # Panics
    /// When `resize` is invalid, which [`Config::validate`] rules out.
    pub fn resize_op(&self) -> Option<Resize> {
        self.resize.map(|r| r.build().expect("eval.resize is checked by Config::validate"))
    }
}

/// Checkpointing. A run with a run directory writes a resumable checkpoint
/// (`checkpoints/step-N.safetensors`: model, momentum encoders, queues, optimiser, online probe,
/// position; atomic, checksummed) at the end of every epoch and every `every_steps` steps, and
/// the backbone's `checkpoint.safetensors` then and at the end; `ssl train --resume DIR`
/// continues from the newest good one.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Also checkpoint every this many steps (`null`: at epoch ends and the end only).
    pub every_steps: Option<u64>,
    /// Resumable checkpoints kept (the newest ones), ≥ 1; default 3.
    #[serde(default = "three")]
    pub keep: usize,
}

fn three() -> usize {
    3
}

/// What a step whose loss or gradient is not finite does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Stop the run with an error naming the step and the last good checkpoint (the default).
    #[default]
    Stop,
    /// Skip the update (weights, optimiser and momentum encoders untouched), count it in the
    /// summary, and go on with the next batch.
    Skip,
}

/// Training length: exactly one of `epochs`, `steps` and `budget_minutes`.
///
/// The learning-rate schedule (warm-up, then a cosine to 0) always spans the whole length, so
/// a budget gives a slow machine a shorter schedule that still ends, never one cut mid-cosine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training set.
    #[serde(default)]
    pub epochs: Option<u64>,
    /// Optimiser steps. A budgeted run writes the number it chose here in its run directory's
    /// `config.yaml`, so `--set train.steps=N` replays it exactly on any machine.
    #[serde(default)]
    pub steps: Option<u64>,
    /// Wall-clock minutes for the training loop (kNN monitor included, final evaluation not):
    /// the steps of the warm-up measure the throughput, then the run fixes `steps` so that the
    /// whole schedule ends inside the budget.
    #[serde(default)]
    pub budget_minutes: Option<f64>,
    /// Stop after this many optimiser steps without changing the schedule (smoke tests);
    /// `null` trains the whole length.
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// A non-finite loss or gradient: `stop` (the default) or `skip` the step.
    #[serde(default)]
    pub on_non_finite: NonFinitePolicy,
}

/// How long a run trains, from [`TrainConfig`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Length {
    /// Whole passes over the training set.
    Epochs(u64),
    /// A fixed number of optimiser steps.
    Steps(u64),
    /// A wall-clock budget in seconds, turned into steps after the warm-up has been timed.
    Budget(f64),
}

impl TrainConfig {
    /// The one length that is set.
    ///
    /// # Panics
    /// When not exactly one is set, which [`Config::validate`] rules out.
    pub fn length(&self) -> Length {
        match (self.epochs, self.steps, self.budget_minutes) {
            (Some(e), None, None) => Length::Epochs(e),
            (None, Some(s), None) => Length::Steps(s),
            (None, None, Some(m)) => Length::Budget(m * 60.0),
            _ => {
                panic!("train: exactly one of epochs, steps, budget_minutes (checked by validate)")
            }
        }
    }
}

impl Config {
    /// The labelled source of evaluation and its key: `eval.data`, else `data`'s.
    pub fn eval_source(&self) -> (SourceConfig, &'static str) {
        match &self.eval.data {
            Some(s) => (s.clone(), "eval.data"),
            None => (self.data.source(), "data"),
        }
    }

    /// Whether pre-training reads evaluation's training images (the same source, not
    /// STL-10's unlabelled part): then a held-out tail for `--validation` is cut from both.
    pub fn pretrains_on_eval_train(&self) -> bool {
        self.eval.data.as_ref().is_none_or(|s| *s == self.data.source())
            && self.data.source().pretrains_on_train()
    }

    /// `[height, width]` of the images a network sees in evaluation: `eval.resize`'s size,
    /// else the evaluation source's own.
    pub fn eval_image_size(&self) -> [i64; 2] {
        self.eval.resize.map_or(self.eval_source().0.image_size(), |r| r.size)
    }

    /// The second view's augmentations: `augment_view2`, or `augment`.
    pub fn view2(&self) -> &ViewConfig {
        self.augment_view2.as_ref().unwrap_or(&self.augment)
    }

    /// The pipelines of a two-view method: `augment` for the first view, [`Config::view2`]
    /// for the second.
    ///
    /// # Errors
    /// An op's invalid settings.
    pub fn two_views(&self) -> Result<[Compose; 2]> {
        Ok([self.augment.build()?, self.view2().build()?])
    }

    /// Checks every value that parses but is out of range.
    ///
    /// # Errors
    /// [`TrainError::Invalid`] naming the dotted key, or the leaf crates' config errors.
    pub fn validate(&self) -> Result<()> {
        self.data.source().validate("data")?;
        if self.checkpoint.keep < 1 {
            return invalid("checkpoint.keep", self.checkpoint.keep, "must be ≥ 1");
        }
        if let Some(e) = &self.eval.data {
            e.validate("eval.data")?;
        }
        let want = self.model.backbone.in_channels();
        for (source, key) in [(self.data.source(), "data"), self.eval_source()] {
            if source.channels() != want {
                let reason = format!(
                    "must be {key}'s channels, {} ({:?} images)",
                    source.channels(),
                    source.format
                );
                return invalid("model.backbone.in_channels", want, &reason);
            }
        }
        if self.data.batch_size < 2 {
            return invalid("data.batch_size", self.data.batch_size.to_string(), "must be ≥ 2");
        }
        if self.data.workers < 1 || self.data.prefetch < 1 {
            return invalid(
                "data.workers",
                format!("{} (prefetch {})", self.data.workers, self.data.prefetch),
                "workers and prefetch must be ≥ 1",
            );
        }
        let o = &self.optim;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return invalid("optim.lr", o.lr.to_string(), "must be a finite number > 0");
        }
        if !(o.warmup_epochs >= 0.0 && o.warmup_epochs.is_finite()) {
            return invalid("optim.warmup_epochs", o.warmup_epochs.to_string(), "must be ≥ 0");
        }
        if !(o.trust_coefficient > 0.0 && o.trust_coefficient.is_finite()) {
            return invalid(
                "optim.trust_coefficient",
                o.trust_coefficient.to_string(),
                "must be > 0",
            );
        }
        if !(0.0..1.0).contains(&o.momentum) {
            return invalid("optim.momentum", o.momentum.to_string(), "must be in [0, 1)");
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay.is_finite()) {
            return invalid("optim.weight_decay", o.weight_decay.to_string(), "must be ≥ 0");
        }
        let t = &self.train;
        let set = [t.epochs.is_some(), t.steps.is_some(), t.budget_minutes.is_some()];
        if set.iter().filter(|&&b| b).count() != 1 {
            return invalid(
                "train",
                format!(
                    "epochs {:?}, steps {:?}, budget_minutes {:?}",
                    t.epochs, t.steps, t.budget_minutes
                ),
                "set exactly one of epochs, steps and budget_minutes (the others null)",
            );
        }
        if t.epochs == Some(0) {
            return invalid("train.epochs", "0", "must be ≥ 1");
        }
        if t.steps == Some(0) {
            return invalid("train.steps", "0", "must be ≥ 1");
        }
        if let Some(m) = t.budget_minutes {
            if !(m.is_finite() && m > 0.0) {
                return invalid("train.budget_minutes", m.to_string(), "must be a number > 0");
            }
        }
        let e = &self.eval;
        if e.knn.k < 1 || e.knn.temperature.is_nan() || e.knn.temperature <= 0.0 {
            return invalid("eval.knn", format!("{:?}", e.knn), "needs k ≥ 1 and temperature > 0");
        }
        if e.monitor_bank < 0
            || e.monitor_queries < 0
            || (e.monitor_bank > 0 && e.monitor_bank < e.knn.k)
        {
            return invalid(
                "eval.monitor_bank",
                e.monitor_bank.to_string(),
                "must be 0 (off) or ≥ eval.knn.k, with monitor_queries ≥ 0",
            );
        }
        let l = &e.linear;
        let bad_lr = l.lrs.is_empty() || l.lrs.iter().any(|&lr| !(lr > 0.0 && lr.is_finite()));
        let bad_wd =
            l.weight_decays.is_empty() || l.weight_decays.iter().any(|&w| w.is_nan() || w < 0.0);
        if l.epochs < 1 || l.batch_size < 1 || bad_lr || bad_wd {
            return invalid(
                "eval.linear",
                format!("{l:?}"),
                "needs epochs, batch_size ≥ 1, lrs > 0 and weight_decays ≥ 0 (non-empty)",
            );
        }
        if !(0.0 < l.val_fraction && l.val_fraction < 1.0) {
            return invalid(
                "eval.linear.val_fraction",
                l.val_fraction.to_string(),
                "must be in (0, 1)",
            );
        }
        if let Some(r) = e.resize {
            r.build().map_err(|e| at_key("eval.resize", e))?;
        }
        if self.checkpoint.every_steps == Some(0) {
            return invalid("checkpoint.every_steps", "0", "must be ≥ 1 or null");
        }
        self.augment.build().map_err(|e| at_view_key("augment", e))?;
        if let Some(v) = &self.augment_view2 {
            v.build().map_err(|e| at_view_key("augment_view2", e))?;
        }
        self.model.backbone.validate().map_err(|e| at_key("model.backbone", e))?;
        self.check_vit_sizes()?;
        self.method.validate()?;
        Ok(())
    }

    /// A ViT sees one image size: the views' crops and evaluation's images (resized, or the
    /// dataset's native 28 px) must be `model.backbone.image_size`.
    fn check_vit_sizes(&self) -> Result<()> {
        let BackboneConfig::Vit(v) = &self.model.backbone else { return Ok(()) };
        let want = [v.image_size, v.image_size];
        let reason = format!("must be model.backbone.image_size, {want:?}, for a ViT");
        let views = [
            Some(("augment.crop.size", &self.augment)),
            self.augment_view2.as_ref().map(|a| ("augment_view2.crop.size", a)),
        ];
        // SwAV's small crops are another size by design: a ViT of one image size cannot take them.
        let local = match &self.method {
            MethodConfig::Swav(c) if c.n_local > 0 => Some(("method.local.crop.size", &c.local)),
            _ => None,
        };
        for (key, view) in views.into_iter().flatten().chain(local) {
            if view.crop.size != want {
                return invalid(key, format!("{:?}", view.crop.size), &reason);
            }
        }
        let eval = self.eval_image_size();
        if eval != want {
            let value = format!("{eval:?} (the evaluation images' size when null)");
            return invalid("eval.resize", value, &reason);
        }
        Ok(())
    }
}

/// Reads the YAML at `path`, applies `overrides` (`dotted.key=value`), deserialises and
/// validates it.
///
/// # Errors
/// [`TrainError::ConfigIo`], [`TrainError::ConfigParse`] (naming the dotted key of an unknown
/// field or a wrong type), [`TrainError::Override`] and the errors of [`Config::validate`].
pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| TrainError::ConfigIo { path: path.into(), source })?;
    from_yaml(&text, path, overrides)
}

/// As [`load`], from YAML text; `path` is only used in errors.
///
/// # Errors
/// As [`load`].
pub fn from_yaml(text: &str, path: &Path, overrides: &[String]) -> Result<Config> {
    let parse_err = |message: String| TrainError::ConfigParse { path: path.into(), message };
    let mut value: Value = serde_saphyr::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    for spec in overrides {
        apply_override(&mut value, spec)?;
    }
    let config: Config = serde_path_to_error::deserialize(value)
        .map_err(|e| parse_err(format!("at `{}`: {}", e.path(), e.inner())))?;
    config.validate()?;
    Ok(config)
}

/// Sets `a.b.c=value` in the parsed document; `value` is read as a YAML scalar.
fn apply_override(doc: &mut Value, spec: &str) -> Result<()> {
    let err = |reason: String| TrainError::Override { spec: spec.into(), reason };
    let (key, raw) = spec.split_once('=').ok_or_else(|| err("expected key=value".into()))?;
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err(format!("`{key}` is not a dotted key")));
    }
    let mut node = doc;
    for (i, part) in parts[..parts.len() - 1].iter().enumerate() {
        node = match node.get_mut(*part) {
            Some(child) if child.is_object() => child,
            _ => return Err(err(format!("the config has no section `{}`", parts[..=i].join(".")))),
        };
    }
    let value: Value =
        serde_saphyr::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let map = node.as_object_mut().ok_or_else(|| err("not a section".into()))?;
    // A key absent from the file is still inserted: deserialisation then rejects it by name
    // if the schema has no such field.
    map.insert(parts[parts.len() - 1].to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = include_str!("../configs/simclr-fmnist.yaml");

    fn parse(text: &str, overrides: &[&str]) -> Result<Config> {
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        from_yaml(text, Path::new("test.yaml"), &o)
    }

    #[test]
    fn the_shipped_config_parses_and_overrides_apply() {
        let c = parse(BASE, &["train.max_steps=2", "optim.lr=0.5", "data.dir=/x"]).unwrap();
        assert_eq!(c.train.max_steps, Some(2));
        assert_eq!(c.optim.lr, 0.5);
        assert_eq!(c.data.dir, PathBuf::from("/x"));
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = parse(&format!("{BASE}\nfoo: 1\n"), &[]).unwrap_err().to_string();
        assert!(err.contains("foo") && err.contains("test.yaml"), "{err}");
        let err = parse(BASE, &["optim.lrr=0.1"]).unwrap_err().to_string();
        assert!(err.contains("optim.lrr") || err.contains("lrr"), "{err}");
        let err = parse(BASE, &["nosuch.key=1"]).unwrap_err().to_string();
        assert!(err.contains("no section `nosuch`"), "{err}");
    }

    #[test]
    fn bad_values_name_the_dotted_key() {
        let err = parse(BASE, &["data.batch_size=many"]).unwrap_err().to_string();
        assert!(err.contains("data.batch_size"), "{err}");
        let err = parse(BASE, &["optim.momentum=1.5"]).unwrap_err().to_string();
        assert!(err.contains("optim.momentum = 1.5"), "{err}");
        let err = parse(BASE, &["method.loss.temperature=0"]).unwrap_err().to_string();
        assert!(err.contains("temperature"), "{err}");
        let err = parse(BASE, &["model.backbone.width=0"]).unwrap_err().to_string();
        assert!(err.contains("width"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_the_dotted_key_and_the_range() {
        for (set, key, range) in [
            ("method.loss.temperature=-0.5", "method.loss.temperature", "> 0"),
            ("augment.flip.p=1.5", "augment.flip.p", "[0, 1]"),
            ("augment.color_jitter.p=-0.1", "augment.color_jitter.p", "[0, 1]"),
            ("optim.momentum=-1", "optim.momentum", "[0, 1)"),
        ] {
            let err = parse(BASE, &[set]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains(range), "{set}: {err}");
        }
        let err = parse(BASE, &["train.steps=ten"]).unwrap_err().to_string();
        assert!(err.contains("train.steps"), "{err}");
    }
}
