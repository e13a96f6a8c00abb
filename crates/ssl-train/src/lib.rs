//! Self-supervised methods composed from the ssl-* crates, their YAML configs and the `ssl` CLI.
//!
//! - [`Config`]: the whole run as one validated YAML document ([`config::load`]).
//! - [`Method`]: what a method tells the trainer (views, step, hooks, backbone); [`SimClr`]
//!   implements it, and so can a user's own method ([`train_with`]).
//! - [`train`]: the pre-training loop with progress, per-step metrics and the kNN monitor; its
//!   length in epochs, steps or a wall-clock budget ([`steps_within_budget`]).
//! - [`evaluate::EvalData`]: kNN and linear probe of a frozen backbone, and the baselines, on
//!   the test set or (for choosing evaluation settings) on held-out training images.
//!
//! Nothing depends on this crate; it is where the leaf crates meet. See ARCHITECTURE.md.

mod backbone_yaml;
mod budget;
mod byol;
pub mod checkpoint;
mod collapse;
pub mod config;
pub mod data_source;
mod densecl;
pub mod embed;
mod encoder;
mod error;
pub mod eval;
pub mod evaluate;
pub mod export;
pub mod finetune;
pub mod finetune_head;
pub mod init_from;
pub mod malloc;
mod method;
mod methods;
mod moco;
mod mocov3;
mod monitor;
mod online_probe;
mod online_target;
mod optim;
mod plot;
mod progress;
mod results_plot;
pub mod resume;
pub mod run_dir;
mod schedule;
mod simclr;
mod simsiam;
pub mod state;
mod supcon;
mod supervised;
mod swav;
mod trainer;
pub mod transfer;

pub use budget::{steps_within_budget, BudgetInputs};
pub use byol::{Byol, ByolConfig};
pub use collapse::CollapseStats;
pub use config::Config;
pub use densecl::{DenseCl, DenseClConfig, DenseEncoder, DenseOutput};
pub use encoder::Encoder;
pub use error::{Result, TrainError};
pub use evaluate::{set_eval_precision, Scores, Summary};
pub use method::{Batch, LrGroup, Method, StepContext, StepOutput};
pub use moco::{Moco, MocoConfig};
pub use mocov3::{MocoV3, MocoV3Config};
pub use online_probe::OnlineProbe;
pub use online_target::{OnlineTarget, TwoViewOutputs};
pub use optim::{OptimKind, Optimizer};
pub use plot::plot_curves;
pub use results_plot::{plot_results, ResultPoint};
pub use run_dir::RunDir;
pub use schedule::warmup_cosine;
pub use simclr::SimClr;
pub use simsiam::{SimSiam, SimSiamConfig};
pub use supcon::{SupConMethod, SupConMethodConfig};
pub use supervised::{Supervised, SupervisedConfig};
pub use swav::{Swav, SwavConfig};
pub use trainer::{
    build_model, held_out, load_checkpoint, train, train_with, BudgetReport, BuildMethod,
    EpochMetrics, StepMetrics, Trained,
};
