//! Batched, per-sample-random image augmentations on libtorch tensors, on CPU and CUDA alike.
//!
//! Every op follows the two-phase design of kornia: [`BatchAug::sample`] draws per-sample
//! parameters on the CPU from a seeded [`AugRng`] (the only random step; libtorch's global
//! generator is never used), and [`BatchAug::apply`] applies them to a whole `[N, C, H, W]` batch
//! in one vectorised call. The same parameters replay the same output. See ARCHITECTURE.md.
//!
//! ```
//! use ssl_aug::{aug_rng, Aug, HorizontalFlipConfig};
//! use tch::{Device, Kind, Tensor};
//!
//! let flip = HorizontalFlipConfig { p: 0.5 }.build()?;
//! let x = Tensor::rand([8, 1, 4, 4], (Kind::Float, Device::Cpu));
//! let a = flip.forward(&x, &mut aug_rng(7, &[0, 0]));
//! let b = flip.forward(&x, &mut aug_rng(7, &[0, 0]));
//! assert!(a.equal(&b)); // same seed, same views
//! # Ok::<(), ssl_aug::AugError>(())
//! ```

mod antialias;
mod aug;
mod chunk_plan;
mod color_jitter;
mod compose;
mod crop_flip;
mod equalize;
mod error;
mod flip;
mod gaussian_blur;
mod grayscale;
mod hsv;
mod mask;
mod normalize;
mod pipeline;
mod point_cloud;
mod presets;
mod resize;
mod resized_crop;
mod rng;
mod solarize;
mod to_float;
mod vertical_flip;
mod video_clip;

pub use aug::{Aug, BatchAug, BatchParams, ErasedParams};
pub use color_jitter::{ColorJitter, ColorJitterConfig, JitterParams};
pub use compose::Compose;
pub use equalize::{RandomEqualize, RandomEqualizeConfig};
pub use error::{AugError, Result};
pub use flip::{FlipParams, HorizontalFlip, HorizontalFlipConfig};
pub use gaussian_blur::{BlurParams, GaussianBlur, GaussianBlurConfig};
pub use grayscale::{RandomGrayscale, RandomGrayscaleConfig};
pub use normalize::{Normalize, NormalizeConfig};
pub use pipeline::{build_pipeline, OpConfig, ViewConfig};
pub use point_cloud::{PointCloudAug, PointCloudAugConfig, PointCloudParams, Rotation};
pub use presets::{blur_kernel, MultiCrop, MultiCropConfig, ViewPair};
pub use resize::{Resize, ResizeConfig};
pub use resized_crop::{CropParams, RandomResizedCrop, RandomResizedCropConfig};
pub use rng::{aug_rng, splitmix64, AugRng, SPLITMIX64_GAMMA};
pub use solarize::{RandomSolarize, RandomSolarizeConfig};
pub use to_float::ToFloat;
pub use vertical_flip::{VerticalFlip, VerticalFlipConfig};
pub use video_clip::{VideoClips, VideoClipsConfig};
