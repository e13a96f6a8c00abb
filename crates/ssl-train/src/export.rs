//! `ssl export`: a checkpoint's backbone alone, under torchvision's `state_dict` names (timm's
//! ResNets use the same), so that PyTorch loads it strictly once the classifier is gone:
//! `m = torchvision.models.resnet18(); m.fc = torch.nn.Identity();
//! m.load_state_dict(safetensors.torch.load_file(path))` (for a run whose `model.backbone` is
//! torchvision's ResNet-18; other configs need the same stem, widths and input channels).

use std::collections::BTreeMap;
use std::path::Path;

use ssl_models::BackboneConfig;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::run_dir::{checkpoint_config, write_safetensors};
use crate::{Config, Result, TrainError};

/// Where every method keeps its backbone in its `VarStore` (docs/dev/adding-a-method.md).
pub const BACKBONE_PREFIX: &str = "backbone.";

/// The backbone's tensors of `checkpoint` (its run's `config.yaml` beside it) with
/// [`BACKBONE_PREFIX`] dropped, which leaves torchvision's (and timm's) ResNet names, plus
/// the `num_batches_tracked` counter torchvision keeps beside every BatchNorm's running
/// statistics (0: tch keeps none; PyTorch reads it only with `momentum=None`), so that a strict
/// load finds every key it expects but `fc.*`. Also returns the run's config, whose
/// `model.backbone` says which torchvision model has these shapes.
///
/// # Errors
/// The config's errors; [`TrainError::Invalid`] naming the checkpoint when it cannot be read
/// or its backbone's names are not those of a fresh `ResNet` of the run's config.
pub fn backbone_state_dict(checkpoint: &Path) -> Result<(BTreeMap<String, Tensor>, Config)> {
    let cfg = checkpoint_config(checkpoint, &[])?;
    let bad = |reason: String| TrainError::Invalid {
        field: "checkpoint".into(),
        value: checkpoint.display().to_string(),
        reason,
    };
    let tensors = Tensor::read_safetensors(checkpoint).map_err(|e| bad(e.to_string()))?;
    let mut state: BTreeMap<String, Tensor> = tensors
        .into_iter()
        .filter_map(|(k, t)| k.strip_prefix(BACKBONE_PREFIX).map(|name| (name.to_string(), t)))
        .collect();
    let fresh = VarStore::new(Device::Cpu);
    cfg.model.backbone.build(&fresh.root())?;
    let want: BTreeMap<String, Vec<i64>> =
        fresh.variables().into_iter().map(|(k, t)| (k, t.size())).collect();
    let got: BTreeMap<String, Vec<i64>> =
        state.iter().map(|(k, t)| (k.clone(), t.size())).collect();
    if got != want {
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        return Err(bad(format!(
            "its `{BACKBONE_PREFIX}*` tensors are not the run's model.backbone: missing \
             {missing:?}, unexpected {extra:?} (or shapes differ)"
        )));
    }
    let counters: Vec<String> = state
        .keys()
        .filter_map(|k| k.strip_suffix(".running_mean"))
        .map(|bn| format!("{bn}.num_batches_tracked"))
        .collect();
    for name in counters {
        state.insert(name, Tensor::from(0i64).to_kind(Kind::Int64));
    }
    Ok((state, cfg))
}

/// Whose names the exported file follows (`ssl export --format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// torchvision's `resnet*` `state_dict` (ResNets only).
    Torchvision,
    /// timm's: its ResNets use torchvision's names, its `VisionTransformer` ours.
    Timm,
}

/// Writes [`backbone_state_dict`] of `checkpoint` to the safetensors file `out` with the names
/// of `format` (`None`: torchvision for a ResNet, timm for a ViT); returns how many tensors it
/// wrote.
///
/// # Errors
/// [`backbone_state_dict`]'s; [`TrainError::Invalid`] for a ViT in torchvision's format;
/// [`TrainError::RunIo`] naming `out`.
pub fn export_backbone(
    checkpoint: &Path,
    out: &Path,
    format: Option<ExportFormat>,
) -> Result<usize> {
    let (state, cfg) = backbone_state_dict(checkpoint)?;
    let vit = matches!(cfg.model.backbone, BackboneConfig::Vit(_));
    if vit && format == Some(ExportFormat::Torchvision) {
        return Err(TrainError::Invalid {
            field: "--format".into(),
            value: "torchvision".into(),
            reason: "the run's backbone is a ViT, which torchvision names differently; \
                     use --format timm"
                .into(),
        });
    }
    let named: Vec<(&str, &Tensor)> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    write_safetensors(&named, out)?;
    Ok(named.len())
}
