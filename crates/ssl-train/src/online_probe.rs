//! The online linear probe: a linear classifier on detached backbone features, trained beside
//! pre-training with its own optimiser, as solo-learn's online classifier.

use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Reduction, Tensor};

use crate::optim::{OptimKind, Optimizer};
use crate::state::{State, StateDict};
use crate::Result;

/// SGD settings of the probe (solo-learn's online classifier: plain SGD, momentum 0.9).
const LR: f64 = 0.1;
const MOMENTUM: f64 = 0.9;

/// A linear classifier `[N, F] → [N, C]` with its own `VarStore` and SGD.
///
/// It reads detached features, so it never changes the encoder's gradients; its weights start
/// at zero, so building it draws nothing from libtorch's generator and a run with the probe
/// computes the same encoder as one without (tested in `tests/monitors.rs`).
#[derive(Debug)]
pub struct OnlineProbe {
    vs: VarStore,
    linear: nn::Linear,
    opt: Optimizer,
}

impl OnlineProbe {
    /// A probe from `features` to `classes` on `device`.
    ///
    /// # Errors
    /// None today (kept for a fallible optimiser).
    pub fn new(features: i64, classes: i64, device: Device) -> Result<Self> {
        let vs = VarStore::new(device);
        let zero = nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let linear = nn::linear(vs.root() / "probe", features, classes, zero);
        // Plain SGD with momentum (no decay: rank ≥ 2 decay is 0 here), PyTorch's `SGD` rule.
        let opt = Optimizer::new(&vs, OptimKind::Sgd, MOMENTUM, 0.0, 0.0);
        Ok(Self { vs, linear, opt })
    }

    /// One SGD step on the cross-entropy of `features` (`[N, F]`, detached here) against
    /// `labels` (`[N]`); returns the loss.
    pub fn train_step(&mut self, features: &Tensor, labels: &Tensor) -> f64 {
        let x = features.detach().to_kind(Kind::Float);
        let logits = self.linear.forward(&x); // [N, C]
        let loss = logits.cross_entropy_loss::<Tensor>(
            &labels.to_device(x.device()),
            None,
            Reduction::Mean,
            -100,
            0.0,
        );
        self.opt.backward_step(&loss, LR);
        loss.double_value(&[])
    }

    /// The weights and the optimiser's moments, for a resumed run.
    pub fn state(&self) -> State {
        let mut s: State = self.vs.variables().into_iter().collect();
        s.extend(self.opt.state().into_iter().map(|(k, t)| (format!("optim/{k}"), t)));
        s
    }

    /// Takes back [`OnlineProbe::state`].
    ///
    /// # Errors
    /// [`crate::TrainError::Checkpoint`] naming a missing or misshapen tensor.
    pub fn load_state(&mut self, state: &StateDict) -> Result<()> {
        for (k, t) in self.vs.variables() {
            state.copy_into(&k, &t)?;
        }
        self.opt.load_state(&state.group("optim"))
    }

    /// Top-1 accuracy on `features` (`[N, F]`) against `labels` (`[N]`).
    pub fn accuracy(&self, features: &Tensor, labels: &Tensor) -> f64 {
        tch::no_grad(|| {
            let logits = self.linear.forward(&features.to_kind(Kind::Float)); // [N, C]
            let hits = logits.argmax(1, false).eq_tensor(&labels.to_device(logits.device()));
            hits.to_kind(Kind::Double).mean(Kind::Double).double_value(&[])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_learns_separable_classes_and_starts_at_chance() {
        let _rng = ssl_testutil::seed_global_rng(9);
        // Class c sits at 4·e_c in 3-D, with unit noise.
        let labels = Tensor::arange(300, (Kind::Int64, Device::Cpu)).remainder(3); // [300]
        let centres = Tensor::eye(3, (Kind::Float, Device::Cpu)) * 4.0;
        let x =
            centres.index_select(0, &labels) + Tensor::randn([300, 3], (Kind::Float, Device::Cpu));
        let mut probe = OnlineProbe::new(3, 3, Device::Cpu).unwrap();
        // Zero weights: every logit ties, argmax picks class 0, a third of the labels.
        assert!((probe.accuracy(&x, &labels) - 1.0 / 3.0).abs() < 1e-9);
        for _ in 0..50 {
            probe.train_step(&x, &labels);
        }
        assert!(probe.accuracy(&x, &labels) > 0.97);
    }

    #[test]
    fn its_loss_sends_no_gradient_into_the_features() {
        let f = Tensor::ones([4, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut probe = OnlineProbe::new(2, 2, Device::Cpu).unwrap();
        probe.train_step(&(&f * 2.0), &Tensor::from_slice(&[0i64, 1, 0, 1]));
        assert!(!f.grad().defined());
    }
}
