//! `cargo xtask setup`: libtorch, Fashion-MNIST and the generated `.cargo/libtorch.toml`.
//!
//! The generated file is included by the committed `.cargo/config.toml`. It sets `LIBTORCH` for
//! torch-sys's build script, an rpath to libtorch's `lib/` for every binary cargo and rustdoc
//! link (tests, benches and doc tests too), and `SSL_RS_PYTHON` / `SSL_RS_DATA_DIR` / `SSL_RS_DIGITS` for tests, benches and the CLI.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::libtorch::{self, Libtorch};
use crate::{dataset, digits, shell, SetupArgs};

/// What set-up found, for the commands that run after it.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    /// The libtorch every build links.
    pub(crate) libtorch: Libtorch,
    /// The Fashion-MNIST directory.
    pub(crate) data_dir: PathBuf,
    /// scikit-learn's `digits.csv.gz` (the transfer evaluation's second image set).
    pub(crate) digits: PathBuf,
}

fn config_path() -> PathBuf {
    shell::workspace_root().join(".cargo").join("libtorch.toml")
}

/// Runs set-up; idempotent and quick when everything is already in place.
pub(crate) fn run(args: &SetupArgs) -> Result<Env> {
    let path = config_path();
    let previous = read_generated(&path);
    // cargo injects the generated [env] into xtask's own environment: only a value that differs
    // from the generated one is the user's choice.
    let user = |name: &str| std::env::var(name).ok().filter(|v| previous.get(name) != Some(v));

    let libtorch = shell::step("setup: libtorch", || {
        if let Some(dir) = args.libtorch.clone().or_else(|| user("LIBTORCH").map(PathBuf::from)) {
            return libtorch::from_dir(&dir);
        }
        if let Some(py) = args.python.clone().or_else(|| user("SSL_RS_PYTHON").map(PathBuf::from)) {
            return libtorch::from_python(&py);
        }
        if let Some(dir) = previous.get("LIBTORCH") {
            if let Ok(mut torch) = libtorch::from_dir(Path::new(dir)) {
                torch.python = previous.get("SSL_RS_PYTHON").map(PathBuf::from);
                return Ok(torch);
            }
        }
        libtorch::from_cache(&cache_dir()?)
    })?;
    eprintln!(
        "xtask: libtorch {} at {}{}",
        libtorch.version.as_deref().unwrap_or("(version unknown)"),
        libtorch.dir.display(),
        if libtorch.has_cuda() { " (with CUDA libraries)" } else { " (CPU only)" }
    );

    let data_dir = shell::step("setup: fashion-mnist", || {
        let chosen = args.data_dir.clone().or_else(|| user("SSL_RS_DATA_DIR").map(PathBuf::from));
        let chosen = chosen
            .or_else(|| previous.get("SSL_RS_DATA_DIR").map(PathBuf::from).filter(|d| d.is_dir()));
        dataset::ensure(chosen)
    })?;
    eprintln!("xtask: Fashion-MNIST at {}", data_dir.display());
    shell::step("setup: plot font", dataset::ensure_font)?;
    let digits =
        shell::step("setup: digits", || digits::ensure(&cache_dir()?, libtorch.python.as_deref()))?;

    if let Some(python) = libtorch.python.as_deref() {
        shell::step("setup: torchvision and safetensors", || ensure_interop(python))?;
    }
    let env = Env { libtorch, data_dir, digits };
    shell::step("setup: cargo config", || write_config(&path, &env))?;
    Ok(env)
}

/// torchvision's release for PyTorch 2.11.0.
pub(crate) const TORCHVISION: &str = "torchvision==0.26.0";
/// safetensors, for PyTorch to read the files `ssl export` writes.
const SAFETENSORS: &str = "safetensors==0.8.0";

/// Installs torchvision and safetensors into the venv of `python` unless both are there: the
/// export test loads `ssl export`'s file into `torchvision.models.resnet18` with them.
fn ensure_interop(python: &Path) -> Result<()> {
    pip_ensure(python, &[("torchvision", TORCHVISION), ("safetensors", SAFETENSORS)])
}

