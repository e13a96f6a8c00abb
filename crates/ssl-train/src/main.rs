//! `ssl`: the command-line front end of ssl-train.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ssl_train::evaluate::EvalData;
use ssl_train::export::ExportFormat;
use ssl_train::run_dir::checkpoint_config;
use ssl_train::{
    build_model, config, load_checkpoint, set_eval_precision, RunDir, Scores, Summary,
};
use tch::Device;

mod finetune_cmd;
mod results_cmd;
mod transfer_cmd;

/// Self-supervised pre-training on libtorch.
#[derive(Parser)]
#[command(name = "ssl", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Pre-train with a YAML config, then evaluate the frozen backbone and the baselines.
    Train {
        /// The YAML config (see crates/ssl-train/configs/).
        #[arg(long, required_unless_present = "resume")]
        config: Option<PathBuf>,
        /// Continue the run in this directory from its newest good checkpoint (with its own
        /// config.yaml), then evaluate as a finished run does.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "overrides", "run_dir", "validation", "init_from"])]
        resume: Option<PathBuf>,
        /// Override a key: `--set optim.lr=0.3` (repeatable; the key must exist).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// The run directory (default: `runs/{config name}-{unix time}`).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Hold out the last `eval.linear.val_fraction` of the training images from
        /// pre-training and score on them; the test set is not read (`eval.validation=true`).
        #[arg(long)]
        validation: bool,
        /// Start every backbone (momentum copies included) from a torchvision / timm
        /// `state_dict` in safetensors, e.g. one `ssl export` wrote (`model.init_from`).
        #[arg(long, value_name = "PATH")]
        init_from: Option<PathBuf>,
    },
    /// Evaluate a checkpoint (kNN-200 and linear probe) with the config saved beside it.
    Eval {
        /// A `checkpoint.safetensors` written by `ssl train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Override a key of the saved config, e.g. `--set eval.linear.epochs=10`; keys that
        /// shape the model must match the checkpoint.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Score on the last `eval.linear.val_fraction` of the training images instead of the
        /// test set, to choose evaluation settings (such as `eval.resize`) without the test set.
        #[arg(long)]
        validation: bool,
    },
    /// Fine-tune a checkpoint on labels (backbone at 0.1× the classifier's learning rate,
    /// the rate chosen on held-out labelled images) and report its top-1 beside the frozen
    /// linear probe of the same checkpoint.
    Finetune {
        /// A `checkpoint.safetensors` written by `ssl train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The fraction of the training labels, drawn class by class (SimCLR's 0.01 / 0.1).
        #[arg(long, default_value_t = 1.0)]
        label_fraction: f64,
        /// Passes over the labelled images.
        #[arg(long, default_value_t = 10)]
        epochs: u64,
        /// Candidate peak learning rates of the classifier (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.3])]
        lrs: Vec<f64>,
        /// Override a key of the saved config.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Score on the held-out training images instead of the test set.
        #[arg(long)]
        validation: bool,
    },
    /// Transfer: kNN and linear probe of a checkpoint's frozen backbone on scikit-learn's 8 × 8
    /// handwritten digits, beside random-init and raw-pixel baselines.
    Transfer {
        /// A `checkpoint.safetensors` written by `ssl train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// `digits.csv.gz` (default: `$SSL_RS_DIGITS`, else `cargo xtask setup`'s copy).
        #[arg(long)]
        digits: Option<PathBuf>,
        /// Override a key of the saved config.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Write a checkpoint's frozen backbone features (and the labels) of a Fashion-MNIST split
    /// to a safetensors file (`features` `[N, F]` f32, `labels` `[N]` int64), as evaluation
    /// sees them.
    Embed {
        /// A `checkpoint.safetensors` written by `ssl train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The split of the run's `data.dir`.
        #[arg(long, value_enum, default_value = "test")]
        split: SplitArg,
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
        /// Override a key of the saved config.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Write a checkpoint's backbone alone under torchvision's `state_dict` names (timm's
    /// ResNets share them), `num_batches_tracked` included, for PyTorch users.
    Export {
        /// A `checkpoint.safetensors` written by `ssl train`.
        #[arg(long)]
        checkpoint: PathBuf,
        /// The safetensors file to write.
        #[arg(long)]
        out: PathBuf,
        /// Whose names: torchvision (ResNets) or timm (ResNets and ViTs); default torchvision
        /// for a ResNet, timm for a ViT.
        #[arg(long, value_enum)]
        format: Option<ExportFormat>,
    },
    /// Plot linear top-1 against wall time for run directories (their `summary.json`).
    PlotResults {
        /// Run directories, one point each (repeatable).
        #[arg(long = "run", required = true)]
        runs: Vec<PathBuf>,
        /// The PNG to write.
        #[arg(long, default_value = "docs/results.png")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    ssl_train::malloc::keep_freed_memory();
    match Cli::parse().command {
        Command::Train { config, resume, mut overrides, run_dir, validation, init_from } => {
            if let Some(dir) = resume {
                let (trained, run) = ssl_train::resume::resume(&dir)
                    .with_context(|| format!("resuming {}", dir.display()))?;
                return evaluate_run(trained, &run);
            }
            let config = config.expect("clap requires --config without --resume");
            if validation {
                overrides.push("eval.validation=true".into());
            }
            if let Some(path) = init_from {
                let path = std::fs::canonicalize(&path)
                    .with_context(|| format!("--init-from {}", path.display()))?;
                overrides.push(format!("model.init_from={}", path.display()));
            }
            train(&config, &overrides, run_dir)
        }
        Command::Eval { checkpoint, overrides, validation } => {
            eval(&checkpoint, &overrides, validation)
        }
        Command::Finetune { checkpoint, label_fraction, epochs, lrs, overrides, validation } => {
            let settings = ssl_train::finetune::FinetuneSettings {
                label_fraction,
                epochs,
                lrs,
                ..Default::default()
            };
            finetune_cmd::run(&checkpoint, &overrides, validation, &settings)
        }
        Command::Transfer { checkpoint, digits, overrides } => {
            transfer_cmd::run(&checkpoint, &overrides, digits)
        }
        Command::Embed { checkpoint, split, out, overrides } => {
            embed(&checkpoint, split, &out, &overrides)
        }
        Command::Export { checkpoint, out, format } => {
            let n = ssl_train::export::export_backbone(&checkpoint, &out, format)
                .with_context(|| format!("exporting {}", checkpoint.display()))?;
            println!("{n} backbone tensors (no classifier): {}", out.display());
            Ok(())
        }
        Command::PlotResults { runs, out } => results_cmd::run(&runs, &out),
    }
}

/// A split of a dataset on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum SplitArg {
    Train,
    Test,
}

fn embed(checkpoint: &Path, split: SplitArg, out: &Path, overrides: &[String]) -> Result<()> {
    let split = match split {
        SplitArg::Train => ssl_data::Split::Train,
        SplitArg::Test => ssl_data::Split::Test,
    };
    let device = tch::Device::cuda_if_available();
    let e = ssl_train::embed::embed_checkpoint(checkpoint, overrides, split, device)
        .with_context(|| format!("embedding with {}", checkpoint.display()))?;
    e.write(out)?;
    println!("features {:?}, labels {}: {}", e.features.size(), e.labels.is_some(), out.display());
    Ok(())
}

fn train(config_path: &Path, overrides: &[String], run_dir: Option<PathBuf>) -> Result<()> {
    let cfg = config::load(config_path, overrides)
        .with_context(|| format!("loading config {}", config_path.display()))?;
    let run_dir = run_dir.unwrap_or_else(|| {
        let name = config_path.file_stem().unwrap_or_default().to_string_lossy();
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from("runs").join(format!("{name}-{secs}"))
    });
    let run = RunDir::create(&run_dir, &cfg)?;
    println!("run directory: {}", run.path().display());
    let trained = ssl_train::train(&cfg, Some(&run)).context("training")?;
    evaluate_run(trained, &run)
}

/// Scores a trained run (and the baselines), writes `summary.json` and `curves.png` into its
/// directory and prints the table.
fn evaluate_run(mut trained: ssl_train::Trained, run: &RunDir) -> Result<()> {
    let device = Device::cuda_if_available();
    let cfg = trained.config.clone();
    println!(
        "trained {} steps in {:.1} s ({:.0} images/s)",
        trained.losses.len(),
        trained.seconds,
        trained.images_per_second
    );

    let eval_start = Instant::now();
    let why = set_eval_precision(trained.model.as_mut(), &cfg);
    println!("evaluation precision: {why}");
    let data = EvalData::load(&cfg)?;
    let ours = data.score_network(trained.model.backbone(), &cfg, device);
    let (random, raw) = if cfg.eval.baselines {
        let (_vs, mut fresh) = build_model(&cfg, device)?;
        set_eval_precision(fresh.as_mut(), &cfg);
        (Some(data.score_network(fresh.backbone(), &cfg, device)), Some(data.score_pixels(&cfg)))
    } else {
        (None, None)
    };
    let mut eval_row_seconds = vec![(cfg.method.name().to_string(), ours.seconds)];
    if let (Some(r), Some(p)) = (&random, &raw) {
        eval_row_seconds.push(("random_init".into(), r.seconds));
        eval_row_seconds.push(("raw_pixels".into(), p.seconds));
    }
    let last = trained.epochs.last();
    let summary = Summary {
        method: cfg.method.name().to_owned(),
        labels_in_pretraining: trained.model.uses_labels(),
        knn_top1: ours.knn_top1,
        linear_top1: ours.linear_top1,
        online_linear_top1: last.and_then(|e| e.online_linear),
        embedding_std: last.and_then(|e| e.embedding_std),
        rankme: last.and_then(|e| e.rankme),
        random_init_knn_top1: random.as_ref().map(|s| s.knn_top1),
        random_init_linear_top1: random.as_ref().map(|s| s.linear_top1),
        raw_pixel_knn_top1: raw.as_ref().map(|s| s.knn_top1),
        raw_pixel_linear_top1: raw.as_ref().map(|s| s.linear_top1),
        validation: cfg.eval.validation,
        precision: trained.precision_reason.clone(),
        eval_precision: why,
        budget: trained.budget.clone(),
        knn_monitor_before: trained.knn_monitor_before,
        train_seconds: trained.seconds,
        images_per_second: trained.images_per_second,
        data_wait_seconds: trained.data_wait_seconds,
        eval_seconds: eval_start.elapsed().as_secs_f64(),
        eval_row_seconds,
        peak_rss_mib: ssl_train::evaluate::peak_rss_mib(),
        skipped_steps: trained.skipped_steps,
        skipped_files: trained.skipped_files.clone(),
        epochs: trained.epochs.clone(),
        steps: trained.losses.len() as u64,
        linear: ours.linear.clone(),
    };
    let summary_path = run.write_json("summary.json", &summary)?;
    let plot_path = run.path().join("curves.png");
    match ssl_train::plot_curves(&plot_path, &trained.losses, &trained.epochs) {
        Ok(()) => println!("curves: {}", plot_path.display()),
        Err(e) => eprintln!("warning: no plot: {e}"),
    }
    print_table(cfg.method.title(), &ours, random.as_ref(), raw.as_ref(), &summary);
    println!("summary: {}", summary_path.display());
    Ok(())
}

fn eval(checkpoint: &Path, overrides: &[String], validation: bool) -> Result<()> {
    let cfg = checkpoint_config(checkpoint, overrides)
        .with_context(|| format!("loading the config of {}", checkpoint.display()))?;
    let device = Device::cuda_if_available();
    let (_vs, mut model) = load_checkpoint(checkpoint, &cfg, device)?;
    let why = set_eval_precision(model.as_mut(), &cfg);
    println!("evaluation precision: {why}");
    let mut data = EvalData::load(&cfg)?;
    if validation && !cfg.eval.validation {
        data = data.validation(cfg.eval.linear.val_fraction);
    }
    let validation = validation || cfg.eval.validation;
    let scores = data.score_network(model.backbone(), &cfg, device);
    let (bank, queries) = data.sizes();
    let on = if validation { "held-out training images" } else { "test images" };
    println!(
        "{}: kNN-200 top-1 {:.2} %, linear top-1 {:.2} % on {queries} {on} ({bank} as memory; \
         lr {}, weight decay {} chosen on a held-out part of those)",
        checkpoint.display(),
        scores.knn_top1 * 100.0,
        scores.linear_top1 * 100.0,
        scores.linear.lr,
        scores.linear.weight_decay
    );
    Ok(())
}

fn print_table(
    title: &str,
    ours: &Scores,
    random: Option<&Scores>,
    raw: Option<&Scores>,
    s: &Summary,
) {
    let pct = |v: f64| format!("{:>6.2} %", v * 100.0);
    println!();
    println!("| representation        | kNN-200 top-1 | linear top-1 | eval time |");
    println!("|-----------------------|---------------|--------------|-----------|");
    let row = |name: &str, sc: &Scores| {
        println!(
            "| {name:<21} | {:>13} | {:>12} | {:>7.1} s |",
            pct(sc.knn_top1),
            pct(sc.linear_top1),
            sc.seconds
        );
    };
    if s.validation {
        println!("(scored on held-out training images, not the test set)");
    }
    row(&format!("{title} (ours)"), ours);
    if let Some(r) = random {
        row("random init (floor)", r);
    }
    if let Some(r) = raw {
        row("raw pixels (baseline)", r);
    }
    println!();
    println!(
        "pre-training: {:.1} s, {:.0} images/s, {} steps, {:.1} s waiting for data; evaluation: {:.1} s",
        s.train_seconds, s.images_per_second, s.steps, s.data_wait_seconds, s.eval_seconds
    );
    if let Some(mib) = s.peak_rss_mib {
        println!("peak memory (resident): {mib:.0} MiB");
    }
    if let (Some(acc), Some(std), Some(rank)) = (s.online_linear_top1, s.embedding_std, s.rankme) {
        println!(
            "last epoch: online linear {:.2} % (held-out images), embedding std {std:.4}, RankMe {rank:.1}",
            acc * 100.0
        );
    }
    let labels = if s.labels_in_pretraining {
        "this method trained the encoder on the labels: a supervised row, not self-supervised"
    } else {
        "no label reached the encoder in pre-training (the online probe reads them on detached \
         features)"
    };
    println!(
        "linear probe: lr and weight decay chosen on a held-out 10 % of the training set, never \
         on the test set; {labels}"
    );
}
