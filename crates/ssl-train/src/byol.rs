//! BYOL: an online network with a predictor regresses the EMA target's projection of the other
//! view; no negatives.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, NegativeCosine, NegativeCosineConfig};
use ssl_moco::MomentumEncoder;
use ssl_models::Backbone;
use tch::nn::VarStore;

use crate::config::{validate_projector_and_predictor, HeadConfig};
use crate::encoder::Encoder;
use crate::error::check_unit_interval;
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::online_target::OnlineTarget;
use crate::state::{load_momentum, momentum_state, State, StateDict};
use crate::{Config, Result};

/// BYOL's settings (`method: {name: byol, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByolConfig {
    /// The projector g (paper: 4096 hidden with BatchNorm, 256 out).
    pub projector: HeadConfig,
    /// The predictor q, from the projection's width to the same width (paper: as the
    /// projector).
    pub predictor: HeadConfig,
    /// τ_base, the target's EMA coefficient at step 0, raised to 1 by a cosine over the run
    /// (paper: 0.996 for 1,000 epochs; its 40-epoch configs use 0.97: short runs want lower).
    pub base_momentum: f64,
}

impl ByolConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_projector_and_predictor(&self.projector, &self.predictor)?;
        check_unit_interval("method.base_momentum", self.base_momentum)
    }
}

/// BYOL on the backbone of `model.backbone`.
///
/// Paper: Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
/// Learning", NeurIPS 2020, <https://arxiv.org/abs/2006.07733>, Sec. 3.1 and Eq. (2).
///
/// ```text
/// online: z = g_θ(f_θ(v)), p = q_θ(z);   target: z' = g_ξ(f_ξ(v)) (no gradient)
/// L = ‖p̂₁ − ẑ'₂‖² + ‖p̂₂ − ẑ'₁‖²          (L + L̃, the sum: NegativeCosineConfig::byol)
/// after the step: ξ ← τ ξ + (1 − τ) θ,   τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2
/// ```
///
/// The two views use their own augmentations (`augment` and `augment_view2`: BYOL's blur
/// 1.0 / 0.1 and solarize 0 / 0.2). Logged: `momentum`, the τ of the step's update.
#[derive(Debug)]
pub struct Byol {
    networks: OnlineTarget,
    loss: NegativeCosine,
    views: [Compose; 2],
}

impl Byol {
    /// Builds the online network in `vs` (`backbone.*`, `head.*`, `predictor.*`) and the target.
    ///
    /// # Errors
    /// Config errors naming the field, and the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, byol: &ByolConfig) -> Result<Self> {
        byol.validate()?;
        let networks =
            OnlineTarget::new(vs, cfg, &byol.projector, &byol.predictor, byol.base_momentum)?;
        let loss = NegativeCosineConfig::byol().build()?;
        Ok(Self { networks, loss, views: cfg.two_views()? })
    }

    /// The EMA target network.
    pub fn target(&self) -> &MomentumEncoder<Encoder> {
        self.networks.target()
    }
}

impl Method for Byol {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput> {
        let out = self.networks.forward_views(batch.views);
        let ([p1, p2], [t1, t2]) = (&out.p, &out.t);
        let loss = self.loss.f_forward_symmetric(p1, t1, p2, t2)?;
        Ok(StepOutput {
            loss,
            embeddings: Some(l2_normalize(&out.z1.detach(), 1e-12)),
            features: Some(out.h1.detach()),
            logs: vec![("momentum", self.networks.momentum(ctx))],
        })
    }

    fn after_step(&mut self, ctx: &StepContext) -> Result<()> {
        self.networks.update_target(ctx)
    }

    fn reset_targets(&mut self) -> Result<()> {
        Ok(self.networks.target().reset_to_online()?)
    }

    fn state(&self) -> State {
        momentum_state("target", self.networks.target())
    }

    fn load_state(&mut self, state: &StateDict) -> Result<()> {
        load_momentum("target", self.networks.target(), state)
    }

    fn backbone(&self) -> &dyn Backbone {
        self.networks.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.networks.backbone_mut()
    }
}
