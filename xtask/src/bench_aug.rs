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
//!
//! The two sides run one after the other [`ROUNDS`] times; each figure is the median over
//! the rounds, and each row keeps every round's ours / kornia ratio. On a shared machine
//! whose speed drifts by tens of per cent within a minute, one round can land ours or the
//! reference in a slow spell; alternating rounds spread the drift over both sides.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench_report::{cell, criterion_ms, publish, ratio, reference_rows, HEAP_KEPT};
use crate::setup::Env;
use crate::setup::{pip_ensure, TORCHVISION};
use crate::shell::{self, cargo, workspace_root};

/// kornia's release the reference is written against.
const KORNIA: &str = "kornia==0.9.0";
/// Rounds of both sides, alternating.
const ROUNDS: usize = 3;

pub(crate) fn run(env: &Env) -> Result<()> {
    let python = env.libtorch.python.clone().context(
        "bench-aug needs a python with PyTorch for the reference: run set-up with its venv \
         or pass --python",
    )?;
    let root = workspace_root();
    shell::step("bench-aug: torchvision and kornia", || ensure_references(&python))?;
    let mut rounds = Vec::with_capacity(ROUNDS);
    for round in 1..=ROUNDS {
        shell::step(&format!("bench-aug: criterion, round {round} of {ROUNDS}"), || {
            shell::run(
                cargo()
                    .args(["bench", "-p", "ssl-bench", "--bench", "aug"])
                    .env("GLIBC_TUNABLES", HEAP_KEPT),
            )
        })?;
        let step = format!("bench-aug: torchvision and kornia, round {round} of {ROUNDS}");
        let reference = shell::step(&step, || {
            reference_rows(&python, &root, "benches/reference/aug_bench.py")
        })?;
        rounds.push(merge(&root.join("target/criterion"), &reference)?);
    }
    let rows = medians(&rounds)?;
    publish(&root, "aug", &rows, &table(&rows))
}

/// Installs torchvision and kornia into the venv of `python` unless both are there.
fn ensure_references(python: &Path) -> Result<()> {
    pip_ensure(python, &[("torchvision", TORCHVISION), ("kornia", KORNIA)])
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

/// The rows of the rounds (each from [`merge`], in the same order) with every figure the
/// median over the rounds, with each round's figures (`<field>_rounds`) and ratio
/// (`ours_over_kornia_rounds`).
fn medians(rounds: &[Vec<Value>]) -> Result<Vec<Value>> {
    let first = rounds.first().context("no round ran")?;
    let mut rows = Vec::with_capacity(first.len());
    for (i, row) in first.iter().enumerate() {
        let same: Vec<&Value> = rounds.iter().filter_map(|r| r.get(i)).collect();
        anyhow::ensure!(
            same.len() == rounds.len() && same.iter().all(|r| key_of(r).ok() == key_of(row).ok()),
            "the rounds ran different cases"
        );
        let mut out = row.clone();
        for field in ["ours_img_s", "torchvision_img_s", "kornia_img_s"] {
            let each: Vec<f64> = same.iter().filter_map(|r| r[field].as_f64()).collect();
            let mut v = each.clone();
            v.sort_by(f64::total_cmp);
            out[field] = if v.is_empty() { Value::Null } else { json!(v[v.len() / 2]) };
            out[format!("{field}_rounds")] =
                json!(each.iter().map(|x| x.round()).collect::<Vec<_>>());
        }
        let per_round: Vec<Value> = same
            .iter()
            .map(|r| match (r["ours_img_s"].as_f64(), r["kornia_img_s"].as_f64()) {
                (Some(a), Some(b)) => json!((a / b * 100.0).round() / 100.0),
                _ => Value::Null,
            })
            .collect();
        out["ours_over_kornia_rounds"] = Value::Array(per_round);
        rows.push(out);
    }
    Ok(rows)
}

/// The markdown table of the rows, with the ratios the bar is stated in.
fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| pipeline | size | device | ours (img/s) | torchvision v2 (img/s) | kornia (img/s) \
         | ours / torchvision | ours / kornia | ours / kornia, each round |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let rounds = r["ours_over_kornia_rounds"]
            .as_array()
            .map_or("–".into(), |v| v.iter().map(|x| cell(x, 2)).collect::<Vec<_>>().join(", "));
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {rounds} |\n",
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
    }

    #[test]
    fn each_figure_is_the_median_of_the_rounds_and_each_rounds_ratio_is_kept() {
        let row = |ours: f64, kornia: f64| {
            vec![json!({"pipeline": "simclr", "size": 32, "device": "cpu", "ours_img_s": ours,
                        "torchvision_img_s": 1600.0, "kornia_img_s": kornia})]
        };
        let rows =
            medians(&[row(20480.0, 5000.0), row(10000.0, 4000.0), row(30000.0, 6000.0)]).unwrap();
        assert_eq!(rows[0]["ours_img_s"], 20480.0);
        assert_eq!(rows[0]["kornia_img_s"], 5000.0);
        let t = table(&rows);
        assert!(
            t.contains(
                "| simclr | 32 | cpu | 20480 | 1600 | 5000 | 12.80 | 4.10 | 4.10, 2.50, 5.00 |"
            ),
            "{t}"
        );
        let other = vec![json!({"pipeline": "simclr_blur", "size": 96, "device": "cpu"})];
        assert!(medians(&[row(1.0, 1.0), other]).is_err());
    }
}
