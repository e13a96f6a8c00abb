//! CLIP's symmetric image-text contrastive loss with a learnable temperature.

use tch::nn;
use tch::{Kind, Reduction, Tensor};

use crate::logit_scale::LogitScale;
use crate::ops::{check_views, unit_pair};
use crate::{LossError, PairLoss, Result};

/// Settings of [`ClipLoss`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields, default))]
pub struct ClipLossConfig {
    /// The initial temperature τ₀; the learnt log-scale starts at ln(1/τ₀) (paper: 0.07).
    pub init_temperature: f64,
    /// The largest logit scale 1/τ the loss uses (paper: 100, "to prevent training
    /// instability").
    pub max_logit_scale: f64,
    /// Whether the log-scale is a trainable variable (otherwise it stays at ln(1/τ₀)).
    pub learnable: bool,
}

impl Default for ClipLossConfig {
    fn default() -> Self {
        Self { init_temperature: 0.07, max_logit_scale: 100.0, learnable: true }
    }
}

/// The symmetric cross-entropy of CLIP over the N × N image-text similarities.
///
/// Paper: Radford et al., "Learning Transferable Visual Models From Natural Language
/// Supervision", ICML 2021, <https://arxiv.org/abs/2103.00020>, Figure 3 and Sec. 2.5.
///
/// ```text
/// x̂ = x/‖x‖, ŷ = y/‖y‖,  s = exp(t),  t learnt, t₀ = ln(1/τ₀),  t ← min(t, ln s_max) after
///                                                                    every optimiser step
/// Lᵢⱼ = s · x̂ᵢ·ŷⱼ                                          [N, N]
/// L   = ½ ( CE(L, arange N) + CE(Lᵀ, arange N) )          image→text and text→image
/// ```
///
/// The log-scale is the variable `logit_scale` under the given path (OpenCLIP's name), so it
/// trains with the encoders. As in CLIP and OpenCLIP, the variable itself is clipped at
/// ln s_max after each optimiser step: call [`PairLoss::after_step`] there. Between steps the
/// forward caps the value by a straight-through clamp (s = s_max above the cap, with
/// ∂s/∂t = s_max), so the gradient never dies: a hard clamp in the forward would leave a
/// variable that momentum carried past the cap with zero gradient for good. f16 / bf16 inputs
/// are upcast to f32.
///
/// # Shapes
/// `x` (images), `y` (texts): `[N, D]`, row `i` of each a matching pair → 0-dim mean.
///
/// # Panics
/// When `x` and `y` are not both `[N, D]` with N ≥ 1.
///
/// # Example
/// ```
/// use ssl_loss::{ClipLoss, ClipLossConfig, PairLoss};
/// let vs = tch::nn::VarStore::new(tch::Device::Cpu);
/// let cfg = ClipLossConfig { init_temperature: 0.5, ..Default::default() };
/// let clip = ClipLoss::new(&vs.root(), &cfg)?;
/// let x = tch::Tensor::eye(3, (tch::Kind::Float, tch::Device::Cpu)); // orthonormal pairs
/// let l = clip.forward(&x, &x).double_value(&[]);
/// assert!((l - (1.0 + 2.0 * (-2f64).exp()).ln()).abs() < 1e-6); // ln(1 + (N − 1) e^{−1/τ})
/// # Ok::<(), ssl_loss::LossError>(())
/// ```
#[derive(Debug)]
pub struct ClipLoss {
    log_scale: LogitScale,
}

impl ClipLoss {
    /// Creates the `logit_scale` variable under `p`.
    ///
    /// # Errors
    /// [`LossError::InvalidConfig`] naming `init_temperature` (must be > 0) or
    /// `max_logit_scale` (must be ≥ 1/τ₀).
    pub fn new(p: &nn::Path, cfg: &ClipLossConfig) -> Result<Self> {
        let t0 = cfg.init_temperature;
        if !(t0.is_finite() && t0 > 0.0) {
            return Err(LossError::InvalidConfig {
                field: "init_temperature",
                value: t0.to_string(),
                reason: "must be a finite number > 0",
            });
        }
        if !(cfg.max_logit_scale.is_finite() && cfg.max_logit_scale >= 1.0 / t0) {
            return Err(LossError::InvalidConfig {
                field: "max_logit_scale",
                value: cfg.max_logit_scale.to_string(),
                reason: "must be finite and ≥ 1 / init_temperature",
            });
        }
        let init = (1.0 / t0).ln();
        let log_scale = if cfg.learnable {
            p.var("logit_scale", &[], nn::Init::Const(init))
        } else {
            let mut t = p.zeros_no_train("logit_scale", &[]);
            let _ = t.fill_(init);
            t
        };
        Ok(Self { log_scale: LogitScale::new(log_scale, cfg.max_logit_scale) })
    }

    /// The logit scale s = 1/τ the next forward uses (capped at s_max).
    pub fn logit_scale(&self) -> f64 {
        self.log_scale.value()
    }
}

