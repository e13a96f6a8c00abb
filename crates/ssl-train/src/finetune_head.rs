//! The fine-tuned classifier: the frozen linear probe's standardisation and weights, made safe
//! for features that change.

use tch::nn::{self, Module, VarStore};
use tch::{Kind, Tensor};

use crate::eval::LinearClassifier;

/// A feature whose standard deviation on the labelled images is below this fraction of the
/// median feature's is dead there (a ReLU unit that never fires: σ = 0, clamped to 1e-6).
pub const DEAD_FRACTION: f64 = 1e-3;

/// The classifier on standardised features: `W · (f − μ) / σ + b`; μ and σ stay fixed.
#[derive(Debug)]
pub struct Head {
    mean: Tensor,
    std: Tensor,
    linear: nn::Linear,
}

impl Head {
    /// The probe as a trainable head in `vs` (`finetune_classifier.*`), with
    /// [`revive_dead_units`] applied: its logits on the probe's fitting features are the
    /// probe's.
    pub fn from_probe(vs: &VarStore, probe: &LinearClassifier) -> Self {
        let (f, classes) = (probe.weight.size()[0], probe.weight.size()[1]);
        let (std, weight) = revive_dead_units(&probe.std, &probe.weight);
        let linear = nn::linear(vs.root() / "finetune_classifier", f, classes, Default::default());
        tch::no_grad(|| {
            linear.ws.shallow_clone().copy_(&weight.t_copy()); // [C, F]
            if let Some(bs) = &linear.bs {
                bs.shallow_clone().copy_(&probe.bias);
            }
        });
        let device = vs.device();
        Head { mean: probe.mean.to_device(device), std: std.to_device(device), linear }
    }

    /// Logits `[B, C]` of backbone features `[B, F]`.
    pub fn forward(&self, features: &Tensor) -> Tensor {
        self.linear.forward(&((features - &self.mean) / &self.std))
    }
}

/// The probe's σ `[1, F]` and weights `[F, C]` with every dead feature (σ < [`DEAD_FRACTION`]
/// × median σ) given the median σ and zero weights.
///
/// A frozen probe never sees a dead feature move: it is constant, so `(f − μ) / σ` is 0 there
/// whatever σ. Fine-tuning moves the backbone, a dead unit can fire again, and divided by
/// σ = 1e-6 its first activation becomes a logit of millions that wrecks the network in one
/// step (a supervised checkpoint with 55 of 128 features dead fell to chance). With the median
/// σ it starts on the scale of the live features, with zero weight it changes no logit until
/// the classifier learns to use it, and on the fitting features the head's logits stay the
/// probe's: the dead features' term is 0 before and after.
pub fn revive_dead_units(std: &Tensor, weight: &Tensor) -> (Tensor, Tensor) {
    let median = std.flatten(0, -1).median();
    let dead = std.lt_tensor(&(&median * DEAD_FRACTION)); // [1, F]
    let count = dead.sum(Kind::Int64).int64_value(&[]);
    if count > 0 {
        println!(
            "fine-tune head: {count} of {} features constant on the labelled images (dead \
             units), given the median σ and zero weights",
            std.numel()
        );
    }
    let std = std.where_self(&dead.logical_not(), &median);
    let weight = weight.masked_fill(&dead.transpose(0, 1), 0.0); // [F, C]
    (std, weight.to_kind(Kind::Float))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn t(v: &[f32], shape: [i64; 2]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    #[test]
    fn dead_features_get_the_median_scale_and_no_weight() {
        // σ = [1e-6, 0.1, 0.2, 0.4, 0.3]: median 0.2, so only the first (< 2e-4) is dead.
        let std = t(&[1e-6, 0.1, 0.2, 0.4, 0.3], [1, 5]);
        let weight = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9., 10.], [5, 2]);
        let (s, w) = revive_dead_units(&std, &weight);
        assert_eq!(Vec::<f32>::try_from(s.flatten(0, -1)).unwrap(), vec![0.2, 0.1, 0.2, 0.4, 0.3]);
        let want = vec![0., 0., 3., 4., 5., 6., 7., 8., 9., 10.];
        assert_eq!(Vec::<f32>::try_from(w.flatten(0, -1)).unwrap(), want);
    }

    #[test]
    fn the_head_starts_as_the_probe_on_its_fitting_features() {
        tch::manual_seed(0);
        let x = Tensor::randn([32, 4], (Kind::Float, Device::Cpu));
        let x = Tensor::cat(&[&x, &Tensor::zeros([32, 1], (Kind::Float, Device::Cpu))], 1); // dead
        let probe = LinearClassifier {
            mean: x.mean_dim([0i64].as_slice(), true, Kind::Float),
            std: x.std_dim([0i64].as_slice(), false, true).clamp_min(1e-6),
            weight: Tensor::randn([5, 3], (Kind::Float, Device::Cpu)),
            bias: Tensor::randn([3], (Kind::Float, Device::Cpu)),
        };
        let want = ((&x - &probe.mean) / &probe.std).matmul(&probe.weight) + &probe.bias;
        let head = Head::from_probe(&VarStore::new(Device::Cpu), &probe);
        let got = tch::no_grad(|| head.forward(&x));
        assert!(got.allclose(&want, 1e-5, 1e-5, false));
        // The dead feature firing at 1 moves the logits by nothing, where the probe's
        // standardisation would multiply it by 1e6.
        let fired = x.index_fill(1, &Tensor::from_slice(&[4i64]), 1.0);
        let moved = tch::no_grad(|| head.forward(&fired));
        assert!(moved.allclose(&want, 1e-5, 1e-5, false));
    }
}
