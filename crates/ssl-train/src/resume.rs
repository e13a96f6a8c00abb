//! `ssl train --resume DIR`: a run continued from the newest good checkpoint in its run
//! directory, with the config it was started with. Together with per-step seeding of
//! libtorch's generator (and the loader's and the augmentations' streams, which depend only on
//! the seed, the epoch and the batch), it ends with the weights an uninterrupted run ends with.

use std::path::Path;

use tch::nn::VarStore;

use crate::checkpoint::{latest_good, Checkpoint, CHECKPOINTS};
use crate::config::Length;
use crate::method::Method;
use crate::online_probe::OnlineProbe;
use crate::optim::Optimizer;
use crate::run_dir::{RunDir, CONFIG};
use crate::state::State;
use crate::trainer::{default_method, train_from, Trained};
use crate::{Result, TrainError};

/// Everything a checkpoint holds, by group: `model` (the `VarStore`), `method` (momentum
/// encoders, queues), `optim` and, when on, `probe`.
pub(crate) fn groups(
    vs: &VarStore,
    model: &dyn Method,
    opt: &Optimizer,
    probe: Option<&OnlineProbe>,
) -> Vec<(&'static str, State)> {
    let mut g = vec![
        ("model", vs.variables().into_iter().collect()),
        ("method", model.state()),
        ("optim", opt.state()),
    ];
    if let Some(p) = probe {
        g.push(("probe", p.state()));
    }
    g
}

/// Copies a checkpoint's [`groups`] back into a freshly built run.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming a tensor the run needs and the checkpoint lacks (or holds
/// in another shape).
pub(crate) fn restore(
    c: &Checkpoint,
    vs: &VarStore,
    model: &mut dyn Method,
    opt: &mut Optimizer,
    probe: Option<&mut OnlineProbe>,
) -> Result<()> {
    let model_vars = c.tensors.group("model");
    for (name, t) in vs.variables() {
        model_vars.copy_into(&name, &t)?;
    }
    model.load_state(&c.tensors.group("method"))?;
    opt.load_state(&c.tensors.group("optim"))?;
    if let Some(p) = probe {
        p.load_state(&c.tensors.group("probe"))?;
    }
    Ok(())
}

/// Continues the run in `dir` from its newest checkpoint that reads back and passes its
/// checksum (each newer one that does not is reported by name), with the run's own
/// `config.yaml`; `metrics.jsonl` keeps the lines up to that checkpoint and goes on from there.
///
/// # Errors
/// [`TrainError::Checkpoint`] naming the folder when no checkpoint is good, or a budgeted run
/// whose budget had not yet become `train.steps`; the config's and training's errors.
pub fn resume(dir: &Path) -> Result<(Trained, RunDir)> {
    let cfg = crate::config::load(&dir.join(CONFIG), &[])?;
    let folder = dir.join(CHECKPOINTS);
    let (found, skipped) = latest_good(&folder)?;
    for line in &skipped {
        eprintln!("warning: {line}");
    }
    let c = found.ok_or_else(|| TrainError::Checkpoint {
        path: folder.clone(),
        reason: "holds no good checkpoint to resume from".into(),
    })?;
    if let (Length::Budget(_), None) = (cfg.train.length(), &c.position.budget) {
        return Err(TrainError::Checkpoint {
            path: c.tensors.path().into(),
            reason: "was written before the budget fixed train.steps (the end of the \
                     warm-up): start the run again"
                .into(),
        });
    }
    let run = RunDir::reopen(dir, &c.position)?;
    let trained = train_from(&cfg, Some(&run), Box::new(default_method), Some(c))?;
    Ok((trained, run))
}
