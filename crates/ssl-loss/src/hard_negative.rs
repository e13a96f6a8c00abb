//! HCL: NT-Xent with hardness-weighted, debiased negatives (Robinson et al. 2021).

use tch::Tensor;

use crate::error::check_temperature;
use crate::ops::{check_views, positive_index, two_view_logits};
use crate::{LossError, PairLoss, Result};

/// Settings of [`HardNegative`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct HardNegativeConfig {
    /// τ, the softmax temperature (paper's CIFAR value 0.5).
    pub temperature: f64,
    /// β ≥ 0, the concentration on hard negatives; 0 weighs all negatives alike (paper: 1.0).
    pub beta: f64,
    /// τ⁺ ∈ [0, 1), the prior probability that a "negative" shares the anchor's class
    /// (paper: 0.1); 0 turns debiasing off.
    pub tau_plus: f64,
}

impl Default for HardNegativeConfig {
    fn default() -> Self {
        // Robinson et al. 2021, Appendix (CIFAR-10 / STL-10 SimCLR runs): τ 0.5, β 1, τ⁺ 0.1.
        Self { temperature: 0.5, beta: 1.0, tau_plus: 0.1 }
    }
}

impl HardNegativeConfig {
    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` (must be > 0), `beta` (≥ 0) or
    /// `tau_plus` (in [0, 1)).
    pub fn build(self) -> Result<HardNegative> {
        check_temperature(self.temperature)?;
        check_debias(self.tau_plus)?;
        if !(self.beta.is_finite() && self.beta >= 0.0) {
            return Err(LossError::InvalidConfig {
                field: "beta",
                value: self.beta.to_string(),
                reason: "must be a finite number ≥ 0",
            });
        }
        Ok(HardNegative { cfg: self })
    }
}

/// Checks the debiasing prior τ⁺ ∈ [0, 1).
pub(crate) fn check_debias(tau_plus: f64) -> Result<()> {
    if (0.0..1.0).contains(&tau_plus) {
        Ok(())
    } else {
        Err(LossError::InvalidConfig {
            field: "tau_plus",
            value: tau_plus.to_string(),
            reason: "must be in [0, 1)",
        })
    }
}

/// Hard-negative contrastive loss: NT-Xent's negatives are reweighted towards the hard ones
/// (importance weights ∝ e^{β sᵢₖ/τ}) and debiased for the chance τ⁺ that they are positives.
///
/// Paper: Robinson, Chuang, Sra, Jegelka, "Contrastive Learning with Hard Negative Samples",
/// ICLR 2021, <https://arxiv.org/abs/2010.04592>, Eq. (4) and its reference code.
///
/// ```text
/// s = cosine, M = 2N − 2 negatives per anchor i, positive j
/// pos = e^{sᵢⱼ/τ}        negₖ = e^{sᵢₖ/τ}        wₖ = negₖ^β / (1/M Σₖ negₖ^β)
/// N_g = max( (−τ⁺ M pos + Σₖ wₖ negₖ) / (1 − τ⁺),  M e^{−1/τ} )
/// L   = 1/(2N) Σᵢ −log( pos / (pos + N_g) )
/// ```
///
/// With β = 0 this is [`crate::Debiased`]; with β = 0 and τ⁺ = 0 it is [`crate::NtXent`].
/// Computed with every exponent shifted by its row's largest logit (detached), so nothing
/// overflows; keep τ ≥ 0.05 in f32 so that the clamp term M e^{−1/τ} stays representable.
/// f16 / bf16 inputs are upcast to f32.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]` with N ≥ 2 (an anchor needs a negative) → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same N ≥ 2.
///
/// # Example
/// ```
/// use ssl_loss::{HardNegativeConfig, PairLoss};
/// let z = tch::Tensor::eye(3, (tch::Kind::Double, tch::Device::Cpu)); // orthonormal views
/// let cfg = HardNegativeConfig { temperature: 0.5, beta: 1.0, tau_plus: 0.5 };
/// let l = cfg.build()?.forward(&z, &z).double_value(&[]);
/// assert!((l - (1.0 + 4.0 * (-4f64).exp()).ln()).abs() < 1e-12); // clamped: ln(1 + M e^{−2/τ})
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HardNegative {
    cfg: HardNegativeConfig,
}

impl PairLoss for HardNegative {
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        debiased_loss("HardNegative", z1, z2, self.cfg)
    }
}

