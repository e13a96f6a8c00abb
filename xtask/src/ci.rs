//! The commands that run after set-up: the main job, the tests and the CI checks.

use std::path::Path;

use anyhow::{bail, Result};

use crate::setup::Env;
use crate::shell::{self, cargo};

/// The default config of the main job, relative to the workspace root.
const MAIN_CONFIG: &str = "crates/ssl-train/configs/simclr-fmnist.yaml";

/// `cargo xtask run [--config FILE]`: pre-training on Fashion-MNIST with `config` (default:
/// SimCLR's), then its evaluation, through the `ssl` CLI.
pub(crate) fn main_job(env: &Env, config: Option<&Path>, extra: &[String]) -> Result<()> {
    let root = shell::workspace_root();
    let config = config.map_or_else(|| root.join(MAIN_CONFIG), Path::to_path_buf);
    if !config.is_file() {
        bail!(
            "config {} does not exist (the shipped ones are in crates/ssl-train/configs/)",
            config.display()
        );
    }
    let mut cmd = cargo();
    cmd.args(["run", "--package", "ssl-train", "--bin", "ssl", "--", "train", "--config"]);
    cmd.arg(&config).arg("--set").arg(format!("data.dir={}", env.data_dir.display()));
    cmd.args(extra);
    shell::step("run: ssl train", || shell::run(&mut cmd))
}

/// `cargo xtask test`: every test of the workspace, doc tests included.
pub(crate) fn test(extra: &[String]) -> Result<()> {
    shell::step("test: cargo test --workspace", || {
        shell::run(cargo().args(["test", "--workspace"]).args(extra))
    })
}

/// `cargo xtask ci`: formatting, lints, tests and docs, each with warnings as errors.
pub(crate) fn all() -> Result<()> {
    shell::step("ci: fmt", || shell::run(cargo().args(["fmt", "--all", "--", "--check"])))?;
    shell::step("ci: clippy", || {
        shell::run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    test(&[])?;
    shell::step("ci: doc", || {
        shell::run(
            cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"),
        )
    })
}
