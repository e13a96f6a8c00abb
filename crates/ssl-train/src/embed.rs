//! `ssl embed`: a checkpoint's frozen backbone features of a dataset split, with its labels, as
//! a safetensors file for the user's own downstream work (lightly's `embed`).

use std::path::Path;

use ssl_data::{IdxImages, Split};
use tch::{Device, Kind, Tensor};

use crate::eval::extract_features;
use crate::run_dir::CONFIG;
use crate::{build_model, config, set_eval_precision, Result, TrainError};

/// Images per forward pass.
const CHUNK: i64 = 1024;

/// The features of one split and its labels.
#[derive(Debug)]
pub struct Embedding {
    /// Pooled backbone features `[N, F]`, f32, in the files' order.
    pub features: Tensor,
    /// Classes `[N]`, int64, when the split has a label file.
    pub labels: Option<Tensor>,
}

impl Embedding {
    /// Writes `features` (and `labels`) to a safetensors file, readable by
    /// `safetensors.torch.load_file`.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let mut named = vec![("features", &self.features)];
        if let Some(labels) = &self.labels {
            named.push(("labels", labels));
        }
        Tensor::write_safetensors(&named, out).map_err(|e| TrainError::RunIo {
            path: out.into(),
            source: std::io::Error::other(e.to_string()),
        })
    }
}

/// The frozen backbone of `checkpoint` (its run's `config.yaml` beside it, with `overrides`)
/// on the `split` of the run's Fashion-MNIST directory, exactly as evaluation sees it: eval
/// mode, `eval.resize`, `eval.precision`.
///
/// # Errors
/// The config's, the checkpoint's (naming the file) and the data's errors.
pub fn embed_checkpoint(
    checkpoint: &Path,
    overrides: &[String],
    split: Split,
    device: Device,
) -> Result<Embedding> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let cfg = config::load(&dir.join(CONFIG), overrides)?;
    let (mut vs, mut model) = build_model(&cfg, device)?;
    vs.load(checkpoint).map_err(|e| TrainError::Invalid {
        field: "checkpoint".into(),
        value: checkpoint.display().to_string(),
        reason: e.to_string(),
    })?;
    set_eval_precision(model.as_mut(), &cfg);
    let set = IdxImages::fashion_mnist(&cfg.data.dir, split)?;
    let resize = cfg.eval.resize_op();
    let features =
        extract_features(model.backbone(), &set.to_tensor(), CHUNK, resize.as_ref(), device);
    Ok(Embedding {
        features: features.to_kind(Kind::Float).to_device(Device::Cpu),
        labels: set.labels_tensor(),
    })
}
