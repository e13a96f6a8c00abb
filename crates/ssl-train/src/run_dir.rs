//! The run directory: resolved config, per-step metrics, checkpoint and summary.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use tch::nn::VarStore;
use tch::Tensor;

use crate::checkpoint::{self, Position};
use crate::state::State;
use crate::{Config, Result, TrainError};

/// The checkpoint's file name inside a run directory.
pub const CHECKPOINT: &str = "checkpoint.safetensors";
/// The resolved config's file name inside a run directory.
pub const CONFIG: &str = "config.yaml";

/// The resolved config of the run that wrote `checkpoint` (the `config.yaml` beside it), with
/// `overrides` applied.
///
/// # Errors
/// [`crate::config::load`]'s, naming the file.
pub fn checkpoint_config(checkpoint: &Path, overrides: &[String]) -> Result<Config> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    crate::config::load(&dir.join(CONFIG), overrides)
}

/// Writes named tensors to the safetensors file `out` (what `ssl embed` and `ssl export` hand
/// to PyTorch users).
///
/// # Errors
/// [`TrainError::RunIo`] naming `out`.
pub fn write_safetensors(named: &[(&str, &Tensor)], out: &Path) -> Result<()> {
    Tensor::write_safetensors(named, out).map_err(|e| TrainError::RunIo {
        path: out.into(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// A run directory: `config.yaml` (resolved, overrides applied), `metrics.jsonl` (one line per
/// step: step, epoch, loss, lr, images/s), `checkpoint.safetensors` and `summary.json`.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    metrics: Mutex<BufWriter<File>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::RunIo { path: path.to_path_buf(), source }
}

impl RunDir {
    /// Creates `path` (and parents) and writes the resolved config into it.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming the file that could not be written.
    pub fn create(path: &Path, cfg: &Config) -> Result<Self> {
        std::fs::create_dir_all(path).map_err(io(path))?;
        let metrics_path = path.join("metrics.jsonl");
        let file = File::create(&metrics_path).map_err(io(&metrics_path))?;
        let run = Self { path: path.to_path_buf(), metrics: Mutex::new(BufWriter::new(file)) };
        run.write_config(cfg)?;
        Ok(run)
    }

    /// Reopens the run directory `path` to continue it from `at` (`ssl train --resume`):
    /// `metrics.jsonl` keeps its step lines before `at.steps` and its epoch lines before
    /// `at.epochs.len()`, dropping what was logged after the checkpoint, and is appended to.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming `metrics.jsonl`.
    pub fn reopen(path: &Path, at: &Position) -> Result<Self> {
        let metrics_path = path.join("metrics.jsonl");
        let text = std::fs::read_to_string(&metrics_path).map_err(io(&metrics_path))?;
        let kept: Vec<&str> = text
            .lines()
            .filter(|line| {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { return false };
                match (v["step"].as_u64(), v["epoch"].as_u64()) {
                    (Some(step), _) => step < at.steps,
                    (None, Some(epoch)) => epoch < at.epochs.len() as u64,
                    _ => false,
                }
            })
            .collect();
        let mut file = File::create(&metrics_path).map_err(io(&metrics_path))?;
        for line in kept {
            writeln!(file, "{line}").map_err(io(&metrics_path))?;
        }
        Ok(Self { path: path.to_path_buf(), metrics: Mutex::new(BufWriter::new(file)) })
    }

    /// Writes a resumable checkpoint of `groups` at `at` into `checkpoints/` (atomically,
    /// checksummed, keeping the newest `keep`), flushing the metrics first; returns its path.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming the file; a tensor safetensors cannot hold.
    pub fn save_resumable(
        &self,
        groups: &[(&str, State)],
        at: &Position,
        keep: usize,
    ) -> Result<PathBuf> {
        self.metrics.lock().expect("metrics writer").flush().map_err(io(&self.path))?;
        let bytes = checkpoint::encode(groups, at)?;
        checkpoint::save(&self.path.join(checkpoint::CHECKPOINTS), at.steps, &bytes, keep)
    }

    /// (Re)writes `config.yaml`: training calls it again once the precision is resolved and a
    /// budget has become `train.steps`, so the file replays the run.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming the file.
    pub fn write_config(&self, cfg: &Config) -> Result<()> {
        let config = self.path.join(CONFIG);
        let yaml = serde_saphyr::to_string(cfg).map_err(|e| TrainError::ConfigParse {
            path: config.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&config, yaml).map_err(io(&config))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one JSON line to `metrics.jsonl` and flushes it, so the file can be followed
    /// while the run goes on (one small write per step).
    ///
    /// # Errors
    /// [`TrainError::RunIo`] when the line cannot be written.
    pub fn log_step(&self, metrics: &impl Serialize) -> Result<()> {
        let line = serde_json::to_string(metrics).expect("metrics serialise");
        let mut w = self.metrics.lock().expect("metrics writer");
        writeln!(w, "{line}").and_then(|()| w.flush()).map_err(io(&self.path.join("metrics.jsonl")))
    }

    /// Writes the variables to `checkpoint.safetensors` (through a temporary file, so a crash
    /// never leaves a half-written checkpoint), flushing the metrics too.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] or libtorch's error.
    pub fn save_checkpoint(&self, vs: &VarStore) -> Result<()> {
        let path = self.path.join(CHECKPOINT);
        let tmp = self.path.join("checkpoint.tmp.safetensors");
        // Contiguous copies: a channels-last network's conv weights have NHWC strides, which
        // safetensors cannot hold (tch refuses them rather than write them scrambled).
        let vars = vs.variables();
        let mut named: Vec<(&str, Tensor)> =
            vars.iter().map(|(k, t)| (k.as_str(), t.contiguous())).collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        let refs: Vec<(&str, &Tensor)> = named.iter().map(|(k, t)| (*k, t)).collect();
        write_safetensors(&refs, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        self.metrics.lock().expect("metrics writer").flush().map_err(io(&self.path))
    }

    /// Writes `value` as pretty JSON to `name` in the directory.
    ///
    /// # Errors
    /// [`TrainError::RunIo`] naming the file.
    pub fn write_json(&self, name: &str, value: &impl Serialize) -> Result<PathBuf> {
        let path = self.path.join(name);
        let text = serde_json::to_string_pretty(value).expect("summary serialises");
        std::fs::write(&path, text + "\n").map_err(io(&path))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_directory_that_cannot_be_created_is_an_error_naming_it() {
        let scratch = ssl_testutil::ScratchDir::new("run-dir-blocked");
        let file = scratch.join("a-file");
        std::fs::write(&file, b"not a directory").unwrap();
        let cfg = crate::config::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/simclr-fmnist.yaml"),
            &[],
        )
        .unwrap();
        let err = RunDir::create(&file.join("run"), &cfg).unwrap_err().to_string();
        assert!(err.contains("a-file/run"), "{err}");
    }
}
