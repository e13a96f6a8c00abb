//! Fashion-MNIST: check the IDX files, installing the Debian package when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Result};

use crate::shell;

/// Where the Debian package `dataset-fashion-mnist` puts the data.
pub(crate) const DEFAULT_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The four files of the dataset, as the package and the original release name them.
pub(crate) const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

fn missing(dir: &Path) -> Vec<&'static str> {
    FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect()
}

/// Makes sure `dir` (default [`DEFAULT_DIR`]) holds Fashion-MNIST and returns it.
pub(crate) fn ensure(dir: Option<PathBuf>) -> Result<PathBuf> {
    let custom = dir.is_some();
    let dir = dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let gone = missing(&dir);
    if gone.is_empty() {
        return Ok(dir);
    }
    if custom {
        bail!("data directory {} lacks {}", dir.display(), gone.join(", "));
    }
    let is_root = shell::output(Command::new("id").arg("-u")).is_some_and(|u| u.trim() == "0");
    if !is_root {
        bail!(
            "Fashion-MNIST is not in {DEFAULT_DIR}: install it with \
             `sudo apt-get install dataset-fashion-mnist`, or pass --data-dir DIR"
        );
    }
    let install = || {
        shell::run(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "dataset-fashion-mnist"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    if install().is_err() {
        // A fresh machine may have no package lists yet.
        shell::run(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    let gone = missing(&dir);
    if !gone.is_empty() {
        bail!("dataset-fashion-mnist installed but {} lacks {}", dir.display(), gone.join(", "));
    }
    Ok(dir)
}
