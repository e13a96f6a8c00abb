//! `cargo xtask`: set-up, the main job, tests and CI checks for the ssl-rs workspace.
//!
//! Every command except `tidy` first runs [`setup::run`], which is idempotent: it finds or
//! installs libtorch (PyTorch 2.11.0 from PyPI), installs Fashion-MNIST and writes the git-ignored
//! `.cargo/libtorch.toml` so that plain `cargo build` / `cargo test` work afterwards.

mod bench_aug;
mod bench_loss;
mod bench_methods;
mod bench_models;
mod bench_report;
mod ci;
mod dataset;
mod digits;
mod fuzz;
mod libtorch;
mod setup;
mod shell;
mod tidy;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

/// Set-up, tests and benchmarks for ssl-rs.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Find or install libtorch and Fashion-MNIST and write `.cargo/libtorch.toml`.
    Setup(SetupArgs),
    /// Set up, then run the main job (SimCLR pre-training on Fashion-MNIST, then evaluation),
    /// or any config as the main job runs it.
    Run {
        #[command(flatten)]
        setup: SetupArgs,
        /// The config to run (default: crates/ssl-train/configs/simclr-fmnist.yaml), for
        /// example crates/ssl-train/configs/byol-fmnist.yaml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Extra arguments passed to `ssl train` (for example `--set train.max_steps=20`).
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Set up, then run every test in the workspace (`cargo test --workspace`).
    Test {
        #[command(flatten)]
        setup: SetupArgs,
        /// Extra arguments passed to `cargo test`.
        #[arg(last = true)]
        extra: Vec<String>,
    },
    /// Set up, then run fmt --check, clippy -D warnings, the tests and rustdoc -D warnings.
    Ci(SetupArgs),
    /// Set up, then time every loss (forward + backward) next to PyTorch eager and the GEMM
    /// floor; writes target/bench/loss.json and the table in docs/benchmarks.md (~15 min).
    BenchLoss(SetupArgs),
    /// Set up, then time the SimCLR two-view augmentations next to torchvision v2 and kornia
    /// (installed into the venv); writes target/bench/aug.json and the table in
    /// docs/benchmarks.md (~2 min).
    BenchAug(SetupArgs),
    /// Set up, then time one training step of SimCLR, MoCo v2, BYOL and SimSiam next to
    /// PyTorch eager; writes target/bench/methods.json and the table in docs/benchmarks.md.
    BenchMethods(SetupArgs),
    /// Set up, then time a training step of ResNet-18 (CIFAR stem, 32 px) and ViT-Tiny/4 at
    /// batch 256 next to PyTorch eager (torchvision's resnet18); writes
    /// target/bench/models.json and the table in docs/benchmarks.md (~10 min on 2 cores)
    BenchModels(SetupArgs),
    /// Set up, then run each fuzz target of `fuzz/` (IDX, CIFAR, STL-10, image folder,
    /// config) for `--seconds` with libFuzzer (nightly and cargo-fuzz needed).
    Fuzz {
        #[command(flatten)]
        setup: SetupArgs,
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Only this target.
        #[arg(long)]
        target: Option<String>,
    },
    /// Check the crate dependency direction, that every .rs file opens with `//!`, and that
    /// ARCHITECTURE.md's codemap names only files that exist.
    Tidy,
}

/// Where set-up takes libtorch and the data from.
#[derive(Args, Clone, Debug, Default)]
pub(crate) struct SetupArgs {
    /// A libtorch directory (holding `lib/` and `include/`) to use instead of the cached venv;
    /// `$LIBTORCH` does the same.
    #[arg(long, value_name = "DIR")]
    pub(crate) libtorch: Option<PathBuf>,
    /// A python whose `import torch` is PyTorch 2.11.0, to use instead of the cached venv;
    /// `$SSL_RS_PYTHON` does the same.
    #[arg(long, value_name = "PYTHON")]
    pub(crate) python: Option<PathBuf>,
    /// The Fashion-MNIST directory (IDX files, gzip); `$SSL_RS_DATA_DIR` does the same.
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Setup(args) => setup::run(&args).map(|_| ()),
        Command::Run { setup, config, extra } => {
            let env = setup::run(&setup)?;
            ci::main_job(&env, config.as_deref(), &extra)
        }
        Command::Test { setup, extra } => {
            setup::run(&setup)?;
            ci::test(&extra)
        }
        Command::Ci(args) => {
            setup::run(&args)?;
            ci::all()
        }
        Command::BenchLoss(args) => {
            let env = setup::run(&args)?;
            bench_loss::run(&env)
        }
        Command::BenchAug(args) => {
            let env = setup::run(&args)?;
            bench_aug::run(&env)
        }
        Command::BenchModels(args) => {
            let env = setup::run(&args)?;
            bench_models::run(&env)
        }
        Command::BenchMethods(args) => {
            let env = setup::run(&args)?;
            bench_methods::run(&env)
        }
        Command::Fuzz { setup, seconds, target } => {
            let env = setup::run(&setup)?;
            fuzz::run(&env, seconds, target.as_deref())
        }
        Command::Tidy => tidy::check(&shell::workspace_root()),
    }
}
