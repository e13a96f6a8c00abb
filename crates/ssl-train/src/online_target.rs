//! The online network with a predictor and its EMA target, as BYOL and MoCo v3 share them.

use ssl_moco::{momentum_at, BufferRule, MomentumEncoder};
use ssl_models::{Backbone, ProjectionHead};
use tch::nn::{ModuleT, VarStore};
use tch::Tensor;

use crate::config::HeadConfig;
use crate::encoder::Encoder;
use crate::method::StepContext;
use crate::{Config, Result};

/// Online encoder f_θ, g_θ (`backbone.*`, `head.*`), predictor q_θ (`predictor.*`) and the
/// EMA target f_ξ, g_ξ, whose coefficient rises from `base_momentum` to 1 on a cosine:
/// `m = 1 − (1 − m_base)(cos(πk/K) + 1)/2`, then `ξ ← m ξ + (1 − m) θ`.
#[derive(Debug)]
pub struct OnlineTarget {
    online: Encoder,
    predictor: ProjectionHead,
    target: MomentumEncoder<Encoder>,
    base_momentum: f64,
}

/// What [`OnlineTarget::forward_views`] computes on two views: the first view's features and
/// projection (for the monitors), both predictions, and both target projections.
#[derive(Debug)]
pub struct TwoViewOutputs {
    /// f_θ(x₁), `[N, F]`.
    pub h1: Tensor,
    /// g_θ(f_θ(x₁)), `[N, D]`.
    pub z1: Tensor,
    /// q_θ of view 1's and view 2's projections, `[N, D]` each.
    pub p: [Tensor; 2],
    /// g_ξ(f_ξ(·)) of view 1 and view 2, `[N, D]` each, without gradient.
    pub t: [Tensor; 2],
}

impl OnlineTarget {
    /// Builds the online network in `vs`, then the target (in that order of draws).
    ///
    /// # Errors
    /// The parts' errors.
    pub fn new(
        vs: &VarStore,
        cfg: &Config,
        projector: &HeadConfig,
        predictor: &HeadConfig,
        base_momentum: f64,
    ) -> Result<Self> {
        let head = projector.projection();
        let build = |p: &tch::nn::Path| Encoder::new(p, &cfg.model.backbone, &head);
        let online = build(&vs.root())?;
        let predictor = predictor.build(&(vs.root() / "predictor"), head.output_dim)?;
        let target = MomentumEncoder::new(vs, BufferRule::Own, build)?;
        Ok(Self { online, predictor, target, base_momentum })
    }

    /// Online projections and predictions of both views, then the target's projections.
    pub fn forward_views(&self, views: &[Tensor]) -> TwoViewOutputs {
        let (h1, z1) = self.online.features_and_projection(&views[0], true); // [N, F], [N, D]
        let z2 = self.online.forward_t(&views[1], true);
        let p = [self.predictor.forward_t(&z1, true), self.predictor.forward_t(&z2, true)];
        let t = [self.target.forward_t(&views[0], true), self.target.forward_t(&views[1], true)];
        TwoViewOutputs { h1, z1, p, t }
    }

    /// The EMA coefficient m of the update after step `ctx.step` of `ctx.total`.
    pub fn momentum(&self, ctx: &StepContext) -> f64 {
        momentum_at(ctx.step, ctx.total, self.base_momentum, 1.0)
    }

    /// ξ ← m ξ + (1 − m) θ with [`Self::momentum`].
    ///
    /// # Errors
    /// The momentum encoder's errors.
    pub fn update_target(&mut self, ctx: &StepContext) -> Result<()> {
        self.target.update(self.momentum(ctx))?;
        Ok(())
    }

    /// The EMA target.
    pub fn target(&self) -> &MomentumEncoder<Encoder> {
        &self.target
    }

    /// The online backbone f_θ.
    pub fn backbone(&self) -> &dyn Backbone {
        self.online.backbone()
    }

    /// The online backbone f_θ, mutably.
    pub fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.online.backbone_mut()
    }
}
