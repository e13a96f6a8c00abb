//! SimCLR: two augmented views, a shared encoder and NT-Xent.

use ssl_aug::Compose;
use ssl_loss::{NtXent, PairLoss};
use ssl_models::{ProjectionHeadConfig, ResNet};
use tch::nn;
use tch::Tensor;

use crate::encoder::Encoder;
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
    encoder: Encoder,
    loss: NtXent,
    /// The two views' pipelines ([`Config::two_views`]).
    views: [Compose; 2],
}

impl SimClr {
    /// Builds the encoder's variables under `p` (`backbone.*`, `head.*`) and the loss.
    ///
    /// # Errors
    /// The leaf crates' config errors.
    pub fn new(p: &nn::Path, cfg: &Config, simclr: &SimClrConfig) -> Result<Self> {
        let head = ProjectionHeadConfig {
            hidden_dim: simclr.projection.hidden_dim,
            output_dim: simclr.projection.output_dim,
            ..ProjectionHeadConfig::simclr(1) // input width set by Encoder
        };
        let encoder = Encoder::new(p, &cfg.model.backbone, &head)?;
        let loss = simclr.loss.build_in(&(p / "loss"))?;
        Ok(Self { encoder, loss, views: cfg.two_views()? })
    }
}

impl Method for SimClr {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, views: &[Tensor], _ctx: &StepContext) -> Result<StepOutput> {
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

    fn backbone(&self) -> &ResNet {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut ResNet {
        self.encoder.backbone_mut()
    }
}
