//! `cargo xtask bench-models`: one training step (forward + backward) of ResNet-18 (CIFAR
//! stem, 32 × 32) and ViT-Tiny/4 (32 × 32) at batch 256, ours next to PyTorch eager in one
//! run; writes `target/bench/models.json` and the table in docs/benchmarks.md.
//!
//! Ours: `crates/ssl-models/examples/model_step.rs` in the dev profile the trainer runs in;
//! PyTorch: `benches/reference/model_step.py` (torchvision's `resnet18`, a timm-layout ViT) with
//! the set-up venv's python. Both under the same glibc heap setting and libtorch's default
//! threads, alternating [`ROUNDS`] times; each figure is the median over the rounds. bf16 rows
//! appear only where bf16 is native (CUDA, AVX512-BF16 or AMX CPUs); ResNet-50 at 224 px only
//! on CUDA, where the reference and ours add it.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench_report::{cell, example_and_reference_rounds, median, publish, ratio};
use crate::setup::Env;
use crate::shell::workspace_root;

/// Rounds of both sides, alternating.
const ROUNDS: usize = 5;
/// What identifies a row.
const KEY: [&str; 6] = ["model", "size", "batch", "precision", "layout", "device"];

pub(crate) fn run(env: &Env) -> Result<()> {
    let python = env.libtorch.python.clone().context(
        "bench-models needs a python with PyTorch and torchvision for the reference: run set-up \
         with its venv or pass --python",
    )?;
    let example = ("ssl-models", "model_step");
    let script = "benches/reference/model_step.py";
    let rounds = example_and_reference_rounds("bench-models", ROUNDS, example, &python, script)?
        .iter()
        .map(|(ours, reference)| merge(ours, reference))
        .collect::<Result<Vec<_>>>()?;
    let rows = medians(&rounds)?;
    publish(&workspace_root(), "models", &rows, &table(&rows))
}

fn key_of(v: &Value) -> String {
    KEY.iter().map(|k| v[*k].to_string()).collect::<Vec<_>>().join("/")
}

/// One row per (model, size, batch, precision, layout, device), both sides' figures.
fn merge(ours: &[Value], reference: &[Value]) -> Result<BTreeMap<String, Value>> {
    let mut rows = BTreeMap::new();
    for v in ours.iter().chain(reference) {
        v["model"].as_str().context("a row without `model`")?;
        let row = rows.entry(key_of(v)).or_insert_with(|| {
            let mut r = json!({});
            for k in KEY {
                r[k] = v[k].clone();
            }
            r
        });
        for f in ["ours_img_s", "pytorch_img_s"] {
            if !v[f].is_null() {
                row[f] = v[f].clone();
            }
        }
    }
    Ok(rows)
}

/// Every figure the median of its rounds, rows in the first round's order.
fn medians(rounds: &[BTreeMap<String, Value>]) -> Result<Vec<Value>> {
    let first = rounds.first().context("no round ran")?;
    let mut rows = Vec::new();
    for (key, row) in first {
        let mut out = row.clone();
        for f in ["ours_img_s", "pytorch_img_s"] {
            out[f] = median(rounds.iter().filter_map(|r| r.get(key)?[f].as_f64()).collect());
        }
        // Each round's two sides ran minutes apart at most: their ratio is the machine's
        // drift-free comparison, and its spread over the rounds is the noise.
        let each = rounds.iter().filter_map(|r| {
            let r = r.get(key)?;
            Some(r["ours_img_s"].as_f64()? / r["pytorch_img_s"].as_f64()?)
        });
        out["round_ratios"] = json!(each.collect::<Vec<f64>>());
        rows.push(out);
    }
    Ok(rows)
}

/// The markdown table, with the ratio the bar is stated in.
fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| model | size | batch | precision | layout | device | ours (img/s) | PyTorch (img/s) \
         | ours / PyTorch | each round's ratio |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let s = |k: &str| r[k].as_str().map_or_else(|| r[k].to_string(), str::to_owned);
        let rounds: Vec<String> = (r["round_ratios"].as_array().into_iter().flatten())
            .filter_map(|x| Some(format!("{:.2}", x.as_f64()?)))
            .collect();
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s("model"),
            s("size"),
            s("batch"),
            s("precision"),
            s("layout"),
            s("device"),
            cell(&r["ours_img_s"], 1),
            cell(&r["pytorch_img_s"], 1),
            ratio(&r["ours_img_s"], &r["pytorch_img_s"]),
            if rounds.is_empty() { "–".into() } else { rounds.join(", ") },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_join_both_sides_by_their_key_and_take_the_median_of_the_rounds() {
        let row = |layout: &str, f: &str, x: f64| {
            json!({"model": "resnet18_cifar", "size": 32, "batch": 256, "precision": "f32",
                   "layout": layout, "device": "cpu", f: x})
        };
        let round = |ours: f64, torch: f64| {
            let o = [row("nchw", "ours_img_s", ours), row("channels_last", "ours_img_s", 1.0)];
            merge(&o, &[row("nchw", "pytorch_img_s", torch)]).unwrap()
        };
        let rows = medians(&[round(100.0, 50.0), round(300.0, 40.0), round(200.0, 60.0)]).unwrap();
        assert_eq!(rows.len(), 2, "two layouts, two rows");
        let nchw = rows.iter().find(|r| r["layout"] == "nchw").unwrap();
        assert_eq!(
            (nchw["ours_img_s"].as_f64(), nchw["pytorch_img_s"].as_f64()),
            (Some(200.0), Some(50.0))
        );
        let t = table(&rows);
        assert!(t.contains("| 200.0 | 50.0 | 4.00 | 2.00, 7.50, 3.33 |"), "{t}");
        assert!(t.contains("| 1.0 | – | – | – |"), "a side that did not run shows a dash: {t}");
    }
}
