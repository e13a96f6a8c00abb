//! `ssl transfer`: a checkpoint's frozen backbone on scikit-learn's handwritten digits, beside
//! the random-init and raw-pixel baselines (part of the `ssl` binary).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ssl_data::Digits;
use ssl_train::run_dir::checkpoint_config;
use ssl_train::transfer::{TransferData, TRANSFER_KNN_K};
use ssl_train::{build_model, load_checkpoint, set_eval_precision, Scores};
use tch::Device;

/// `--digits`, else `$SSL_RS_DIGITS`, else where `cargo xtask setup` puts the file.
fn digits_path(given: Option<PathBuf>) -> PathBuf {
    given.or_else(|| std::env::var_os("SSL_RS_DIGITS").map(PathBuf::from)).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").unwrap_or_default();
        Path::new(&home).join(".cache/ssl-rs/digits/digits.csv.gz")
    })
}

/// Scores the checkpoint, a random init and raw pixels on the digits; writes `transfer.json`
/// into the run directory.
pub(crate) fn run(checkpoint: &Path, overrides: &[String], digits: Option<PathBuf>) -> Result<()> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let cfg = checkpoint_config(checkpoint, overrides)
        .with_context(|| format!("loading the config of {}", checkpoint.display()))?;
    let path = digits_path(digits);
    let digits = Digits::read(&path).with_context(|| {
        "the digits come from `cargo xtask setup` (scikit-learn's digits.csv.gz); or pass --digits"
    })?;
    let data = TransferData::new(&digits);
    let device = Device::cuda_if_available();
    let (_vs, mut model) = load_checkpoint(checkpoint, &cfg, device)?;
    println!("evaluation precision: {}", set_eval_precision(model.as_mut(), &cfg));
    let ours = data.score_network(model.backbone(), &cfg, device)?;
    let (_vs, mut random) = build_model(&cfg, device)?; // the same seed: the untrained network
    set_eval_precision(random.as_mut(), &cfg);
    let random = data.score_network(random.backbone(), &cfg, device)?;
    let raw = data.score_pixels(&cfg);
    let (bank, queries) = data.sizes();
    println!(
        "transfer to {} ({bank} memory / probe-training images, {queries} queries; kNN with \
         k = {TRANSFER_KNN_K}):",
        path.display()
    );
    println!("| representation        | kNN-{TRANSFER_KNN_K} top-1 | linear top-1 |");
    println!("|-----------------------|--------------|--------------|");
    let row = |name: &str, s: &Scores| {
        println!(
            "| {name:<21} | {:>10.2} % | {:>10.2} % |",
            s.knn_top1 * 100.0,
            s.linear_top1 * 100.0
        );
    };
    row(&format!("{} (ours)", cfg.method.title()), &ours);
    row("random init (floor)", &random);
    row("raw pixels (baseline)", &raw);
    let out = dir.join("transfer.json");
    let json = serde_json::json!({
        "dataset": path.display().to_string(),
        "memory_images": bank,
        "query_images": queries,
        "knn_k": TRANSFER_KNN_K,
        "ours": ours,
        "random_init": random,
        "raw_pixels": raw,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("report: {}", out.display());
    Ok(())
}
