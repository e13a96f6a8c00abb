//! The momentum (EMA) copy of a network: MoCo's key encoder, BYOL's target.

use std::error::Error;

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::{MocoError, Result};

/// What the target does with its non-trainable variables (BatchNorm's running mean and
/// variance) at each [`MomentumEncoder::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BufferRule {
    /// The target keeps its own statistics, updated only by its own train-mode forwards, as
    /// the reference code of MoCo (`encoder_k.parameters()` only) and BYOL do. They start as
    /// the online network's.
    #[default]
    Own,
    /// The statistics follow the online network's by the same EMA as the weights (timm's
    /// `ModelEmaV2`).
    Ema,
}

/// An exponential moving average of an online network, with its own `VarStore`.
///
/// Papers: He et al., "Momentum Contrast for Unsupervised Visual Representation Learning",
/// CVPR 2020, <https://arxiv.org/abs/1911.05722>, Eq. (2); Grill et al., "Bootstrap Your Own
/// Latent", NeurIPS 2020, <https://arxiv.org/abs/2006.07733>, Sec. 3.1.
///
/// ```text
/// ξ ← m·ξ + (1 − m)·θ       after every optimiser step of the online parameters θ
/// ```
///
/// The target is built by the caller's closure under its own root, so its variables carry the
/// online network's names (`backbone.conv1.weight`, ...); each is paired with the online
/// variable of the same name and shape, never by position, and starts equal to it. The online
/// store may hold more (a predictor the target lacks). The target is frozen, and
/// [`MomentumEncoder::forward_t`] runs without autograd, so no graph is built through it.
/// Its parameters live in one flat buffer, so an update is two libtorch calls whatever the
/// network: a `cat` of the online parameters into a reused scratch buffer, and one `lerp_`.
///
/// # Example
/// ```
/// use ssl_moco::{BufferRule, MomentumEncoder};
/// use tch::nn::{self, Module};
/// use tch::{Device, Kind, Tensor};
///
/// let online = nn::VarStore::new(Device::Cpu);
/// let build = |p: &nn::Path| Ok::<_, tch::TchError>(nn::linear(p / "fc", 3, 2, Default::default()));
/// let net = build(&online.root())?;
/// let target = MomentumEncoder::new(&online, BufferRule::Own, build)?;
/// let x = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
/// assert!(target.forward_t(&x, true).allclose(&net.forward(&x), 1e-6, 1e-6, false));
/// target.update(0.99)?; // ξ ← 0.99 ξ + 0.01 θ
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MomentumEncoder<M> {
    vs: nn::VarStore,
    module: M,
    /// The target's parameters, back to back in name order: `[P]`.
    flat: Tensor,
    /// The paired online parameters, in the same order.
    online: Vec<Tensor>,
    /// Scratch for the online parameters, gathered: `[P]`.
    gathered: Tensor,
    /// (target, online) non-trainable variables, paired by name.
    buffers: Vec<(Tensor, Tensor)>,
    rule: BufferRule,
}

