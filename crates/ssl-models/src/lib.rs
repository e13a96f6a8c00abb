//! Backbones and heads for self-supervised learning, with torchvision's variable names.
//!
//! - [`ResNet`]: ResNet-18/34/50-style backbones with an ImageNet or CIFAR stem, configurable
//!   width, depth and input channels, returning pooled features (no classifier).
//! - [`Vit`]: ViT-Tiny / Small / Base with timm's names, any patch and image size, learnt or
//!   sin-cos positions, class-token or mean pooling.
//! - [`Backbone`]: the interface both implement and every method trains through;
//!   [`BackboneConfig`] picks the family and builds it.
//! - [`ProjectionHead`]: the MLP heads of SimCLR, MoCo v2 and BYOL.
//! - [`winograd_conv3x3`]: Winograd's F(4×4, 3×3) convolution, which [`ConvAlgorithm`] lets a
//!   ResNet use for its wide stride-1 3×3 convolutions on the CPU.
//!
//! Variable paths copy torchvision's `state_dict` keys (`layer1.0.conv1.weight`), so weights
//! exported from PyTorch load with `VarStore::load`. See ARCHITECTURE.md for the crate map.
//!
//! ```
//! use ssl_models::{ResNet, ResNetConfig};
//! use tch::{nn, nn::ModuleT, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let cfg = ResNetConfig { width: 8, in_channels: 1, ..ResNetConfig::cifar_resnet18() };
//! let net = ResNet::new(&vs.root(), &cfg)?;
//! let h = net.forward_t(&Tensor::zeros([2, 1, 28, 28], (Kind::Float, Device::Cpu)), false);
//! assert_eq!(h.size(), [2, net.feature_dim()]);
//! # Ok::<(), ssl_models::ModelError>(())
//! ```

mod backbone;
mod conv_algorithm;
mod error;
mod init;
mod precision;
mod projection_head;
mod resnet;
mod vit;
mod winograd;

pub use backbone::{Backbone, BackboneConfig};
pub use conv_algorithm::{ConvAlgorithm, AUTO_MIN_CHANNELS, AUTO_MIN_CHANNELS_FORWARD_ONLY};
pub use error::{ModelError, Result};
pub use precision::{CpuFeatures, Precision, PrecisionChoice};
pub use projection_head::{ProjectionHead, ProjectionHeadConfig};
pub use resnet::{Block, ResNet, ResNetConfig, Stem};
pub use vit::{sincos_pos_embed, Pool, PosEmbed, Vit, VitConfig};
pub use winograd::winograd_conv3x3;
