//! SimSiam: a siamese encoder and predictor, the other branch behind a stop-gradient.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, NegativeCosine, NegativeCosineConfig};
use ssl_models::{Backbone, ProjectionHead};
use tch::nn::{ModuleT, VarStore};

use crate::config::{validate_projector_and_predictor, HeadConfig};
use crate::encoder::Encoder;
use crate::method::{Batch, LrGroup, Method, StepContext, StepOutput};
use crate::{Config, Result};

/// SimSiam's settings (`method: {name: simsiam, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSiamConfig {
    /// The projector (paper: 3 layers, 2048 wide, BatchNorm on every layer including the
    /// output: `output_batch_norm: true`).
    pub projector: HeadConfig,
    /// The bottleneck predictor h (paper: 2048 → 512 → 2048, BatchNorm on the hidden layer).
    pub predictor: HeadConfig,
    /// Keep the predictor at the peak learning rate instead of the cosine (paper: yes,
    /// Sec. 4.2, "fixed lr for the predictor").
    pub fixed_predictor_lr: bool,
}

impl SimSiamConfig {
    /// Checks every field; errors name `method.<field>`.
    ///
    /// # Errors
    /// [`crate::TrainError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        validate_projector_and_predictor(&self.projector, &self.predictor)
    }
}

/// SimSiam on the backbone of `model.backbone`.
///
/// Paper: Chen, He, "Exploring Simple Siamese Representation Learning", CVPR 2021,
/// <https://arxiv.org/abs/2011.10566>, Algorithm 1 and Eq. (1)–(2).
///
/// ```text
/// z = g(f(x)),  p = h(z)
/// L = ½ D(p₁, stopgrad(z₂)) + ½ D(p₂, stopgrad(z₁)),  D(p, z) = −cos(p, z)
/// ```
///
/// No momentum encoder and no negatives; the stop-gradient is what prevents collapse.
#[derive(Debug)]
pub struct SimSiam {
    encoder: Encoder,
    predictor: ProjectionHead,
    loss: NegativeCosine,
    cfg: SimSiamConfig,
    views: [Compose; 2],
}

impl SimSiam {
    /// Builds the encoder in `vs` (`backbone.*`, `head.*`) and the predictor (`predictor.*`).
    ///
    /// # Errors
    /// Config errors naming the field, and the parts' errors.
    pub fn new(vs: &VarStore, cfg: &Config, simsiam: &SimSiamConfig) -> Result<Self> {
        simsiam.validate()?;
        let head = simsiam.projector.projection();
        let encoder = Encoder::new(&vs.root(), &cfg.model.backbone, &head)?;
        let predictor = simsiam.predictor.build(&(vs.root() / "predictor"), head.output_dim)?;
        let loss = NegativeCosineConfig::simsiam().build()?;
        Ok(Self { encoder, predictor, loss, cfg: *simsiam, views: cfg.two_views()? })
    }
}

impl Method for SimSiam {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> Result<StepOutput> {
        let views = batch.views;
        let (h1, z1) = self.encoder.features_and_projection(&views[0], true); // [N, F], [N, D]
        let z2 = self.encoder.forward_t(&views[1], true);
        let p1 = self.predictor.forward_t(&z1, true);
        let p2 = self.predictor.forward_t(&z2, true);
        let loss = self.loss.f_forward_symmetric(&p1, &z1.detach(), &p2, &z2.detach())?;
        Ok(StepOutput {
            loss,
            embeddings: Some(l2_normalize(&z1.detach(), 1e-12)),
            features: Some(h1.detach()),
            logs: Vec::new(),
        })
    }

    fn backbone(&self) -> &dyn Backbone {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.encoder.backbone_mut()
    }

    fn lr_group(&self, name: &str) -> LrGroup {
        if self.cfg.fixed_predictor_lr && name.starts_with("predictor.") {
            LrGroup::Fixed
        } else {
            LrGroup::Scheduled
        }
    }
}
