//! The interface every method trains through, and the config that picks a family.

use tch::nn::{self, ModuleT};
use tch::Tensor;

use crate::{Precision, PrecisionChoice, ResNet, ResNetConfig, Result, Vit, VitConfig};

/// A backbone f: pooled features for the heads and evaluation, a spatial map for dense
/// methods, and a switchable number format. [`ResNet`] and [`Vit`] implement it; a method holds
/// a `Box<dyn Backbone>` built by [`BackboneConfig::build`], so any method trains either family
/// (and a user's own backbone, built by hand).
///
/// # Shapes
/// `forward_t`: `[N, C, H, W]` → `[N, feature_dim()]`, f32 whatever the precision.
pub trait Backbone: ModuleT {
    /// The width F of the pooled features.
    fn feature_dim(&self) -> i64;

    /// The features before pooling, `[N, F, h, w]` in f32: a ResNet's last stage, a ViT's
    /// patch tokens on their `g × g` grid (DenseCL's dense features).
    fn feature_map_t(&self, x: &Tensor, train: bool) -> Tensor;

    /// Switches the activations' number format (weights stay f32), resolving
    /// [`Precision::Auto`] for this machine and the variables' device; returns the choice.
    fn set_precision(&mut self, precision: Precision) -> PrecisionChoice;
}

impl Backbone for ResNet {
    fn feature_dim(&self) -> i64 {
        ResNet::feature_dim(self)
    }

    fn feature_map_t(&self, x: &Tensor, train: bool) -> Tensor {
        ResNet::feature_map_t(self, x, train)
    }

    fn set_precision(&mut self, precision: Precision) -> PrecisionChoice {
        ResNet::set_precision(self, precision)
    }
}

impl Backbone for Vit {
    fn feature_dim(&self) -> i64 {
        Vit::feature_dim(self)
    }

    fn feature_map_t(&self, x: &Tensor, _train: bool) -> Tensor {
        self.feature_map(x)
    }

    fn set_precision(&mut self, precision: Precision) -> PrecisionChoice {
        Vit::set_precision(self, precision)
    }
}

/// Which backbone to build, and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum BackboneConfig {
    /// A [`ResNet`].
    ResNet(ResNetConfig),
    /// A [`Vit`].
    Vit(VitConfig),
}

impl BackboneConfig {
    /// Creates the variables under `p`, with torchvision's (ResNet) or timm's (ViT) names.
    ///
    /// # Errors
    /// [`crate::ModelError::InvalidConfig`] naming the first invalid field.
    pub fn build(&self, p: &nn::Path) -> Result<Box<dyn Backbone>> {
        Ok(match self {
            BackboneConfig::ResNet(c) => Box::new(ResNet::new(p, c)?),
            BackboneConfig::Vit(c) => Box::new(Vit::new(p, c)?),
        })
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`crate::ModelError::InvalidConfig`] naming the first invalid field.
    pub fn validate(&self) -> Result<()> {
        match self {
            BackboneConfig::ResNet(c) => c.validate(),
            BackboneConfig::Vit(c) => c.validate(),
        }
    }

    /// The channels of the images the backbone takes.
    pub fn in_channels(&self) -> i64 {
        match self {
            BackboneConfig::ResNet(c) => c.in_channels,
            BackboneConfig::Vit(c) => c.in_channels,
        }
    }

    /// The activations' number format.
    pub fn precision(&self) -> Precision {
        match self {
            BackboneConfig::ResNet(c) => c.precision,
            BackboneConfig::Vit(c) => c.precision,
        }
    }

    /// Sets the activations' number format (a run writes the one `auto` resolved to).
    pub fn set_precision(&mut self, precision: Precision) {
        match self {
            BackboneConfig::ResNet(c) => c.precision = precision,
            BackboneConfig::Vit(c) => c.precision = precision,
        }
    }
}
