//! The trait every two-view loss implements.

use std::fmt::Debug;

use tch::Tensor;

use crate::Result;

/// A loss on two batches of embeddings whose rows `i` are the two views of sample `i`.
pub trait PairLoss: Debug + Send {
    /// The mean loss over the batch, a 0-dim tensor.
    ///
    /// # Errors
    /// [`crate::LossError::Shape`], naming both shapes, when `z1` and `z2` do not match the
    /// loss's contract.
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor>;

    /// [`PairLoss::f_forward`], for callers whose shapes are right by construction.
    ///
    /// # Panics
    /// When the shapes of `z1` and `z2` do not match the loss's contract.
    fn forward(&self, z1: &Tensor, z2: &Tensor) -> Tensor {
        self.f_forward(z1, z2).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The hook a training loop calls after every optimiser step: a loss with a learnt logit
    /// scale clips its variable to the cap there, as CLIP does after each step (Radford et al.
    /// 2021, Sec. 2.5). Nothing for losses without learnt parameters.
    fn after_step(&self) {}
}
