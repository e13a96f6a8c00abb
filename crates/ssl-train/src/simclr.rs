//! SimCLR: two augmented views, a shared encoder and NT-Xent (or another two-view loss).

use ssl_aug::Compose;
use ssl_loss::PairLoss;
use ssl_models::{Backbone, ProjectionHeadConfig};
use tch::nn;
use tch::Tensor;

use crate::config::ProjectionConfig;
use crate::encoder::Encoder;
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::methods::SimClrConfig;
use crate::{Config, Result};

/// SimCLR's parts: backbone f, projection head g and the loss (views come from ssl-aug).
///
/// Paper: Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
/// ICML 2020, <https://arxiv.org/abs/2002.05709>, Algorithm 1.
///
/// ```text
/// x̃₁ = t₁(x), x̃₂ = t₂(x)    z = g(f(x̃))    L = NT-Xent(z₁, z₂; τ)
/// ```
///
/// [`SimClr::with_loss`] swaps NT-Xent for any [`PairLoss`] on the same in-batch pairs: HCL's
/// hard negatives (`simclr-hcl`, [`ssl_loss::HardNegative`]) and DCL's decoupled denominator
/// (`simclr-dcl`, [`ssl_loss::Dcl`]).
#[derive(Debug)]
pub struct SimClr {
    encoder: Encoder,
    loss: Box<dyn PairLoss>,
    /// The two views' pipelines ([`Config::two_views`]).
    views: [Compose; 2],
}

impl SimClr {
    /// Builds the encoder's variables under `p` (`backbone.*`, `head.*`) and the loss.
    ///
    /// # Errors
    /// The leaf crates' config errors.
    pub fn new(p: &nn::Path, cfg: &Config, simclr: &SimClrConfig) -> Result<Self> {
        let loss = simclr.loss.build_in(&(p / "loss"))?;
        Self::with_loss(p, cfg, &simclr.projection, Box::new(loss))
    }

    /// SimCLR's encoder and views (variables `backbone.*`, `head.*` under `p`) with `loss` in
    /// place of NT-Xent; its [`PairLoss::after_step`] runs after every optimiser step.
    ///
    /// # Errors
    /// The leaf crates' config errors.
    pub fn with_loss(
        p: &nn::Path,
        cfg: &Config,
        projection: &ProjectionConfig,
        loss: Box<dyn PairLoss>,
    ) -> Result<Self> {
        let head = ProjectionHeadConfig {
            hidden_dim: projection.hidden_dim,
            output_dim: projection.output_dim,
            ..ProjectionHeadConfig::simclr(1) // input width set by Encoder
        };
        let encoder = Encoder::new(p, &cfg.model.backbone, &head)?;
        Ok(Self { encoder, loss, views: cfg.two_views()? })
    }
}

impl Method for SimClr {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> Result<StepOutput> {
        let views = batch.views;
        // One forward over both views, so BatchNorm sees the 2N views together as in SimCLR.
        let n = views[0].size()[0];
        let both = Tensor::cat(&[&views[0], &views[1]], 0);
        let (h, z) = self.encoder.features_and_projection(&both, true); // [2N, F], [2N, D]
        Ok(StepOutput {
            loss: self.loss.f_forward(&z.narrow(0, 0, n), &z.narrow(0, n, n))?,
            embeddings: Some(z.narrow(0, 0, n).detach()),
            features: Some(h.narrow(0, 0, n).detach()),
            logs: Vec::new(),
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        self.loss.after_step(); // a learnt τ is clipped at 1/τ ≤ 100, as CLIP
        Ok(())
    }

    fn backbone(&self) -> &dyn Backbone {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.encoder.backbone_mut()
    }
}
