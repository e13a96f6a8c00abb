//! NT-Xent in O(N · tile) memory: the 2N × 2N similarity matrix is never materialised.

use tch::Tensor;

use crate::error::check_temperature;
use crate::ops::{check_views, two_view_units};
use crate::{LossError, PairLoss, Result};

/// Settings of [`TiledNtXent`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct TiledNtXentConfig {
    /// τ, the softmax temperature, as in [`crate::NtXentConfig`].
    pub temperature: f64,
    /// Rows and columns of one similarity tile; the extra memory is a few `tile × tile`
    /// matrices (64 MiB each in f32 at 4096) plus O(N · D).
    pub tile: i64,
}

impl Default for TiledNtXentConfig {
    fn default() -> Self {
        Self { temperature: 0.5, tile: 4096 }
    }
}

impl TiledNtXentConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` (must be > 0) or `tile` (≥ 1).
    pub fn build(self) -> Result<TiledNtXent> {
        check_temperature(self.temperature)?;
        if self.tile < 1 {
            return Err(LossError::InvalidConfig {
                field: "tile",
                value: self.tile.to_string(),
                reason: "must be ≥ 1",
            });
        }
        Ok(TiledNtXent { cfg: self })
    }
}

/// NT-Xent (the same loss and gradients as [`crate::NtXent`]) computed tile by tile.
///
/// Paper: Chen et al., ICML 2020, <https://arxiv.org/abs/2002.05709>, Eq. (1); the tiling is
/// the online log-sum-exp of Milakov & Gimelshein, "Online normalizer calculation for softmax",
/// 2018, <https://arxiv.org/abs/1805.02867>.
///
/// ```text
/// z = normalise([z₁; z₂]) ∈ ℝ^{2N×D},  sᵢₖ = zᵢ·zₖ/τ (k ≠ i),  p(i) = (i + N) mod 2N
/// lseᵢ = log Σ_{k≠i} e^{sᵢₖ}     (running max mᵢ and sum over column tiles)
/// L    = 1/(2N) Σᵢ (lseᵢ − sᵢ,p(i))
/// ∂L/∂z = 1/(2Nτ) ((P + Pᵀ) z − 2 z_p),   Pᵢₖ = e^{sᵢₖ − lseᵢ}   (tiles recomputed)
/// ```
///
/// The forward pass keeps only the per-row log-sum-exp; the gradient with respect to the
/// normalised z is computed in a second tiled pass, right away, and attached through the
/// surrogate `L + Σ z·g − stopgrad(Σ z·g)`, so autograd carries it through the normalisation
/// into the encoder. The extra memory is O(N · D + tile²), against the dense form's O(N²): at
/// 2N = 131,072 the dense logits alone take 64 GiB in f32. It costs about 4/3 of the dense
/// form's matrix products (the tiles are computed twice). f16 / bf16 inputs are upcast to f32.
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
/// let dense = NtXentConfig { temperature: 0.5 }.build()?.forward(&z1, &z2);
/// assert!((tiled - dense).abs().double_value(&[]) < 1e-12);
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TiledNtXent {
    cfg: TiledNtXentConfig,
}

/// The tiles `(start, len)` covering `0..n`.
fn tiles(n: i64, tile: i64) -> impl Iterator<Item = (i64, i64)> {
    (0..n).step_by(tile as usize).map(move |start| (start, tile.min(n - start)))
}

impl TiledNtXent {
    /// The logits tile `s[r.., c..] = z_r z_cᵀ / τ` with self-similarities at −∞.
    fn logits_tile(&self, z: &Tensor, (r, rl): (i64, i64), (c, cl): (i64, i64)) -> Tensor {
        let s = z.narrow(0, r, rl).matmul(&z.narrow(0, c, cl).tr()) / self.cfg.temperature; // [rl, cl]
        if r < c + cl && c < r + rl {
            // Entry (a, b) is a self-similarity when r + a = c + b: the diagonal at offset r − c.
            let _ = s.diagonal(r - c, 0, 1).fill_(f64::NEG_INFINITY);
        }
        s
    }

