//! SGD with momentum and LARS, with weight decay and adaptation only on weight matrices and
//! conv kernels (not on biases or BatchNorm), as SimCLR's optimiser.

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::method::LrGroup;

/// Which update rule [`Optimizer`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    /// SGD with (heavy-ball) momentum.
    Sgd,
    /// LARS: SGD with momentum on layer-wise trust-ratio-scaled gradients.
    Lars,
}

/// One trainable variable and its momentum buffer.
#[derive(Debug)]
struct Slot {
    name: String,
    var: Tensor,
    velocity: Tensor,
    /// Weight decay and (for LARS) the trust ratio apply: tensors of rank ≥ 2.
    adapt: bool,
    /// A learning rate used at every step instead of the scheduled one.
    fixed_lr: Option<f64>,
    /// A factor on the step's learning rate (1 unless [`Optimizer::with_lr_scale`] set one).
    lr_scale: f64,
}

/// SGD with momentum, or LARS (You, Gitman, Ginsburg 2017, <https://arxiv.org/abs/1708.03888>,
/// Algorithm 1), over a `VarStore`'s trainable variables.
///
/// ```text
/// g ← ∇w + λ w                              (λ only for weights of rank ≥ 2)
/// LARS: g ← η ‖w‖ / ‖g‖ · g                 (same weights; 1 when either norm is 0)
/// v ← m v + g,   w ← w − lr · v
/// ```
#[derive(Debug)]
pub struct Optimizer {
    slots: Vec<Slot>,
    kind: OptimKind,
    momentum: f64,
    weight_decay: f64,
    trust_coefficient: f64,
}

impl Optimizer {
    /// An optimiser over the trainable variables of `vs`; η is `trust_coefficient`.
    pub fn new(
        vs: &VarStore,
        kind: OptimKind,
        momentum: f64,
        weight_decay: f64,
        trust_coefficient: f64,
    ) -> Self {
        let mut named: Vec<(String, Tensor)> =
            vs.variables().into_iter().filter(|(_, v)| v.requires_grad()).collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = named
            .into_iter()
            .map(|(name, var)| Slot {
                name,
                velocity: var.zeros_like(),
                adapt: var.dim() >= 2,
                var,
                fixed_lr: None,
                lr_scale: 1.0,
            })
            .collect();
        Self { slots, kind, momentum, weight_decay, trust_coefficient }
    }

    /// Gives the variables that `group` puts in [`LrGroup::Fixed`] the learning rate `peak` at
    /// every step (SimSiam's predictor); the others follow the `lr` passed to each step.
    pub fn with_lr_groups(mut self, group: impl Fn(&str) -> LrGroup, peak: f64) -> Self {
        for s in &mut self.slots {
            s.fixed_lr = (group(&s.name) == LrGroup::Fixed).then_some(peak);
        }
        self
    }

    /// Multiplies the learning rate of each variable by `scale(name)` (fine-tuning's lower
    /// rate for the pretrained backbone than for the new classifier).
    pub fn with_lr_scale(mut self, scale: impl Fn(&str) -> f64) -> Self {
        for s in &mut self.slots {
            s.lr_scale = scale(&s.name);
        }
        self
    }

    /// Clears every gradient.
    pub fn zero_grad(&mut self) {
        for s in &mut self.slots {
            let mut g = s.var.grad();
            if g.defined() {
                let _ = g.detach_().zero_();
            }
        }
    }

    /// Clears gradients, backpropagates `loss` and applies one update with learning rate `lr`.
    pub fn backward_step(&mut self, loss: &Tensor, lr: f64) {
        self.zero_grad();
        loss.backward();
        self.step(lr);
    }

    /// Applies one update with learning rate `lr` from the gradients already accumulated.
    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for s in &mut self.slots {
                let grad = s.var.grad();
                if !grad.defined() {
                    continue;
                }
                let mut g = grad.shallow_clone();
                if s.adapt {
                    if self.weight_decay != 0.0 {
                        g = &g + &s.var * self.weight_decay;
                    }
                    if self.kind == OptimKind::Lars {
                        let w_norm = s.var.norm().double_value(&[]);
                        let g_norm = g.norm().double_value(&[]);
                        if w_norm > 0.0 && g_norm > 0.0 {
                            g *= self.trust_coefficient * w_norm / g_norm;
                        }
                    }
                }
                s.velocity *= self.momentum;
                s.velocity += &g;
                let mut var = s.var.shallow_clone();
                var -= &s.velocity * (s.fixed_lr.unwrap_or(lr) * s.lr_scale);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind};

