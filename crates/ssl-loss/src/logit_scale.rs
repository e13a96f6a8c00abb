//! A learnt logit scale s = exp(t) capped at s_max, as CLIP's temperature: the shared part of
//! [`crate::ClipLoss`] and the learnt τ of [`crate::NtXent`].

use tch::Tensor;

/// The variable t = ln s = ln(1/τ) and its cap ln s_max.
///
/// CLIP (Radford et al. 2021, Sec. 2.5) and OpenCLIP clip the *variable* after every optimiser
/// step (`logit_scale.data.clamp_(0, ln 100)`), so the forward never sees a scale above s_max
/// and the gradient never stops. Here [`LogitScale::clamp_`] is that after-step clip, and the
/// forward caps the value by a straight-through clamp (value min(t, ln s_max), derivative 1
/// with respect to t), so a caller that forgets the hook still trains with a bounded scale and
/// a live gradient. A hard clamp in the forward would give zero gradient above the cap: once
/// momentum carried t past it, it would never come back.
#[derive(Debug)]
pub(crate) struct LogitScale {
    var: Tensor,
    max_log: f64,
}

impl LogitScale {
    /// Wraps the 0-dim variable `var` = t with the cap s_max (> 0).
    pub(crate) fn new(var: Tensor, max_scale: f64) -> Self {
        Self { var, max_log: max_scale.ln() }
    }

    /// A handle on the same variable.
    pub(crate) fn shallow_clone(&self) -> Self {
        Self { var: self.var.shallow_clone(), max_log: self.max_log }
    }

    /// The capped scale min(exp t, s_max) the next forward uses.
    pub(crate) fn value(&self) -> f64 {
        self.var.double_value(&[]).min(self.max_log).exp()
    }

    /// The capped scale as a 0-dim tensor whose derivative with respect to t is the scale
    /// itself (exp of the straight-through clamp).
    pub(crate) fn scale(&self) -> Tensor {
        let over = (&self.var - self.var.clamp_max(self.max_log)).detach(); // 0 below the cap
        (&self.var - over).exp()
    }

    /// The after-step clip: t ← min(t, ln s_max), in place and outside autograd.
    pub(crate) fn clamp_(&self) {
        let mut var = self.var.shallow_clone();
        tch::no_grad(|| {
            let _ = var.clamp_max_(self.max_log);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn var(t: f64) -> Tensor {
        Tensor::from(t).to_kind(Kind::Double).set_requires_grad(true)
    }

    #[test]
    fn below_the_cap_the_scale_is_exp_t_with_derivative_exp_t() {
        let t = var(2f64.ln());
        let s = LogitScale::new(t.shallow_clone(), 100.0).scale();
        assert!((s.double_value(&[]) - 2.0).abs() < 1e-12);
        let g = Tensor::run_backward(&[&s], &[&t], false, false).remove(0);
        assert!((g.double_value(&[]) - 2.0).abs() < 1e-12);
    }

    #[test]
    fn above_the_cap_the_value_is_capped_and_the_gradient_lives() {
        // t = ln 1000 > ln 100: value 100, ∂s/∂t = 100 (not 0 as a hard clamp would give).
        let t = var(1000f64.ln());
        let ls = LogitScale::new(t.shallow_clone(), 100.0);
        assert!((ls.value() - 100.0).abs() < 1e-9);
        let s = ls.scale();
        assert!((s.double_value(&[]) - 100.0).abs() < 1e-9);
        let g = Tensor::run_backward(&[&s], &[&t], false, false).remove(0);
        assert!((g.double_value(&[]) - 100.0).abs() < 1e-9);
        ls.clamp_();
        assert!((t.double_value(&[]) - 100f64.ln()).abs() < 1e-12);
        assert!(t.requires_grad() && t.device() == Device::Cpu);
    }
}
