//! Scoring a frozen backbone (kNN-200 and the linear probe) and the baselines, with one code path.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Device, Tensor};

use crate::data_source::Part;
use crate::eval::{
    extract_features, knn_top1, linear_probe, pixels_as_features, KnnConfig, LinearProbeReport,
};
use crate::method::Method;
use crate::{Config, Result};

/// The number of classes labels `0..K` name: the largest label in `labels` plus one.
pub fn class_count(labels: &[&Tensor]) -> i64 {
    let top = labels.iter().filter(|l| l.numel() > 0).map(|l| l.max().int64_value(&[]));
    top.max().map_or(0, |m| m + 1)
}

/// How many of `n` images the held-out tail of `fraction` holds: `round(n · fraction)`, at
/// least 1 and at most `n − 1`.
pub(crate) fn held_out_len(n: i64, fraction: f64) -> i64 {
    ((n as f64 * fraction).round() as i64).clamp(1, n - 1)
}

/// Sets `cfg.eval.precision` on `model`'s backbone, resolved for this machine by the training
/// rule ([`ssl_models::Precision::resolve`]), and says why.
pub fn set_eval_precision(model: &mut dyn Method, cfg: &Config) -> String {
    model.backbone_mut().set_precision(cfg.eval.precision).reason
}

/// The scores of one representation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// kNN top-1 on the test set, with the training set as memory.
    pub knn_top1: f64,
    /// Linear-probe top-1 on the test set.
    pub linear_top1: f64,
    /// The linear probe's chosen hyper-parameters and held-out scores.
    pub linear: LinearProbeReport,
    /// Wall time of feature extraction and both classifiers, seconds.
    pub seconds: f64,
}

/// `summary.json`: the figures of a run under stable keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The method that trained (`method.name`).
    #[serde(default)]
    pub method: String,
    /// Whether the method trained on the labels (SupCon, supervised): such a row is not
    /// self-supervised.
    #[serde(default)]
    pub labels_in_pretraining: bool,
    /// The trained network's kNN-200 top-1.
    pub knn_top1: f64,
    /// The trained network's linear-probe top-1.
    pub linear_top1: f64,
    /// The online linear probe's top-1 on the monitor's held-out queries, last epoch.
    #[serde(default)]
    pub online_linear_top1: Option<f64>,
    /// Per-dimension std of the unit embeddings, last epoch (healthy ≈ 1/√d).
    #[serde(default)]
    pub embedding_std: Option<f64>,
    /// Effective rank of the embeddings (RankMe), last epoch.
    #[serde(default)]
    pub rankme: Option<f64>,
    /// kNN-200 top-1 of the randomly initialised network (same architecture and seed).
    pub random_init_knn_top1: Option<f64>,
    /// Linear-probe top-1 of the randomly initialised network.
    pub random_init_linear_top1: Option<f64>,
    /// kNN-200 top-1 on raw pixels.
    pub raw_pixel_knn_top1: Option<f64>,
    /// Linear-probe top-1 on raw pixels.
    pub raw_pixel_linear_top1: Option<f64>,
    /// Whether the scores are on held-out training images (`eval.validation`) instead of the
    /// test set.
    pub validation: bool,
    /// The training precision as run (`f32` or `bf16`) and why, e.g. `auto: f32, since …`.
    pub precision: String,
    /// The evaluation precision as run and why.
    pub eval_precision: String,
    /// How a `train.budget_minutes` became steps, for budgeted runs.
    pub budget: Option<crate::BudgetReport>,
    /// kNN monitor of the untrained network, when a budgeted run timed it up front.
    pub knn_monitor_before: Option<f64>,
    /// Wall time of pre-training, seconds.
    pub train_seconds: f64,
    /// Training images per second (each gives two views).
    pub images_per_second: f64,
    /// Time the training thread waited for the data loader, seconds.
    pub data_wait_seconds: f64,
    /// Wall time of all evaluation (data loading and every row), seconds.
    pub eval_seconds: f64,
    /// The process's peak resident memory (`VmHWM` of /proc/self/status), MiB, when known.
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
    /// Steps skipped for a non-finite loss or gradient (`train.on_non_finite: skip`).
    #[serde(default)]
    pub skipped_steps: u64,
    /// Pre-training files left out because they did not decode (`data.on_corrupt: skip`).
    #[serde(default)]
    pub skipped_files: Vec<std::path::PathBuf>,
    /// Seconds of each evaluated row: the trained network, random init, raw pixels.
    pub eval_row_seconds: Vec<(String, f64)>,
    /// Mean loss and kNN monitor per epoch.
    pub epochs: Vec<crate::EpochMetrics>,
    /// Optimiser steps taken.
    pub steps: u64,
    /// The linear probe's details.
    pub linear: LinearProbeReport,
}

/// The peak resident memory of this process in MiB (Linux's `VmHWM`), or `None` elsewhere.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Train and test images with labels, loaded once for every evaluation of a run.
#[derive(Debug)]
pub struct EvalData {
    train_images: Tensor,
    train_labels: Tensor,
    test_images: Tensor,
    test_labels: Tensor,
}