    /// The per-row log-sum-exp over k ≠ i, `[2N]`, by an online max and sum over column tiles.
    fn row_logsumexp(&self, z: &Tensor) -> Tensor {
        let (n2, tile) = (z.size()[0], self.cfg.tile);
        let lse = Tensor::empty([n2], (z.kind(), z.device()));
        for rows in tiles(n2, tile) {
            // A finite start, so a tile whose entries are all masked leaves the sum unchanged.
            let mut m = Tensor::full([rows.1, 1], -1e30, (z.kind(), z.device())); // [rl, 1]
            let mut sum = Tensor::zeros([rows.1, 1], (z.kind(), z.device())); // [rl, 1]
            for cols in tiles(n2, tile) {
                let s = self.logits_tile(z, rows, cols); // [rl, cl]
                let m_new = m.maximum(&s.amax([1i64].as_slice(), true)); // [rl, 1]
                let tile_sum =
                    (s - &m_new).exp().sum_dim_intlist([1i64].as_slice(), true, z.kind());
                sum = sum * (&m - &m_new).exp() + tile_sum;
                m = m_new;
            }
            lse.narrow(0, rows.0, rows.1).copy_(&(m + sum.log()).squeeze_dim(1));
        }
        lse
    }

    /// ∂L/∂z for the normalised `z` (`[2N, D]`), given the rows' log-sum-exp.
    fn gradient(&self, z: &Tensor, lse: &Tensor) -> Tensor {
        let (n2, tile) = (z.size()[0], self.cfg.tile);
        let mut g = z.roll([n2 / 2], [0]) * -2.0; // [2N, D]: the −2 z_p term
        for rows in tiles(n2, tile) {
            let lse_r = lse.narrow(0, rows.0, rows.1).unsqueeze(1); // [rl, 1]
            for cols in tiles(n2, tile) {
                let p = (self.logits_tile(z, rows, cols) - &lse_r).exp(); // [rl, cl]
                let mut g_r = g.narrow(0, rows.0, rows.1);
                g_r += p.matmul(&z.narrow(0, cols.0, cols.1)); // [rl, D]
                let mut g_c = g.narrow(0, cols.0, cols.1);
                g_c += p.tr().matmul(&z.narrow(0, rows.0, rows.1)); // [cl, D]
            }
        }
        g /= n2 as f64 * self.cfg.temperature;
        g
    }
}

impl PairLoss for TiledNtXent {
    fn forward(&self, z1: &Tensor, z2: &Tensor) -> Tensor {
        check_views("TiledNtXent", z1, z2, 1);
        let n = z1.size()[0];
        let z = two_view_units(z1, z2); // [2N, D]
        let (loss, g) = tch::no_grad(|| {
            let zd = z.detach();
            let lse = self.row_logsumexp(&zd); // [2N]
            let pos = (&zd * zd.roll([n], [0])).sum_dim_intlist([1i64].as_slice(), false, z.kind())
                / self.cfg.temperature; // [2N]: s_{i, p(i)}
            let loss = (lse.shallow_clone() - pos).mean(z.kind()); // 0-dim
            let g = if z.requires_grad() { Some(self.gradient(&zd, &lse)) } else { None };
            (loss, g)
        });
        match g {
            Some(g) => {
                let dot = (&z * &g).sum(z.kind()); // 0-dim, ∂/∂z = g
                loss + &dot - dot.detach()
            }
            None => loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NtXentConfig;
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
        let grads = |loss: &dyn PairLoss| {
            let (a, b) = (z1.detach().set_requires_grad(true), z2.detach().set_requires_grad(true));
            let l = loss.forward(&a, &b);
            let g = Tensor::run_backward(&[&l], &[&a, &b], false, false);
            (l, Tensor::cat(&g, 0))
        };
        let (dense_l, dense_g) = grads(&NtXentConfig { temperature: 0.2 }.build().unwrap());
        for tile in [8, 25, 74, 500] {
            let (l, g) = grads(&tiled(0.2, tile));
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
