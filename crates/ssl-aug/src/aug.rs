//! The two-phase augmentation trait and its object-safe form for pipelines.

use std::any::Any;
use std::fmt::Debug;

use tch::Tensor;

use crate::AugRng;

/// Per-sample parameters of one batch, which can be cut into the rows of a sub-batch (a
/// pipeline applies a large batch in cache-sized chunks with the parameters drawn for all).
pub trait BatchParams: Debug + Clone + Send + Sync + 'static {
    /// The parameters of samples `start .. start + len`.
    fn rows(&self, start: usize, len: usize) -> Self;
}

/// A batched augmentation: sample per-sample parameters, then apply them in one call.
pub trait BatchAug: Debug + Send + Sync {
    /// The parameters of one batch; every per-sample field has leading length N.
    type Params: BatchParams;

    /// Draws the parameters for a batch of shape `size` (`[N, C, H, W]`). This is the only
    /// random step. It takes the whole shape, not just N, because geometric ops such as
    /// random resized crop draw boxes in pixels (kornia's `forward_parameters(batch_shape)`).
    fn sample(&self, size: &[i64], rng: &mut AugRng) -> Self::Params;

    /// Applies `params` to the batch `x` (`[N, C, H, W]`, float in `[0, 1]`, or uint8 levels
    /// where the op says so; the output keeps the dtype unless the op converts it). Pure.
    ///
    /// # Panics
    /// When `x` is not 4-D or its N differs from the parameters' N.
    fn apply(&self, x: &Tensor, params: &Self::Params) -> Tensor;

    /// [`BatchAug::apply`] to a batch the caller gives up: the op may write its result into
    /// `x`'s memory instead of a fresh tensor (a pipeline's intermediate batches), saving a
    /// copy of the batch for ops that change only some samples. Same output as `apply`.
    ///
    /// `x` must be contiguous and share no memory with a tensor the caller still reads. Like
    /// `apply`, it returns a fresh tensor or a view of `x`, never memory of another tensor.
    fn apply_owned(&self, x: Tensor, params: &Self::Params) -> Tensor {
        self.apply(&x, params)
    }

    /// The shape of the output for an input of shape `size` (the same, unless the op resizes).
    fn output_size(&self, size: &[i64]) -> Vec<i64> {
        size.to_vec()
    }
}

/// Parameters of some op, type-erased for pipelines.
pub type ErasedParams = Box<dyn Any + Send + Sync>;

/// An augmentation as a single random call, for pipelines of mixed ops.
pub trait Aug: Debug + Send + Sync {
    /// Samples parameters for `x`'s batch from `rng` and applies them.
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        let (params, _) = self.sample_erased(&x.size(), rng);
        self.apply_erased(x, &params, 0, x.size()[0] as usize)
    }

    /// [`BatchAug::sample`] behind a type-erased box, with the output shape.
    fn sample_erased(&self, size: &[i64], rng: &mut AugRng) -> (ErasedParams, Vec<i64>);

    /// [`BatchAug::apply`] of the parameter rows `start .. start + len` to `x`, which holds
    /// those `len` samples.
    ///
    /// # Panics
    /// When `params` did not come from this op's [`Aug::sample_erased`].
    fn apply_erased(&self, x: &Tensor, params: &ErasedParams, start: usize, len: usize) -> Tensor;

    /// [`Aug::apply_erased`] to a batch the caller gives up, as [`BatchAug::apply_owned`].
    fn apply_erased_owned(
        &self,
        x: Tensor,
        params: &ErasedParams,
        start: usize,
        len: usize,
    ) -> Tensor {
        self.apply_erased(&x, params, start, len)
    }
}

impl<T: BatchAug> Aug for T {
    /// Sample then apply, without boxing or copying the parameters.
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        let params = self.sample(&x.size(), rng);
        self.apply(x, &params)
    }

    fn sample_erased(&self, size: &[i64], rng: &mut AugRng) -> (ErasedParams, Vec<i64>) {
        (Box::new(self.sample(size, rng)), self.output_size(size))
    }

    fn apply_erased(&self, x: &Tensor, params: &ErasedParams, start: usize, len: usize) -> Tensor {
        let p = params.downcast_ref::<T::Params>().expect("parameters of another op");
        self.apply(x, &p.rows(start, len))
    }

    fn apply_erased_owned(
        &self,
        x: Tensor,
        params: &ErasedParams,
        start: usize,
        len: usize,
    ) -> Tensor {
        let p = params.downcast_ref::<T::Params>().expect("parameters of another op");
        self.apply_owned(x, &p.rows(start, len))
    }
}

impl<A: BatchParams, B: BatchParams> BatchParams for (A, B) {
    fn rows(&self, start: usize, len: usize) -> Self {
        (self.0.rows(start, len), self.1.rows(start, len))
    }
}

/// `apply` and `apply_owned` of a [`BatchAug`] impl, both through the type's inherent
/// `apply_owned_if(&self, x: Tensor, owned: bool, params) -> Tensor` (`owned`: x may be
/// written), for the ops whose in-place and copying paths differ only in that flag.
macro_rules! apply_through_owned_if {
    ($params:ty) => {
        fn apply(&self, x: &Tensor, params: &$params) -> Tensor {
            self.apply_owned_if(x.shallow_clone(), false, params)
        }

        fn apply_owned(&self, x: Tensor, params: &$params) -> Tensor {
            self.apply_owned_if(x, true, params)
        }
    };
}
pub(crate) use apply_through_owned_if;

/// Checks the `[N, C, H, W]` contract of `apply`.
pub(crate) fn check_batch(op: &str, x: &Tensor, n: usize) {
    let size = x.size();
    assert!(
        size.len() == 4 && size[0] as usize == n,
        "{op}: x {size:?} must be [N, C, H, W] with N = {n} (the parameters' batch)"
    );
}

/// `v[start .. start + len]` as a new vector.
pub(crate) fn rows_of<T: Clone>(v: &[T], start: usize, len: usize) -> Vec<T> {
    v[start..start + len].to_vec()
}