impl<M> MomentumEncoder<M> {
    /// Builds the target with `build` under a fresh `VarStore` on `online`'s device, pairs its
    /// variables with `online`'s by name, copies their values, and freezes it.
    ///
    /// # Errors
    /// [`MocoError::Build`] when `build` fails; [`MocoError::Pairing`] naming the variable when
    /// a target variable has no online variable of that name, shape and trainability, or the
    /// parameters do not share one floating-point kind; libtorch errors.
    pub fn new<E>(
        online: &nn::VarStore,
        rule: BufferRule,
        build: impl FnOnce(&nn::Path) -> std::result::Result<M, E>,
    ) -> Result<Self>
    where
        E: Error + Send + Sync + 'static,
    {
        let mut vs = nn::VarStore::new(online.device());
        let module = build(&vs.root()).map_err(|e| MocoError::Build(Box::new(e)))?;
        let online_vars = online.variables();
        let mut target_vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        target_vars.sort_by(|a, b| a.0.cmp(&b.0));
        let (mut params, mut buffers) = (Vec::new(), Vec::new());
        for (name, t) in target_vars {
            let pairing = |reason: String| MocoError::Pairing { name: name.clone(), reason };
            let o = online_vars
                .get(&name)
                .ok_or_else(|| pairing("the online network has no variable of that name".into()))?;
            if o.size() != t.size() || o.requires_grad() != t.requires_grad() {
                return Err(pairing(format!(
                    "target {:?} (trainable {}) against online {:?} (trainable {})",
                    t.size(),
                    t.requires_grad(),
                    o.size(),
                    o.requires_grad()
                )));
            }
            if t.requires_grad() {
                params.push((name, t, o.shallow_clone()));
            } else {
                buffers.push((t, o.shallow_clone()));
            }
        }
        let kind = params.first().map_or(Kind::Float, |p| p.1.kind());
        if let Some((name, t, _)) = params.iter().find(|p| p.1.kind() != kind) {
            return Err(MocoError::Pairing {
                name: name.clone(),
                reason: format!("kind {:?}, while the first parameter is {kind:?}", t.kind()),
            });
        }
        let total: i64 = params.iter().map(|p| p.1.numel() as i64).sum();
        let flat = Tensor::zeros([total], (kind, online.device())); // [P]
        let mut offset = 0;
        tch::no_grad(|| -> Result<()> {
            for (_, t, o) in &mut params {
                let n = t.numel() as i64;
                let mut slot = flat.narrow(0, offset, n).view(t.size().as_slice());
                slot.f_copy_(o)?;
                t.f_set_data(&slot)?;
                offset += n;
            }
            for (t, o) in &mut buffers {
                t.f_copy_(o)?;
            }
            Ok(())
        })?;
        vs.freeze();
        let online = params.into_iter().map(|p| p.2).collect();
        let gathered = flat.zeros_like();
        Ok(Self { vs, module, flat, online, gathered, buffers, rule })
    }

