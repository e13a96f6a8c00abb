//! SupCon: SimCLR's encoder and views, with every view of the same class a positive. Uses the
//! labels: a supervised method, read against the self-supervised ones.

use serde::{Deserialize, Serialize};
use ssl_aug::Compose;
use ssl_loss::{l2_normalize, SupCon, SupConConfig};
use ssl_models::{Backbone, ProjectionHeadConfig};
use tch::nn::VarStore;

use crate::config::ProjectionConfig;
use crate::encoder::Encoder;
use crate::method::{Batch, Method, StepContext, StepOutput};
use crate::{Config, Result, TrainError};

/// SupCon's settings (`method: {name: supcon, ...}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupConMethodConfig {
    /// The projection head g: Linear − BatchNorm − ReLU − Linear (paper: 2048 hidden, 128 out).
    pub projection: ProjectionConfig,
    /// τ (paper: 0.1; the reference code's default 0.07).
    pub loss: SupConConfig,
}

/// Supervised contrastive learning on the backbone of `model.backbone`.
///
/// Paper: Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
/// <https://arxiv.org/abs/2004.11362>, Eq. (2) (`L^sup_out`).
///
/// ```text
/// z = g(f(x̃)) for both views, labels y;  P(i) = the other views of yᵢ's class
/// L = 1/(2N) Σᵢ −1/|P(i)| Σ_{p∈P(i)} log exp(ẑᵢ·ẑ_p/τ) / Σ_{a≠i} exp(ẑᵢ·ẑ_a/τ)
/// ```
///
/// [`Method::uses_labels`] is true: the trainer passes the batch's labels, and the run's
/// output says the encoder saw them.
#[derive(Debug)]
pub struct SupConMethod {
    encoder: Encoder,
    loss: SupCon,
    views: [Compose; 2],
}

impl SupConMethod {
    /// Builds the encoder (`backbone.*`, `head.*`) under `vs`'s root.
    ///
    /// # Errors
    /// The leaf crates' config errors.
    pub fn new(vs: &VarStore, cfg: &Config, c: &SupConMethodConfig) -> Result<Self> {
        let head = ProjectionHeadConfig {
            hidden_dim: c.projection.hidden_dim,
            output_dim: c.projection.output_dim,
            ..ProjectionHeadConfig::simclr(1) // input width set by Encoder
        };
        let encoder = Encoder::new(&vs.root(), &cfg.model.backbone, &head)?;
        Ok(Self { encoder, loss: c.loss.build()?, views: cfg.two_views()? })
    }
}

impl Method for SupConMethod {
    fn views(&self) -> &[Compose] {
        &self.views
    }

    fn step(&mut self, batch: &Batch<'_>, _ctx: &StepContext) -> Result<StepOutput> {
        let labels = batch.labels.ok_or_else(|| TrainError::Invalid {
            field: "method.name".into(),
            value: "supcon".into(),
            reason: "SupCon needs the images' labels, and the batch has none".into(),
        })?;
        let views = batch.views;
        let n = views[0].size()[0];
        let both = tch::Tensor::cat(&[&views[0], &views[1]], 0); // one BN pass, as SimCLR
        let (h, z) = self.encoder.features_and_projection(&both, true); // [2N, F], [2N, D]
        let (z1, z2) = (z.narrow(0, 0, n), z.narrow(0, n, n));
        let labels = labels.to_device(z.device());
        Ok(StepOutput {
            loss: self.loss.f_forward_with_labels(&z1, &z2, &labels)?,
            embeddings: Some(l2_normalize(&z1.detach(), 1e-12)),
            features: Some(h.narrow(0, 0, n).detach()),
            logs: Vec::new(),
        })
    }

    fn uses_labels(&self) -> bool {
        true
    }

    fn backbone(&self) -> &dyn Backbone {
        self.encoder.backbone()
    }

    fn backbone_mut(&mut self) -> &mut dyn Backbone {
        self.encoder.backbone_mut()
    }
}
