//! MoCo v3: a momentum encoder without a queue, a predictor on the query side, and symmetric
//! in-batch InfoNCE.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, InfoNce, InfoNceConfig, PairLoss};
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

/// MoCo v3's settings (`method: {name: mocov3, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MocoV3Config {
    /// The projector g: 3 layers, 4096 hidden, 256 out, BatchNorm on every layer (paper,
    /// Sec. 4; the output's without affine, as the authors' code).
    pub projector: HeadConfig,
    /// The predictor q on the query side: 2 layers, 256 → 4096 → 256, BatchNorm on the hidden
    /// one.
    pub predictor: HeadConfig,
    /// InfoNCE temperature τ (paper: 1.0 for ResNet-50, 0.2 for ViT).
    pub temperature: f64,
    /// m_base, the momentum encoder's EMA coefficient at step 0, raised to 1 by a cosine over
    /// the run (paper: 0.99 for ResNet-50 at batch 4096; 0.996 at smaller batches).
    pub base_momentum: f64,
}

impl MocoV3Config {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_projector_and_predictor(&self.projector, &self.predictor)?;
        InfoNceConfig { temperature: self.temperature }.build()?;
        check_unit_interval("method.base_momentum", self.base_momentum)
    }
}

/// MoCo v3 on the backbone of `model.backbone`.
///
/// Paper: Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision Transformers",
/// ICCV 2021, <https://arxiv.org/abs/2104.02057>, Algorithm 1.
///
/// ```text
/// q = q_θ(g_θ(f_θ(x))),  k = g_ξ(f_ξ(x))  (momentum encoder, no gradient)
/// ctr(q, k) = 2τ · 1/N Σᵢ −log exp(q̂ᵢ·k̂ᵢ/τ) / Σⱼ exp(q̂ᵢ·k̂ⱼ/τ)   (the other keys of the batch)
/// L = ctr(q₁, k₂) + ctr(q₂, k₁)
/// after the step: ξ ← m ξ + (1 − m) θ,   m = 1 − (1 − m_base)(cos(πk/K) + 1)/2
/// ```
///
/// No queue: the negatives are the batch's other keys. The 2τ factor is the authors' (it
/// makes the gradient's scale independent of τ). The key encoder's BatchNorm sees the whole
/// key batch, as the paper's SyncBN does across its GPUs. Logged: `momentum`.
#[derive(Debug)]
pub struct MocoV3 {
    networks: OnlineTarget,
    loss: InfoNce,
    cfg: MocoV3Config,
    views: [Compose; 2],
}

impl MocoV3 {
    /// Builds the query encoder in `vs` (`backbone.*`, `head.*`, `predictor.*`) and its
    /// momentum copy.
    ///
    /// # Errors
    /// Config errors naming the field, and the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, v3: &MocoV3Config) -> Result<Self> {
        v3.validate()?;
        let networks = OnlineTarget::new(vs, cfg, &v3.projector, &v3.predictor, v3.base_momentum)?;
        let loss = InfoNceConfig { temperature: v3.temperature }.build()?;
        Ok(Self { networks, loss, cfg: *v3, views: cfg.two_views()? })
    }

    /// The momentum (key) encoder.
    pub fn target(&self) -> &MomentumEncoder<Encoder> {
        self.networks.target()
    }
}

impl Method for MocoV3 {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, ctx: &StepContext) -> Result<StepOutput> {
        let out = self.networks.forward_views(batch.views);
        let ([q1, q2], [k1, k2]) = (&out.p, &out.t); // k: no gradient
        let scale = 2.0 * self.cfg.temperature;
        let loss = (self.loss.f_forward(q1, k2)? + self.loss.f_forward(q2, k1)?) * scale;
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
