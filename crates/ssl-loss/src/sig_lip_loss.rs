//! SigLIP: a pairwise sigmoid loss over all image-text pairs, with learnable scale and bias.

use tch::nn;
use tch::Tensor;

use crate::ops::{check_views, unit_pair};
use crate::{LossError, PairLoss, Result};

/// Settings of [`SigLipLoss`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct SigLipLossConfig {
    /// Initial scale t′ = exp(t); the learnt t starts at its log (paper: t′ = 10).
    pub init_scale: f64,
    /// Initial bias b (paper: −10, so training starts near the all-negative prior).
    pub init_bias: f64,
}

impl Default for SigLipLossConfig {
    fn default() -> Self {
        Self { init_scale: 10.0, init_bias: -10.0 }
    }
}

/// The sigmoid loss: every image-text pair is an independent binary classification.
///
/// Paper: Zhai, Mustafa, Kolesnikov, Beyer, "Sigmoid Loss for Language Image Pre-Training",
/// ICCV 2023, <https://arxiv.org/abs/2303.15343>, Algorithm 1 and Eq. (1).
///
/// ```text
/// x̂ = x/‖x‖, ŷ = y/‖y‖,   zᵢⱼ = 1 if i = j else −1
/// L = −1/N Σᵢ Σⱼ log σ( zᵢⱼ (exp(t) x̂ᵢ·ŷⱼ + b) )      t, b learnt
/// ```
///
/// The variables are `logit_scale` (t) and `logit_bias` (b) under the given path, as in
/// big_vision / OpenCLIP. `log σ` is the stable `log_sigmoid`; f16 / bf16 inputs are upcast.
///
/// # Shapes
/// `x` (images), `y` (texts): `[N, D]`, row `i` of each a matching pair → 0-dim (the sum over
/// the N² pairs divided by N, as the paper).
///
/// # Panics
/// When `x` and `y` are not both `[N, D]` with N ≥ 1.
///
/// # Example
/// ```
/// use ssl_loss::{PairLoss, SigLipLoss, SigLipLossConfig};
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let siglip = SigLipLoss::new(&vs.root(), &SigLipLossConfig { init_scale: 1.0, init_bias: 0.0 })?;
/// let x = tch::Tensor::ones([1, 4], (tch::Kind::Float, tch::Device::Cpu)); // one pair, cos 1
/// let l = siglip.forward(&x, &x).double_value(&[]);
/// assert!((l - (1.0 + (-1f64).exp()).ln()).abs() < 1e-6); // −log σ(1)
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug)]
pub struct SigLipLoss {
    log_scale: Tensor,
    bias: Tensor,
}

impl SigLipLoss {
    /// Creates the `logit_scale` and `logit_bias` variables under `p`.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `init_scale` (must be > 0) or `init_bias` (finite).
    pub fn new(p: &nn::Path, cfg: &SigLipLossConfig) -> Result<Self> {
        let bad = |field, value: f64, reason| {
            Err(LossError::InvalidConfig { field, value: value.to_string(), reason })
        };
        if !(cfg.init_scale.is_finite() && cfg.init_scale > 0.0) {
            return bad("init_scale", cfg.init_scale, "must be a finite number > 0");
        }
        if !cfg.init_bias.is_finite() {
            return bad("init_bias", cfg.init_bias, "must be finite");
        }
        Ok(Self {
            log_scale: p.var("logit_scale", &[], nn::Init::Const(cfg.init_scale.ln())),
            bias: p.var("logit_bias", &[], nn::Init::Const(cfg.init_bias)),
        })
    }
}

impl PairLoss for SigLipLoss {
    fn f_forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        check_views("SigLipLoss", x, y, 1)?;
        let n = x.size()[0];
        let (x, y) = unit_pair(x, y); // [N, D] each
        let (scale, bias) = (self.log_scale.exp().to_kind(x.kind()), self.bias.to_kind(x.kind()));
        let logits = (&x * scale).matmul(&y.tr()) + bias; // [N, N]; x scaled before the product
        let signs = Tensor::eye(n, (x.kind(), x.device())) * 2.0 - 1.0; // [N, N]: +1 diagonal
        Ok(-(logits * signs).log_sigmoid().sum(x.kind()) / n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn orthonormal_pairs_give_the_closed_form() {
        // x = y = I₃, t′ = 10, b = −10: diagonal logits 0, off-diagonal −10.
        // L = −(1/N)(N log σ(0) + N(N − 1) log σ(10)) = ln 2 + 2 ln(1 + e^{−10}).
        let vs = nn::VarStore::new(Device::Cpu);
        let loss = SigLipLoss::new(&vs.root(), &SigLipLossConfig::default()).unwrap();
        let x = Tensor::eye(3, (Kind::Double, Device::Cpu));
        let want = 2f64.ln() + 2.0 * (1.0 + (-10f64).exp()).ln();
        assert!((loss.forward(&x, &x).double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn scale_and_bias_get_their_closed_form_gradients() {
        // One pair at cosine c = 0.6 with t′ = e^t = 2, b = 0.5: the logit is t′c + b = 1.7 and
        // L = −log σ(1.7) = softplus(−1.7). ∂L/∂b = −σ(−1.7), and through t′ = e^t,
        // ∂L/∂t = t′ ∂L/∂t′ = −t′ c σ(−1.7) = −1.2 σ(−1.7): the chain factor t′ = 2 and the
        // cosine 0.6 both show (∂L/∂t′ alone would be −0.6 σ(−1.7)).
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SigLipLossConfig { init_scale: 2.0, init_bias: 0.5 };
        let loss = SigLipLoss::new(&vs.root(), &cfg).unwrap();
        let x = Tensor::from_slice(&[1.0f64, 0.0]).view([1, 2]);
        let y = Tensor::from_slice(&[0.6f64, 0.8]).view([1, 2]);
        loss.forward(&x, &y).backward();
        let sig = 1.0 / (1.0 + 1.7f64.exp()); // σ(−1.7)
        let v = vs.variables();
        assert!((v["logit_bias"].grad().double_value(&[]) + sig).abs() < 1e-6);
        let got = v["logit_scale"].grad().double_value(&[]);
        assert!((got + 1.2 * sig).abs() < 1e-6, "∂L/∂t = {got}, want {}", -1.2 * sig);
    }

    #[test]
    fn a_non_positive_scale_is_rejected_naming_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SigLipLossConfig { init_scale: 0.0, ..Default::default() };
        let err = SigLipLoss::new(&vs.root(), &cfg).unwrap_err().to_string();
        assert!(err.contains("init_scale"), "{err}");
    }
}
