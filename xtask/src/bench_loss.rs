//! `cargo xtask bench-loss`: the losses' forward + backward next to PyTorch eager and the GEMM
//! floor, in one run; writes `target/bench/loss.json` and the table in docs/benchmarks.md.
//!
//! Three measurements, one after the other on a quiet machine:
//! 1. criterion (`cargo bench -p ssl-bench --bench loss`): ours and the GEMM floor, medians;
//! 2. `loss_memory` (an ssl-bench example): peak extra memory of one step, and the one timing
//!    of the tiled loss at N = 65,536 (a step takes minutes there);
//! 3. `benches/reference/loss_bench.py` with the set-up venv's python: PyTorch eager.
//!
//! Timings 1 and 3 run under the same glibc malloc settings (the heap is kept, as the `ssl`
//! binary keeps it, so neither side page-faults fresh allocations) and the same default thread
//! count; 2 runs with a fixed mmap threshold, so freed blocks leave and each peak is the
//! step's own.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench_report::{
    cell, criterion_ms, json_lines, publish, ratio, reference_rows, HEAP_KEPT,
};
use crate::setup::Env;
use crate::shell::{self, cargo, workspace_root};

/// glibc settings of the memory pass: every block above 128 KiB is its own mapping.
const MMAP_EACH: &str = "glibc.malloc.mmap_threshold=131072";
/// The tiled floor at this N is extrapolated from the one at 16,384 (its matrix is 64 GiB).
const EXTRAPOLATED_FROM: i64 = 16_384;

/// A row of `loss.json`, keyed by (device, loss, n).
type Key = (String, String, i64);

pub(crate) fn run(env: &Env) -> Result<()> {
    let python = env.libtorch.python.clone().context(
        "bench-loss needs a python with PyTorch for the reference: run set-up with its venv \
         or pass --python",
    )?;
    let root = workspace_root();
    shell::step("bench-loss: criterion", || {
        shell::run(
            cargo()
                .args(["bench", "-p", "ssl-bench", "--bench", "loss"])
                .env("GLIBC_TUNABLES", HEAP_KEPT),
        )
    })?;
    let memory = shell::step("bench-loss: peak memory", || {
        let mut cmd = cargo();
        cmd.args(["run", "--release", "-p", "ssl-bench", "--example", "loss_memory"]);
        json_lines(cmd.env("GLIBC_TUNABLES", MMAP_EACH))
    })?;
    let pytorch = shell::step("bench-loss: PyTorch eager", || {
        reference_rows(&python, &root, "benches/reference/loss_bench.py")
    })?;
    let rows = merge(&root.join("target/criterion"), &memory, &pytorch)?;
    publish(&root, "loss", &rows, &table(&rows))
}

/// Criterion's median of `dir/<device>_<loss>/<function>/<n>`, in milliseconds.
fn case_ms(dir: &Path, key: &Key, function: &str) -> Result<Option<f64>> {
    criterion_ms(&dir.join(format!("{}_{}", key.0, key.1)).join(function).join(key.2.to_string()))
}

fn key_of(v: &Value) -> Result<Key> {
    let s = |f: &str| v[f].as_str().map(str::to_owned).with_context(|| format!("{v}: no {f}"));
    Ok((s("device")?, s("loss")?, v["n"].as_i64().with_context(|| format!("{v}: no n"))?))
}

/// One row per case the memory pass or criterion ran, with PyTorch's time where it ran.
fn merge(criterion: &Path, memory: &[Value], pytorch: &[Value]) -> Result<Vec<Value>> {
    let torch: BTreeMap<Key, f64> = pytorch
        .iter()
        .map(|v| Ok((key_of(v)?, v["pytorch_ms"].as_f64().context("pytorch_ms")?)))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for m in memory {
        let key = key_of(m)?;
        let ours = match case_ms(criterion, &key, "step")? {
            Some(ms) => ms,
            None => m["single_ms"].as_f64().context("single_ms")?,
        };
        let floor = match case_ms(criterion, &key, "gemm_floor")? {
            Some(ms) => Some(ms),
            None => {
                let base = (key.0.clone(), key.1.clone(), EXTRAPOLATED_FROM);
                let scale = (key.2 as f64 / EXTRAPOLATED_FROM as f64).powi(2);
                case_ms(criterion, &base, "gemm_floor")?.map(|ms| ms * scale)
            }
        };
        rows.push(json!({
            "loss": key.1, "n": key.2, "dim": m["dim"], "device": key.0,
            "ours_ms": ours, "pytorch_ms": torch.get(&key), "gemm_floor_ms": floor,
            "peak_mib": m["peak_mib"],
        }));
    }
    Ok(rows)
}

/// The markdown table of the rows, with the ratios the bar is stated in.
fn table(rows: &[Value]) -> String {
    let mut out = String::from(
        "| loss | N | device | ours (ms) | PyTorch eager (ms) | GEMM floor (ms) | ours / floor \
         | ours / PyTorch | peak extra (MiB) |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r["loss"].as_str().unwrap_or("?"),
            r["n"],
            r["device"].as_str().unwrap_or("?"),
            cell(&r["ours_ms"], 1),
            cell(&r["pytorch_ms"], 1),
            cell(&r["gemm_floor_ms"], 1),
            ratio(&r["ours_ms"], &r["gemm_floor_ms"]),
            ratio(&r["ours_ms"], &r["pytorch_ms"]),
            cell(&r["peak_mib"], 0),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_take_criterion_medians_and_extrapolate_the_largest_tiled_floor() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let put = |sub: &str, ns: f64| {
            let d = dir.join(sub).join("new");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("estimates.json"),
                json!({"median": {"point_estimate": ns}}).to_string(),
            )
            .unwrap();
        };
        put("cpu_nt_xent_tiled/step/16384", 2e9);
        put("cpu_nt_xent_tiled/gemm_floor/16384", 1e9);
        let memory = [
            json!({"loss": "nt_xent_tiled", "n": 16384, "dim": 128, "device": "cpu", "peak_mib": 5.0, "single_ms": 9.0}),
            json!({"loss": "nt_xent_tiled", "n": 65536, "dim": 128, "device": "cpu", "peak_mib": 7.0, "single_ms": 30000.0}),
        ];
        let torch = [
            json!({"loss": "nt_xent_tiled", "n": 16384, "dim": 128, "device": "cpu", "pytorch_ms": 4000.0}),
        ];
        let rows = merge(&dir, &memory, &torch).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(rows[0]["ours_ms"], 2000.0);
        assert_eq!(rows[0]["gemm_floor_ms"], 1000.0);
        assert_eq!(rows[0]["pytorch_ms"], 4000.0);
        assert_eq!(rows[1]["ours_ms"], 30000.0); // not in criterion: the single timed step
        assert_eq!(rows[1]["gemm_floor_ms"], 16000.0); // (65,536 / 16,384)² × 1000 ms
        assert!(rows[1]["pytorch_ms"].is_null());
        let t = table(&rows);
        assert!(
            t.contains(
                "| nt_xent_tiled | 16384 | cpu | 2000.0 | 4000.0 | 1000.0 | 2.00 | 0.50 | 5 |"
            ),
            "{t}"
        );
        assert!(t.contains("| 30000.0 | – | 16000.0 | 1.88 | – | 7 |"), "{t}");
    }
}
