//! `cargo xtask tidy` (also a `#[test]`): the crate dependency direction, `//!` file headers,
//! and an ARCHITECTURE.md whose codemap has a section per crate and names only files that exist.
//!
//! Invariant: the four leaf crates (ssl-loss, ssl-aug, ssl-models, ssl-moco) depend on no other
//! workspace crate; ssl-data depends on none either; only ssl-train (and the benches) compose
//! them; ssl-testutil is only ever a dev-dependency; xtask depends on no workspace crate nor tch.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Workspace crates each crate may depend on (normal and build dependencies).
const ALLOWED_INTERNAL: &[(&str, &[&str])] = &[
    ("ssl-loss", &[]),
    ("ssl-aug", &[]),
    ("ssl-models", &[]),
    ("ssl-moco", &[]),
    ("ssl-data", &[]),
    ("ssl-testutil", &[]),
    ("ssl-train", &["ssl-loss", "ssl-aug", "ssl-models", "ssl-moco", "ssl-data"]),
    ("ssl-bench", &["ssl-loss", "ssl-aug", "ssl-models"]),
    ("xtask", &[]),
];

/// External crates the leaves may use (normal dependencies): rule A1 of the house style.
const LEAF_EXTERNAL: &[(&str, &[&str])] = &[
    ("ssl-loss", &["tch", "thiserror", "serde"]),
    ("ssl-aug", &["tch", "thiserror", "serde", "rand_core", "rand_chacha", "libc"]),
    ("ssl-models", &["tch", "thiserror", "serde"]),
    ("ssl-moco", &["tch", "thiserror", "serde"]),
];

/// Runs every tidy check on the workspace at `root`.
pub(crate) fn check(root: &Path) -> Result<()> {
    let mut problems = Vec::new();
    check_dependencies(root, &mut problems)?;
    check_headers(root, &mut problems)?;
    check_architecture(root, &mut problems)?;
    if !problems.is_empty() {
        bail!("tidy found {} problem(s):\n  {}", problems.len(), problems.join("\n  "));
    }
    eprintln!("xtask: tidy: ok");
    Ok(())
}

fn check_dependencies(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
    let packages = meta["packages"].as_array().context("cargo metadata has no packages")?;
    let internal: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    for pkg in packages {
        let name = pkg["name"].as_str().unwrap_or_default();
        let Some((_, allowed)) = ALLOWED_INTERNAL.iter().find(|(n, _)| *n == name) else {
            problems.push(format!(
                "crate {name} is not in xtask/src/tidy.rs ALLOWED_INTERNAL: add it there and to \
                 ARCHITECTURE.md"
            ));
            continue;
        };
        let external = LEAF_EXTERNAL.iter().find(|(n, _)| *n == name).map(|(_, e)| *e);
        for dep in pkg["dependencies"].as_array().into_iter().flatten() {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let kind = dep["kind"].as_str().unwrap_or("normal");
            let is_dev = kind == "dev";
            if internal.contains(&dep_name) {
                // A dev-dependency on itself only turns on features for its own tests.
                let ok = allowed.contains(&dep_name)
                    || (is_dev && (dep_name == "ssl-testutil" || dep_name == name));
                if !ok {
                    problems.push(format!("{name} -> {dep_name} ({kind}) breaks the crate map"));
                }
            } else if name == "xtask" && (dep_name == "tch" || dep_name == "torch-sys") {
                problems.push(format!("xtask -> {dep_name}: xtask must build without libtorch"));
            } else if let Some(external) = external {
                if !is_dev && !external.contains(&dep_name) {
                    problems.push(format!(
                        "leaf {name} -> {dep_name}: leaves use only {}",
                        external.join(", ")
                    ));
                }
            }
        }
    }
    Ok(())
}

fn check_headers(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let mut stack = vec![root.join("crates"), root.join("xtask"), root.join("benches")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                if !text.starts_with("//!") {
                    let rel = path.strip_prefix(root).unwrap_or(&path);
                    problems.push(format!("{} does not open with a `//!` line", rel.display()));
                }
            }
        }
    }
    Ok(())
}

fn check_architecture(root: &Path, problems: &mut Vec<String>) -> Result<()> {
    let path = root.join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).context("reading ARCHITECTURE.md")?;
    let lines = text.lines().count();
    if lines > 150 {
        problems.push(format!("ARCHITECTURE.md has {lines} lines; keep it to 150 or fewer"));
    }
    for (name, _) in ALLOWED_INTERNAL {
        let dir = if name.starts_with("ssl-") && *name != "ssl-bench" {
            format!("crates/{name}")
        } else if *name == "ssl-bench" {
            "benches".to_owned()
        } else {
            (*name).to_owned()
        };
        let heading = format!("### {dir}\n");
        let Some(start) = text.find(&heading) else {
            problems.push(format!("ARCHITECTURE.md has no `### {dir}` section in its codemap"));
            continue;
        };
        let body = &text[start + heading.len()..];
        let body = &body[..body.find("\n#").unwrap_or(body.len())];
        for file in named_files(body) {
            if !file_exists(&root.join(&dir), file) {
                problems.push(format!(
                    "ARCHITECTURE.md's `### {dir}` names `{file}`, which is not a file under {dir}/"
                ));
            }
        }
    }
    Ok(())
}

/// The backticked file names in a codemap section: `x.rs`, `tests/y.rs`, `reference/z.py`
/// (not the workspace's hidden `.cargo/…` files, some of which set-up generates).
fn named_files(section: &str) -> Vec<&str> {
    let exts = [".rs", ".py", ".toml", ".yaml"];
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| {
            exts.iter().any(|e| t.ends_with(e))
                && !t.starts_with('.')
                && t.chars().all(|c| c.is_alphanumeric() || "_-./".contains(c))
        })
        .collect()
}

/// Whether `name` is `dir/name`, `dir/src/name`, or (a bare file name) any file of that name
/// under `dir`.
fn file_exists(dir: &Path, name: &str) -> bool {
    if dir.join(name).is_file() || dir.join("src").join(name).is_file() {
        return true;
    }
    if name.contains('/') {
        return false;
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "target") {
                    stack.push(path);
                }
            } else if path.file_name().is_some_and(|n| n == name) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy() {
        check(&crate::shell::workspace_root()).unwrap();
    }

    #[test]
    fn a_codemap_entry_naming_a_missing_file_is_found() {
        let section = "Examples `examples/loss_memory.rs` and `examples/gone.rs`; `ops.rs`, \
                       `nope.rs`; not files: `NtXent`, `forward(z1, z2).rs`.";
        assert_eq!(
            named_files(section),
            ["examples/loss_memory.rs", "examples/gone.rs", "ops.rs", "nope.rs"]
        );
        let root = crate::shell::workspace_root();
        assert!(file_exists(&root.join("benches"), "examples/loss_memory.rs"));
        assert!(!file_exists(&root.join("benches"), "examples/gone.rs"));
        assert!(file_exists(&root.join("crates/ssl-loss"), "ops.rs"));
        assert!(!file_exists(&root.join("crates/ssl-loss"), "nope.rs"));
    }
}
