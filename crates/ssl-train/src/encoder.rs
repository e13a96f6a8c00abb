//! The encoder every method shares: a backbone f (ResNet or ViT) and a projection head g,
//! z = g(f(x)).

use ssl_models::{Backbone, BackboneConfig, ProjectionHead, ProjectionHeadConfig};
use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::Result;

/// Backbone `backbone.*` and projection head `head.*` under one path, so a momentum copy built
/// by the same closure pairs with it by name.
#[derive(Debug)]
pub struct Encoder {
    backbone: Box<dyn Backbone>,
    head: ProjectionHead,
}

impl Encoder {
    /// Builds `p / "backbone"` from `backbone` and `p / "head"` from `head`, whose
    /// `input_dim` is replaced by the backbone's feature dimension.
    ///
    /// # Errors
    /// The backbone's or the head's config errors.
    pub fn new(
        p: &nn::Path,
        backbone: &BackboneConfig,
        head: &ProjectionHeadConfig,
    ) -> Result<Self> {
        let backbone = backbone.build(&(p / "backbone"))?;
        let head_cfg = ProjectionHeadConfig { input_dim: backbone.feature_dim(), ..*head };
        let head = ProjectionHead::new(&(p / "head"), &head_cfg)?;
        Ok(Self { backbone, head })
    }

    /// The backbone f.
    pub fn backbone(&self) -> &dyn Backbone {
        &*self.backbone
    }

    /// The backbone, to switch its precision.
    pub fn backbone_mut(&mut self) -> &mut dyn Backbone {
        &mut *self.backbone
    }

    /// The pooled features h = f(x) and the projection z = g(h).
    pub fn features_and_projection(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let h = self.backbone.forward_t(x, train); // [N, F]
        let z = self.head.forward_t(&h, train); // [N, D]
        (h, z)
    }
}

impl ModuleT for Encoder {
    /// z = g(f(x)): `[N, C, H, W]` → `[N, D]`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.features_and_projection(x, train).1
    }
}
