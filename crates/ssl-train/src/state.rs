//! Named tensors beyond the trained variables that a resumed run restores: momentum encoders,
//! queues, optimiser moments. Each owner lists its own (`state`) and takes them back
//! (`load_state`) from a [`StateDict`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ssl_moco::{FeatureQueue, MomentumEncoder};
use tch::Tensor;

use crate::{Result, TrainError};

/// Named tensors of one owner (the names relative to it).
pub type State = Vec<(String, Tensor)>;

/// A checkpoint's tensors by name; errors name the checkpoint and the tensor.
#[derive(Debug)]
pub struct StateDict {
    tensors: HashMap<String, Tensor>,
    path: PathBuf,
}

impl StateDict {
    /// Wraps the tensors read from `path`.
    pub fn new(tensors: HashMap<String, Tensor>, path: &Path) -> Self {
        Self { tensors, path: path.into() }
    }

    /// The file the tensors came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The tensors whose names start with `prefix` + `/`, that prefix removed.
    pub fn group(&self, prefix: &str) -> Self {
        let p = format!("{prefix}/");
        let tensors = (self.tensors.iter())
            .filter_map(|(k, t)| Some((k.strip_prefix(&p)?.to_owned(), t.shallow_clone())))
            .collect();
        Self { tensors, path: self.path.clone() }
    }

    /// The tensor `name`.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file and `name` when it is missing.
    pub fn get(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| self.error(format!("holds no tensor {name}")))
    }

    /// Copies the saved `name` into `dst` in place (outside autograd).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] when it is missing or its shape or kind differs.
    pub fn copy_into(&self, name: &str, dst: &Tensor) -> Result<()> {
        let src = self.get(name)?;
        if src.size() != dst.size() || src.kind() != dst.kind() {
            return Err(self.error(format!(
                "{name} is {:?} {:?}, the run's is {:?} {:?}",
                src.kind(),
                src.size(),
                dst.kind(),
                dst.size()
            )));
        }
        tch::no_grad(|| dst.shallow_clone().f_copy_(src))?;
        Ok(())
    }

    /// The names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    fn error(&self, reason: String) -> TrainError {
        TrainError::Checkpoint { path: self.path.clone(), reason }
    }
}

/// `prefix/name` for every variable of a momentum encoder's own `VarStore`.
pub(crate) fn momentum_state<M>(prefix: &str, enc: &MomentumEncoder<M>) -> State {
    let vars = enc.var_store().variables();
    vars.into_iter().map(|(k, t)| (format!("{prefix}/{k}"), t)).collect()
}

/// Restores [`momentum_state`] in place.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming a missing or misshapen variable.
pub(crate) fn load_momentum<M>(
    prefix: &str,
    enc: &MomentumEncoder<M>,
    d: &StateDict,
) -> Result<()> {
    for (k, t) in enc.var_store().variables() {
        d.copy_into(&format!("{prefix}/{k}"), &t)?;
    }
    Ok(())
}

/// `prefix/keys` and `prefix/position` (`[ptr, real]`) of a queue.
pub(crate) fn queue_state(prefix: &str, q: &FeatureQueue) -> State {
    let (ptr, real) = q.position();
    vec![
        (format!("{prefix}/keys"), q.negatives()),
        (format!("{prefix}/position"), Tensor::from_slice(&[ptr, real])),
    ]
}

/// Restores [`queue_state`].
///
/// # Errors
/// [`TrainError::Checkpoint`] naming a missing tensor; the queue's shape errors.
pub(crate) fn load_queue(prefix: &str, q: &mut FeatureQueue, d: &StateDict) -> Result<()> {
    let position = Vec::<i64>::try_from(d.get(&format!("{prefix}/position"))?)?;
    let [ptr, real] = position[..] else {
        return Err(TrainError::Checkpoint {
            path: d.path().into(),
            reason: format!("{prefix}/position holds {position:?}, not [ptr, real]"),
        });
    };
    q.restore(d.get(&format!("{prefix}/keys"))?, ptr, real)?;
    Ok(())
}