    fn setup() -> (VarStore, Tensor, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let w = vs.root().var("w", &[2, 2], nn::Init::Const(1.0));
        let b = vs.root().var("b", &[2], nn::Init::Const(1.0));
        (vs, w, b)
    }

    #[test]
    fn sgd_matches_two_hand_computed_momentum_steps_and_skips_decay_on_biases() {
        let (vs, w, b) = setup();
        let mut opt = Optimizer::new(&vs, OptimKind::Sgd, 0.9, 0.1, 0.001);
        // loss = Σw + Σb: ∇ = 1 everywhere. Weights: g = 1 + 0.1·w; biases: g = 1.
        let loss = || w.sum(Kind::Float) + b.sum(Kind::Float);
        opt.backward_step(&loss(), 0.5);
        // w: g = 1.1, v = 1.1, w = 1 − 0.55 = 0.45. b: v = 1, b = 0.5.
        assert!((w.double_value(&[0, 0]) - 0.45).abs() < 1e-6);
        assert!((b.double_value(&[0]) - 0.5).abs() < 1e-6);
        opt.backward_step(&loss(), 0.5);
        // w: g = 1.045, v = 0.99 + 1.045 = 2.035, w = 0.45 − 1.0175 = −0.5675.
        // b: v = 0.9 + 1 = 1.9, b = 0.5 − 0.95 = −0.45.
        assert!((w.double_value(&[1, 1]) + 0.5675).abs() < 1e-6);
        assert!((b.double_value(&[1]) + 0.45).abs() < 1e-6);
    }

    #[test]
    fn lars_scales_weight_updates_by_the_trust_ratio() {
        let (vs, w, b) = setup();
        let mut opt = Optimizer::new(&vs, OptimKind::Lars, 0.0, 0.0, 0.01);
        // ∇w = 3 everywhere: ‖w‖ = 2, ‖g‖ = 6, trust = 0.01 · 2 / 6; step = lr · trust · 3 = 0.01.
        let loss = w.sum(Kind::Float) * 3.0 + b.sum(Kind::Float);
        opt.backward_step(&loss, 1.0);
        assert!((w.double_value(&[0, 1]) - 0.99).abs() < 1e-6);
        assert!((b.double_value(&[0]) - 0.0).abs() < 1e-6); // biases: plain SGD, lr · 1
    }

    #[test]
    fn an_lr_scale_multiplies_that_variables_step() {
        let (vs, w, b) = setup();
        let scale = |name: &str| if name == "w" { 0.1 } else { 1.0 };
        let mut opt = Optimizer::new(&vs, OptimKind::Sgd, 0.0, 0.0, 0.001).with_lr_scale(scale);
        // ∇ = 1 everywhere, lr 0.5: b moves by 0.5, w by a tenth of it.
        opt.backward_step(&(w.sum(Kind::Float) + b.sum(Kind::Float)), 0.5);
        assert!((w.double_value(&[0, 0]) - 0.95).abs() < 1e-6);
        assert!((b.double_value(&[0]) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn a_fixed_lr_group_steps_with_the_peak_whatever_the_schedule_says() {
        let (vs, w, b) = setup();
        let group = |name: &str| if name == "b" { LrGroup::Fixed } else { LrGroup::Scheduled };
        let mut opt =
            Optimizer::new(&vs, OptimKind::Sgd, 0.0, 0.0, 0.001).with_lr_groups(group, 0.3);
        // ∇ = 1 everywhere; the schedule's lr is 0.1: w moves by 0.1, b by the peak 0.3.
        opt.backward_step(&(w.sum(Kind::Float) + b.sum(Kind::Float)), 0.1);
        assert!((w.double_value(&[0, 0]) - 0.9).abs() < 1e-6);
        assert!((b.double_value(&[0]) - 0.7).abs() < 1e-6);
    }
}