impl PairLoss for ClipLoss {
    fn f_forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        check_views("ClipLoss", x, y, 1)?;
        let n = x.size()[0];
        // The 0-dim scale multiplies x before the product: one [N, D] multiply, not an [N, N]
        // one (and its backward).
        let (x, y) = unit_pair(x, y); // [N, D] each
        let scale = self.log_scale.scale().to_kind(x.kind());
        let logits = (&x * scale).matmul(&y.tr()); // [N, N]
        let targets = Tensor::arange(n, (Kind::Int64, x.device())); // [N]
        let ce =
            |l: &Tensor| l.cross_entropy_loss::<Tensor>(&targets, None, Reduction::Mean, -100, 0.0);
        Ok((ce(&logits) + ce(&logits.tr())) * 0.5)
    }

    /// Clips `logit_scale` to ln s_max (CLIP's step after each optimiser update).
    fn after_step(&self) {
        self.log_scale.clamp_();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn clip(vs: &nn::VarStore, init_temperature: f64) -> ClipLoss {
        let cfg = ClipLossConfig { init_temperature, ..Default::default() };
        ClipLoss::new(&vs.root(), &cfg).unwrap()
    }

    #[test]
    fn orthonormal_pairs_give_the_closed_form_and_its_scale_derivative() {
        // x = y = I₄, s = 1/τ₀ = 2: both directions give ln(1 + 3e^{−s}); with t = ln s,
        // ∂L/∂t = s ∂L/∂s = −3 s e^{−s} / (1 + 3e^{−s}).
        let vs = nn::VarStore::new(Device::Cpu);
        let loss = clip(&vs, 0.5);
        let x = Tensor::eye(4, (Kind::Float, Device::Cpu));
        let l = loss.forward(&x, &x);
        let (s, e) = (2.0f64, (-2.0f64).exp());
        assert!((l.double_value(&[]) - (1.0 + 3.0 * e).ln()).abs() < 1e-6);
        l.backward();
        let grad = vs.variables()["logit_scale"].grad().double_value(&[]);
        let want = -3.0 * s * e / (1.0 + 3.0 * e);
        assert!((grad - want).abs() < 1e-5, "{grad} vs {want}");
    }

    #[test]
    fn the_scale_is_clamped_at_its_maximum() {
        // Two pairs whose rows are at cosine 0.99 to each other: L = ln(1 + e^{−0.01 s}),
        // 0.3133 at s = 100 but 4.5e-5 at the unclamped s = 1000.
        let vs = nn::VarStore::new(Device::Cpu);
        let loss = clip(&vs, 0.07);
        let mut t = vs.variables()["logit_scale"].shallow_clone();
        tch::no_grad(|| t.copy_(&Tensor::from(1000f32.ln())));
        assert!((loss.logit_scale() - 100.0).abs() < 1e-3);
        let c = 0.99f64;
        let v = [1.0, 0.0, c, (1.0 - c * c).sqrt()].map(|a| a as f32);
        let x = Tensor::from_slice(&v).view([2, 2]);
        let l = loss.forward(&x, &x).double_value(&[]);
        assert!((l - (1.0 + (-1f64).exp()).ln()).abs() < 1e-4, "{l}");
    }

    #[test]
    fn a_scale_past_the_cap_keeps_its_gradient_and_comes_back() {
        // x = (e₁, e₂), y = (e₂, e₁): each matching pair at cosine 0, the other at 1, so both
        // directions give ln(1 + e^s), falling with s, and ∂L/∂t = s e^s / (1 + e^s).
        let vs = nn::VarStore::new(Device::Cpu);
        let loss = clip(&vs, 0.07);
        let mut t = vs.variables()["logit_scale"].shallow_clone();
        let _ = tch::no_grad(|| t.fill_(1000f64.ln())); // momentum carried t past ln 100
        let x = Tensor::eye(2, (Kind::Float, Device::Cpu));
        let y = x.flip([0]);
        let sgd = |t: &mut Tensor| {
            let l = loss.forward(&x, &y);
            let g = Tensor::run_backward(&[&l], &[&*t], false, false).remove(0);
            tch::no_grad(|| *t -= &g * 0.01);
            loss.after_step();
            g.double_value(&[])
        };
        let g = sgd(&mut t);
        assert!((g - 100.0).abs() < 1e-3, "∂L/∂t = {g}, want 100 (a hard clamp gives 0)");
        assert!((t.double_value(&[]) - 100f64.ln()).abs() < 1e-6, "clipped after the step");
        let _ = sgd(&mut t);
        let want = (100f64.ln() - 1.0).exp();
        assert!((loss.logit_scale() - want).abs() < 1e-3, "{} vs {want}", loss.logit_scale());
    }

    #[test]
    fn a_frozen_scale_is_not_trainable_and_bad_configs_name_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = ClipLossConfig { learnable: false, ..Default::default() };
        let frozen = ClipLoss::new(&vs.root(), &cfg).unwrap();
        assert!(vs.trainable_variables().is_empty());
        assert!((frozen.logit_scale() - 1.0 / 0.07).abs() < 1e-3);
        let bad = ClipLossConfig { max_logit_scale: 10.0, ..Default::default() };
        let err = ClipLoss::new(&vs.root(), &bad).unwrap_err().to_string();
        assert!(err.contains("max_logit_scale"), "{err}");
    }
}