/// `pip install`s the pins of `packages` (module, pin) into the venv of `python` unless every
/// module is already there. `find_spec` finds without importing: importing torchvision loads
/// torch, seconds on every command.
pub(crate) fn pip_ensure(python: &Path, packages: &[(&str, &str)]) -> Result<()> {
    let specs: Vec<String> = packages.iter().map(|(m, _)| format!("u.find_spec('{m}')")).collect();
    let find = format!(
        "import importlib.util as u, sys; sys.exit(0 if all([{}]) else 1)",
        specs.join(", ")
    );
    let probe = Command::new(python).args(["-c", &find]).output();
    if probe.is_ok_and(|o| o.status.success()) {
        return Ok(());
    }
    let pins = packages.iter().map(|(_, pin)| *pin);
    shell::run(Command::new(python).args(["-m", "pip", "install"]).args(pins))
}

/// `$SSL_RS_CACHE_DIR`, else `$XDG_CACHE_HOME/ssl-rs`, else `~/.cache/ssl-rs`.
fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("SSL_RS_CACHE_DIR") {
        return Ok(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("ssl-rs"));
    }
    let home = std::env::var_os("HOME").context("neither SSL_RS_CACHE_DIR nor HOME is set")?;
    Ok(PathBuf::from(home).join(".cache").join("ssl-rs"))
}

/// The host target triple, for the `[target.<triple>]` table.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = shell::output(Command::new(rustc).arg("-vV")).context("running `rustc -vV`")?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` printed no host line")
}

/// A TOML literal string; paths with a `'` are refused rather than escaped.
fn literal(value: &Path) -> Result<String> {
    let s = value.to_str().with_context(|| format!("{} is not UTF-8", value.display()))?;
    if s.contains('\'') || s.contains('\n') {
        bail!("path {s:?} contains a quote or newline, which the cargo config cannot hold");
    }
    Ok(format!("'{s}'"))
}

fn render(env: &Env, triple: &str) -> Result<String> {
    let mut out = String::from(
        "# Written by `cargo xtask setup`: do not edit, run it again (see README.md).\n[env]\n",
    );
    out += &format!("LIBTORCH = {}\n", literal(&env.libtorch.dir)?);
    if let Some(py) = &env.libtorch.python {
        out += &format!("SSL_RS_PYTHON = {}\n", literal(py)?);
    }
    out += &format!("SSL_RS_DATA_DIR = {}\n", literal(&env.data_dir)?);
    out += &format!("SSL_RS_DIGITS = {}\n", literal(&env.digits)?);
    out += &format!("\n[target.{triple}]\n");
    let rpath = format!("link-arg=-Wl,-rpath,{}", env.libtorch.lib_dir().display());
    let flags = format!("['-C', {}]", literal(Path::new(&rpath))?);
    out += &format!("rustflags = {flags}\n");
    // Doc tests are linked by rustdoc, which reads rustdocflags, not rustflags.
    out += &format!("\n[build]\nrustdocflags = {flags}\n");
    Ok(out)
}

fn write_config(path: &Path, env: &Env) -> Result<()> {
    let text = render(env, &host_triple()?)?;
    if std::fs::read_to_string(path).ok().as_deref() == Some(text.as_str()) {
        return Ok(());
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// The `KEY = 'value'` lines of a previously generated config.
fn read_generated(path: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(" = ")?;
            let v = v.strip_prefix('\'')?.strip_suffix('\'')?;
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_config_round_trips_its_env() {
        let env = Env {
            libtorch: Libtorch {
                dir: "/c/torch".into(),
                python: Some("/c/bin/python".into()),
                version: None,
            },
            data_dir: "/d/fm".into(),
            digits: "/c/digits.csv.gz".into(),
        };
        let text = render(&env, "x86_64-unknown-linux-gnu").unwrap();
        let flags = "['-C', 'link-arg=-Wl,-rpath,/c/torch/lib']";
        assert!(text.contains(&format!("\nrustflags = {flags}\n")), "{text}");
        assert!(text.contains(&format!("\nrustdocflags = {flags}\n")), "{text}");
        let path = std::env::temp_dir().join(format!("xtask-gen-{}.toml", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let back = read_generated(&path);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back["LIBTORCH"], "/c/torch");
        assert_eq!(back["SSL_RS_PYTHON"], "/c/bin/python");
        assert_eq!(back["SSL_RS_DATA_DIR"], "/d/fm");
        assert_eq!(back["SSL_RS_DIGITS"], "/c/digits.csv.gz");
    }

    #[test]
    fn quotes_in_paths_are_refused() {
        assert!(literal(Path::new("/a'b")).is_err());
    }
}
