//! `cargo xtask bench-methods`: one training step of SimCLR, MoCo v2, BYOL and SimSiam on the
//! main job's backbone and batch, ours next to PyTorch eager in one run; writes
//! `target/bench/methods.json` and the table in docs/benchmarks.md.
//!
//! Ours: `crates/ssl-train/examples/method_step.rs`, in the dev profile (opt-level 1) that
//! `cargo xtask run` trains with, so the figure is the main job's own step. PyTorch:
//! `benches/reference/method_step.py` with the set-up venv's python, the same models written as
//! the papers' reference code. Both under the same glibc heap setting and libtorch's default
//! threads, alternating [`ROUNDS`] times; each figure is the median over the rounds.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench_report::{cell, example_and_reference_rounds, median, publish, ratio};
use crate::setup::Env;
use crate::shell::workspace_root;

/// Rounds of both sides, alternating.
const ROUNDS: usize = 3;
/// The figures of a row, each the median over the rounds.
const FIELDS: [&str; 6] =
    ["ours_step_ms", "pytorch_step_ms", "ema_ms", "pytorch_ema_ms", "queue_ms", "pytorch_queue_ms"];

pub(crate) fn run(env: &Env) -> Result<()> {
    let python = env.libtorch.python.clone().context(
        "bench-methods needs a python with PyTorch for the reference: run set-up with its venv \
         or pass --python",
    )?;
    let example = ("ssl-train", "method_step");
    let script = "benches/reference/method_step.py";
    let rounds = example_and_reference_rounds("bench-methods", ROUNDS, example, &python, script)?
        .iter()
        .map(|(ours, reference)| merge(ours, reference))
        .collect::<Result<Vec<_>>>()?;
    let rows = medians(&rounds)?;
    publish(&workspace_root(), "methods", &rows, &table(&rows))
}

/// One row per method: ours and the reference's fields side by side.
fn merge(ours: &[Value], reference: &[Value]) -> Result<BTreeMap<String, Value>> {
    let mut rows = BTreeMap::new();
    for v in ours.iter().chain(reference) {
        let method = v["method"].as_str().context("a row without `method`")?.to_owned();
        let row = rows.entry(method.clone()).or_insert_with(
            || json!({"method": method, "device": v["device"], "batch": v["batch"]}),
        );
        for f in FIELDS {
            if !v[f].is_null() {
                row[f] = v[f].clone();
            }
        }
    }
    Ok(rows)
}

/// Every field the median of its rounds, in the order simclr, mocov2, byol, simsiam.
fn medians(rounds: &[BTreeMap<String, Value>]) -> Result<Vec<Value>> {
    let first = rounds.first().context("no round ran")?;
    let order = ["simclr", "mocov2", "byol", "simsiam"];
    let mut rows = Vec::new();
    for method in order.iter().filter(|m| first.contains_key(**m)) {
        let mut out = first[*method].clone();
        for f in FIELDS {
            out[f] = median(rounds.iter().filter_map(|r| r.get(*method)?[f].as_f64()).collect());
        }
        rows.push(out);
    }
    Ok(rows)
}

/// The markdown table, with the ratios the bars are stated in.
fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| method | device | batch | ours step (ms) | PyTorch step (ms) | ours / PyTorch \
         | EMA (ms), ours / PyTorch | EMA / step | queue (ms), ours / PyTorch | queue / step |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let pct = |part: &Value| match (part.as_f64(), r["ours_step_ms"].as_f64()) {
            (Some(a), Some(b)) => format!("{:.1} %", a / b * 100.0),
            _ => "–".into(),
        };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} / {} | {} | {} / {} | {} |\n",
            r["method"].as_str().unwrap_or("?"),
            r["device"].as_str().unwrap_or("?"),
            r["batch"],
            cell(&r["ours_step_ms"], 1),
            cell(&r["pytorch_step_ms"], 1),
            ratio(&r["ours_step_ms"], &r["pytorch_step_ms"]),
            cell(&r["ema_ms"], 2),
            cell(&r["pytorch_ema_ms"], 2),
            pct(&r["ema_ms"]),
            cell(&r["queue_ms"], 3),
            cell(&r["pytorch_queue_ms"], 3),
            pct(&r["queue_ms"]),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_join_both_sides_and_take_the_median_of_the_rounds() {
        let round = |ours: f64, torch: f64| {
            let o = [
                json!({"method": "byol", "device": "cpu", "batch": 512, "ours_step_ms": ours, "ema_ms": 2.0, "queue_ms": null}),
            ];
            let t = [
                json!({"method": "byol", "device": "cpu", "batch": 512, "pytorch_step_ms": torch, "pytorch_ema_ms": 3.0}),
            ];
            merge(&o, &t).unwrap()
        };
        let rows =
            medians(&[round(100.0, 120.0), round(90.0, 200.0), round(300.0, 110.0)]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0]["ours_step_ms"].as_f64(), rows[0]["pytorch_step_ms"].as_f64()),
            (Some(100.0), Some(120.0))
        );
        let t = table(&rows);
        assert!(
            t.contains(
                "| byol | cpu | 512 | 100.0 | 120.0 | 0.83 | 2.00 / 3.00 | 2.0 % | – / – | – |"
            ),
            "{t}"
        );
    }
}
