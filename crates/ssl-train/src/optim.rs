//! SGD with momentum, LARS and AdamW, with weight decay (and LARS's adaptation) only on weight
//! matrices and conv kernels (not on biases, BatchNorm or LayerNorm), as SimCLR's and MoCo v3's
//! optimisers.

use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::method::LrGroup;
use crate::state::{State, StateDict};
use crate::Result;

/// Which update rule [`Optimizer`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimKind {
    /// SGD with (heavy-ball) momentum.
    Sgd,
    /// LARS: SGD with momentum on layer-wise trust-ratio-scaled gradients.
    Lars,
    /// AdamW (Loshchilov & Hutter 2019) with β₁ = `momentum`, β₂ = 0.999, ε = 1e-8 (PyTorch's
    /// defaults, which MoCo v3's ViT recipe keeps); the decay is decoupled from the gradient.
    Adamw,
}

/// AdamW's β₂ (PyTorch's default).
const ADAM_BETA2: f64 = 0.999;
/// AdamW's ε (PyTorch's default).
const ADAM_EPS: f64 = 1e-8;

/// One trainable variable and its momentum buffer.
#[derive(Debug)]
struct Slot {
    name: String,
    var: Tensor,
    velocity: Tensor,
    /// AdamW's second moment (empty for SGD and LARS).
    second_moment: Tensor,
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
    /// Updates applied so far (AdamW's bias correction).
    steps: i32,
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
                second_moment: if kind == OptimKind::Adamw {
                    var.zeros_like()
                } else {
                    Tensor::new()
                },
                adapt: var.dim() >= 2,
                var,
                fixed_lr: None,
                lr_scale: 1.0,
            })
            .collect();
        Self { slots, kind, momentum, weight_decay, trust_coefficient, steps: 0 }
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

    /// The moments and the step count, for a resumed run: `velocity/<name>`,
    /// `second_moment/<name>` (AdamW) and `steps`.
    pub fn state(&self) -> State {
        let mut s: State = vec![("steps".into(), Tensor::from_slice(&[self.steps]))];
        for slot in &self.slots {
            s.push((format!("velocity/{}", slot.name), slot.velocity.shallow_clone()));
            if slot.second_moment.defined() {
                let m2 = slot.second_moment.shallow_clone();
                s.push((format!("second_moment/{}", slot.name), m2));
            }
        }
        s
    }

    /// Takes back [`Optimizer::state`].
    ///
    /// # Errors
    /// [`crate::TrainError::Checkpoint`] naming a missing or misshapen tensor.
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        let steps = Vec::<i32>::try_from(state.get("steps")?)?;
        self.steps = steps.first().copied().unwrap_or(0);
        for slot in &self.slots {
            state.copy_into(&format!("velocity/{}", slot.name), &slot.velocity)?;
            if slot.second_moment.defined() {
                state.copy_into(&format!("second_moment/{}", slot.name), &slot.second_moment)?;
            }
        }
        Ok(())
    }

    /// The name of the first variable whose gradient holds a NaN or an infinity, if any (one
    /// reduction over all gradients, then a search only when it is not finite).
    pub fn first_non_finite_grad(&self) -> Option<String> {
        let sums: Vec<Tensor> = tch::no_grad(|| {
            let grads = self.slots.iter().map(|s| s.var.grad()).filter(Tensor::defined);
            grads.map(|g| g.abs().sum(tch::Kind::Float)).collect()
        });
        if sums.is_empty()
            || Tensor::stack(&sums, 0).sum(tch::Kind::Float).double_value(&[]).is_finite()
        {
            return None;
        }
        let bad = self.slots.iter().find(|s| {
            let g = s.var.grad();
            g.defined() && g.isfinite().all().int64_value(&[]) == 0
        });
        Some(bad.map_or_else(|| "a gradient".to_owned(), |s| format!("the gradient of {}", s.name)))
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
        self.steps += 1;
        if self.kind == OptimKind::Adamw {
            self.adamw_step(lr);
            return;
        }
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

    /// One AdamW update (Loshchilov & Hutter 2019, Algorithm 2; PyTorch's `AdamW`):
    ///
    /// ```text
    /// m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
    /// w ← w (1 − lr λ) − lr · (m / (1 − β₁ᵗ)) / (√(v / (1 − β₂ᵗ)) + ε)     (λ: rank ≥ 2 only)
    /// ```
    fn adamw_step(&mut self, lr: f64) {
        let (b1, t) = (self.momentum, self.steps);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - ADAM_BETA2.powi(t));
        tch::no_grad(|| {
            for s in &mut self.slots {
                let g = s.var.grad();
                if !g.defined() {
                    continue;
                }
                let lr = s.fixed_lr.unwrap_or(lr) * s.lr_scale;
                let mut var = s.var.shallow_clone();
                if s.adapt && self.weight_decay != 0.0 {
                    var *= 1.0 - lr * self.weight_decay;
                }
                s.velocity *= b1;
                s.velocity += &g * (1.0 - b1);
                s.second_moment *= ADAM_BETA2;
                s.second_moment += g.square() * (1.0 - ADAM_BETA2);
                let denom = (&s.second_moment / c2).sqrt() + ADAM_EPS;
                var -= (&s.velocity / denom) * (lr / c1);
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
    fn adamw_matches_two_hand_computed_steps_with_decoupled_decay_on_weights_only() {
        let (vs, w, b) = setup();
        let mut opt = Optimizer::new(&vs, OptimKind::Adamw, 0.9, 0.1, 0.0);
        // Step 1, ∇ = 2 everywhere: m = 0.2, v = 0.004; m̂ = 2, v̂ = 4, so the step is lr · 2 / 2
        // = lr (ε aside). w: 1 · (1 − 0.5 · 0.1) − 0.5 = 0.45; b (no decay): 1 − 0.5 = 0.5.
        opt.backward_step(&((w.sum(Kind::Float) + b.sum(Kind::Float)) * 2.0), 0.5);
        assert!((w.double_value(&[0, 0]) - 0.45).abs() < 1e-6);
        assert!((b.double_value(&[0]) - 0.5).abs() < 1e-6);
        // Step 2, ∇ = 1: m = 0.18 + 0.1 = 0.28, v = 0.003996 + 0.001 = 0.004996;
        // m̂ = 0.28 / 0.19, v̂ = 0.004996 / 0.001999; step = lr · m̂ / √v̂.
        opt.backward_step(&(w.sum(Kind::Float) + b.sum(Kind::Float)), 0.5);
        let step = 0.5 * (0.28 / 0.19) / (0.004996f64 / 0.001999).sqrt();
        assert!((w.double_value(&[1, 0]) - (0.45 * 0.95 - step)).abs() < 1e-6);
        assert!((b.double_value(&[1]) - (0.5 - step)).abs() < 1e-6);
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
