//! Small process helpers: run a command with echo and a clear error, time a named step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").into()
}

/// Runs `f` as the named step, printing its duration when it ends.
pub(crate) fn step<T>(name: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let start = Instant::now();
    let out = f();
    let secs = start.elapsed().as_secs_f64();
    match &out {
        Ok(_) => eprintln!("xtask: {name}: done in {secs:.1} s"),
        Err(_) => eprintln!("xtask: {name}: failed after {secs:.1} s"),
    }
    out
}

/// Runs `cmd` with inherited stdio, echoing it first; fails with the command line on a
/// non-zero exit.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let line = display(cmd);
    eprintln!("xtask: $ {line}");
    let status = cmd.status().with_context(|| format!("starting `{line}`"))?;
    if !status.success() {
        bail!("`{line}` failed with {status}");
    }
    Ok(())
}

/// Runs `cmd` and returns its stdout; `None` when it cannot start or exits non-zero.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The command line as a user would type it.
pub(crate) fn display(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// A `cargo` command run from the workspace root with the cargo that runs xtask.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}
