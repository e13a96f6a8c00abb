//! SimCLR: two augmented views, a shared encoder and NT-Xent.

use ssl_aug::Compose;
use ssl_loss::{NtXent, PairLoss};
use ssl_models::{ProjectionHead, ProjectionHeadConfig, ResNet};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::method::{Method, StepContext, StepOutput};
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
#[derive(Debug)]
pub struct SimClr {
    backbone: ResNet,
    head: ProjectionHead,
    loss: NtXent,
    /// Both views use `augment`, with their own random draws.
    views: [Compose; 2],
}

impl SimClr {
    /// Builds the encoder's variables under `p` (`backbone.*`, `head.*`) and the loss.
    ///
    /// # Errors
    /// The leaf crates' config errors.
    pub fn new(p: &nn::Path, cfg: &Config, simclr: &SimClrConfig) -> Result<Self> {
        let backbone = ResNet::new(&(p / "backbone"), &cfg.model.backbone)?;
        let head_cfg = ProjectionHeadConfig {
            input_dim: backbone.feature_dim(),
            hidden_dim: simclr.projection.hidden_dim,
            output_dim: simclr.projection.output_dim,
            ..ProjectionHeadConfig::simclr(backbone.feature_dim())
        };
        let head = ProjectionHead::new(&(p / "head"), &head_cfg)?;
        let views = [cfg.augment.build()?, cfg.augment.build()?];
        Ok(Self { backbone, head, loss: simclr.loss.build_in(&(p / "loss"))?, views })
    }

    /// The backbone f, whose pooled features h are what evaluation uses.
    pub fn backbone(&self) -> &ResNet {
        &self.backbone
    }

    /// The backbone, to switch its precision for evaluation.
    pub fn backbone_mut(&mut self) -> &mut ResNet {
        &mut self.backbone
    }

    /// The losses' after-step hook (a learnt τ is clipped at 1/τ ≤ 100, as CLIP): call it after
    /// every optimiser step.
    pub fn after_step(&self) {
        self.loss.after_step();
    }

    /// NT-Xent of the projections of two views.
    pub fn loss(&self, v1: &Tensor, v2: &Tensor) -> Tensor {
        self.loss_and_projections(v1, v2).0
    }

    /// NT-Xent, the features h (`[2N, F]`) and the projections z (`[2N, D]`), first view first.
    fn loss_and_projections(&self, v1: &Tensor, v2: &Tensor) -> (Tensor, Tensor, Tensor) {
        // One forward over both views, so BatchNorm sees the 2N views together as in SimCLR.
        let n = v1.size()[0];
        let h = self.backbone.forward_t(&Tensor::cat(&[v1, v2], 0), true); // [2N, F]
        let z = self.head.forward_t(&h, true); // [2N, D]
        (self.loss.forward(&z.narrow(0, 0, n), &z.narrow(0, n, n)), h, z)
    }
}

impl Method for SimClr {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, views: &[Tensor], _ctx: &StepContext) -> Result<StepOutput> {
        let n = views[0].size()[0];
        let (loss, h, z) = self.loss_and_projections(&views[0], &views[1]);
        Ok(StepOutput {
            loss,
            embeddings: Some(z.narrow(0, 0, n).detach()),
            features: Some(h.narrow(0, 0, n).detach()),
            logs: Vec::new(),
        })
    }

    fn after_step(&mut self, _ctx: &StepContext) -> Result<()> {
        SimClr::after_step(self);
        Ok(())
    }

    fn backbone(&self) -> &ResNet {
        &self.backbone
    }

    fn backbone_mut(&mut self) -> &mut ResNet {
        &mut self.backbone
    }
}
