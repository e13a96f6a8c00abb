//! Debiased contrastive loss: NT-Xent corrected for negatives that share the anchor's class.

use tch::Tensor;

use crate::error::check_temperature;
use crate::hard_negative::{check_debias, debiased_loss};
use crate::{HardNegativeConfig, PairLoss, Result};

/// Settings of [`Debiased`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct DebiasedConfig {
    /// τ, the softmax temperature (paper's CIFAR value 0.5).
    pub temperature: f64,
    /// τ⁺ ∈ [0, 1), the class prior: the chance that a sampled "negative" is a positive
    /// (paper: 0.1 for CIFAR-10); 0 gives plain NT-Xent.
    pub tau_plus: f64,
}

impl Default for DebiasedConfig {
    fn default() -> Self {
        // Chuang et al. 2020, Sec. 6 (CIFAR-10 SimCLR): τ 0.5, τ⁺ 0.1.
        Self { temperature: 0.5, tau_plus: 0.1 }
    }
}

impl DebiasedConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`crate::LossError::InvalidConfig`] naming `temperature` (must be > 0) or `tau_plus`
    /// (in [0, 1)).
    pub fn build(self) -> Result<Debiased> {
        check_temperature(self.temperature)?;
        check_debias(self.tau_plus)?;
        Ok(Debiased { cfg: self })
    }
}

/// Debiased contrastive loss: the sum over negatives is replaced by an estimate of the sum
/// over true negatives, removing the expected share τ⁺ of same-class samples.
///
/// Paper: Chuang, Robinson, Lin, Torralba, Jegelka, "Debiased Contrastive Learning", NeurIPS
/// 2020, <https://arxiv.org/abs/2007.00224>, Eq. (6) and its reference code.
///
/// ```text
/// s = cosine, M = 2N − 2 negatives per anchor i, positive j
/// N_g = max( (−τ⁺ M e^{sᵢⱼ/τ} + Σₖ e^{sᵢₖ/τ}) / (1 − τ⁺),  M e^{−1/τ} )
/// L   = 1/(2N) Σᵢ −log( e^{sᵢⱼ/τ} / (e^{sᵢⱼ/τ} + N_g) )
/// ```
///
/// It is [`crate::HardNegative`] with β = 0 (same code), and [`crate::NtXent`] when τ⁺ = 0.
/// Exponents are shifted by each row's largest logit, as there.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]` with N ≥ 2 → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same N ≥ 2.
///
/// # Example
/// ```
/// use ssl_loss::{DebiasedConfig, NtXentConfig, PairLoss};
/// let z1 = tch::Tensor::randn([4, 8], (tch::Kind::Double, tch::Device::Cpu));
/// let plain = DebiasedConfig { temperature: 0.5, tau_plus: 0.0 }.build()?.forward(&z1, &z1);
/// let nt_xent = NtXentConfig { temperature: 0.5, ..Default::default() }.build()?.forward(&z1, &z1);
/// assert!((plain - nt_xent).abs().double_value(&[]) < 1e-12);
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Debiased {
    cfg: DebiasedConfig,
}

impl PairLoss for Debiased {
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        let DebiasedConfig { temperature, tau_plus } = self.cfg;
        debiased_loss("Debiased", z1, z2, HardNegativeConfig { temperature, beta: 0.0, tau_plus })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn orthonormal_views_give_the_closed_form() {
        // z1 = z2 = I₃: pos = e^{1/τ}, M = 4 negatives at e^0.
        let (z, tau, tp, m) = (Tensor::eye(3, (Kind::Double, Device::Cpu)), 1.0f64, 0.2, 4.0);
        let e = (1.0 / tau).exp();
        let n_g = ((-tp * m * e + m) / (1.0 - tp)).max(m * (-1.0 / tau).exp());
        let want = (1.0 + n_g / e).ln();
        let got = DebiasedConfig { temperature: tau, tau_plus: tp }.build().unwrap();
        assert!((got.forward(&z, &z).double_value(&[]) - want).abs() < 1e-12);
    }

    #[test]
    fn a_prior_of_one_is_rejected_naming_the_field() {
        let err = DebiasedConfig { tau_plus: 1.0, ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("tau_plus"), "{err}");
    }
}
