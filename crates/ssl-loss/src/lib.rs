//! Contrastive and self-supervised losses on libtorch tensors.
//!
//! Each loss is a small value built from a validated config (`XConfig::build`), whose `forward`
//! returns the mean loss as a 0-dim tensor (`f_forward` returns shape errors instead of
//! panicking). Negatives are always passed in: no loss holds a queue or a memory bank; the
//! fastest ones keep only a scratch buffer between calls. See ARCHITECTURE.md for where this
//! crate sits.
//!
//! ```
//! use ssl_loss::{NtXentConfig, PairLoss};
//! use tch::{Device, Kind, Tensor};
//!
//! let loss = NtXentConfig { temperature: 0.5, ..Default::default() }.build()?;
//! let z1 = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
//! let z2 = &z1 + 0.1 * Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
//! let value = loss.forward(&z1, &z2).double_value(&[]);
//! assert!(value > 0.0 && value < (2.0 * 8.0 - 1.0f64).ln());
//! # Ok::<(), ssl_loss::LossError>(())
//! ```

mod align_uniform;
mod clip_loss;
mod dcl;
mod debiased;
mod dense_cl_loss;
mod error;
mod hard_negative;
mod info_nce;
mod logit_scale;
mod mi_bound;
mod negative_cosine;
mod nt_xent;
mod ops;
mod pair_loss;
mod queue_tiles;
mod sig_lip_loss;
mod sup_con;
mod swav_loss;
mod symmetric_tiles;
mod tiled_nt_xent;
mod workspace;

pub use align_uniform::{alignment, uniformity};
pub use clip_loss::{ClipLoss, ClipLossConfig};
pub use dcl::{Dcl, DclConfig};
pub use debiased::{Debiased, DebiasedConfig};
pub use dense_cl_loss::{DenseClLoss, DenseClLossConfig};
pub use error::{LossError, Result};
pub use hard_negative::{HardNegative, HardNegativeConfig};
pub use info_nce::{InfoNce, InfoNceConfig};
pub use mi_bound::mi_lower_bound;
pub use negative_cosine::{CosineForm, NegativeCosine, NegativeCosineConfig, Symmetrization};
pub use nt_xent::{NtXent, NtXentConfig, DENSE_MAX_VIEWS};
pub use ops::{cosine_similarity_matrix, l2_normalize};
pub use pair_loss::PairLoss;
pub use sig_lip_loss::{SigLipLoss, SigLipLossConfig};
pub use sup_con::{SupCon, SupConConfig};
pub use swav_loss::{sinkhorn, SwavLoss, SwavLossConfig};
pub use tiled_nt_xent::{TiledNtXent, TiledNtXentConfig};
