//! `cargo xtask bench-aug`: source images per second of the SimCLR two-view pipeline, ours
//! next to torchvision.transforms.v2 and kornia.augmentation in one run; writes
//! `target/bench/aug.json` and the table in docs/benchmarks.md.
//!
//! Ours: criterion (`cargo bench -p ssl-bench --bench aug`), median of a step that turns a
//! uint8 batch into two float views. The others: `benches/reference/aug_bench.py` with the
//! set-up venv's python, into which this command installs torchvision and kornia (pinned to
//! the releases that match PyTorch 2.11.0) when they are missing. Both sides run under the
//! same glibc heap setting and libtorch's default threads; torchvision's DataLoader workers
//! are its own two processes, as a training script runs them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench_report::{cell, criterion_ms, json_lines, publish, ratio, HEAP_KEPT};
use crate::setup::Env;
use crate::shell::{self, cargo, workspace_root};

/// torchvision's release for PyTorch 2.11.0.
const TORCHVISION: &str = "torchvision==0.26.0";
/// kornia's release the reference is written against.
const KORNIA: &str = "kornia==0.9.0";

pub(crate) fn run(env: &Env) -> Result<()> {
    let python = env.libtorch.python.clone().context(
        "bench-aug needs a python with PyTorch for the reference: run set-up with its venv \
         or pass --python",
    )?;
    let root = workspace_root();
    shell::step("bench-aug: torchvision and kornia", || ensure_references(&python))?;
    shell::step("bench-aug: criterion", || {
        shell::run(
            cargo()
                .args(["bench", "-p", "ssl-bench", "--bench", "aug"])
                .env("GLIBC_TUNABLES", HEAP_KEPT),
        )
    })?;
    let reference = shell::step("bench-aug: torchvision and kornia timings", || {
        let mut cmd = Command::new(&python);
        cmd.arg(root.join("benches/reference/aug_bench.py")).current_dir(&root);
        json_lines(cmd.env("GLIBC_TUNABLES", HEAP_KEPT))
    })?;
    let rows = merge(&root.join("target/criterion"), &reference)?;
    publish(&root, "aug", &rows, &table(&rows))
}

/// Installs torchvision and kornia into the venv of `python` unless both import already.
fn ensure_references(python: &Path) -> Result<()> {
    let probe = Command::new(python).args(["-c", "import torchvision, kornia"]).output();
    if probe.is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    shell::run(Command::new(python).args(["-m", "pip", "install", TORCHVISION, KORNIA]))
}

/// (pipeline, size, device) of a reference row.
type Key = (String, i64, String);

fn key_of(v: &Value) -> Result<Key> {
    let s = |f: &str| v[f].as_str().map(str::to_owned).with_context(|| format!("{v}: no {f}"));
    Ok((s("pipeline")?, v["size"].as_i64().context("size")?, s("device")?))
}

/// One row per (pipeline, size, device) the reference ran, with ours from criterion.
fn merge(criterion: &Path, reference: &[Value]) -> Result<Vec<Value>> {
    let mut rows: BTreeMap<Key, Value> = BTreeMap::new();
    for v in reference {
        let key = key_of(v)?;
        let batch = v["batch"].as_f64().context("batch")?;
        let row = rows.entry(key.clone()).or_insert_with(|| {
            json!({"pipeline": key.0, "size": key.1, "device": key.2, "ours_img_s": null,
                   "torchvision_img_s": null, "kornia_img_s": null})
        });
        for field in ["torchvision_img_s", "kornia_img_s"] {
            if !v[field].is_null() {
                row[field] = v[field].clone();
            }
        }
        let dir = criterion.join(format!("{}_aug", key.2)).join(&key.0).join(key.1.to_string());
        if let Some(ms) = criterion_ms(&dir)? {
            row["ours_img_s"] = json!(batch / ms * 1e3);
        }
    }
    Ok(rows.into_values().collect())
}

/// The markdown table of the rows, with the ratios the bar is stated in.
fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| pipeline | size | device | ours (img/s) | torchvision v2 (img/s) | kornia (img/s) \
         | ours / torchvision | ours / kornia |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["pipeline"].as_str().unwrap_or("?"),
            r["size"],
            r["device"].as_str().unwrap_or("?"),
            cell(&r["ours_img_s"], 0),
            cell(&r["torchvision_img_s"], 0),
            cell(&r["kornia_img_s"], 0),
            ratio(&r["ours_img_s"], &r["torchvision_img_s"]),
            ratio(&r["ours_img_s"], &r["kornia_img_s"]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_join_the_reference_with_criterion_medians_as_images_per_second() {
        let dir = std::env::temp_dir().join(format!("xtask-aug-{}", std::process::id()));
        let est = dir.join("cpu_aug/simclr/32/new");
        std::fs::create_dir_all(&est).unwrap();
        let median = json!({"median": {"point_estimate": 25e6}}); // 25 ms
        std::fs::write(est.join("estimates.json"), median.to_string()).unwrap();
        let reference = [
            json!({"pipeline": "simclr", "size": 32, "batch": 512, "device": "cpu", "torchvision_img_s": 1600.0}),
            json!({"pipeline": "simclr", "size": 32, "batch": 512, "device": "cpu", "kornia_img_s": 5000.0}),
        ];
        let rows = merge(&dir, &reference).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["ours_img_s"], 512.0 / 25.0 * 1e3);
        let t = table(&rows);
        assert!(t.contains("| simclr | 32 | cpu | 20480 | 1600 | 5000 | 12.80 | 4.10 |"), "{t}");
    }
}
