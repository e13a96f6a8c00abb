//! Resumable checkpoints: every tensor a run needs to continue (model, momentum encoders,
//! queues, optimiser moments, online probe) and its position, one safetensors file per
//! checkpoint under `checkpoints/`, written atomically with a SHA-256 checksum; the last k kept.
//!
//! A file is written to a temporary name, flushed to disk (`fsync`), renamed over its final
//! name and the directory flushed, so a crash or a full disk leaves either the whole new file
//! or none of it, and the older checkpoints untouched. Reading checks the safetensors header
//! (a truncated file fails there) and the checksum; a bad file is reported by name and the
//! previous one is used.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, View};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Kind, Tensor};

use crate::state::{State, StateDict};
use crate::trainer::{BudgetReport, EpochMetrics};
use crate::{Result, TrainError};

/// The checkpoints' folder inside a run directory.
pub const CHECKPOINTS: &str = "checkpoints";
/// The metadata key of the run's position (JSON).
const META_STATE: &str = "ssl_rs_state";
/// The metadata key of the checksum (hex SHA-256).
const META_SHA256: &str = "sha256";

/// Where a run stands and what it has measured so far: a checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Optimiser steps done.
    pub steps: u64,
    /// The epoch the next step belongs to.
    pub epoch: u64,
    /// The index of the next batch within that epoch.
    pub batch: u64,
    /// The step that epoch began with (its mean loss covers the steps from there).
    #[serde(default)]
    pub epoch_first_step: u64,
    /// Every step's loss so far.
    pub losses: Vec<f64>,
    /// Every finished epoch's metrics.
    pub epochs: Vec<EpochMetrics>,
    /// The kNN monitor before training, when it ran.
    pub knn_monitor_before: Option<f64>,
    /// How a budget fixed the length, once it has.
    pub budget: Option<BudgetReport>,
    /// Steps skipped for a non-finite loss or gradient.
    pub skipped_steps: u64,
    /// Seconds spent in training steps and in monitor passes so far.
    pub step_seconds: f64,
    /// Seconds waited for data so far.
    pub data_wait_seconds: f64,
}

impl Position {
    /// The start of a run: nothing done.
    pub fn start() -> Self {
        Self {
            steps: 0,
            epoch: 0,
            batch: 0,
            epoch_first_step: 0,
            losses: Vec::new(),
            epochs: Vec::new(),
            knn_monitor_before: None,
            budget: None,
            skipped_steps: 0,
            step_seconds: 0.0,
            data_wait_seconds: 0.0,
        }
    }
}

/// A checkpoint read back: its tensors (`model/…`, `method/…`, `optim/…`, `probe/…`) and
/// position.
#[derive(Debug)]
pub struct Checkpoint {
    /// The tensors by name.
    pub tensors: StateDict,
    /// The run's position.
    pub position: Position,
}

/// One tensor's bytes ready for safetensors.
struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn bytes_of(name: &str, t: &Tensor) -> Result<Bytes> {
    let t = t.to_device(tch::Device::Cpu).contiguous();
    let dtype = Dtype::try_from(t.kind())
        .map_err(|e| TrainError::Tch(tch::TchError::Convert(format!("{name}: {e}"))))?;
    let mut data = vec![0u8; t.numel() * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, t.numel())?;
    Ok(Bytes { dtype, shape: t.size().iter().map(|&s| s as usize).collect(), data })
}

