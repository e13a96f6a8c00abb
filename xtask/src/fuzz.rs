//! `cargo xtask fuzz --seconds S [--target T]`: runs each `cargo fuzz` target of `fuzz/` (the
//! IDX, CIFAR and STL-10 parsers, the image-folder decode path, the config loader) for `S`
//! seconds with libFuzzer on the nightly toolchain, starting from the committed seeds in
//! `fuzz/seeds/<target>` and growing the git-ignored `fuzz/corpus/<target>`. A crash stops with
//! the input's path under `fuzz/artifacts/`. Needs `rustup toolchain install nightly` and
//! `cargo install cargo-fuzz`; the stable `cargo xtask test` never builds `fuzz/`.

use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::setup::Env;
use crate::shell::{self, workspace_root};

/// The targets, in `fuzz/Cargo.toml`'s order.
pub(crate) const TARGETS: [&str; 5] = ["idx", "cifar", "stl10", "image_folder", "config"];

pub(crate) fn run(env: &Env, seconds: u64, only: Option<&str>) -> Result<()> {
    if let Some(t) = only {
        if !TARGETS.contains(&t) {
            bail!("no fuzz target {t}: the targets are {TARGETS:?}");
        }
    }
    let root = workspace_root();
    for target in TARGETS.iter().filter(|t| only.is_none_or(|o| o == **t)) {
        let corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&corpus)
            .with_context(|| format!("creating {}", corpus.display()))?;
        let seeds = root.join("fuzz/seeds").join(target);
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root)
            .args(["+nightly", "fuzz", "run", "--sanitizer", "none", target])
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg("-print_final_stats=1")
            // cargo-fuzz's RUSTFLAGS replace the config's rpath: find libtorch at run time.
            .env("LD_LIBRARY_PATH", env.libtorch.lib_dir());
        shell::step(&format!("fuzz {target} for {seconds} s"), || shell::run(&mut cmd))?;
    }
    Ok(())
}
