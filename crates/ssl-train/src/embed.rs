//! `ssl embed`: a checkpoint's frozen backbone features of a dataset split, with its labels, as
//! a safetensors file for the user's own downstream work (lightly's `embed`).

use std::path::Path;

use ssl_data::Split;
use tch::{Device, Kind, Tensor};

use crate::data_source::Part;
use crate::eval::extract_features;
use crate::run_dir::{checkpoint_config, write_safetensors};
use crate::{load_checkpoint, set_eval_precision, Result};

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
    /// [`crate::TrainError::RunIo`] naming `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        let mut named = vec![("features", &self.features)];
        if let Some(labels) = &self.labels {
            named.push(("labels", labels));
        }
        write_safetensors(&named, out)
    }
}

/// The frozen backbone of `checkpoint` (its run's `config.yaml` beside it, with `overrides`)
/// on the `split` of the run's evaluation source ([`crate::Config::eval_source`]), exactly as
/// evaluation sees it: eval mode, `eval.resize`, `eval.precision`.
///
/// # Errors
/// The config's, the checkpoint's (naming the file) and the data's errors.
pub fn embed_checkpoint(
    checkpoint: &Path,
    overrides: &[String],
    split: Split,
    device: Device,
) -> Result<Embedding> {
    let cfg = checkpoint_config(checkpoint, overrides)?;
    let (_vs, mut model) = load_checkpoint(checkpoint, &cfg, device)?;
    set_eval_precision(model.as_mut(), &cfg);
    let (source, key) = cfg.eval_source();
    let part = match split {
        Split::Train => Part::Train,
        Split::Test => Part::Test,
    };
    let (images, labels) = source.load(part, key, cfg.data.workers)?;
    let resize = cfg.eval.resize_op();
    let features = extract_features(model.backbone(), &images, CHUNK, resize.as_ref(), device);
    Ok(Embedding { features: features.to_kind(Kind::Float).to_device(Device::Cpu), labels })
}
