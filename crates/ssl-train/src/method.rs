//! The `Method` trait: what a self-supervised method tells the trainer, and nothing more.

use std::fmt::Debug;

use ssl_aug::Compose;
use ssl_models::Backbone;
use tch::Tensor;

use crate::state::{State, StateDict};
use crate::Result;

/// Where the trainer is when it calls a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepContext {
    /// The optimiser step, from 0.
    pub step: u64,
    /// The run's length in steps (known once a budget is resolved; `u64::MAX` before).
    pub total: u64,
    /// The epoch, from 0.
    pub epoch: u64,
}

/// One step's data as a method sees it.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The augmented views (`[N, C, H, W]` each, in [`Method::views`]'s order).
    pub views: &'a [Tensor],
    /// The source images' class labels (`[N]`, int64), passed only to a method whose
    /// [`Method::uses_labels`] is true (SupCon, the supervised ceiling); `None` for every
    /// self-supervised method, which never sees a label.
    pub labels: Option<&'a Tensor>,
}

impl<'a> Batch<'a> {
    /// Views without labels, as a self-supervised method gets them.
    pub fn unlabelled(views: &'a [Tensor]) -> Self {
        Self { views, labels: None }
    }
}

/// What one step of a method computed.
#[derive(Debug)]
pub struct StepOutput {
    /// The loss to minimise, a 0-dim tensor with a graph into the method's trainable variables.
    pub loss: Tensor,
    /// The embeddings the collapse monitor reads (`[N, D]`, detached; the projections of the
    /// first view), or `None`.
    pub embeddings: Option<Tensor>,
    /// The backbone features of the first view (`[N, F]`, detached), which the online linear
    /// probe trains on, or `None`.
    pub features: Option<Tensor>,
    /// Named extra scalars to log beside the loss (for example `momentum`).
    pub logs: Vec<(&'static str, f64)>,
}

/// How the optimiser treats a trainable variable's learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrGroup {
    /// The run's warm-up and cosine schedule.
    Scheduled,
    /// The peak learning rate at every step (SimSiam's predictor, Chen & He 2021, Sec. 4.2).
    Fixed,
}

/// A self-supervised method as the trainer drives it: the trainer owns the data, the
/// augmentation seeds, the optimiser and its schedule, the monitors, checkpoints and
/// evaluation, and knows no method by name.
///
/// One step, in the trainer's order: for each view `v`, `views()[v]` augments the batch with
/// the stream `aug_rng(seed, [epoch, batch, v])`; [`Method::step`] returns the loss from the
/// views (and the labels, for a method that [`Method::uses_labels`]); the
/// optimiser steps on the gradients of the method's trainable variables (biases and BatchNorm
/// are never decayed or LARS-adapted; [`Method::lr_group`] picks each variable's schedule);
/// then [`Method::after_step`] (EMA update, enqueue). [`Method::after_epoch`] runs after each
/// epoch, before the monitors.
///
/// The trait is object-safe: the trainer holds a `Box<dyn Method>` chosen at run time from
/// the YAML, and a user's own method (see `examples/custom_method.rs`) is driven by the same
/// loop. One virtual call per step costs nothing next to a forward pass.
pub trait Method: Debug {
    /// The augmentation pipeline of each view; their number is the number of views.
    fn views(&self) -> &[Compose];

    /// The loss of one step from the batch's augmented views (`[N, C, H, W]` each, in
    /// `views()`'s order), in training mode.
    ///
    /// # Errors
    /// Shape or queue errors of the method's parts; a method that uses labels errs when
    /// `batch.labels` is `None`.
    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput>;

    /// Whether the method trains on class labels (SupCon, the supervised ceiling): only then
    /// does the trainer pass them in [`Batch::labels`], and the run says that labels reached
    /// the encoder. `false` for every self-supervised method.
    fn uses_labels(&self) -> bool {
        false
    }

    /// Runs after each optimiser step: momentum-encoder updates, enqueues, clamps.
    ///
    /// # Errors
    /// The parts' errors.
    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        Ok(())
    }

    /// Runs after each epoch (for example to reset per-epoch state).
    ///
    /// # Errors
    /// The parts' errors.
    fn after_epoch(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }

    /// Makes every momentum copy (key encoder, EMA target) equal to the online network again,
    /// after weights were loaded into it (`ssl train --init-from`). Methods without one have
    /// nothing to do.
    ///
    /// # Errors
    /// The momentum encoder's errors.
    fn reset_targets(&mut self) -> Result<()> {
        Ok(())
    }

    /// Tensors outside the trained `VarStore` that a resumed run needs to continue exactly
    /// (momentum encoders, queues), named; see [`crate::state`]. Methods whose whole state is
    /// in the `VarStore` have none.
    fn state(&self) -> State {
        Vec::new()
    }

    /// Takes back [`Method::state`] from a checkpoint.
    ///
    /// # Errors
    /// [`crate::TrainError::Checkpoint`] naming a missing or misshapen tensor.
    fn load_state(&mut self, _state: &StateDict) -> Result<()> {
        Ok(())
    }

    /// The backbone f whose pooled features the monitors and evaluation use.
    fn backbone(&self) -> &dyn Backbone;

    /// The backbone, to switch its precision for evaluation.
    fn backbone_mut(&mut self) -> &mut dyn Backbone;

    /// The learning-rate treatment of the trainable variable `name` (its `VarStore` path).
    fn lr_group(&self, _name: &str) -> LrGroup {
        LrGroup::Scheduled
    }
}
