//! `ssl plot-results`: the results table's plot from the runs' `summary.json` files (part of
//! the `ssl` binary).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ssl_train::{plot_results, ResultPoint, Summary};

/// Reads `<run>/summary.json` of every run and draws `out`.
pub(crate) fn run(runs: &[PathBuf], out: &Path) -> Result<()> {
    let mut points = Vec::with_capacity(runs.len());
    for run in runs {
        let path = run.join("summary.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let s: Summary =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        // Summaries written before `method` existed were SimCLR's, named by their run directory.
        let name = run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let label = if s.method.is_empty() {
            name.split("-fmnist").next().unwrap_or(&name).to_owned()
        } else {
            s.method.clone()
        };
        points.push(ResultPoint {
            label,
            minutes: (s.train_seconds + s.eval_seconds) / 60.0,
            linear_top1: s.linear_top1,
            uses_labels: s.labels_in_pretraining,
        });
        if s.validation {
            eprintln!(
                "warning: {} scored held-out training images, not the test set",
                path.display()
            );
        }
    }
    plot_results(out, &points)?;
    println!("plot: {} ({} runs)", out.display(), points.len());
    Ok(())
}
