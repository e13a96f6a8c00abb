//! The cases of `cargo xtask bench-loss`: each loss's forward + backward at one batch size, and
//! the GEMM floor of the same shapes (the matrix products alone, into preallocated outputs).
//! `benches/reference/loss_bench.py` writes the same cases in PyTorch eager.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use ssl_loss::{ClipLoss, ClipLossConfig, InfoNceConfig, NtXentConfig, PairLoss};
use ssl_loss::{SwavLossConfig, TiledNtXentConfig};

/// Embedding dimension of every case.
pub const DIM: i64 = 128;
/// MoCo's queue length (He et al. 2020, Sec. 4.1).
pub const QUEUE: i64 = 65_536;
/// SwAV's prototypes on ImageNet (Caron et al. 2020, Sec. 4.1).
pub const PROTOTYPES: i64 = 3_000;
/// Temperature of the NT-Xent and InfoNCE cases (SimCLR's ImageNet value; MoCo v1's is 0.07).
const TAU: f64 = 0.1;

/// A loss of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossKind {
    /// `NtXent`: 2N views, tiles kept.
    NtXent,
    /// `TiledNtXent`: 2N views, tiles recomputed, O(N · tile) memory.
    NtXentTiled,
    /// `InfoNce::forward_with_negatives`: N queries against a detached queue of [`QUEUE`].
    InfoNceQueue,
    /// `ClipLoss`: N image-text pairs, learnt logit scale.
    Clip,
    /// `SwavLoss`: 2 crops of N samples against [`PROTOTYPES`] learnt prototypes.
    Swav,
}

impl LossKind {
    /// Every loss, in report order.
    pub const ALL: [LossKind; 5] =
        [Self::NtXent, Self::NtXentTiled, Self::InfoNceQueue, Self::Clip, Self::Swav];

    /// The name in benchmark ids, `loss.json` and the Python reference.
    pub fn name(self) -> &'static str {
        match self {
            Self::NtXent => "nt_xent",
            Self::NtXentTiled => "nt_xent_tiled",
            Self::InfoNceQueue => "info_nce_queue",
            Self::Clip => "clip",
            Self::Swav => "swav",
        }
    }

    /// The batch sizes N of the benchmark (the list).
    pub fn sizes(self) -> &'static [i64] {
        match self {
            Self::NtXentTiled => &[256, 1024, 4096, 16_384, 65_536],
            _ => &[256, 1024, 4096],
        }
    }
}

fn randn(shape: [i64; 2], device: Device, grad: bool) -> Tensor {
    Tensor::randn(shape, (Kind::Float, device)).set_requires_grad(grad)
}

/// One forward + backward of `loss` at batch size `n` on `device`: the inputs are made once,
/// the closure runs the step.
pub fn step(loss: LossKind, n: i64, device: Device) -> Box<dyn FnMut()> {
    let (z1, z2) = (randn([n, DIM], device, true), randn([n, DIM], device, true));
    match loss {
        LossKind::NtXent | LossKind::NtXentTiled => {
            let l: Box<dyn PairLoss> = if loss == LossKind::NtXent {
                Box::new(NtXentConfig { temperature: TAU, ..Default::default() }.build().unwrap())
            } else {
                Box::new(
                    TiledNtXentConfig { temperature: TAU, ..Default::default() }.build().unwrap(),
                )
            };
            Box::new(move || l.forward(&z1, &z2).backward())
        }
        LossKind::InfoNceQueue => {
            let l = InfoNceConfig { temperature: TAU }.build().unwrap();
            let queue = randn([QUEUE, DIM], device, false);
            Box::new(move || l.forward_with_negatives(&z1, &z2.detach(), &queue).backward())
        }
        LossKind::Clip => {
            let vs = VarStore::new(device);
            let l = ClipLoss::new(&vs.root(), &ClipLossConfig::default()).unwrap();
            Box::new(move || {
                let _keep = &vs;
                l.forward(&z1, &z2).backward()
            })
        }
        LossKind::Swav => {
            let l = SwavLossConfig::default().build().unwrap();
            let prototypes = randn([PROTOTYPES, DIM], device, true);
            Box::new(move || {
                let c = ssl_loss::l2_normalize(&prototypes, 1e-12).tr(); // [D, P]
                let s1 = ssl_loss::l2_normalize(&z1, 1e-12).matmul(&c); // [N, P]
                let s2 = ssl_loss::l2_normalize(&z2, 1e-12).matmul(&c);
                l.forward(&[s1, s2], 2).backward()
            })
        }
    }
}

/// The matrix products of one step of `loss` at `n` in the textbook dense form: the logits
/// `G = A Bᵀ` (`A` `[rows, D]`, `B` `[cols, D]`), then `G B` for ∂A and, when `B` is learnt
/// too, `Gᵀ A` for ∂B. Returns `(rows, cols, both)`.
pub fn floor_shape(loss: LossKind, n: i64) -> (i64, i64, bool) {
    match loss {
        // z zᵀ, then G z and Gᵀ z (autograd computes both sides of the product).
        LossKind::NtXent | LossKind::NtXentTiled => (2 * n, 2 * n, true),
        // q nᵀ, then G n (the queue is detached).
        LossKind::InfoNceQueue => (n, QUEUE, false),
        // x yᵀ, then G y and Gᵀ x.
        LossKind::Clip => (n, n, true),
        // [z₁; z₂] Cᵀ, then G C and Gᵀ z.
        LossKind::Swav => (2 * n, PROTOTYPES, true),
    }
}

/// The GEMM floor of `loss` at `n`: the products of [`floor_shape`], each into a preallocated
/// output. `None` when the `[rows, cols]` matrix would take more than `max_bytes`.
pub fn floor(loss: LossKind, n: i64, device: Device, max_bytes: i64) -> Option<Box<dyn FnMut()>> {
    let (rows, cols, both) = floor_shape(loss, n);
    if 4 * rows * cols > max_bytes {
        return None;
    }
    let (a, b) = (randn([rows, DIM], device, false), randn([cols, DIM], device, false));
    let g = Tensor::zeros([rows, cols], (Kind::Float, device));
    let (da, db) = (a.zeros_like(), b.zeros_like());
    Some(Box::new(move || {
        let _ = a.mm_out(&g, &b.tr()); // [rows, cols]
        let _ = g.mm_out(&da, &b); // [rows, D]
        if both {
            let _ = g.tr().mm_out(&db, &a); // [cols, D]
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_runs_a_step_and_its_floor_at_a_small_size() {
        for loss in LossKind::ALL {
            step(loss, 8, Device::Cpu)();
            floor(loss, 8, Device::Cpu, i64::MAX).expect("small operands")();
        }
    }

    #[test]
    fn floors_beyond_the_byte_limit_are_refused() {
        assert!(floor(LossKind::NtXentTiled, 65_536, Device::Cpu, 1 << 33).is_none());
    }
}
