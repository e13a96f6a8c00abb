//! NT-Xent in O(N · tile) memory: the 2N × 2N similarity matrix is never materialised.

use tch::Tensor;

use crate::ops::check_views;
use crate::symmetric_tiles::{self, check_shift_temperature, Tiles};
use crate::workspace::Workspace;
use crate::{LossError, PairLoss, Result};

/// Settings of [`TiledNtXent`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct TiledNtXentConfig {
    /// τ, the softmax temperature, as in [`crate::NtXentConfig`].
    pub temperature: f64,
    /// Rows and columns of one similarity tile; the extra memory is a few `tile × tile`
    /// matrices (16 MiB each in f32 at 2048) plus O(N · D).
    pub tile: i64,
}

impl Default for TiledNtXentConfig {
    fn default() -> Self {
        Self { temperature: 0.5, tile: 2048 }
    }
}

impl TiledNtXentConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` (must be ≥ 2/700) or `tile` (≥ 1).
    pub fn build(self) -> Result<TiledNtXent> {
        check_shift_temperature(self.temperature)?;
        if self.tile < 1 {
            return Err(LossError::InvalidConfig {
                field: "tile",
                value: self.tile.to_string(),
                reason: "must be ≥ 1",
            });
        }
        Ok(TiledNtXent { cfg: self, workspace: Workspace::default() })
    }
}

/// NT-Xent (the same loss and gradients as [`crate::NtXent`]) computed tile by tile.
///
/// Paper: Chen et al., ICML 2020, <https://arxiv.org/abs/2002.05709>, Eq. (1). Tiling a
/// softmax by its per-row sums is the idea of Milakov & Gimelshein, "Online normalizer
/// calculation for softmax", 2018, <https://arxiv.org/abs/1805.02867>.
///
/// ```text
/// z = normalise([z₁; z₂]) ∈ ℝ^{2N×D},  sᵢₖ = zᵢ·zₖ/τ (k ≠ i),  p(i) = (i + N) mod 2N
/// lseᵢ = 1/τ + ln Σ_{k≠i} e^{sᵢₖ − 1/τ}     (sums over tiles; sᵢₖ ≤ 1/τ as ‖zᵢ‖ = 1)
/// L    = 1/(2N) Σᵢ (lseᵢ − sᵢ,p(i))
/// ∂L/∂z = 1/(2Nτ) ((P + Pᵀ) z − 2 z_p),   Pᵢₖ = e^{sᵢₖ − lseᵢ}   (tiles recomputed)
/// ```
///
/// The similarity matrix is symmetric, so only the tiles on and above the diagonal are
/// computed. The first pass keeps only the per-row sums; the gradient with respect to the
/// normalised z comes from a second pass that recomputes each tile, right away, and is
/// attached through the surrogate `L + Σ z·g − stopgrad(Σ z·g)`, so autograd carries it
/// through the normalisation into the encoder (first derivatives only). The extra memory is
/// O(N · D + tile²), against the dense form's O(N²): at 2N = 131,072 the dense logits alone
/// take 64 GiB in f32. It costs 4/3 of [`crate::NtXent`]'s matrix products, which keeps its
/// tiles. f16 / bf16 inputs are upcast to f32; τ < 0.025 is computed in f64.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]`, row `i` of each the two views of sample `i` → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same N ≥ 1 and D.
///
/// # Example
/// ```
/// use ssl_loss::{NtXentConfig, PairLoss, TiledNtXentConfig};
/// let z1 = tch::Tensor::randn([10, 4], (tch::Kind::Double, tch::Device::Cpu));
/// let z2 = tch::Tensor::randn([10, 4], (tch::Kind::Double, tch::Device::Cpu));
/// let tiled = TiledNtXentConfig { temperature: 0.5, tile: 3 }.build()?.forward(&z1, &z2);
/// let dense = NtXentConfig { temperature: 0.5, ..Default::default() }.build()?.forward(&z1, &z2);
/// assert!((tiled - dense).abs().double_value(&[]) < 1e-12);
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TiledNtXent {
    cfg: TiledNtXentConfig,
    workspace: Workspace,
}

impl PairLoss for TiledNtXent {
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        check_views("TiledNtXent", z1, z2, 1)?;
        let (tau, tile) = (self.cfg.temperature, self.cfg.tile);
        Ok(symmetric_tiles::nt_xent(z1, z2, tau, tile, Tiles::Recomputed, &self.workspace, false).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn tiled(tau: f64, tile: i64) -> TiledNtXent {
        TiledNtXentConfig { temperature: tau, tile }.build().unwrap()
    }

    #[test]
    fn identical_embeddings_give_ln_2n_minus_1_for_any_tile() {
        let z = Tensor::ones([5, 3], (Kind::Double, Device::Cpu));
        for tile in [1, 2, 3, 10, 100] {
            let l = tiled(0.1, tile).forward(&z, &z).double_value(&[]);
            assert!((l - 9f64.ln()).abs() < 1e-12, "tile {tile}: {l}");
        }
    }

    #[test]
    fn values_and_gradients_equal_the_dense_form_in_f32() {
        let z1 = Tensor::randn([37, 16], (Kind::Float, Device::Cpu));
        let z2 = &z1 + Tensor::randn([37, 16], (Kind::Float, Device::Cpu)) * 0.5;
        let grads = |loss: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
            let (a, b) = (z1.detach().set_requires_grad(true), z2.detach().set_requires_grad(true));
            let l = loss(&a, &b);
            let g = Tensor::run_backward(&[&l], &[&a, &b], false, false);
            (l, Tensor::cat(&g, 0))
        };
        // The textbook form: autograd through the dense softmax of the masked logits.
        let (dense_l, dense_g) = grads(&|a, b| {
            let targets = crate::ops::positive_index(37, Device::Cpu);
            crate::ops::two_view_logits(a, b, 0.2).cross_entropy_for_logits(&targets)
        });
        for tile in [8, 25, 74, 500] {
            let (l, g) = grads(&|a, b| tiled(0.2, tile).forward(a, b));
            let rel = f64::try_from((&l - &dense_l).abs() / dense_l.abs()).unwrap();
            assert!(rel < 1e-5, "tile {tile}: loss off by {rel}");
            let rel = f64::try_from((&g - &dense_g).norm() / dense_g.norm()).unwrap();
            assert!(rel < 1e-5, "tile {tile}: gradient off by {rel}");
        }
    }

    #[test]
    fn without_gradients_it_returns_the_plain_value() {
        let z = Tensor::eye(4, (Kind::Double, Device::Cpu));
        let l = tiled(0.2, 3).forward(&z, &z);
        assert!(!l.requires_grad());
        assert!((l.double_value(&[]) - (1.0 + 6.0 * (-5f64).exp()).ln()).abs() < 1e-12);
    }

    #[test]
    fn a_zero_tile_is_rejected_naming_the_field() {
        let err = TiledNtXentConfig { tile: 0, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("tile"), "{err}");
    }
}
