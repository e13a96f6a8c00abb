//! Ops applied in sequence, in cache-sized chunks of the batch, spread over threads.

use tch::Tensor;

use crate::chunk_plan::{omp_set_num_threads, plan, spread, Plan, SetThreads};
use crate::{Aug, AugRng, ErasedParams};

/// Ops applied one after another, each drawing its parameters from the same generator.
///
/// [`Aug::forward`] draws every op's parameters for the whole batch first, in order (the
/// draws a sequence of single calls would make), then applies all the ops to one chunk of
/// samples after another, so each chunk's pixels stay in cache from op to op; on CUDA the batch
/// is one chunk. On the CPU a large batch's chunks are spread over libtorch's threads, each
/// running libtorch single-threaded (`chunk_plan.rs`): one wait per chunk instead of one
/// per op call, which on the 2-core machine kept 96 px SimCLR views at ~105 ms a batch of 256
/// while the chunks in order took 125–190 ms in the same noisy spell. The ops act on each
/// sample independently, so the output does not depend on the chunking.
#[derive(Debug, Default)]
pub struct Compose {
    ops: Vec<Box<dyn Aug>>,
}

impl Compose {
    /// Appends `op` at the end of the pipeline.
    pub fn push(&mut self, op: impl Aug + 'static) {
        self.ops.push(Box::new(op));
    }

    /// Appends an already boxed op.
    pub fn push_boxed(&mut self, op: Box<dyn Aug>) {
        self.ops.push(op);
    }

    /// How many ops the pipeline holds.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the pipeline holds no op (and is the identity).
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Every op's parameters for a batch of `size`, and each stage's shape (input first).
    fn sample_all(&self, size: &[i64], rng: &mut AugRng) -> (Vec<ErasedParams>, Vec<Vec<i64>>) {
        let mut shapes = vec![size.to_vec()];
        let params = self
            .ops
            .iter()
            .map(|op| {
                let (p, out) = op.sample_erased(shapes.last().expect("starts non-empty"), rng);
                shapes.push(out);
                p
            })
            .collect();
        (params, shapes)
    }

    /// Applies the ops in order to `x`, the samples `start .. start + len` of the batch; `x`
    /// is written only when `owned` (given up by the caller).
    ///
    /// Each op after the first gets the previous op's output to write into
    /// ([`Aug::apply_erased_owned`]) unless that output is a view of the caller's `x` or is
    /// not contiguous (an expanded view).
    fn apply_all(
        &self,
        x: &Tensor,
        owned: bool,
        params: &[ErasedParams],
        start: usize,
        len: usize,
    ) -> Tensor {
        let mut y = x.shallow_clone();
        let mut writable = owned && x.is_contiguous();
        for (op, p) in self.ops.iter().zip(params) {
            y = if writable {
                op.apply_erased_owned(y, p, start, len)
            } else {
                op.apply_erased(&y, p, start, len)
            };
            writable = y.is_contiguous() && (owned || !overlaps(&y, x));
        }
        y
    }

    /// The ops applied to `x` chunk by chunk as `plan` says, into a batch of `size`; the
    /// chunks run in order unless the plan spreads them and `set_threads` is known.
    fn apply_plan(
        &self,
        x: &Tensor,
        params: &[ErasedParams],
        size: &[i64],
        plan: &Plan,
        set_threads: Option<SetThreads>,
    ) -> Tensor {
        if plan.chunks.len() == 1 {
            return self.apply_all(x, false, params, 0, x.size()[0] as usize);
        }
        let chunks: Vec<(i64, Tensor)> =
            plan.chunks.iter().map(|&(start, len)| (start, x.narrow(0, start, len))).collect();
        let apply = |c: &Tensor, start: i64| {
            self.apply_all(c, false, params, start as usize, c.size()[0] as usize)
        };
        match set_threads {
            Some(set_threads) if plan.workers > 1 => {
                spread(chunks, size, plan.workers, set_threads, apply)
            }
            _ => Tensor::cat(&chunks.iter().map(|(s, c)| apply(c, *s)).collect::<Vec<_>>(), 0),
        }
    }
}

/// The bytes a tensor's elements span, from its first to one past its last.
fn span(t: &Tensor) -> (usize, usize) {
    let start = t.data_ptr() as usize;
    let size = t.size();
    if size.contains(&0) {
        return (start, start);
    }
    let last: i64 = size.iter().zip(t.stride()).map(|(&n, s)| (n - 1) * s.abs()).sum();
    (start, start + (last as usize + 1) * t.kind().elt_size_in_bytes())
}

