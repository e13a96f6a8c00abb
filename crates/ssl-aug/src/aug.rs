//! The two-phase augmentation trait and its object-safe form for pipelines.

use std::any::Any;
use std::fmt::Debug;

use tch::Tensor;

use crate::{AugError, AugRng, Result};

/// Per-sample parameters of one batch, which can be cut into the rows of a sub-batch (a
/// pipeline applies a large batch in cache-sized chunks with the parameters drawn for all).
pub trait BatchParams: Debug + Clone + Send + Sync + 'static {
    /// The parameters of samples `start .. start + len`.
    fn rows(&self, start: usize, len: usize) -> Self;

    /// N, the samples these parameters are for.
    fn len(&self) -> usize;

    /// Whether they are for no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

    /// Checks `apply`'s input contract for a batch of shape `size` and parameters of `n`
    /// samples: `[N, C, H, W]` with N = `n`, unless the op takes another layout.
    ///
    /// # Errors
    /// [`AugError::Shape`] naming the op, `size` and the shape expected.
    fn check_apply_input(&self, size: &[i64], n: usize) -> Result<()> {
        batch_contract(op_name::<Self>(), size, n)
    }

    /// [`BatchAug::apply`] that returns an error naming both shapes where `apply` panics.
    ///
    /// # Errors
    /// [`AugError::Shape`] when `x` breaks the contract.
    fn f_apply(&self, x: &Tensor, params: &Self::Params) -> Result<Tensor> {
        self.check_apply_input(&x.size(), params.len())?;
        Ok(self.apply(x, params))
    }
}

/// The op's type name without its module path (`HorizontalFlip`).
pub(crate) fn op_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

/// `Ok` when `size` is `[N, C, H, W]` with N = `n`, else [`AugError::Shape`] naming `op`.
pub(crate) fn batch_contract(op: &str, size: &[i64], n: usize) -> Result<()> {
    if size.len() == 4 && size[0] as usize == n {
        return Ok(());
    }
    Err(AugError::Shape {
        op: op.into(),
        got: size.to_vec(),
        expected: format!("[N, C, H, W] with N = {n} (the parameters' batch)"),
    })
}

/// Parameters of some op, type-erased for pipelines.
pub type ErasedParams = Box<dyn Any + Send + Sync>;

/// An augmentation as a single random call, for pipelines of mixed ops.
pub trait Aug: Debug + Send + Sync {
    /// Samples parameters for `x`'s batch from `rng` and applies them.
    ///
    /// # Panics
    /// When `x` breaks the op's input contract ([`Aug::f_forward`] returns the error).
    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        let (params, _) = self.sample_erased(&x.size(), rng);
        self.apply_erased(x, &params, 0, x.size()[0] as usize)
    }

    /// Checks `forward`'s input contract for a batch of shape `size` (`[N, C, H, W]` unless
    /// the op takes another layout).
    ///
    /// # Errors
    /// [`AugError::Shape`] naming the op, `size` and the shape expected.
    fn check_forward_input(&self, size: &[i64]) -> Result<()> {
        let n = size.first().map_or(0, |&n| n.max(0) as usize);
        batch_contract("augmentation", size, n)
    }

    /// [`Aug::forward`] that returns an error naming both shapes where `forward` panics.
    ///
    /// # Errors
    /// [`AugError::Shape`] when `x` breaks the contract; nothing is drawn from `rng` then.
    fn f_forward(&self, x: &Tensor, rng: &mut AugRng) -> Result<Tensor> {
        self.check_forward_input(&x.size())?;
        Ok(self.forward(x, rng))
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

    fn check_forward_input(&self, size: &[i64]) -> Result<()> {
        let n = size.first().map_or(0, |&n| n.max(0) as usize);
        self.check_apply_input(size, n)
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

    fn len(&self) -> usize {
        self.0.len()
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

/// Checks the `[N, C, H, W]` contract of `apply`, panicking with [`batch_contract`]'s message.
pub(crate) fn check_batch(op: &str, x: &Tensor, n: usize) {
    if let Err(e) = batch_contract(op, &x.size(), n) {
        panic!("{e}");
    }
}

/// `v[start .. start + len]` as a new vector.
pub(crate) fn rows_of<T: Clone>(v: &[T], start: usize, len: usize) -> Vec<T> {
    v[start..start + len].to_vec()
}
