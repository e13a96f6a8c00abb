//! The two-phase augmentation trait and its object-safe form for pipelines.

use std::fmt::Debug;

use tch::Tensor;

use crate::AugRng;

/// A batched augmentation: sample per-sample parameters, then apply them in one call.
pub trait BatchAug: Debug + Send + Sync {
    /// The parameters of one batch; every per-sample field has leading length N.
    type Params: Debug + Clone;

    /// Draws the parameters for a batch of shape `size` (`[N, C, H, W]`). This is the only
    /// random step. It takes the whole shape, not just N, because geometric ops such as
    /// random resized crop draw boxes in pixels (kornia's `forward_parameters(batch_shape)`).
    fn sample(&self, size: &[i64], rng: &mut AugRng) -> Self::Params;

    /// Applies `params` to the float batch `x` (`[N, C, H, W]`, values in `[0, 1]`). Pure.
    ///
    /// # Panics
    /// When `x` is not 4-D or its N differs from the parameters' N.
    fn apply(&self, x: &Tensor, params: &Self::Params) -> Tensor;
}

/// An augmentation as a single random call, for pipelines of mixed ops.
pub trait Aug: Debug + Send + Sync {
    /// Samples parameters for `x`'s batch from `rng` and applies them.
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor;
}

impl<T: BatchAug> Aug for T {
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        let params = self.sample(&x.size(), rng);
        self.apply(x, &params)
    }
}

/// Checks the `[N, C, H, W]` contract of `apply`.
pub(crate) fn check_batch(op: &str, x: &Tensor, n: usize) {
    let size = x.size();
    assert!(
        size.len() == 4 && size[0] as usize == n,
        "{op}: x {size:?} must be [N, C, H, W] with N = {n} (the parameters' batch)"
    );
}
