//! MoCo's queue of negative keys.

use tch::{Device, Kind, Tensor};

use crate::{MocoError, Result};

/// A first-in, first-out buffer of the last K keys, MoCo's dictionary of negatives.
///
/// Paper: He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation
/// Learning", CVPR 2020, <https://arxiv.org/abs/1911.05722>, Sec. 3.2 ("Dictionary as a queue").
///
/// ```text
/// queue₀ = K random unit vectors     (the reference code: normalize(randn(D, K), dim=0))
/// queue ← enqueue(queue, k)           the oldest keys are overwritten first; |queue| = K
/// ```
///
/// The queue starts full of random unit vectors, as MoCo's reference implementation: every
/// step, the first included, contrasts against exactly K negatives, so InfoNCE never sees an
/// empty or short dictionary and the mutual-information bound ln(K + 1) − L holds with
/// K = [`FeatureQueue::capacity`]. The random keys are drawn from libtorch's global generator
/// (seeded by the caller, as weight initialisation) and pushed out by real keys after ⌈K/N⌉
/// steps; [`FeatureQueue::real_keys`] says how many real keys it holds.
///
/// Writes wrap around the end of the buffer, so the batch size need not divide K. Keys are
/// detached: the queue never carries gradients.
///
/// # Shapes
/// Buffer and `negatives`: `[K, D]`; `enqueue` takes `[N, D]`.
#[derive(Debug)]
pub struct FeatureQueue {
    buf: Tensor,
    ptr: i64,
    real: i64,
}

impl FeatureQueue {
    /// A queue of `len` (K) random unit keys of dimension `dim` (D).
    ///
    /// # Errors
    /// [`MocoError::Invalid`] when `len` or `dim` is below 1, or `kind` is not a floating
    /// point kind.
    pub fn new(len: i64, dim: i64, kind: Kind, device: Device) -> Result<Self> {
        if len < 1 || dim < 1 {
            return Err(MocoError::Invalid {
                what: format!("queue of length {len} and dimension {dim}"),
                reason: "both must be ≥ 1",
            });
        }
        if !matches!(kind, Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double) {
            return Err(MocoError::Invalid {
                what: format!("queue of kind {kind:?}"),
                reason: "keys must be floating point",
            });
        }
        let buf = tch::no_grad(|| {
            let r = Tensor::randn([len, dim], (Kind::Float, device)); // [K, D]
            let norm = r.norm_scalaropt_dim(2, [1i64].as_slice(), true).clamp_min(1e-12);
            (r / norm).to_kind(kind)
        });
        Ok(Self { buf, ptr: 0, real: 0 })
    }

    /// K, the number of negatives [`FeatureQueue::negatives`] returns at every step.
    pub fn capacity(&self) -> i64 {
        self.buf.size()[0]
    }

    /// How many of the K keys came from [`FeatureQueue::enqueue`] (the rest are the random
    /// start), at most K.
    pub fn real_keys(&self) -> i64 {
        self.real
    }

    /// Appends `keys`, overwriting the oldest ones (the random start first). When N > K only
    /// the last K keys of the batch are kept.
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
        self.real = (self.real + n).min(k);
        Ok(())
    }

    /// The K keys, as the `[K, D]` buffer (slot order, not age order).
    pub fn negatives(&self) -> Tensor {
        self.buf.shallow_clone()
    }

    /// The write position and the count of real keys, `(ptr, real)`: with
    /// [`FeatureQueue::negatives`], everything [`FeatureQueue::restore`] needs.
    pub fn position(&self) -> (i64, i64) {
        (self.ptr, self.real)
    }

    /// Sets the keys and the position saved from another queue of the same size (a resumed
    /// run).
    ///
    /// # Errors
    /// [`MocoError::KeyShape`] when `keys` is not `[K, D]`; [`MocoError::Invalid`] when the
    /// position lies outside `0..K` (`real` in `0..=K`).
    pub fn restore(&mut self, keys: &Tensor, ptr: i64, real: i64) -> Result<()> {
        let (k, d) = (self.capacity(), self.buf.size()[1]);
        if keys.size() != [k, d] {
            return Err(MocoError::KeyShape { got: keys.size(), dim: d });
        }
        if !(0..k).contains(&ptr) || !(0..=k).contains(&real) {
            return Err(MocoError::Invalid {
                what: format!("queue position {ptr} with {real} real keys"),
                reason: "must lie inside the queue",
            });
        }
        tch::no_grad(|| self.buf.f_copy_(keys))?;
        (self.ptr, self.real) = (ptr, real);
        Ok(())
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
    fn a_new_queue_holds_k_random_unit_keys() {
        let q = FeatureQueue::new(6, 3, Kind::Float, Device::Cpu).unwrap();
        assert_eq!(q.negatives().size(), [6, 3]);
        assert_eq!((q.capacity(), q.real_keys()), (6, 0));
        let norms =
            Vec::<f32>::try_from(q.negatives().norm_scalaropt_dim(2, [1i64].as_slice(), false))
                .unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-6), "{norms:?}");
        // Random, not a constant: six distinct directions in 3-D.
        let gram =
            q.negatives().matmul(&q.negatives().tr()) - Tensor::eye(6, (Kind::Float, Device::Cpu));
        assert!(f64::try_from(gram.abs().max()).unwrap() < 1.0 - 1e-4);
    }

    #[test]
    fn writes_wrap_around_when_the_batch_does_not_divide_k() {
        // D = 1: the random start is ±1, so written keys (2 … 7) are told apart from it.
        let mut q = FeatureQueue::new(5, 1, Kind::Float, Device::Cpu).unwrap();
        q.enqueue(&keys(&[2.0, 3.0, 4.0])).unwrap();
        let h = held(&q);
        assert_eq!(h[..3], [2.0, 3.0, 4.0]);
        assert!(h[3..].iter().all(|v| v.abs() == 1.0), "the random start: {h:?}");
        assert_eq!(q.real_keys(), 3);
        q.enqueue(&keys(&[5.0, 6.0, 7.0])).unwrap(); // 7 wraps into slot 0
        assert_eq!(held(&q), [7.0, 3.0, 4.0, 5.0, 6.0]);
        q.enqueue(&keys(&[8.0])).unwrap();
        assert_eq!(held(&q), [7.0, 8.0, 4.0, 5.0, 6.0]);
        assert_eq!(q.real_keys(), 5);
    }

    #[test]
    fn a_restored_queue_continues_as_the_original() {
        let mut a = FeatureQueue::new(5, 1, Kind::Float, Device::Cpu).unwrap();
        a.enqueue(&keys(&[2.0, 3.0, 4.0])).unwrap();
        let mut b = FeatureQueue::new(5, 1, Kind::Float, Device::Cpu).unwrap();
        let (ptr, real) = a.position();
        b.restore(&a.negatives(), ptr, real).unwrap();
        for q in [&mut a, &mut b] {
            q.enqueue(&keys(&[5.0, 6.0, 7.0])).unwrap();
        }
        assert_eq!(held(&b), [7.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!((held(&a), a.position()), (held(&b), b.position()));
        assert!(b.restore(&Tensor::zeros([4, 1], (Kind::Float, Device::Cpu)), 0, 0).is_err());
        assert!(b.restore(&a.negatives(), 5, 0).is_err());
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
        let err = FeatureQueue::new(3, 2, Kind::Int64, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("Int64"), "{err}");
    }
}