/// Whether the memory of `a` and `b` may overlap (their spans intersect).
fn overlaps(a: &Tensor, b: &Tensor) -> bool {
    let ((a0, a1), (b0, b1)) = (span(a), span(b));
    a0 < b1 && b0 < a1
}

impl Aug for Compose {
    /// The first op's contract (every image op keeps N and the rank).
    fn check_forward_input(&self, size: &[i64]) -> crate::Result<()> {
        self.ops.first().map_or(Ok(()), |op| op.check_forward_input(size))
    }

    fn forward(&self, x: &Tensor, rng: &mut AugRng) -> Tensor {
        let size = x.size();
        if self.ops.is_empty() || size.len() != 4 {
            return self.ops.iter().fold(x.shallow_clone(), |y, op| op.forward(&y, rng));
        }
        let (params, shapes) = self.sample_all(&size, rng);
        let n = size[0];
        let set_threads = omp_set_num_threads();
        let threads = tch::get_num_threads().max(1) as usize;
        let plan = plan(&shapes, n, x.device(), threads, set_threads.is_some());
        self.apply_plan(x, &params, shapes.last().expect("starts non-empty"), &plan, set_threads)
    }

    fn sample_erased(&self, size: &[i64], rng: &mut AugRng) -> (ErasedParams, Vec<i64>) {
        let (params, mut shapes) = self.sample_all(size, rng);
        (Box::new(params), shapes.pop().expect("starts non-empty"))
    }

    fn apply_erased(&self, x: &Tensor, params: &ErasedParams, start: usize, len: usize) -> Tensor {
        let params = params.downcast_ref::<Vec<ErasedParams>>().expect("parameters of another op");
        self.apply_all(x, false, params, start, len)
    }

    fn apply_erased_owned(
        &self,
        x: Tensor,
        params: &ErasedParams,
        start: usize,
        len: usize,
    ) -> Tensor {
        let params = params.downcast_ref::<Vec<ErasedParams>>().expect("parameters of another op");
        self.apply_all(&x, true, params, start, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk_plan::even_runs;
    use crate::{aug_rng, ViewPair};
    use tch::{Device, Kind};

    #[test]
    fn the_input_is_never_written_even_through_an_op_that_returns_it() {
        // The flip of p = 0 returns its input itself; the jitter after it must not write into
        // it, while the blur after the jitter may write into the jitter's fresh output.
        let mut view = Compose::default();
        view.push(crate::HorizontalFlipConfig { p: 0.0 }.build().unwrap());
        view.push(crate::ColorJitterConfig { p: 1.0, ..Default::default() }.build().unwrap());
        view.push(
            crate::GaussianBlurConfig { kernel_size: 3, sigma: [0.5, 1.0], p: 0.5 }
                .build()
                .unwrap(),
        );
        let x = Tensor::rand([6, 3, 8, 8], (Kind::Float, Device::Cpu));
        let before = x.copy();
        let y = view.forward(&x, &mut aug_rng(1, &[]));
        assert!(x.equal(&before));
        assert!(!y.equal(&x));
    }

    #[test]
    fn chunks_in_order_or_spread_give_what_one_call_per_op_gives() {
        let [view, _] = ViewPair::simclr(96).build().unwrap();
        let x = Tensor::rand([80, 3, 100, 100], (Kind::Float, Device::Cpu));
        let mut rng = aug_rng(5, &[]);
        let want = view.ops.iter().fold(x.shallow_clone(), |y, op| op.forward(&y, &mut rng));
        let (params, shapes) = view.sample_all(&x.size(), &mut aug_rng(5, &[]));
        let set = omp_set_num_threads();
        assert!(set.is_some(), "libtorch's OpenMP runtime is loaded");
        let plans = [
            Plan { chunks: even_runs(80, 3), workers: 1 },
            Plan { chunks: even_runs(80, 6), workers: 2 },
            Plan { chunks: even_runs(80, 5), workers: 3 },
        ];
        for p in &plans {
            let got = view.apply_plan(&x, &params, shapes.last().unwrap(), p, set);
            assert_eq!(got.size(), [80, 3, 96, 96]);
            let err = f64::try_from((&got - &want).abs().max()).unwrap();
            assert!(err < 1e-6, "{p:?}: output off by {err}");
        }
        // forward itself: the same draws, whatever plan this machine's thread count gives.
        let got = view.forward(&x, &mut aug_rng(5, &[]));
        assert!(f64::try_from((&got - &want).abs().max()).unwrap() < 1e-6);
    }
}
