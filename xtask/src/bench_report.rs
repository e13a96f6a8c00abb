//! What the `bench-*` commands share: the allocator setting of timed runs, JSON-lines output
//! of helper processes, criterion's estimates, and the results written out and into
//! docs/benchmarks.md.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::shell;

/// glibc settings of every timed side: no `mmap` per large block, no trimming of the heap
/// (as the `ssl` binary sets itself), so neither side page-faults fresh allocations.
pub(crate) const HEAP_KEPT: &str = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4294967295";

/// `rounds` alternating runs of our example `example` of `package` (dev profile) and the
/// PyTorch script `script` under the same heap setting; each round's JSON rows of both sides.
pub(crate) fn example_and_reference_rounds(
    bench: &str,
    rounds: usize,
    (package, example): (&str, &str),
    python: &Path,
    script: &str,
) -> Result<Vec<(Vec<Value>, Vec<Value>)>> {
    let root = shell::workspace_root();
    let mut out = Vec::with_capacity(rounds);
    for round in 1..=rounds {
        let ours = shell::step(&format!("{bench}: ours, round {round} of {rounds}"), || {
            json_lines(
                shell::cargo()
                    .args(["run", "-p", package, "--example", example])
                    .env("GLIBC_TUNABLES", HEAP_KEPT),
            )
        })?;
        let step = format!("{bench}: PyTorch eager, round {round} of {rounds}");
        let reference = shell::step(&step, || reference_rows(python, &root, script))?;
        out.push((ours, reference));
    }
    Ok(out)
}

/// The median of `values` (the upper middle one of an even count) as JSON; null when empty.
pub(crate) fn median(mut values: Vec<f64>) -> Value {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).map_or(Value::Null, |&v| serde_json::json!(v))
}

/// Runs `cmd`, echoing it, and parses every stdout line that starts with `{` as JSON.
pub(crate) fn json_lines(cmd: &mut Command) -> Result<Vec<Value>> {
    let line = shell::display(cmd);
    eprintln!("xtask: $ {line}");
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        bail!("`{line}` failed with {}", out.status);
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).with_context(|| format!("`{line}` printed {l:?}")))
        .collect()
}

/// Runs the PyTorch reference script `script` (relative to `root`) with `python` under the
/// heap setting of timed runs, from `root`, and parses its JSON lines.
pub(crate) fn reference_rows(python: &Path, root: &Path, script: &str) -> Result<Vec<Value>> {
    let mut cmd = Command::new(python);
    cmd.arg(root.join(script)).current_dir(root).env("GLIBC_TUNABLES", HEAP_KEPT);
    json_lines(&mut cmd)
}

/// Criterion's median for the benchmark directory `dir` (`…/<group>/<function>/<param>`),
/// in milliseconds; `None` when criterion did not run it.
pub(crate) fn criterion_ms(dir: &Path) -> Result<Option<f64>> {
    let path = dir.join("new/estimates.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let ns = v["median"]["point_estimate"].as_f64();
    Ok(Some(ns.with_context(|| format!("{} has no median", path.display()))? / 1e6))
}

/// Writes `rows` to `target/bench/<name>.json` under `root`, prints `table`, and puts it
/// between the `<!-- <marker>: begin … -->` and `<!-- <marker>: end -->` lines of
/// docs/benchmarks.md.
pub(crate) fn publish(root: &Path, name: &str, rows: &[Value], table: &str) -> Result<()> {
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(rows)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("{table}");
    eprintln!("xtask: wrote {}", path.display());
    write_section(&root.join("docs/benchmarks.md"), &format!("bench-{name}"), table)
}

/// Replaces the text between the `marker` lines of the markdown file `path` with `table`.
fn write_section(path: &Path, marker: &str, table: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let begin = format!("<!-- {marker}: begin (written by `cargo xtask {marker}`) -->");
    let end = format!("<!-- {marker}: end -->");
    let (Some(a), Some(b)) = (text.find(&begin), text.find(&end)) else {
        bail!("{} has no `{begin}` … `{end}` section for the table", path.display());
    };
    let new = format!("{}{begin}\n{table}{}", &text[..a], &text[b..]);
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: updated the table in {}", path.display());
    Ok(())
}

/// A markdown cell: `v` with `digits` decimals, or `–` when absent.
pub(crate) fn cell(v: &Value, digits: usize) -> String {
    v.as_f64().map_or("–".into(), |x| format!("{x:.digits$}"))
}

/// A markdown cell: `a / b` with two decimals, or `–` when either is absent.
pub(crate) fn ratio(a: &Value, b: &Value) -> String {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_between_the_markers_is_replaced_and_the_rest_kept() {
        let path = std::env::temp_dir().join(format!("xtask-md-{}.md", std::process::id()));
        let begin = "<!-- bench-x: begin (written by `cargo xtask bench-x`) -->";
        std::fs::write(&path, format!("intro\n{begin}\nold\n<!-- bench-x: end -->\nafter\n"))
            .unwrap();
        write_section(&path, "bench-x", "| new |\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(text, format!("intro\n{begin}\n| new |\n<!-- bench-x: end -->\nafter\n"));
        assert!(write_section(Path::new("/nonexistent.md"), "bench-x", "").is_err());
    }
}
