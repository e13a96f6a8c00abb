//! `ssl train --init-from PATH` (`model.init_from`): start every backbone of a method from a
//! torchvision / timm `state_dict` in safetensors (a PyTorch user's checkpoint, or our own
//! `ssl export` output), then reset the momentum copies to it.

use std::collections::BTreeMap;
use std::path::Path;

use tch::nn::VarStore;
use tch::Tensor;

use crate::export::BACKBONE_PREFIX;
use crate::{Result, TrainError};

/// What [`init_backbones`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    /// Backbone variables overwritten from the file.
    pub loaded: usize,
    /// The file's tensors no backbone variable took (a classifier `fc.*`, BatchNorm's
    /// `num_batches_tracked`), sorted.
    pub ignored: Vec<String>,
}

/// Overwrites every variable of `vs` whose name holds [`BACKBONE_PREFIX`] (`backbone.conv1.weight`,
/// `online.backbone.…`) with the tensor of `path` named by the rest (`conv1.weight`), or by the
/// whole name when the file keeps the prefix (a checkpoint of ours). Momentum copies live in
/// their own `VarStore`s: reset them afterwards ([`crate::Method::reset_targets`]).
///
/// # Errors
/// [`TrainError::Invalid`] naming the file and the key: unreadable, a backbone variable the
/// file lacks (the first few listed), or a shape that differs (both shapes named).
pub fn init_backbones(vs: &VarStore, path: &Path) -> Result<InitReport> {
    let bad = |reason: String| TrainError::Invalid {
        field: "model.init_from".into(),
        value: path.display().to_string(),
        reason,
    };
    let file: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| bad(format!("cannot be read as safetensors: {e}")))?
        .into_iter()
        .collect();
    let mut used = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    let mut loaded = 0;
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let Some((_, short)) = name.split_once(BACKBONE_PREFIX) else { continue };
        let prefixed = format!("{BACKBONE_PREFIX}{short}");
        let Some((key, value)) =
            [short, prefixed.as_str()].into_iter().find_map(|k| file.get_key_value(k))
        else {
            missing.push(short.to_string());
            continue;
        };
        if value.size() != var.size() {
            return Err(bad(format!(
                "`{key}` is {:?} but the run's `{name}` is {:?} (model.backbone differs from \
                 the network that wrote the file)",
                value.size(),
                var.size()
            )));
        }
        tch::no_grad(|| var.shallow_clone().copy_(value));
        used.insert(key.clone());
        loaded += 1;
    }
    if !missing.is_empty() {
        let shown: Vec<_> = missing.iter().take(5).collect();
        return Err(bad(format!(
            "has no tensor for {} of the backbone's variables, e.g. {shown:?} (torchvision / timm \
             names expected, as `ssl export` writes)",
            missing.len()
        )));
    }
    if loaded == 0 {
        return Err(bad("the method has no `backbone.*` variable to load into".into()));
    }
    let ignored = file.into_keys().filter(|k| !used.contains(k)).collect();
    Ok(InitReport { loaded, ignored })
}