/// The shared computation of [`HardNegative`] and [`crate::Debiased`].
pub(crate) fn debiased_loss(
    loss: &'static str,
    z1: &Tensor,
    z2: &Tensor,
    cfg: HardNegativeConfig,
) -> Result<Tensor> {
    check_views(loss, z1, z2, 2)?;
    let n = z1.size()[0];
    let HardNegativeConfig { temperature: tau, beta, tau_plus } = cfg;
    let m = (2 * n - 2) as f64;
    let logits = two_view_logits(z1, z2, tau); // [2N, 2N], diagonal −∞
    let pos_idx = positive_index(n, z1.device()).unsqueeze(1); // [2N, 1]
    let pos_logit = logits.gather(1, &pos_idx, false); // [2N, 1]
    let neg_logits = logits.scatter_value(1, &pos_idx, f64::NEG_INFINITY); // [2N, 2N]
    let shift = logits.amax([1i64].as_slice(), true).detach(); // [2N, 1]
    let pos = (&pos_logit - &shift).exp(); // [2N, 1]
    let neg = (&neg_logits - &shift).exp(); // [2N, 2N], 0 off the negatives
    let sum_dim = |t: &Tensor| t.sum_dim_intlist([1i64].as_slice(), true, t.kind()); // [2N, 1]
    let reweighted = if beta == 0.0 {
        sum_dim(&neg)
    } else {
        // wₖ ∝ negₖ^β; any common factor (such as the shift) cancels in the ratio.
        let imp = ((&neg_logits - &shift) * beta).exp(); // [2N, 2N]
        sum_dim(&(&imp * &neg)) / (sum_dim(&imp) / m)
    };
    let floor = (-1.0 / tau - &shift).exp() * m; // [2N, 1]: M e^{−1/τ}, shifted
    let n_g = ((&pos * (-tau_plus * m) + reweighted) / (1.0 - tau_plus)).maximum(&floor); // [2N, 1]
    let per_anchor = (&pos + n_g).log() - (pos_logit - shift); // [2N, 1]
    Ok(per_anchor.mean(per_anchor.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NtXentConfig;
    use tch::{Device, Kind};

    fn hcl(temperature: f64, beta: f64, tau_plus: f64) -> HardNegative {
        HardNegativeConfig { temperature, beta, tau_plus }.build().unwrap()
    }

    #[test]
    fn orthonormal_views_give_the_closed_form_without_and_with_the_clamp() {
        // z1 = z2 = I₄: pos = e^{1/τ}, all M = 6 negatives e^0 = 1, so every wₖ = 1.
        let (z, tau, m) = (Tensor::eye(4, (Kind::Double, Device::Cpu)), 0.5f64, 6.0f64);
        let e = (1.0 / tau).exp();
        // τ⁺ = 0.1: N_g = M (1 − τ⁺ e^{1/τ}) / (1 − τ⁺) = 0.2901 M stays above M e^{−1/τ}.
        let n_g = m * (1.0 - 0.1 * e) / 0.9;
        let want = (1.0 + n_g / e).ln();
        let got = hcl(tau, 1.0, 0.1).forward(&z, &z).double_value(&[]);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // τ⁺ = 0.5 drives the estimate negative: clamped to M e^{−1/τ}, L = ln(1 + M e^{−2/τ}).
        let got = hcl(tau, 1.0, 0.5).forward(&z, &z).double_value(&[]);
        assert!((got - (1.0 + m * (-2.0 / tau).exp()).ln()).abs() < 1e-12);
    }

    #[test]
    fn without_hardness_or_debiasing_it_is_nt_xent() {
        let z1 = Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let z2 = &z1 + 0.3 * Tensor::randn([6, 5], (Kind::Double, Device::Cpu));
        let plain = NtXentConfig { temperature: 0.2, ..Default::default() }
            .build()
            .unwrap()
            .forward(&z1, &z2);
        let got = hcl(0.2, 0.0, 0.0).forward(&z1, &z2);
        assert!((got - plain).abs().double_value(&[]) < 1e-12);
    }

    #[test]
    fn invalid_fields_are_rejected_by_name() {
        let bad = |cfg: HardNegativeConfig| cfg.build().unwrap_err().to_string();
        let base = HardNegativeConfig::default();
        assert!(bad(HardNegativeConfig { tau_plus: 1.0, ..base }).contains("tau_plus"));
        assert!(bad(HardNegativeConfig { beta: -1.0, ..base }).contains("beta"));
        assert!(bad(HardNegativeConfig { temperature: 0.0, ..base }).contains("temperature"));
    }

    #[test]
    #[should_panic(expected = "z1 [1, 4] and z2 [1, 4] must both be [N, D] with N >= 2")]
    fn a_single_pair_has_no_negatives() {
        let z = Tensor::ones([1, 4], (Kind::Float, Device::Cpu));
        let _ = hcl(0.5, 1.0, 0.1).forward(&z, &z);
    }
}
