//! NT-Xent, SimCLR's normalised temperature-scaled cross-entropy.

use tch::{Reduction, Tensor};

use crate::error::check_temperature;
use crate::ops::{check_views, positive_index, two_view_logits};
use crate::{PairLoss, Result, TiledNtXentConfig};

/// Above this many views (2N) [`NtXent`] switches to the tiled computation of
/// [`crate::TiledNtXent`]: the dense 2N × 2N f32 logits would take more than 1 GiB (and the
/// same again for their gradient).
pub const DENSE_MAX_VIEWS: i64 = 16_384;

/// Settings of [`NtXent`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct NtXentConfig {
    /// τ, the softmax temperature; must be positive. The default 0.5 is SimCLR's best value on
    /// CIFAR-10 (Chen et al. 2020, Appendix B.9).
    pub temperature: f64,
}

impl Default for NtXentConfig {
    fn default() -> Self {
        Self { temperature: 0.5 }
    }
}

impl NtXentConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`crate::LossError::InvalidConfig`] when `temperature` is not a finite positive number.
    pub fn build(self) -> Result<NtXent> {
        check_temperature(self.temperature)?;
        Ok(NtXent { temperature: self.temperature })
    }
}

/// NT-Xent: each view's positive is the other view of its sample, its negatives the other
/// 2N − 2 views of the batch.
///
/// Paper: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of
/// Visual Representations", ICML 2020, <https://arxiv.org/abs/2002.05709>, Eq. (1).
///
/// ```text
/// sim(u, v) = uᵀv / (‖u‖ ‖v‖)
/// ℓ(i, j)  = −log [ exp(sim(zᵢ, zⱼ)/τ) / Σ_{k=1..2N, k≠i} exp(sim(zᵢ, zₖ)/τ) ]
/// L        = 1/(2N) Σ_{k=1..N} [ ℓ(2k−1, 2k) + ℓ(2k, 2k−1) ]
/// ```
///
/// Batches of more than [`DENSE_MAX_VIEWS`] views are computed tile by tile, in O(N · tile)
/// memory, with the same value and gradients (see [`crate::TiledNtXent`]).
/// The log-sum-exp is the fused `log_softmax` of `cross_entropy` (in the input's precision); self-similarities are masked
/// to −∞ before it. f16 / bf16 inputs are upcast to f32 for the logits; f64 stays f64.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]`, row `i` of each being the two views of sample `i` → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same `N ≥ 1` and `D`.
///
/// # Example
/// ```
/// use ssl_loss::{NtXentConfig, PairLoss};
/// let z = tch::Tensor::ones([4, 8], (tch::Kind::Double, tch::Device::Cpu));
/// let loss = NtXentConfig::default().build()?.forward(&z, &z).double_value(&[]);
/// assert!((loss - 7f64.ln()).abs() < 1e-12); // all views equal: ln(2N − 1)
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct NtXent {
    temperature: f64,
}

impl NtXent {
    /// τ, the temperature this loss was built with.
    pub fn temperature(&self) -> f64 {
        self.temperature
    }
}

impl PairLoss for NtXent {
    fn forward(&self, z1: &Tensor, z2: &Tensor) -> Tensor {
        check_views("NtXent", z1, z2, 1);
        if 2 * z1.size()[0] > DENSE_MAX_VIEWS {
            let tiled = TiledNtXentConfig { temperature: self.temperature, ..Default::default() };
            return tiled.build().expect("τ was validated").forward(z1, z2);
        }
        let logits = two_view_logits(z1, z2, self.temperature); // [2N, 2N]
        let targets = positive_index(z1.size()[0], z1.device()); // [2N]
        logits.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, -100, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn loss(tau: f64, z1: &Tensor, z2: &Tensor) -> f64 {
        NtXentConfig { temperature: tau }.build().unwrap().forward(z1, z2).double_value(&[])
    }

    #[test]
    fn identical_embeddings_give_ln_2n_minus_1() {
        for n in [1i64, 2, 5] {
            let z = Tensor::ones([n, 3], (Kind::Double, Device::Cpu)) * 0.7;
            let want = ((2 * n - 1) as f64).ln();
            assert!((loss(0.1, &z, &z) - want).abs() < 1e-12, "n = {n}");
        }
    }

    #[test]
    fn orthonormal_rows_give_the_closed_form() {
        // z1 = z2 = I: positive cosine 1, all 2N − 2 negatives cosine 0.
        let (n, tau) = (4i64, 0.2f64);
        let z = Tensor::eye(n, (Kind::Double, Device::Cpu));
        let want = (1.0 + (2 * n - 2) as f64 * (-1.0 / tau).exp()).ln();
        assert!((loss(tau, &z, &z) - want).abs() < 1e-12);
    }

    #[test]
    fn batches_above_the_dense_limit_still_give_the_closed_form() {
        // 2N = 16,386 views > DENSE_MAX_VIEWS: the tiled path, never a 1 GiB logits matrix.
        let n = DENSE_MAX_VIEWS / 2 + 1;
        let z = Tensor::ones([n, 2], (Kind::Float, Device::Cpu));
        let l = loss(0.5, &z, &z);
        let want = ((2 * n - 1) as f64).ln();
        assert!((l - want).abs() < 1e-4 * want, "{l} vs {want}");
    }

    #[test]
    fn half_inputs_are_computed_in_float() {
        let z = Tensor::eye(4, (Kind::Half, Device::Cpu));
        let l = NtXentConfig { temperature: 0.05 }.build().unwrap().forward(&z, &z);
        assert_eq!(l.kind(), Kind::Float);
        let want = (1.0 + 6.0 * (-20.0f64).exp()).ln();
        assert!((l.double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn non_positive_temperature_is_rejected_naming_the_field() {
        for tau in [0.0, -1.0, f64::NAN] {
            let err = NtXentConfig { temperature: tau }.build().unwrap_err().to_string();
            assert!(err.contains("temperature"), "{err}");
        }
    }

    #[test]
    #[should_panic(expected = "z1 [4, 8] and z2 [4, 7]")]
    fn mismatched_shapes_panic_naming_both() {
        let a = Tensor::zeros([4, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::zeros([4, 7], (Kind::Float, Device::Cpu));
        let _ = NtXentConfig::default().build().unwrap().forward(&a, &b);
    }
}