/// SHA-256 of the position's JSON and every tensor (name, dtype, shape, bytes) in name order.
fn checksum<'a>(
    state: &str,
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut h = Sha256::new();
    h.update(state.as_bytes());
    for (name, dtype, shape, data) in tensors {
        h.update(name.as_bytes());
        h.update(format!("{dtype:?}{shape:?}").as_bytes());
        h.update(data);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The file name of the checkpoint after `steps` steps.
pub fn file_name(steps: u64) -> String {
    format!("step-{steps:09}.safetensors")
}

/// The bytes of a checkpoint holding `groups` (each tensor named `group/name`) and `position`.
///
/// # Errors
/// A tensor of a kind safetensors cannot hold; libtorch errors.
pub fn encode(groups: &[(&str, State)], position: &Position) -> Result<Vec<u8>> {
    let mut named: Vec<(String, Bytes)> = Vec::new();
    for (group, state) in groups {
        for (k, t) in state {
            let name = format!("{group}/{k}");
            named.push((name.clone(), bytes_of(&name, t)?));
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let state = serde_json::to_string(position).expect("a position serialises");
    let sum = checksum(
        &state,
        named.iter().map(|(n, b)| (n.as_str(), b.dtype, b.shape.as_slice(), b.data.as_slice())),
    );
    let meta = HashMap::from([(META_STATE.to_owned(), state), (META_SHA256.to_owned(), sum)]);
    let views = named.iter().map(|(n, b)| (n.as_str(), b));
    safetensors::tensor::serialize(views, &Some(meta))
        .map_err(|e| TrainError::Tch(tch::TchError::Convert(format!("safetensors: {e}"))))
}

/// Reads and checks the checkpoint `path`.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the file when it cannot be read, is truncated (its header
/// or data do not parse), lacks its position or checksum, or fails the checksum.
pub fn read(path: &Path) -> Result<Checkpoint> {
    let bad = |reason: String| TrainError::Checkpoint { path: path.into(), reason };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("truncated or not a safetensors file ({e:?})")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("truncated or not a safetensors file ({e:?})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let (Some(state), Some(sum)) = (meta.get(META_STATE), meta.get(META_SHA256)) else {
        return Err(bad("has no run position or checksum: not a resumable checkpoint".into()));
    };
    let mut views = st.tensors();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let got =
        checksum(state, views.iter().map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())));
    if &got != sum {
        return Err(bad(format!("fails its checksum (SHA-256 {got}, recorded {sum})")));
    }
    let position: Position =
        serde_json::from_str(state).map_err(|e| bad(format!("position does not parse: {e}")))?;
    let mut tensors = HashMap::new();
    for (name, view) in views {
        let size: Vec<i64> = view.shape().iter().map(|&s| s as i64).collect();
        let kind = Kind::try_from(view.dtype())?;
        tensors.insert(name, Tensor::f_from_data_size(view.data(), &size, kind)?);
    }
    Ok(Checkpoint { tensors: StateDict::new(tensors, path), position })
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, written through `wrap`
/// (the identity outside tests, which inject write errors through it), flushed to disk,
/// renamed over `path`, and the directory flushed. On an error the temporary file is removed
/// and `path`, if it existed, is untouched.
///
/// # Errors
/// [`TrainError::RunIo`] naming the file.
pub fn write_atomically<W: Write>(
    path: &Path,
    bytes: &[u8],
    wrap: impl FnOnce(File) -> W,
) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| TrainError::RunIo { path: p, source }
    };
    let written = (|| -> std::io::Result<()> {
        let file = File::create(&tmp)?;
        let mut w = wrap(file.try_clone()?);
        w.write_all(bytes)?;
        w.flush()?;
        drop(w);
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(path)(e));
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// The checkpoints in `dir`, oldest first.
///
/// # Errors
/// [`TrainError::RunIo`] when the folder exists and cannot be listed.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(TrainError::RunIo { path: dir.into(), source }),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("step-") && n.ends_with(".safetensors")
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Writes the checkpoint `bytes` after `steps` steps into `dir` and removes all but the
/// newest `keep` checkpoints; returns its path.
///
/// # Errors
/// [`TrainError::RunIo`] naming the file that could not be written or removed.
pub fn save(dir: &Path, steps: u64, bytes: &[u8], keep: usize) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .map_err(|source| TrainError::RunIo { path: dir.into(), source })?;
    let path = dir.join(file_name(steps));
    write_atomically(&path, bytes, |f| f)?;
    let all = list(dir)?;
    for old in &all[..all.len().saturating_sub(keep.max(1))] {
        std::fs::remove_file(old)
            .map_err(|source| TrainError::RunIo { path: old.clone(), source })?;
    }
    Ok(path)
}

/// The newest checkpoint in `dir` that reads back and passes its checksum, with a line for
/// every newer one that did not (naming it and why).
///
/// # Errors
/// [`TrainError::RunIo`] when the folder cannot be listed.
pub fn latest_good(dir: &Path) -> Result<(Option<Checkpoint>, Vec<String>)> {
    let mut skipped = Vec::new();
    for path in list(dir)?.iter().rev() {
        match read(path) {
            Ok(c) => return Ok((Some(c), skipped)),
            Err(e) => skipped.push(format!("{e}; trying the one before")),
        }
    }
    Ok((None, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssl_testutil::ScratchDir;

    fn groups(v: f32) -> Vec<(&'static str, State)> {
        let w = Tensor::from_slice(&[v, 2.0, 3.0]).view([3, 1]);
        let q = Tensor::from_slice(&[4i64, 5]);
        vec![("model", vec![("w".into(), w)]), ("method", vec![("queue/position".into(), q)])]
    }

    fn at(steps: u64) -> Position {
        Position {
            steps,
            epoch: 1,
            batch: 2,
            losses: vec![0.5; steps as usize],
            ..Position::start()
        }
    }

    #[test]
    fn a_checkpoint_reads_back_its_tensors_and_position() {
        let dir = ScratchDir::new("ckpt-roundtrip");
        let path = save(&dir, 3, &encode(&groups(1.5), &at(3)).unwrap(), 2).unwrap();
        assert!(path.ends_with("step-000000003.safetensors"));
        let c = read(&path).unwrap();
        assert_eq!(c.position, at(3));
        let w = c.tensors.get("model/w").unwrap();
        assert_eq!((w.size(), w.kind()), (vec![3, 1], Kind::Float));
        assert_eq!(Vec::<f32>::try_from(w.flatten(0, -1)).unwrap(), [1.5, 2.0, 3.0]);
        let q = c.tensors.group("method");
        assert_eq!(Vec::<i64>::try_from(q.get("queue/position").unwrap()).unwrap(), [4, 5]);
        let err = c.tensors.get("model/nothing").unwrap_err().to_string();
        assert!(err.contains("step-000000003") && err.contains("model/nothing"), "{err}");
    }

    #[test]
    fn a_flipped_byte_or_a_truncation_is_reported_by_name_and_the_previous_is_used() {
        let dir = ScratchDir::new("ckpt-corrupt");
        save(&dir, 1, &encode(&groups(1.0), &at(1)).unwrap(), 5).unwrap();
        let bytes = encode(&groups(2.0), &at(2)).unwrap();
        let second = save(&dir, 2, &bytes, 5).unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1; // inside the data: the checksum catches it
        flipped[last] ^= 0x40;
        std::fs::write(&second, &flipped).unwrap();
        let err = read(&second).unwrap_err().to_string();
        assert!(err.contains("step-000000002") && err.contains("checksum"), "{err}");
        let (found, skipped) = latest_good(&dir).unwrap();
        assert_eq!(found.unwrap().position.steps, 1);
        assert!(skipped[0].contains("step-000000002"), "{skipped:?}");
        std::fs::write(&second, &bytes[..bytes.len() / 2]).unwrap();
        let err = read(&second).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        assert_eq!(latest_good(&dir).unwrap().0.unwrap().position.steps, 1);
    }

    /// A writer that fails with "no space left" after `room` bytes.
    struct Full {
        inner: File,
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            self.inner.write(&buf[..n])
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.inner.flush()
        }
    }

    #[test]
    fn a_disk_filling_during_a_write_leaves_the_previous_file_intact() {
        let dir = ScratchDir::new("ckpt-full");
        let path = dir.join(file_name(7));
        let old = encode(&groups(1.0), &at(7)).unwrap();
        write_atomically(&path, &old, |f| f).unwrap();
        let new = encode(&groups(9.0), &at(7)).unwrap();
        let err = write_atomically(&path, &new, |f| Full { inner: f, room: 100 }).unwrap_err();
        assert!(err.to_string().contains("step-000000007"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), old, "the old checkpoint, byte for byte");
        let names: Vec<_> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
        assert_eq!(read(&path).unwrap().position, at(7));
    }

    #[test]
    fn saving_keeps_the_newest_k() {
        let dir = ScratchDir::new("ckpt-keep");
        for s in 1..=5 {
            save(&dir, s, &encode(&groups(s as f32), &at(s)).unwrap(), 2).unwrap();
        }
        let names: Vec<String> = list(&dir)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into())
            .collect();
        assert_eq!(names, ["step-000000004.safetensors", "step-000000005.safetensors"]);
    }
}
