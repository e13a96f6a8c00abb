//! The trait every two-view loss implements.

use std::fmt::Debug;

use tch::Tensor;

/// A loss on two batches of embeddings whose rows `i` are the two views of sample `i`.
pub trait PairLoss: Debug + Send {
    /// The mean loss over the batch, a 0-dim tensor.
    ///
    /// # Panics
    /// When the shapes of `z1` and `z2` do not match the loss's contract.
    fn forward(&self, z1: &Tensor, z2: &Tensor) -> Tensor;
}