impl EvalData {
    /// Loads the labelled training and test images of the evaluation source
    /// ([`Config::eval_source`]: `eval.data`, else `data`); with `cfg.eval.validation`, only
    /// the training images, held out as [`EvalData::validation`] does (the test files are not
    /// even opened).
    ///
    /// # Errors
    /// [`ssl_data::DataError`] naming the file, or [`crate::TrainError::Invalid`] naming the
    /// source's key when its images have no labels.
    pub fn load(cfg: &Config) -> Result<Self> {
        let (source, key) = cfg.eval_source();
        let workers = cfg.data.workers;
        let (train_images, train_labels) = source.load_labelled(Part::Train, key, workers)?;
        if cfg.eval.validation {
            let empty = Tensor::zeros([0], (tch::Kind::Int64, Device::Cpu));
            let data = Self {
                train_images,
                train_labels,
                test_images: empty.shallow_clone(),
                test_labels: empty,
            };
            return Ok(data.validation(cfg.eval.linear.val_fraction));
        }
        let (test_images, test_labels) = source.load_labelled(Part::Test, key, workers)?;
        Ok(Self { train_images, train_labels, test_images, test_labels })
    }

    /// The validation protocol for tuning evaluation settings without touching the test set:
    /// the last `fraction` of the training images become the queries (and the linear probe's
    /// test set), the rest the memory bank and the probe's training set.
    ///
    /// # Panics
    /// When `fraction` is not in (0, 1).
    pub fn validation(self, fraction: f64) -> Self {
        assert!(0.0 < fraction && fraction < 1.0, "validation: fraction {fraction} not in (0, 1)");
        let n = self.train_images.size()[0];
        let held = held_out_len(n, fraction);
        let keep = n - held;
        Self {
            train_images: self.train_images.narrow(0, 0, keep), // [n − held, C, H, W]
            train_labels: self.train_labels.narrow(0, 0, keep),
            test_images: self.train_images.narrow(0, keep, held), // [held, C, H, W]
            test_labels: self.train_labels.narrow(0, keep, held),
        }
    }

    /// The training (memory) images `[N, C, H, W]` uint8 and their labels `[N]`.
    pub fn train_split(&self) -> (&Tensor, &Tensor) {
        (&self.train_images, &self.train_labels)
    }

    /// The test (query) images and labels: the test set, or the held-out training images.
    pub fn test_split(&self) -> (&Tensor, &Tensor) {
        (&self.test_images, &self.test_labels)
    }

    /// How many memory (training) and query (test) images the scores use.
    pub fn sizes(&self) -> (i64, i64) {
        (self.train_images.size()[0], self.test_images.size()[0])
    }

    /// Scores the features `f(x)` of a frozen network.
    pub fn score_network(
        &self,
        net: &(impl ModuleT + ?Sized),
        cfg: &Config,
        device: Device,
    ) -> Scores {
        let start = Instant::now();
        let (train, test) = self.features(net, cfg, device);
        self.score_features(&train, &test, cfg, start)
    }

    /// The frozen network's features `[M, F]` and `[Q, F]` of the training and test images,
    /// resized as `eval.resize` says.
    pub fn features(
        &self,
        net: &(impl ModuleT + ?Sized),
        cfg: &Config,
        device: Device,
    ) -> (Tensor, Tensor) {
        let resize = cfg.eval.resize_op();
        let train = extract_features(net, &self.train_images, 1024, resize.as_ref(), device);
        let test = extract_features(net, &self.test_images, 1024, resize.as_ref(), device);
        (train, test)
    }

    /// Scores raw pixels, the baseline that needs no network.
    pub fn score_pixels(&self, cfg: &Config) -> Scores {
        let start = Instant::now();
        let train = pixels_as_features(&self.train_images);
        let test = pixels_as_features(&self.test_images);
        self.score_features(&train, &test, cfg, start)
    }

    /// Scores features already extracted from [`Self::train_split`] and [`Self::test_split`]'s
    /// images (`[M, F]`, `[Q, F]`); `start` begins the reported time.
    pub fn score_features(
        &self,
        train: &Tensor,
        test: &Tensor,
        cfg: &Config,
        start: Instant,
    ) -> Scores {
        let labelled = ((train, &self.train_labels), (test, &self.test_labels));
        score_labelled_features(labelled.0, labelled.1, cfg.eval.knn, cfg, start)
    }
}

/// kNN (with `knn`) and the linear probe of `cfg.eval.linear` on labelled features `(x, y)`:
/// the one scoring path of evaluation and of transfer, over the classes the labels name.
pub(crate) fn score_labelled_features(
    train: (&Tensor, &Tensor),
    test: (&Tensor, &Tensor),
    knn: KnnConfig,
    cfg: &Config,
    start: Instant,
) -> Scores {
    let classes = class_count(&[train.1, test.1]);
    let knn = knn_top1(train.0, train.1, test.0, test.1, classes, knn);
    let linear =
        linear_probe(train.0, train.1, test.0, test.1, classes, &cfg.eval.linear, cfg.seed);
    Scores {
        knn_top1: knn,
        linear_top1: linear.test_top1,
        linear,
        seconds: start.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn validation_holds_out_the_tail_of_the_training_set_and_drops_the_test_set() {
        let images = Tensor::arange(10, (Kind::Uint8, Device::Cpu)).view([10, 1, 1, 1]);
        let labels = Tensor::arange(10, (Kind::Int64, Device::Cpu));
        let test = Tensor::zeros([3, 1, 1, 1], (Kind::Uint8, Device::Cpu));
        let data = EvalData {
            train_images: images.shallow_clone(),
            train_labels: labels.shallow_clone(),
            test_images: test,
            test_labels: Tensor::zeros([3], (Kind::Int64, Device::Cpu)),
        }
        .validation(0.3);
        assert_eq!(data.sizes(), (7, 3));
        assert!(data.test_images.flatten(0, -1).equal(&images.narrow(0, 7, 3).flatten(0, -1)));
        assert!(data.test_labels.equal(&labels.narrow(0, 7, 3)));
        assert!(data.train_labels.equal(&labels.narrow(0, 0, 7)));
    }
}
