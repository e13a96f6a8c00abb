//! Self-supervised methods composed from the ssl-* crates, their YAML configs and the `ssl` CLI.
//!
//! - [`Config`]: the whole run as one validated YAML document ([`config::load`]).
//! - [`SimClr`]: SimCLR's encoder (ResNet + projection head), views and NT-Xent step.
//! - [`train`]: the pre-training loop with progress and per-step metrics.
//!
//! Nothing depends on this crate; it is where the leaf crates meet. See ARCHITECTURE.md.

pub mod config;
mod error;
mod simclr;
mod trainer;

pub use config::Config;
pub use error::{Result, TrainError};
pub use simclr::SimClr;
pub use trainer::{train, TrainReport};