    /// One EMA step, ξ ← m·ξ + (1 − m)·θ, for every paired parameter (and, with
    /// [`BufferRule::Ema`], every BatchNorm statistic). m = 1 leaves the target as it is and
    /// m = 0 copies the online network, exactly.
    ///
    /// # Errors
    /// [`MocoError::Invalid`] when `m` is not in [0, 1]; libtorch errors.
    pub fn update(&self, m: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&m) {
            return Err(MocoError::Invalid {
                what: format!("momentum {m}"),
                reason: "must be in [0, 1]",
            });
        }
        tch::no_grad(|| -> Result<()> {
            let online: Vec<Tensor> = self.online.iter().map(|o| o.reshape([-1])).collect();
            let gathered = Tensor::f_cat_out(&self.gathered, &online, 0)?; // [P]
                                                                           // lerp(ξ, θ, w) = ξ + w (θ − ξ), computed as θ − (θ − ξ)(1 − w) for w ≥ ½, so
                                                                           // w = 0 and w = 1 are exact.
            let _ = self.flat.shallow_clone().f_lerp_(&gathered, 1.0 - m)?;
            if self.rule == BufferRule::Ema {
                for (t, o) in &self.buffers {
                    if t.is_floating_point() {
                        let _ = t.shallow_clone().f_lerp_(o, 1.0 - m)?;
                    } else {
                        t.shallow_clone().f_copy_(o)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// The target network (for example to read its variables or switch its precision).
    pub fn module(&self) -> &M {
        &self.module
    }

    /// Copies every paired parameter and non-trainable variable from the online network
    /// exactly, as at construction: for weights loaded into the online network after the target
    /// was built (a run that starts from pretrained weights).
    ///
    /// # Errors
    /// libtorch errors.
    pub fn reset_to_online(&self) -> Result<()> {
        self.update(0.0)?;
        tch::no_grad(|| -> Result<()> {
            for (t, o) in &self.buffers {
                t.shallow_clone().f_copy_(o)?;
            }
            Ok(())
        })
    }

    /// The target's own variables (frozen).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    /// How many parameters the EMA averages.
    pub fn numel(&self) -> i64 {
        self.flat.numel() as i64
    }
}

impl<M: ModuleT> MomentumEncoder<M> {
    /// The target's output for `x`, without autograd (`train` as for the online network: MoCo
    /// and BYOL run their targets in train mode, with batch statistics).
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        tch::no_grad(|| self.module.forward_t(x, train))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use tch::nn::Module;
    use tch::Device;

    fn linear(p: &nn::Path) -> std::result::Result<nn::Linear, tch::TchError> {
        Ok(nn::linear(p / "fc", 3, 2, Default::default()))
    }

    fn values(t: &Tensor) -> Vec<f64> {
        Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
    }

    #[test]
    fn one_update_is_the_convex_combination_and_m_one_freezes_m_zero_copies() {
        let _rng = ssl_testutil::seed_global_rng(1);
        let online = nn::VarStore::new(Device::Cpu);
        let net = linear(&online.root()).unwrap();
        let target = MomentumEncoder::new(&online, BufferRule::Own, linear).unwrap();
        let xi0 = values(&target.module().ws);
        assert_eq!(xi0, values(&net.ws), "starts equal");
        // Move the online weights, then average with m = 0.9.
        tch::no_grad(|| {
            let mut w = net.ws.shallow_clone();
            w += 0.5;
        });
        let theta = values(&net.ws);
        target.update(0.9).unwrap();
        for ((x, t), x0) in values(&target.module().ws).iter().zip(&theta).zip(&xi0) {
            assert!((x - (0.9 * x0 + 0.1 * t)).abs() < 1e-7, "{x} vs {}", 0.9 * x0 + 0.1 * t);
        }
        let before = values(&target.module().ws);
        target.update(1.0).unwrap();
        assert_eq!(values(&target.module().ws), before, "m = 1 freezes");
        target.update(0.0).unwrap();
        assert_eq!(values(&target.module().ws), theta, "m = 0 copies");
        assert_eq!(values(target.module().bs.as_ref().unwrap()), values(net.bs.as_ref().unwrap()));
        assert!(target.update(1.5).is_err());
    }

    #[test]
    fn reset_to_online_copies_weights_and_own_statistics_exactly() {
        let _rng = ssl_testutil::seed_global_rng(2);
        let build = |p: &nn::Path| {
            Ok::<_, tch::TchError>(nn::batch_norm1d(p / "bn", 3, Default::default()))
        };
        let online = nn::VarStore::new(Device::Cpu);
        let bn = build(&online.root()).unwrap();
        let target = MomentumEncoder::new(&online, BufferRule::Own, build).unwrap();
        // Weights "loaded" into the online network after the target was built.
        tch::no_grad(|| {
            let (mut w, mut mean) =
                (bn.ws.as_ref().unwrap().shallow_clone(), bn.running_mean.shallow_clone());
            w += 0.25;
            mean += 3.0;
        });
        target.update(0.9).unwrap();
        let t = target.module();
        assert_eq!(values(&t.running_mean), [0.0; 3], "Own: statistics are not averaged");
        target.reset_to_online().unwrap();
        assert_eq!(values(t.ws.as_ref().unwrap()), values(bn.ws.as_ref().unwrap()));
        assert_eq!(values(&t.running_mean), [3.0; 3]);
        assert_eq!(values(&t.running_var), values(&bn.running_var));
    }

    #[test]
    fn variables_are_paired_by_name_not_by_creation_order() {
        // The online network creates `a` [2] then `b` [3]; the target `b` then `a`. A
        // positional pairing would put `b`'s three values into `a`'s two.
        let first = Cell::new(true);
        let build = |p: &nn::Path| {
            let (a, b) = if first.replace(false) {
                let a = p.var("a", &[2], nn::Init::Const(1.0));
                (a, p.var("b", &[3], nn::Init::Const(2.0)))
            } else {
                let b = p.var("b", &[3], nn::Init::Const(-1.0));
                (p.var("a", &[2], nn::Init::Const(-1.0)), b)
            };
            Ok::<_, tch::TchError>((a, b))
        };
        let online = nn::VarStore::new(Device::Cpu);
        let (a, b) = build(&online.root()).unwrap();
        let target = MomentumEncoder::new(&online, BufferRule::Own, build).unwrap();
        assert_eq!(values(&target.module().0), [1.0, 1.0]);
        assert_eq!(values(&target.module().1), [2.0, 2.0, 2.0]);
        tch::no_grad(|| {
            let (mut a, mut b) = (a.shallow_clone(), b.shallow_clone());
            a += 1.0;
            b += 1.0;
        });
        target.update(0.5).unwrap();
        assert_eq!(values(&target.module().0), [1.5, 1.5]);
        assert_eq!(values(&target.module().1), [2.5, 2.5, 2.5]);
    }

    #[test]
    fn a_target_variable_without_an_online_twin_is_an_error_naming_it() {
        let online = nn::VarStore::new(Device::Cpu);
        let _ = linear(&online.root()).unwrap();
        let other =
            |p: &nn::Path| Ok::<_, tch::TchError>(nn::linear(p / "head", 3, 2, Default::default()));
        let err = MomentumEncoder::new(&online, BufferRule::Own, other).unwrap_err().to_string();
        assert!(err.contains("head.weight") || err.contains("head.bias"), "{err}");
        let wide =
            |p: &nn::Path| Ok::<_, tch::TchError>(nn::linear(p / "fc", 3, 5, Default::default()));
        let err = MomentumEncoder::new(&online, BufferRule::Own, wide).unwrap_err().to_string();
        assert!(err.contains("fc.bias") && err.contains("[5]") && err.contains("[2]"), "{err}");
    }

    #[test]
    fn the_target_gets_no_gradient_and_builds_no_graph() {
        let online = nn::VarStore::new(Device::Cpu);
        let net = linear(&online.root()).unwrap();
        let target = MomentumEncoder::new(&online, BufferRule::Own, linear).unwrap();
        let x = Tensor::ones([4, 3], (Kind::Float, Device::Cpu));
        let k = target.forward_t(&x, true);
        assert!(!k.requires_grad());
        assert!(target.var_store().variables().values().all(|v| !v.requires_grad()), "frozen");
        // A loss of both: only the online network's weights get a gradient.
        (net.forward(&x) * &k).sum(Kind::Float).backward();
        assert!(net.ws.grad().defined());
        assert!(!target.module().ws.grad().defined());
    }

    #[test]
    fn batch_norm_statistics_are_the_targets_own_or_follow_the_ema() {
        let bn = |p: &nn::Path| {
            Ok::<_, tch::TchError>(nn::batch_norm1d(p / "bn", 2, Default::default()))
        };
        let online = nn::VarStore::new(Device::Cpu);
        let net = bn(&online.root()).unwrap();
        let own = MomentumEncoder::new(&online, BufferRule::Own, bn).unwrap();
        let ema = MomentumEncoder::new(&online, BufferRule::Ema, bn).unwrap();
        // The online network sees a batch of mean (4, 8): running_mean 0 → 0.1 · mean.
        let x = Tensor::from_slice(&[3.0f32, 7.0, 5.0, 9.0]).view([2, 2]);
        let _ = net.forward_t(&x, true);
        assert_eq!(values(&net.running_mean), [0.4f32 as f64, 0.8f32 as f64]);
        own.update(0.5).unwrap();
        ema.update(0.5).unwrap();
        assert_eq!(values(&own.module().running_mean), [0.0, 0.0], "own: untouched by update");
        let half = values(&ema.module().running_mean);
        assert!((half[0] - 0.2).abs() < 1e-7 && (half[1] - 0.4).abs() < 1e-7, "{half:?}");
        // Its own train-mode forward moves its own statistics.
        let _ = own.forward_t(&(x * 2.0), true);
        let moved = values(&own.module().running_mean);
        assert!((moved[0] - 0.8).abs() < 1e-6 && (moved[1] - 1.6).abs() < 1e-6, "{moved:?}");
    }
}
