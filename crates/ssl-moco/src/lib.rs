//! Momentum encoders and the negatives queue of MoCo and BYOL.
//!
//! - [`FeatureQueue`]: MoCo's FIFO dictionary of the last K keys (random unit keys at the
//!   start, as the paper's code), passed to a loss as negatives.
//! - [`MomentumEncoder`]: an EMA copy of any network (MoCo's key encoder, BYOL's target),
//!   paired with the online network by variable name, updated in two libtorch calls.
//! - [`momentum_at`]: BYOL's cosine schedule of the EMA coefficient.
//!
//! This crate never names a backbone: it works on tensors and `VarStore`s. See ARCHITECTURE.md.
//!
//! ```
//! use ssl_moco::FeatureQueue;
//! use tch::{Device, Kind, Tensor};
//!
//! let mut queue = FeatureQueue::new(4, 2, Kind::Float, Device::Cpu)?;
//! assert_eq!(queue.negatives().size(), [4, 2]); // K random unit keys from the start
//! queue.enqueue(&Tensor::ones([3, 2], (Kind::Float, Device::Cpu)))?;
//! assert_eq!((queue.real_keys(), queue.negatives().size()[0]), (3, 4));
//! # Ok::<(), ssl_moco::MocoError>(())
//! ```

mod error;
mod momentum_encoder;
mod queue;
mod schedule;

pub use error::{MocoError, Result};
pub use momentum_encoder::{BufferRule, MomentumEncoder};
pub use queue::FeatureQueue;
pub use schedule::momentum_at;
