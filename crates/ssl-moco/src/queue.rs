//! MoCo's queue of negative keys.

use tch::{Device, Kind, Tensor};

use crate::{MocoError, Result};

/// A first-in, first-out buffer of the last K keys, MoCo's dictionary of negatives.
///
/// Paper: He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation
/// Learning", CVPR 2020, <https://arxiv.org/abs/1911.05722>, Sec. 3.2 ("Dictionary as a queue").
///
/// ```text
/// queue ← enqueue(queue, k)   the oldest keys are overwritten first; |queue| ≤ K
/// ```
///
/// Writes wrap around the end of the buffer, so the batch size need not divide K. Keys are
/// detached: the queue never carries gradients.
///
/// # Shapes
/// Buffer `[K, D]`; `enqueue` takes `[N, D]`; `negatives` returns `[min(filled, K), D]`.
#[derive(Debug)]
pub struct FeatureQueue {
    buf: Tensor,
    ptr: i64,
    filled: i64,
}

impl FeatureQueue {
    /// An empty queue of `len` (K) keys of dimension `dim` (D).
    ///
    /// # Errors
    /// [`MocoError::Invalid`] when `len` or `dim` is below 1.
    pub fn new(len: i64, dim: i64, kind: Kind, device: Device) -> Result<Self> {
        if len < 1 || dim < 1 {
            return Err(MocoError::Invalid {
                what: format!("queue of length {len} and dimension {dim}"),
                reason: "both must be ≥ 1",
            });
        }
        let buf = Tensor::zeros([len, dim], (kind, device)); // [K, D]
        Ok(Self { buf, ptr: 0, filled: 0 })
    }

    /// K, the capacity.
    pub fn capacity(&self) -> i64 {
        self.buf.size()[0]
    }

    /// How many keys the queue holds, at most K.
    pub fn len(&self) -> i64 {
        self.filled
    }

    /// Whether no key has been enqueued yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Appends `keys`, overwriting the oldest ones once full. When N > K only the last K keys of
    /// the batch are kept.
    ///
    /// # Errors
    /// [`MocoError::KeyShape`] when `keys` is not `[N, D]`.
    pub fn enqueue(&mut self, keys: &Tensor) -> Result<()> {
        let (k, d) = (self.capacity(), self.buf.size()[1]);
        let size = keys.size();
        if size.len() != 2 || size[1] != d {
            return Err(MocoError::KeyShape { got: size, dim: d });
        }
        let n = size[0];
        let keys = keys.narrow(0, (n - k).max(0), n.min(k)).detach(); // [min(N, K), D]
        let n = n.min(k);
        tch::no_grad(|| -> Result<()> {
            let keys = keys.to_device(self.buf.device()).to_kind(self.buf.kind());
            let first = n.min(k - self.ptr);
            self.buf.narrow(0, self.ptr, first).f_copy_(&keys.narrow(0, 0, first))?;
            if first < n {
                self.buf.narrow(0, 0, n - first).f_copy_(&keys.narrow(0, first, n - first))?;
            }
            Ok(())
        })?;
        self.ptr = (self.ptr + n) % k;
        self.filled = (self.filled + n).min(k);
        Ok(())
    }

    /// The keys held, as a `[len, D]` view of the buffer (slot order, not age order).
    pub fn negatives(&self) -> Tensor {
        self.buf.narrow(0, 0, self.filled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(values: &[f32]) -> Tensor {
        Tensor::from_slice(values).view([-1, 1]) // [N, 1]
    }

    fn held(q: &FeatureQueue) -> Vec<f32> {
        Vec::<f32>::try_from(q.negatives().flatten(0, -1)).unwrap()
    }

    #[test]
    fn writes_wrap_around_when_the_batch_does_not_divide_k() {
        let mut q = FeatureQueue::new(5, 1, Kind::Float, Device::Cpu).unwrap();
        q.enqueue(&keys(&[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(held(&q), [1.0, 2.0, 3.0]);
        q.enqueue(&keys(&[4.0, 5.0, 6.0])).unwrap(); // 6 wraps into slot 0
        assert_eq!(held(&q), [6.0, 2.0, 3.0, 4.0, 5.0]);
        q.enqueue(&keys(&[7.0])).unwrap();
        assert_eq!(held(&q), [6.0, 7.0, 3.0, 4.0, 5.0]);
        assert_eq!(q.len(), 5);
    }

    #[test]
    fn a_batch_larger_than_k_keeps_its_last_k_keys() {
        let mut q = FeatureQueue::new(2, 1, Kind::Float, Device::Cpu).unwrap();
        q.enqueue(&keys(&[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(held(&q), [2.0, 3.0]);
    }

    #[test]
    fn keys_are_detached_and_wrong_shapes_are_errors() {
        let mut q = FeatureQueue::new(3, 2, Kind::Float, Device::Cpu).unwrap();
        let k = Tensor::ones([2, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        q.enqueue(&(&k * 2)).unwrap();
        assert!(!q.negatives().requires_grad());
        let err = q.enqueue(&Tensor::ones([2, 3], (Kind::Float, Device::Cpu))).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
        assert!(FeatureQueue::new(0, 2, Kind::Float, Device::Cpu).is_err());
    }
}
