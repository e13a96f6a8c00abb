//! DCL and DCL-W: NT-Xent with the positive decoupled from the denominator (Yeh et al. 2022).

use tch::Tensor;

use crate::error::check_temperature;
use crate::ops::{check_views, positive_index, two_view_logits};
use crate::{LossError, PairLoss, Result};

/// Settings of [`Dcl`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct DclConfig {
    /// τ, the softmax temperature (the reference code's default 0.1).
    pub temperature: f64,
    /// σ of DCL-W's von Mises–Fisher weighting of the positives (paper: 0.5); `None` is plain
    /// DCL.
    pub weight_sigma: Option<f64>,
}

impl Default for DclConfig {
    fn default() -> Self {
        Self { temperature: 0.1, weight_sigma: None }
    }
}

impl DclConfig {
    /// DCL-W with the paper's σ = 0.5 and the given τ.
    pub fn weighted(temperature: f64) -> Self {
        Self { temperature, weight_sigma: Some(0.5) }
    }

    /// Validates the config and builds the loss.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `temperature` or `weight_sigma` when not > 0.
    pub fn build(self) -> Result<Dcl> {
        check_temperature(self.temperature)?;
        if let Some(sigma) = self.weight_sigma {
            if !(sigma.is_finite() && sigma > 0.0) {
                return Err(LossError::InvalidConfig {
                    field: "weight_sigma",
                    value: sigma.to_string(),
                    reason: "must be a finite number > 0 (or null for plain DCL)",
                });
            }
        }
        Ok(Dcl { cfg: self })
    }
}

/// Decoupled contrastive loss: NT-Xent without the positive in the denominator, optionally
/// with DCL-W's weights on the positives.
///
/// Paper: Yeh, Hong, Hsu, Liu, Chen, LeCun, "Decoupled Contrastive Learning", ECCV 2022,
/// <https://arxiv.org/abs/2110.06848>, Eq. (6) and Sec. 3.3 (DCL-W).
///
/// ```text
/// s = cosine; anchor i of sample k, positive j, the 2N − 2 negatives l ∉ {i, j}
/// ℓᵢ = −wₖ sᵢⱼ/τ + log Σ_{l ∉ {i, j}} exp(sᵢₗ/τ)
/// wₖ = 1 (DCL)    or    wₖ = 2 − N exp(s_kk'/σ) / Σ_m exp(s_mm'/σ)  (DCL-W)
/// L  = 1/(2N) Σᵢ ℓᵢ
/// ```
///
/// L is half the reference code's `dcl(z1, z2) + dcl(z2, z1)`. The weights are not detached,
/// as in the reference code. The log-sum-exp is fused; f16 / bf16 inputs are upcast to f32.
///
/// # Shapes
/// `z1`, `z2`: `[N, D]` with N ≥ 2 → 0-dim mean.
///
/// # Panics
/// When `z1` and `z2` are not both `[N, D]` with the same N ≥ 2.
///
/// # Example
/// ```
/// use ssl_loss::{DclConfig, PairLoss};
/// let z = tch::Tensor::eye(4, (tch::Kind::Double, tch::Device::Cpu)); // orthonormal views
/// let l = DclConfig { temperature: 0.5, weight_sigma: None }.build()?.forward(&z, &z);
/// assert!((l.double_value(&[]) - (6f64.ln() - 2.0)).abs() < 1e-12); // ln(2N − 2) − 1/τ
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dcl {
    cfg: DclConfig,
}

impl PairLoss for Dcl {
    fn f_forward(&self, z1: &Tensor, z2: &Tensor) -> Result<Tensor> {
        check_views("Dcl", z1, z2, 2)?;
        let n = z1.size()[0];
        let logits = two_view_logits(z1, z2, self.cfg.temperature); // [2N, 2N], diagonal −∞
        let pos_idx = positive_index(n, z1.device()).unsqueeze(1); // [2N, 1]
        let pos_logit = logits.gather(1, &pos_idx, false).squeeze_dim(1); // [2N]
        let negatives = logits
            .scatter_value(1, &pos_idx, f64::NEG_INFINITY)
            .logsumexp([1i64].as_slice(), false); // [2N]
        let positive = match self.cfg.weight_sigma {
            None => -pos_logit,
            Some(sigma) => {
                // s_kk' = τ · (logit of the positive); the same weight for both views of k.
                let s = pos_logit.narrow(0, 0, n) * self.cfg.temperature; // [N]
                let kind = s.kind();
                let w = (s / sigma).softmax(0, kind) * -(n as f64) + 2.0; // [N]
                -pos_logit * Tensor::cat(&[&w, &w], 0) // [2N]
            }
        };
        let per_anchor = positive + negatives; // [2N]
        Ok(per_anchor.mean(per_anchor.kind()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn dcl(temperature: f64, weight_sigma: Option<f64>) -> Dcl {
        DclConfig { temperature, weight_sigma }.build().unwrap()
    }

    #[test]
    fn identical_embeddings_give_ln_2n_minus_2() {
        // Every logit is 1/τ: the positive term −1/τ cancels the 1/τ of the log-sum-exp.
        let z = Tensor::ones([5, 3], (Kind::Double, Device::Cpu));
        for sigma in [None, Some(0.5)] {
            let l = dcl(0.2, sigma).forward(&z, &z).double_value(&[]);
            assert!((l - 8f64.ln()).abs() < 1e-12, "{sigma:?}: {l}");
        }
    }

    #[test]
    fn dclw_weighs_the_easier_positive_less() {
        // Two samples; sample 0's views agree (cos 1), sample 1's are orthogonal (cos 0).
        // w = 2 − 2 softmax((1, 0)/σ): w₀ = 2 − 2e²/(e² + 1) = 0.2384 for σ = 0.5, w₁ = 1.7616.
        // Sample 1's positive logit is 0, so only w₀ matters: ℓ = −w₀/τ for sample 0's views
        // instead of −1/τ, which raises the loss by (1 − w₀)/τ · (2 anchors)/(4 anchors).
        let z1 = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.0, 1.0, 0.0]).view([2, 3]);
        let z2 = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.0, 0.0, 1.0]).view([2, 3]);
        let tau = 0.5;
        let e2 = 2f64.exp();
        let w0 = 2.0 - 2.0 * e2 / (e2 + 1.0);
        let plain = dcl(tau, None).forward(&z1, &z2).double_value(&[]);
        let weighted = dcl(tau, Some(0.5)).forward(&z1, &z2).double_value(&[]);
        assert!((weighted - plain - (1.0 - w0) / tau * 0.5).abs() < 1e-12, "{weighted} {plain}");
    }

    #[test]
    fn invalid_sigma_is_rejected_naming_the_field() {
        let err = DclConfig { weight_sigma: Some(0.0), ..Default::default() }.build().unwrap_err();
        assert!(err.to_string().contains("weight_sigma"), "{err}");
    }
}
