//! `ssl`: the command-line front end of ssl-train.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// Self-supervised pre-training on libtorch.
#[derive(Parser)]
#[command(name = "ssl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pre-train with the method and settings of a YAML config.
    Train {
        /// The YAML config (see crates/ssl-train/configs/).
        #[arg(long)]
        config: PathBuf,
        /// Override a key: `--set optim.lr=0.3` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train { config, overrides } => {
            let cfg = ssl_train::config::load(&config, &overrides)
                .with_context(|| format!("loading config {}", config.display()))?;
            let report = ssl_train::train(&cfg).context("training")?;
            let first = report.losses.first().copied().unwrap_or(f64::NAN);
            let tail = &report.losses[report.losses.len().saturating_sub(10)..];
            let last = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
            println!(
                "trained {} steps in {:.1} s ({:.0} images/s): loss {first:.4} -> {last:.4} \
                 (mean of the last {})",
                report.steps,
                report.seconds,
                report.images_per_second,
                tail.len()
            );
            Ok(())
        }
    }
}
